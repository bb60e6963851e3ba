"""`rnn-tui lab datasize` (engine/lab/datasize.py; issue #28, item 6): a curve per corpus, the same held-out and test
text at every size, counting that improves with data, and the cache. Tiny runs: two sizes, two epochs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bad_inputs import assert_one_line_error, run_main

from engine.lab.datasize import corpus_config, datasize_curve
from tui.main import main

TINY = ["--sizes", "3k,12k", "--epochs", "2", "--threads", "1", "--json"]


def test_the_json_gives_a_curve_per_corpus_and_a_second_call_reads_the_cache(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["lab", "datasize", *TINY, "--hidden", "32"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(first) == {"lyrics", "timemachine"}
    for name, curve in first.items():
        points = curve["points"]
        assert [p["train_chars"] for p in points] == [3_000, 12_000]
        assert all(p["model"] > 1 and p["counting"] > 1 and p["counting_order"] in range(1, 9) for p in points)
        assert points[1]["counting"] < points[0]["counting"], name  # counting improves with four times the text
        assert curve["settings"]["hidden"] == 32 and curve["settings"]["epochs"] == 2 and curve["test_chars"] > 1_000
        assert curve["trend"]
    assert first["timemachine"]["preset"] == "d2l-en" and first["lyrics"]["preset"] == "d2l-zh"
    assert main(["lab", "datasize", *TINY, "--hidden", "32", "--corpora", "timemachine"]) == 0
    again = json.loads(capsys.readouterr().out)["timemachine"]["points"]
    assert all(p["cached"] for p in again)
    assert [p["model"] for p in again] == [p["model"] for p in first["timemachine"]["points"]]


def test_a_cancelled_curve_keeps_the_points_it_finished(tmp_path: Path) -> None:
    done: list[str] = []
    curve = datasize_curve(
        "timemachine",
        {"epochs": 2, "hidden": 16},
        (2_000, 4_000),
        cache_dir=tmp_path,
        threads=1,
        progress=done.append,
        cancelled=lambda: any("4,000" in line for line in done),
    )
    assert [p.train_chars for p in curve.points] == [2_000]
    assert corpus_config("timemachine", {}).test_fraction > 0


def test_the_whole_presets_model_is_the_generalising_presets_own() -> None:
    from engine.presets import PRESET_SETTINGS

    for corpus, preset in (("timemachine", "whole-en"), ("lyrics", "whole-zh")):
        config = corpus_config(corpus, {"preset": "whole"})
        own = PRESET_SETTINGS[preset]
        assert config.preset == preset
        assert (config.cell, config.hidden, config.embed, config.io_dropout) == (
            own["cell"], own["hidden"], own["embed"], own["io_dropout"],
        )  # fmt: skip
        assert config.epochs == own["epochs"]  # its own epochs, not the book curve's few
        book = corpus_config(corpus, {})
        assert book.preset != preset and book.epochs != own["epochs"]


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--sizes", "5q"], "--sizes takes whole numbers"),
        (["--corpora", "moon"], "--corpora takes lyrics"),
        (["--preset", "d2l-en"], "--preset: invalid choice"),
    ],
)
def test_bad_datasize_flags_are_one_line(capsys: pytest.CaptureFixture[str], flags: list[str], needle: str) -> None:
    code, err = run_main(["lab", "datasize", *flags], capsys)
    assert_one_line_error(code, err, needle)
