from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.activations import (
    MAX_ACTIVATION_CHARS,
    Activations,
    correlation,
    display_scale,
    read_activations,
    suggest_units,
)
from engine.config import TrainConfig
from engine.data.corpus import Corpus
from engine.errors import ConfigError, PrefixError
from engine.model import CharRNN
from engine.trainer import Trainer

STRETCH = slice(0, 400)  # the corpus's opening lines: "想要有直升机 想要和你飞到宇宙去 …"


@pytest.fixture(scope="module", params=["rnn", "gru", "lstm"])
def trained(request: pytest.FixtureRequest, corpus_path: Path, corpus: Corpus) -> CharRNN:
    """Two layers, so the state of a layer below the top is checked too; a few epochs on the real corpus."""
    config = TrainConfig(
        corpus=str(corpus_path), seed=0, cell=request.param, hidden=32, layers=2, epochs=3, lr=0.01, pred_len=0
    )
    trainer = Trainer(config, corpus)
    trainer.run()
    assert trainer.state.epoch == 3
    return trainer.model.eval()


def final_state(model: CharRNN, corpus: Corpus, text: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The engine's state after reading text in one recurrent() call from a zero state: (h, c or None)."""
    with torch.no_grad():
        _, state = model.recurrent(torch.tensor(corpus.vocab.encode(text)).view(-1, 1))
    if isinstance(state, tuple):
        return state[0][:, 0, :], state[1][:, 0, :]
    return state[:, 0, :], None


def test_activations_are_the_engines_hidden_state(trained: CharRNN, corpus: Corpus) -> None:
    text = corpus.text[STRETCH]
    activations = read_activations(trained, corpus.vocab, text)
    assert activations.values["h"].shape == (len(text), 2, 32)
    # h, an LSTM's cell state c, and each gate of a gated cell (engine/lab/gates.py recomputes them).
    expected = {"rnn": ("h",), "gru": ("h", "reset", "update"), "lstm": ("h", "c", "input", "forget", "output")}
    assert activations.kinds == expected[trained.cell]
    # The top layer after every character: the outputs of one recurrent() pass over the whole text.
    with torch.no_grad():
        outputs, _ = trained.recurrent(torch.tensor(corpus.vocab.encode(text)).view(-1, 1))
    torch.testing.assert_close(activations.layer("h"), outputs[:, 0, :], atol=1e-5, rtol=1e-4)
    # Every layer, h and c, after character t: the final state of recurrent() over text[: t + 1].
    for t in (0, 1, 17, 150, len(text) - 1):
        h, c = final_state(trained, corpus, text[: t + 1])
        for layer in range(2):
            torch.testing.assert_close(activations.layer("h", layer)[t], h[layer], atol=1e-5, rtol=1e-4)
            if c is not None:
                torch.testing.assert_close(activations.layer("c", layer)[t], c[layer], atol=1e-5, rtol=1e-4)
            assert activations.unit(5, "h", layer)[t] == pytest.approx(float(h[layer, 5]), abs=1e-5)


def test_activations_match_pytorchs_own_layer_fed_one_hot(trained: CharRNN, corpus: Corpus) -> None:
    """A second, independent reference: torch's nn.RNN / nn.GRU / nn.LSTM holding the same weights."""
    text = corpus.text[STRETCH]
    activations = read_activations(trained, corpus.vocab, text)
    one_hot = F.one_hot(torch.tensor(corpus.vocab.encode(text)), len(corpus.vocab)).float().unsqueeze(1)
    with torch.no_grad():
        outputs, state = trained.rnn(one_hot)
    torch.testing.assert_close(activations.layer("h", 1), outputs[:, 0, :], atol=1e-4, rtol=1e-3)
    h_n = state[0] if isinstance(state, tuple) else state
    torch.testing.assert_close(activations.values["h"][-1], h_n[:, 0, :], atol=1e-4, rtol=1e-3)
    if isinstance(state, tuple):
        torch.testing.assert_close(activations.values["c"][-1], state[1][:, 0, :], atol=1e-4, rtol=1e-3)


def test_suggested_units_vary_most_or_track_line_breaks(trained: CharRNN, corpus: Corpus) -> None:
    text = corpus.text[:2000]
    activations = read_activations(trained, corpus.vocab, text)
    kind = "c" if trained.cell == "lstm" else "h"
    values = activations.layer(kind)
    suggestions = suggest_units(activations, kind, count=3)
    reasons = [s.reason for s in suggestions]
    assert reasons == ["varies most"] * 3 + ["fires on a space"] * 3 + ["anticipates a space"] * 3
    assert len({s.unit for s in suggestions}) == 9
    spread = values.std(0)
    assert [s.unit for s in suggestions[:3]] == spread.topk(3).indices.tolist()
    # The space units: the real Pearson r (numpy's), the strongest of those not already suggested.
    is_space = [1.0 if c == " " else 0.0 for c in text]
    for suggestion in suggestions[3:6]:
        matrix = torch.corrcoef(torch.stack([values[:, suggestion.unit], torch.tensor(is_space)]))
        assert suggestion.score == pytest.approx(float(matrix[0, 1]), abs=1e-4)
    best_free = max(
        (abs(float(r)), unit)
        for unit, r in enumerate(correlation(values, torch.tensor(is_space)))
        if unit not in {s.unit for s in suggestions[:3]}
    )
    assert suggestions[3].unit == best_free[1]
    # Even after three epochs some unit of the first layer (the one that reads the characters) clearly
    # knows a line just broke.
    first_layer = suggest_units(activations, "h", layer=0, count=1)
    assert first_layer[1].reason == "fires on a space" and abs(first_layer[1].score) > 0.3, first_layer
    assert suggestions[0].describe().startswith(f"unit {suggestions[0].unit}: varies most (std ")


def test_bad_requests_are_one_line_errors(trained: CharRNN, corpus: Corpus) -> None:
    activations = read_activations(trained, corpus.vocab, "分开 我")
    if trained.cell != "lstm":
        with pytest.raises(ConfigError, match="not available"):
            activations.unit(0, "c")
    with pytest.raises(ConfigError, match="unit must be between 0 and 31"):
        activations.unit(32)
    with pytest.raises(ConfigError, match="layer must be between 1 and 2"):
        activations.layer("h", 2)
    with pytest.raises(PrefixError, match="not in the vocabulary"):
        read_activations(trained, corpus.vocab, "分开✈")
    with pytest.raises(ConfigError, match="at most"):
        read_activations(trained, corpus.vocab, "我" * (MAX_ACTIVATION_CHARS + 1))


def test_correlation_and_scale_edge_cases() -> None:
    flat = torch.zeros(5, 2)
    flat[:, 1] = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])
    target = torch.tensor([False, True, False, True, False])
    assert correlation(flat, target).tolist() == pytest.approx([0.0, 1.0])
    assert display_scale([0.2, -0.7]) == 1.0
    assert display_scale([0.2, -3.5]) == 3.5
    no_space = Activations("我我我", "rnn", 1, 2, {"h": torch.tensor([[[0.1, 0.2]], [[0.3, 0.1]], [[0.2, 0.0]]])})
    assert [s.reason for s in suggest_units(no_space, count=1)] == ["varies most"]
