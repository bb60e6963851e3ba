from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.config import TrainConfig
from engine.data.corpus import SPACE_MARK, Corpus
from engine.errors import ConfigError
from engine.explain import (
    Loop,
    display_width,
    explain_generation,
    explain_text,
    find_loop,
    format_explanation,
    generated_text,
)
from engine.generate import generate
from engine.model import CharRNN, State
from engine.trainer import Trainer
from tui.main import main


@pytest.fixture(scope="module")
def trained(corpus_path: Path, corpus: Corpus) -> Trainer:
    """A small RNN trained a few epochs on the real corpus: its distributions are far from uniform."""
    config = TrainConfig(corpus=str(corpus_path), seed=0, hidden=128, epochs=8, lr=0.01, pred_len=0)
    trainer = Trainer(config, corpus)
    trainer.run()
    assert trainer.state.epoch == 8
    return trainer


def char_at_column(row: str, column: int) -> str:
    """The character a terminal shows starting at display column (0-based)."""
    width = 0
    for char in row:
        if width == column:
            return char
        width += display_width(char)
    return ""


def teacher_forced_logits(model: CharRNN, corpus: Corpus, text: str) -> torch.Tensor:
    """The model's logits for every next character of text, in one forward pass (not the stepping explain uses)."""
    with torch.no_grad():
        output: tuple[torch.Tensor, State] = model(torch.tensor(corpus.vocab.encode(text[:-1])).view(-1, 1))
    return output[0]


@pytest.mark.parametrize(
    "temperature,top_k,seed", [(None, None, None), (0.8, None, 1), (1.5, None, 2), (1.2, 5, 3), (None, 3, 4)]
)
def test_explained_generation_picks_what_generate_picks(
    trained: Trainer, corpus: Corpus, temperature: float | None, top_k: int | None, seed: int | None
) -> None:
    def generator() -> torch.Generator | None:
        return torch.Generator().manual_seed(seed) if seed is not None else None

    model = trained.model
    expected = generate(model, corpus.vocab, "分开", 60, temperature, top_k, generator())
    steps = explain_generation(model, corpus.vocab, "分开", 60, temperature, top_k, 5, generator())
    assert generated_text("分开", steps) == expected
    assert [s.position for s in steps] == list(range(2, 62))
    if seed is not None:  # sampling does not always take the favourite: the draws themselves were replayed
        assert expected != generate(model, corpus.vocab, "分开", 60)


@pytest.mark.parametrize("temperature", [None, 0.5, 2.0])
def test_probabilities_are_the_softmax_of_the_models_logits(
    trained: Trainer, corpus: Corpus, temperature: float | None
) -> None:
    generator = torch.Generator().manual_seed(7)
    steps = explain_generation(trained.model, corpus.vocab, "不分开", 40, temperature, None, 8, generator)
    text = generated_text("不分开", steps)
    logits = teacher_forced_logits(trained.model, corpus, text)
    for step in steps:
        expected = torch.softmax(logits[step.position - 1] / (temperature or 1.0), -1)
        top = expected.topk(8)
        assert "".join(c.char for c in step.candidates) == corpus.vocab.decode(top.indices.tolist())
        assert [c.probability for c in step.candidates] == pytest.approx(top.values.tolist(), abs=1e-5)
        assert sum(c.probability for c in step.candidates) <= 1 + 1e-6
        chosen = corpus.vocab.char_to_idx[step.chosen]
        assert step.chosen == text[step.position]
        assert step.probability == pytest.approx(float(expected[chosen]), abs=1e-5)
        assert step.rank == int((expected > expected[chosen]).sum()) + 1
        assert 0 <= step.entropy <= torch.log(torch.tensor(float(len(corpus.vocab)))) + 1e-4
    if temperature is None:  # greedy always takes the most likely
        assert all(s.rank == 1 and s.chosen == s.candidates[0].char for s in steps)
        # A trained model is far from uniform over 1,027 characters: some choices are near certain.
        assert max(s.probability for s in steps) > 0.5
    else:
        assert any(s.rank > 1 for s in steps)


def test_explaining_an_existing_text_gives_the_distributions_it_was_generated_from(
    trained: Trainer, corpus: Corpus
) -> None:
    generator = torch.Generator().manual_seed(0)
    generated = explain_generation(trained.model, corpus.vocab, "分开", 30, 1.0, None, 5, generator)
    text = generated_text("分开", generated)
    replayed = explain_text(trained.model, corpus.vocab, text, start=2, temperature=1.0, k=5)
    assert [s.chosen for s in replayed] == [s.chosen for s in generated]
    assert [s.probability for s in replayed] == pytest.approx([s.probability for s in generated], abs=1e-5)
    assert [s.rank for s in replayed] == [s.rank for s in generated]
    # A higher temperature flattens every distribution.
    cold = explain_text(trained.model, corpus.vocab, text, start=2, temperature=0.5)
    hot = explain_text(trained.model, corpus.vocab, text, start=2, temperature=2.0)
    assert all(c.entropy < r.entropy < h.entropy for c, r, h in zip(cold, replayed, hot, strict=True))
    # A corpus line the model has trained on: it mostly expects what comes.
    line = corpus.text[:200]
    stretch = explain_text(trained.model, corpus.vocab, line, start=1, k=5)
    assert len(stretch) == 199
    assert sum(s.rank == 1 for s in stretch) > 20


def test_bad_settings_are_one_line_errors(trained: Trainer, corpus: Corpus) -> None:
    with pytest.raises(ConfigError, match="candidates ≥ 1"):
        explain_generation(trained.model, corpus.vocab, "分开", 5, k=0)
    with pytest.raises(ConfigError, match="start must be"):
        explain_text(trained.model, corpus.vocab, "分开", start=5)
    assert explain_generation(trained.model, corpus.vocab, "分开", 0) == []
    # K beyond the vocabulary is clamped, not an error.
    steps = explain_generation(trained.model, corpus.vocab, "分开", 1, k=5000)
    assert len(steps[0].candidates) == len(corpus.vocab)
    assert sum(c.probability for c in steps[0].candidates) == pytest.approx(1.0, abs=1e-4)


def test_find_loop_spots_the_books_repetition() -> None:
    text = "分开我有多难熬 我有多难熬 我有多难熬 我有"
    loop = find_loop(text, start=2)
    assert loop is not None
    assert loop.start == 2 and loop.unit == "我有多难熬 "
    assert loop.repeats(text) == pytest.approx(20 / 6)
    assert find_loop("分开的我想你的爱", start=2) is None
    assert find_loop("分开哈哈", start=2) is None  # two characters are not a loop yet
    assert find_loop("分开哈哈哈哈", start=2) == Loop(2, "哈")
    assert find_loop("abababx") is None  # the repetition must reach the end
    loop = find_loop("xyzabababab")
    assert loop is not None and loop.unit == "ab"  # the shortest unit, not "abab"


def test_format_lines_up_in_terminal_columns_and_marks_loops(trained: Trainer, corpus: Corpus) -> None:
    steps = explain_generation(trained.model, corpus.vocab, "分开", 25, k=3)
    lines = format_explanation("分开", steps).splitlines()
    assert lines[0] == generated_text("分开", steps).replace(" ", SPACE_MARK)
    rows = lines[2 : 2 + 25]
    assert [int(row.split()[0]) for row in rows] == list(range(1, 26))
    # The chosen character sits in the same terminal column on every row, wide characters or not.
    for row, step in zip(rows, steps, strict=True):
        assert char_at_column(row, 4 + 2 + 12 + 2) == step.chosen.replace(" ", SPACE_MARK)
    loop = find_loop(generated_text("分开", steps), start=2)
    if loop is None:
        assert len(lines) == 27 and not any("↻" in row for row in rows)
    else:
        assert lines[-1].startswith("↻ loop: from character")
        assert any(row.endswith("↻") for row in rows)
    repeated = "分开我有多难熬 我有多难熬 我有多难熬 "
    looping = format_explanation("分开", explain_text(trained.model, corpus.vocab, repeated, 2))
    summary = "↻ loop: from character 3 the text repeats “我有多难熬␣” (6 characters, 3.0 times)"
    assert looping.splitlines()[-1] == summary
    assert sum(row.endswith("↻") for row in looping.splitlines()) == 12  # the second and third copies


def test_cli_explain_prints_one_line_per_generated_character(
    trained: Trainer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "small.ckpt"
    trained.save(str(checkpoint))
    code = main(["generate", "--checkpoint", str(checkpoint), "--prefix", "分开", "--len", "20", "--explain", "5"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    greedy = generate(trained.model, trained.vocab, "分开", 20)
    assert out[0] == greedy.replace(" ", SPACE_MARK)
    rows = out[2:22]
    assert len(rows) == 20
    for row, char in zip(rows, greedy[2:], strict=True):
        shown = char if char != " " else SPACE_MARK
        # "… context  chosen p  c1 p1  c2 p2 …": five candidates, the first one the chosen (greedy).
        assert row.count(".") >= 6 and f" {shown} " in row
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--checkpoint", str(checkpoint), "--prefix", "分开", "--explain", "-1"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "candidates ≥ 1" in error
