"""A JupyterHub on one machine for trying rnn-tui there: any user name logs in (DummyAuthenticator), each user's
Jupyter server runs as a local process (SimpleLocalProcessSpawner). For a laptop or a test, not for a class: a
class gets a real authenticator and a spawner with limits (docs/jupyterhub.md).

    pip install 'rnn-tui[jupyter]' jupyterhub jupyterlab
    npm install -g configurable-http-proxy
    RNN_TUI_CORPUS=/path/to/jaychou_lyrics.txt.zip jupyterhub -f deploy/jupyterhub/jupyterhub_config.py

then open http://127.0.0.1:8000, log in with any name (and the password, if RNN_TUI_HUB_PASSWORD is set), and click
rnn-tui in JupyterLab's launcher. The hub writes its database and cookie secret in the folder it runs in.
"""

import os
import tempfile

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (JupyterHub's config loader provides it)

c.JupyterHub.bind_url = os.environ.get("RNN_TUI_HUB_URL", "http://127.0.0.1:8000")
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True  # any name: a try-out hub on 127.0.0.1
if os.environ.get("RNN_TUI_HUB_PASSWORD"):
    c.DummyAuthenticator.password = os.environ["RNN_TUI_HUB_PASSWORD"]

# Each user's server: a local process as the hub's own user, its home a folder of its own.
c.JupyterHub.spawner_class = "simple"
home = os.environ.get("RNN_TUI_HUB_HOMES", os.path.join(tempfile.gettempdir(), "rnn-tui-hub-homes"))
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(home, "{username}")
c.Spawner.default_url = "/lab"
if os.getuid() == 0:  # a container's root: Jupyter refuses root without this
    c.Spawner.args = ["--allow-root"]
# The spawner passes on only the variables named here. JupyterLab's terminal (xterm.js) draws 24-bit colour but says
# only TERM=xterm-256color: COLORTERM lets rnn-tui in a terminal use its own colours rather than the nearest of 256.
c.Spawner.environment = {"COLORTERM": "truecolor"}
if os.environ.get("RNN_TUI_CORPUS"):  # the corpus the sessions train on
    c.Spawner.environment["RNN_TUI_CORPUS"] = os.environ["RNN_TUI_CORPUS"]
