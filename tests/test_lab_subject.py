"""What a lab command reads from a checkpoint: its own run's text, found as the run found it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bad_inputs import assert_one_line_error, run_main

from tui.main import main


def test_a_checkpoint_trained_on_the_looked_up_corpus_opens_without_the_lookup(
    corpus_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trained with no --corpus: the lookup ($RNN_TUI_CORPUS) found the lyrics; the checkpoint records that file.
    monkeypatch.setenv("RNN_TUI_CORPUS", str(corpus_path))
    ckpt = tmp_path / "looked-up.ckpt"
    argv = ["train", "--headless", "--max-chars", "2000", "--hidden", "16", "--epochs", "1", "--threads", "1"]
    assert main([*argv, "--save", str(ckpt)]) == 0
    capsys.readouterr()
    # Later, elsewhere, without the variable: the lab reads the file the run read.
    monkeypatch.delenv("RNN_TUI_CORPUS")
    monkeypatch.chdir(tmp_path)
    assert main(["lab", "ngram", "--checkpoint", str(ckpt), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["n"] == [1, 2, 3, 4, 5, 6, 7, 8] and all(value > 1 for value in table["held_out"])
    # The test text after the held-out text: counting's figures on it, the checkpoint's own, and the verdict.
    assert len(table["test"]) == 8 and table["best"]["test"] == table["test"][table["best"]["n"] - 1]
    assert table["model_test"] > 1 and table["verdict"].endswith("(test)")
    # A corpus given that is not the run's (other characters) is refused in one line, naming the flag.
    other = tmp_path / "other.txt"
    other.write_text("abc def ghi " * 400, encoding="utf-8")
    code, err = run_main(["lab", "ngram", "--checkpoint", str(ckpt), "--corpus", str(other)], capsys)
    assert_one_line_error(code, err)
