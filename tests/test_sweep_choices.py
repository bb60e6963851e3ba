"""What a sweep chooses, and what it hands on (issue #28): the ranking, the best trial and Apply best never read the
test text, even one planted to change them; the ready command reruns its trial whole, a cosine schedule included.

Real `rnn-tui sweep` commands on the real corpus (the book's lyrics), tiny trials (4,000 training characters, a
few seconds each).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from test_sweep import run_sweep

from engine.data.corpus import read_text
from engine.sweep import TrialRow, best_row, read_trials

STUDY = "rnn-tui"


def heldout(row: TrialRow) -> list[float]:
    """A trial's held-out perplexity at each of its epochs."""
    return [float(h["val_perplexity"]) for h in row.history]


def sweep_on(text_file: Path, tmp_path: Path) -> tuple[str, list[TrialRow]]:
    """A two-trial sweep on text_file (4,000 training characters, 1,500 held out, the test text the 1,500 after):
    a GRU at lr 0.005 and at 0.02. Its output and its trials as the app reads them."""
    storage = f"sqlite:///{tmp_path / (text_file.stem + '.db')}"
    flags = ["--corpus", str(text_file), "--cell", "gru", "--hidden", "256", "--epochs", "8", "--trials", "2"]
    flags += ["--jobs", "1", "--pruner", "none", "--sampler-seed", "0", "--search", "lr=0.005,0.02"]
    result = run_sweep(*flags, "--storage", storage, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, read_trials(storage, STUDY)


def test_the_ranking_the_best_trial_and_apply_best_never_read_the_test_text_even_one_planted(
    corpus_path: Path, tmp_path: Path
) -> None:
    """Two sweeps alike but for the test text: the honest one (the 1,500 characters after the held-out text), and the
    training text's own start planted in its place, which the trial that memorises fastest (lr 0.02, its held-out
    figure rising after epoch 6) predicts best. Read by the ranking, the planted text would pick that trial; the
    held-out text picks the other. Both sweeps choose the same trial, with the same held-out figure, the same Apply
    best values and the same ready command; only the test figure reported for it differs."""
    whole = read_text(corpus_path, 0)
    honest, trap = tmp_path / "honest.txt", tmp_path / "trap.txt"
    honest.write_text(whole[:7_000], encoding="utf-8")
    trap.write_text(whole[:5_500] + whole[:1_500], encoding="utf-8")
    out_honest, rows_honest = sweep_on(honest, tmp_path)
    out_trap, rows_trap = sweep_on(trap, tmp_path)

    assert sorted(r.params["lr"] for r in rows_trap) == [0.005, 0.02], "both learning rates should be tried"
    best_honest, best_trap = best_row(rows_honest), best_row(rows_trap)
    assert best_honest is not None and best_trap is not None

    def test_figure(row: TrialRow) -> float:
        return float(row.history[-1]["test_perplexity"])

    # The planted text would change the choice: the trial it reads best is not the one held-out ranks first.
    by_test = min(rows_trap, key=test_figure)
    assert by_test.number != best_trap.number and by_test.best is not None and best_trap.best is not None
    assert test_figure(by_test) < 0.5 * test_figure(best_trap) and by_test.best > best_trap.best
    # The same choice, figures, Apply best values and ready command, bit for bit on this machine.
    assert [(r.number, r.params, heldout(r)) for r in rows_honest] == [
        (r.number, r.params, heldout(r)) for r in rows_trap
    ]
    assert (best_honest.number, best_honest.best, best_honest.best_epoch) == (
        best_trap.number, best_trap.best, best_trap.best_epoch
    )  # fmt: skip

    def without_corpus(settings: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in settings.items() if k != "corpus"}

    assert without_corpus(best_honest.form_settings) == without_corpus(best_trap.form_settings)
    assert best_honest.command.replace(str(honest), "TEXT") == best_trap.command.replace(str(trap), "TEXT")

    def best_line(out: str) -> str:
        return next(line for line in out.splitlines() if line.startswith("best: trial"))

    assert best_line(out_honest) == best_line(out_trap)
    assert best_line(out_trap).startswith(f"best: trial {best_trap.number}, held-out perplexity {best_trap.best:f}")
    # The planted text was read, for the report only.
    tests = [float(m[1]) for out in (out_honest, out_trap) for m in re.finditer(r"  test perplexity (\S+)", out)]
    assert len(tests) == 2 and tests[1] < 0.6 * tests[0], tests


def test_the_ready_command_reruns_a_cosine_trial_whole_and_names_its_best_epoch(tmp_path: Path) -> None:
    """A cosine schedule's rate depends on --epochs: the ready command keeps the trial's 8 (its best held-out epoch is
    6), keeps the best epoch's weights with --save-best, and its rerun gives every epoch's held-out figure of the
    trial and names the best one, digit for digit. Cut at the best epoch (what it did before), the rerun would not be
    the trial. Apply best's values are the same settings."""
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    flags = ["--epochs", "8", "--schedule", "cosine", "--trials", "1", "--pruner", "none", "--storage", storage]
    # Either rate's held-out figure turns after epoch 6 (180.9 then 182.4; 204.1 then 205.3).
    result = run_sweep(*flags, "--search", "hidden=128", "--search", "lr=0.02,0.025", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (trial,) = read_trials(storage, STUDY)
    assert trial.best_epoch is not None and trial.best_epoch < 8, heldout(trial)  # held-out turned before the end
    best_line = next(line for line in result.stdout.splitlines() if line.startswith("best: trial 0,"))
    figure = best_line.split("held-out perplexity ")[1].split()[0]
    assert f"(epoch {trial.best_epoch})" in best_line
    command = shlex.split(result.stdout.strip().splitlines()[-1])
    assert command[:3] == ["rnn-tui", "train", "--headless"] and command == shlex.split(trial.command)
    shown = " ".join(command)
    assert "--epochs 8" in shown and "--schedule cosine" in shown and "--save-best trial-0-best.ckpt" in shown
    assert trial.form_settings["epochs"] == 8 and trial.form_settings["schedule"] == "cosine"  # Apply best

    def rerun(*words: str) -> tuple[str, list[float]]:
        metrics = tmp_path / "rerun.jsonl"
        metrics.unlink(missing_ok=True)
        again = subprocess.run(
            [sys.executable, "-m", "tui.main", *words, "--metrics", str(metrics)], cwd=tmp_path, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        records = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()]
        return again.stdout + again.stderr, [r["val_perplexity"] for r in records]

    out, rerun_heldout = rerun(*command[1:])
    assert rerun_heldout == heldout(trial)  # the trial again, epoch by epoch
    saved = (
        f"saved the best held-out epoch to trial-0-best.ckpt (epoch {trial.best_epoch}, held-out perplexity {figure})"
    )
    assert saved in out, out
    assert (tmp_path / "trial-0-best.ckpt").is_file()
    cut = command[1 : command.index("--save-best")]  # what it was before: no --save-best, --epochs the best epoch
    cut[cut.index("--epochs") + 1] = str(trial.best_epoch)
    _, heldout_cut = rerun(*cut)  # another schedule: another run
    assert len(heldout_cut) == trial.best_epoch and heldout_cut[-1] != trial.best
