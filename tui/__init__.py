"""rnn-tui's Textual app. All UI; the training itself lives in the engine package."""
