"""Every modal screen: help, confirmation and file dialogs, the insight views (F4, F9, F10) and the Sweep screen.

Each is imported when first opened (the first frame does not wait for them); tui.app.widgets holds only the panels.
"""

from tui.app.screens.dialogs import ConfirmScreen, HelpScreen, LoadScreen, PathDialog, SaveScreen, key_label

__all__ = ["ConfirmScreen", "HelpScreen", "LoadScreen", "PathDialog", "SaveScreen", "key_label"]
