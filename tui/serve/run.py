"""`rnn-tui serve`: the checks before the banner (textual-serve's hooks, the settings, the address, the log, the work
directory), then the server until Ctrl+C; whatever way it ends, nothing is left behind.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import stat
import sys
from pathlib import Path

from engine.errors import RnnTuiError
from tui.cli import fail
from tui.serve.cleanup import claim_workdir, sweep_leftovers
from tui.serve.hooks import check_hooks
from tui.serve.server import ClassroomServer
from tui.serve.settings import LOCAL_HOSTS, settings_from_args
from tui.served import remove_tree


def host_warning(host: str) -> str | None:
    if host in LOCAL_HOSTS:
        return None
    return (
        f"rnn-tui serve: warning: listening on {host}: anyone who can reach this port can run training on this "
        "machine (and use its CPU); use a firewall or a reverse proxy with a login for anything beyond a classroom"
    )


def check_unix_socket(path: str) -> None:
    """OSError if a server cannot listen at path: its folder missing, or something there already (a socket that
    answers is another server's; a stale one, from a server that died, is removed)."""
    if not Path(path).parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(Path(path).parent))
    if not os.path.lexists(path):
        return
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise FileExistsError(errno.EEXIST, "a file that is not a socket is there")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # nobody listens: a dead server's
            return
    raise OSError(errno.EADDRINUSE, "Address already in use")


def check_port(host: str, port: int) -> None:
    """OSError if host:port cannot be listened on (taken, or not an address of this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
        probe.bind((host, port))


def run_server(args: argparse.Namespace) -> int:
    changed = check_hooks()  # a textual-serve release that changed what this server overrides: refuse, in one line
    if changed:
        fail(changed)
    try:
        settings = settings_from_args(args)
    except RnnTuiError as exc:
        fail(exc)  # its settings named as flags (--corpus)
    where = settings.unix_socket or f"{settings.host}:{settings.port}"
    try:  # before the banner: aiohttp announces the app before it binds
        if settings.unix_socket is not None:
            check_unix_socket(settings.unix_socket)
        else:
            check_port(settings.host, settings.port)
    except OSError as exc:
        if settings.own_workdir:
            remove_tree(str(settings.workdir))
        fail(f"cannot listen on {where}: {exc.strerror or exc}")
    warning = host_warning(settings.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    if settings.log_file is not None:
        try:
            settings.log_file.open("a", encoding="utf-8").close()
        except OSError as exc:
            fail(f"cannot write --log {settings.log_file}: {exc.strerror or exc}")
    try:
        lock = claim_workdir(settings.workdir)
    except RnnTuiError as exc:
        fail(exc)
    leftovers = sweep_leftovers(settings.workdir)
    if leftovers:
        print(
            f"rnn-tui serve: removed {leftovers} session folder(s) an earlier server left in {settings.workdir}",
            file=sys.stderr,
            flush=True,
        )
    server = ClassroomServer(settings)
    server.workdir_lock = lock
    server.reaper.start(settings.workdir if settings.own_workdir else None)
    try:
        server.serve()
    except OSError as exc:  # the port is taken, the address is not this machine's
        fail(f"cannot listen on {where}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
    finally:
        for session in server.sessions.values():  # only when the server itself failed: its shutdown ends them
            session.kill()
            remove_tree(str(session.mode.session_dir))
        if settings.own_workdir:
            remove_tree(str(settings.workdir))
        server.reaper.close()
    return 0
