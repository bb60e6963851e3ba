"""The Textual app, a front end beside the command line (tui.cli) and the classroom server (tui.serve).

app (the App: keys, screens, messages, quitting), main_screen (the panels), run_control (the run on screen),
checkpoint_flow, generation_flow, shapes_preview (the app's flows), hosts (what the screens see of the app),
worker, messages, run_state, checkpoint_weights; screens/ (every modal screen), widgets/ (the panels),
app.tcss (the one stylesheet). What the entry point (tui.main), the benches and the tests open it with is
exported here.
"""

from tui.app.app import SWITCH_INTERVAL_SECONDS, RnnTuiApp, run_app

__all__ = ["SWITCH_INTERVAL_SECONDS", "RnnTuiApp", "run_app"]
