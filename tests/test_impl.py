"""--impl fused|torch|scratch (issue 22, item 5): the same run three ways, on the real corpus, small models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_bad_inputs import assert_one_line_error, run_main

from engine import events
from engine.errors import ConfigError
from engine.session import open_session

SMALL = {"hidden": 24, "max_chars": 4_000, "val_chars": 300, "epochs": 2, "seed": 0, "pred_period": 10**6}
# Measured: they agree to 5e-7 relative over three epochs of hidden 32 (float32 sums in other orders, through Adam).
AGREE = 1e-5


def figures(corpus_path: Path, **overrides: Any) -> list[tuple[float, float]]:
    seen: list[events.Event] = []
    session = open_session({**SMALL, "corpus": str(corpus_path), **overrides}, listener=seen.append)
    assert session.trainer.model.impl == overrides.get("impl", "fused")
    session.trainer.run()
    assert not [e for e in seen if isinstance(e, events.Failed)]
    return [(e.perplexity, e.val_perplexity or 0.0) for e in seen if isinstance(e, events.EpochEnd)]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_the_three_implementations_train_to_the_same_perplexities(corpus_path: Path, cell: str) -> None:
    fused = figures(corpus_path, cell=cell)
    assert len(fused) == 2 and fused[-1][0] < fused[0][0]  # it learns
    for impl in ("torch", "scratch"):
        other = figures(corpus_path, cell=cell, impl=impl)
        assert [p for p, _ in other] == pytest.approx([p for p, _ in fused], rel=AGREE), impl
        assert [v for _, v in other] == pytest.approx([v for _, v in fused], rel=AGREE), impl


def test_two_layers_agree_too(corpus_path: Path) -> None:
    fused = figures(corpus_path, cell="gru", layers=2)
    scratch = figures(corpus_path, cell="gru", layers=2, impl="scratch")
    assert [p for p, _ in scratch] == pytest.approx([p for p, _ in fused], rel=AGREE)


def test_bf16_needs_the_fused_kernels(
    capsys: pytest.CaptureFixture[str], corpus_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="precision bf16 needs impl fused"):  # refused as the trainer is built
        open_session({**SMALL, "corpus": str(corpus_path), "impl": "torch", "precision": "bf16"})
    argv = ["train", "--headless", "--corpus", str(corpus_path), "--impl", "scratch", "--precision", "bf16"]
    assert_one_line_error(*run_main(argv, capsys), "--precision bf16 needs --impl fused")
    # auto trains in fp32 with the book's implementations, and says why (where bf16 would be native).
    monkeypatch.setenv("RNN_TUI_BF16_NATIVE", "1")
    session = open_session({**SMALL, "corpus": str(corpus_path), "impl": "torch", "precision": "auto"})
    assert session.trainer.precision.name == "fp32" and "impl torch" in session.trainer.precision.describe()
