"""The lab: why training behaves, one module a view.

Each view is a plain function of a model and text that returns a frozen dataclass with a to_json() (what
`rnn-tui lab NAME --json` prints and the tests read). A view reads a model nobody trains: a checkpoint's, or a copy
of the live weights (Trainer.copy_model), never the training model itself, so it can neither slow nor corrupt a run.
engine.lab.subject loads what a view reads from a checkpoint: its model, vocabulary, settings, and the training and
held-out text its run read.
"""
