"""How many students one machine serves: `rnn-tui serve` with N sessions, each a raw websocket client (aiohttp)
that keeps its session training and presses a key every couple of seconds, as a class would.

    python bench/serve_capacity.py --sessions 1 2 4 --seconds 90            # the book's model (hidden 256)
    python bench/serve_capacity.py --sessions 2 --seconds 60 --hidden 64

For each N it prints, per session: the training speed the app itself shows (its status panel's "s/epoch", read
from the terminal stream the browser would draw), the keypress-to-screen latency (a "~" typed into the prefix
field until a frame with it arrives; then erased), and each app process's memory (VmRSS), with the server's.
Every session runs one torch thread (--threads 1), as serve gives each of N sessions on N cores.

Figures depend on what else the machine runs: say so when quoting them.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("RNN_TUI_CORPUS", str(ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip"))
ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-Z\\-_]")
SPEED = re.compile(r"(\d+\.\d+) s/epoch")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass
class Client:
    number: int
    text: str = ""  # the terminal stream, escape sequences removed
    frames: int = 0
    latencies: list[float] = field(default_factory=list)
    waiting_for: str | None = None
    sent_at: float = 0.0
    echoed: asyncio.Event = field(default_factory=asyncio.Event)

    def speeds(self) -> list[float]:
        return [float(value) for value in SPEED.findall(self.text)]


async def run_client(url: str, client: Client, until: float) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    async with aiohttp.ClientSession() as http:
        params = {"width": "110", "height": "32"}
        async with http.ws_connect(url + "/ws", params=params, headers={"Origin": url}, max_msg_size=0) as ws:

            async def read() -> None:
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.BINARY:
                        continue
                    chunk = ANSI.sub("", decoder.decode(message.data))
                    client.frames += 1
                    client.text = (client.text + chunk)[-200_000:]
                    if client.waiting_for is not None and client.waiting_for in chunk:
                        client.latencies.append(time.perf_counter() - client.sent_at)
                        client.waiting_for = None
                        client.echoed.set()

            reader = asyncio.create_task(read())
            while "s/epoch" not in client.text and time.monotonic() < until:  # the app is up and training
                await asyncio.sleep(0.5)
            while time.monotonic() < until:
                await asyncio.sleep(2.0)
                client.echoed.clear()
                client.waiting_for, client.sent_at = "~", time.perf_counter()
                await ws.send_str(json.dumps(["stdin", "~"]))
                try:
                    await asyncio.wait_for(client.echoed.wait(), 10)
                except TimeoutError:
                    client.waiting_for = None
                await ws.send_str(json.dumps(["stdin", "\x7f"]))  # erase it: the prefix stays as it was
            reader.cancel()


def start_server(port: int, sessions: int, workdir: Path, log: Path, train: list[str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tui.main", "serve", "--port", str(port), "--max-sessions", str(sessions)]
    command += ["--workdir", str(workdir), "--log", str(log), "--idle-minutes", "0", "--release-minutes", "0"]
    command += ["--threads", "1", "--epochs", "100000", *train]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("the server did not start")
        time.sleep(0.2)


async def measure(sessions: int, seconds: float, train: list[str]) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="rnn-tui-capacity-") as scratch:
        log = Path(scratch) / "log.jsonl"
        server = start_server(port, sessions, Path(scratch) / "work", log, train)
        try:
            clients = [Client(n + 1) for n in range(sessions)]
            until = time.monotonic() + seconds
            url = f"http://127.0.0.1:{port}"
            memory: list[float] = []
            server_memory = float("nan")

            async def sample() -> None:  # while every session still runs (they end as their clients leave)
                nonlocal server_memory
                await asyncio.sleep(max(0.0, until - time.monotonic() - 1.0))
                events = [json.loads(line) for line in log.read_text().splitlines() if line]
                memory.extend(rss_mib(int(e["pid"])) for e in events if e["event"] == "joined")
                server_memory = rss_mib(server.pid)

            await asyncio.gather(sample(), *(run_client(url, client, until) for client in clients))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    print(f"\n{sessions} session(s), {seconds:.0f} s, {os.cpu_count()} CPU core(s) on this machine")
    print(f"{'session':>8} {'s/epoch':>9} {'key p50 ms':>11} {'key p95 ms':>11} {'keys':>5} {'RSS MiB':>8}")
    for client, rss in zip(clients, memory + [float("nan")] * (len(clients) - len(memory)), strict=False):
        speeds = client.speeds()
        speed = f"{statistics.median(speeds[-5:]):.2f}" if speeds else "–"
        lat = sorted(client.latencies)
        p50 = f"{1000 * statistics.median(lat):.0f}" if lat else "–"
        p95 = f"{1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))]:.0f}" if lat else "–"
        print(f"{client.number:>8} {speed:>9} {p50:>11} {p95:>11} {len(lat):>5} {rss:>8.0f}")
    print(f"  server RSS {server_memory:.0f} MiB; sessions' RSS total {sum(memory):.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=90.0, help="per run, from the first connection")
    parser.add_argument("--hidden", type=int, help="the model's hidden units (default: the app's, 256)")
    args = parser.parse_args()
    train = ["--hidden", str(args.hidden)] if args.hidden else []
    for sessions in args.sessions:
        asyncio.run(measure(sessions, args.seconds, train))


if __name__ == "__main__":
    main()
