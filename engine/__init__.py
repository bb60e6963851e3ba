"""rnn-tui's engine: corpus, model, training, generation and checkpoints. No UI imports here."""

__version__ = "0.1.0"
