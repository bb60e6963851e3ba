"""The lab's gradient views (engine/lab): gradients through time, saliency, gates, on the real corpus.

Each figure is checked against an independent computation: torch's own nn.RNN / nn.GRU / nn.LSTM with autograd,
finite differences in float64, torch's cells.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.data.corpus import Corpus, load_corpus
from engine.lab.gates import HIGH, LOW, gate_saturation, gate_values
from engine.lab.gradients import gradients_through_time, windows_of
from engine.lab.saliency import effective_context, saliency
from engine.lab.unroll import one_hot, spectral_radius
from engine.model import CharRNN, make_recurrent_layer
from tui.main import main

CELLS = ("rnn", "gru", "lstm")


@pytest.fixture(scope="module")
def split(corpus_path: Path) -> Corpus:
    return load_corpus(corpus_path, 10_000, val_chars=1_500)


def small_model(corpus: Corpus, cell: str, hidden: int = 16, layers: int = 1, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(len(corpus.vocab), cell, hidden, layers).double().eval()


def scaled_rnn(corpus: Corpus, radius: float, input_scale: float = 1.0) -> CharRNN:
    """A tanh RNN whose recurrent matrix has the given spectral radius."""
    model = small_model(corpus, "rnn", hidden=32)
    with torch.no_grad():
        w_hh = model.rnn.get_parameter("weight_hh_l0")
        w_hh.mul_(radius / torch.linalg.eigvals(w_hh).abs().max())
        model.rnn.get_parameter("weight_ih_l0").mul_(input_scale)
    return model


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_through_time_equal_torchs_autograd(split: Corpus, cell: str) -> None:
    """∂loss/∂h_{T-k} from unroll equals autograd through torch's own layer restarted from a leaf h_{T-k}."""
    model = small_model(split, cell)
    window = 12
    result = gradients_through_time(model, split.vocab, split.held_out[:200], window)
    pieces = windows_of(split.held_out[:200], window, split.vocab)
    assert result.windows == len(pieces) > 5
    inputs = one_hot(split.vocab, [p[:-1] for p in pieces], torch.float64)
    targets = torch.tensor([split.vocab.char_to_idx[p[-1]] for p in pieces])
    batch = len(pieces)
    for k in range(window):
        split_at = window - k  # h after input split_at - 1 is the state k steps back from the last
        zeros = torch.zeros(1, batch, model.hidden, dtype=torch.float64)
        start = (zeros, zeros.clone()) if cell == "lstm" else zeros
        with torch.no_grad():
            _, state = model.rnn(inputs[:split_at], start)
        if cell == "lstm":  # an LSTM's state is (h, c): both leaves, the gradient the norm over both
            h = state[0].clone().requires_grad_(True)
            c = state[1].clone().requires_grad_(True)
            resumed: torch.Tensor | tuple[torch.Tensor, torch.Tensor] = (h, c)
            leaves = [h, c]
        else:
            h = state.clone().requires_grad_(True)
            resumed, leaves = h, [h]
        output, _ = model.rnn(inputs[split_at:], resumed) if k > 0 else (h, None)
        loss = F.cross_entropy(model.dense(output[-1]), targets, reduction="sum")
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)  # k = 0: c reaches no loss
        filled = [torch.zeros_like(leaf) if g is None else g for leaf, g in zip(leaves, grads, strict=True)]
        grad = torch.cat(filled, -1)
        expected = float(grad[0].norm(dim=-1).mean())
        assert result.norm[k] == pytest.approx(expected, rel=1e-5, abs=1e-12), k
    assert result.state == ("(h, c)" if cell == "lstm" else "h")


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_through_time_per_layer_equal_autograd_on_torchs_two_layer_module(split: Corpus, cell: str) -> None:
    """Per layer of a 2-layer model: the total ∂loss/∂h^l_{T-k} (through later steps and through the layer above at
    the same step) equals plain autograd on torch's own modules: the model's nn.RNN/GRU/LSTM(num_layers=2), and two
    one-layer torch modules holding its two layers' weights, stepped in time with every state kept (retain_grad).
    The stack is checked equal to the 2-layer module first, so it is that network."""
    model = small_model(split, cell, layers=2, seed=1)
    window, text = 12, split.held_out[:300]
    result = gradients_through_time(model, split.vocab, text, window)
    pieces = windows_of(text, window, split.vocab)
    assert result.windows == len(pieces) > 5 and len(result.per_layer) == 2
    size, rows = len(split.vocab), []
    for piece in pieces:  # one-hot by hand; a character outside the vocabulary reads as all zeros
        row = torch.zeros(window, size, dtype=torch.float64)
        for t, char in enumerate(piece[:-1]):
            if char in split.vocab.char_to_idx:
                row[t, split.vocab.char_to_idx[char]] = 1.0
        rows.append(row)
    inputs = torch.stack(rows, dim=1)  # (steps, batch, vocab)
    targets = torch.tensor([split.vocab.char_to_idx[p[-1]] for p in pieces])
    module: torch.nn.RNNBase = model.rnn
    layers = []
    for layer, inputs_size in enumerate((size, model.hidden)):
        one = make_recurrent_layer(cell, inputs_size, model.hidden, 1, 0.0).double()
        with torch.no_grad():
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(one, f"{kind}_l0").copy_(getattr(module, f"{kind}_l{layer}"))
        layers.append(one)
    batch = len(pieces)
    zeros = torch.zeros(1, batch, model.hidden, dtype=torch.float64)
    states = [(zeros, zeros.clone()) if cell == "lstm" else zeros for _ in layers]
    kept: list[list[torch.Tensor]] = [[], []]
    cells: list[list[torch.Tensor]] = [[], []]  # an LSTM's c as the next step reads it
    for t in range(window):
        x = inputs[t : t + 1]
        for layer, one in enumerate(layers):
            _, states[layer] = one(x, states[layer])
            if cell == "lstm":
                h, c = states[layer]
                c = c.clone()  # its own node: the gradient through c alone, h's in kept
                c.retain_grad()
                cells[layer].append(c)
                states[layer] = (h, c)
            else:
                h = states[layer]
            h.retain_grad()
            kept[layer].append(h)
            x = h  # the layer above reads this very h, as the next step does: its gradient is the total one
    with torch.no_grad():
        whole, _ = module(inputs)
    assert torch.allclose(torch.cat(kept[1]), whole, atol=1e-12, rtol=0)
    loss = F.cross_entropy(model.dense(kept[1][-1][0]), targets, reduction="sum")
    loss.backward()
    for layer in range(2):
        expected = []
        for k in range(window):
            t = window - 1 - k
            h_grad = kept[layer][t].grad
            assert h_grad is not None
            grad = h_grad[0]
            if cell == "lstm":
                c_grad = cells[layer][t].grad
                grad = torch.cat((grad, torch.zeros_like(grad) if c_grad is None else c_grad[0]), -1)
            expected.append(float(grad.norm(dim=-1).mean()))
        assert result.per_layer[layer] == pytest.approx(expected, rel=1e-5, abs=1e-12), layer
    assert result.norm == result.per_layer[1]


def test_gradients_vanish_below_spectral_radius_one_and_explode_well_above(split: Corpus) -> None:
    contracting = gradients_through_time(scaled_rnn(split, 0.5), split.vocab, split.held_out, 40)
    assert contracting.spectral_radius is not None and contracting.spectral_radius[0] == pytest.approx(0.5)
    norms = contracting.norm
    assert norms[39] < 1e-6 * norms[0]
    assert all(later < earlier for earlier, later in itertools.pairwise(norms[:21]))
    # Small inputs keep the tanh units off saturation, so W_hh's radius of 3 shows through the Jacobians.
    expanding = gradients_through_time(scaled_rnn(split, 3.0, 0.01), split.vocab, split.held_out, 40)
    assert expanding.norm[39] > expanding.norm[20] > expanding.norm[0]
    assert expanding.ratio(39) > 1e4


def test_gradients_through_time_per_layer_and_json(split: Corpus) -> None:
    model = small_model(split, "gru", layers=2)
    result = gradients_through_time(model, split.vocab, split.held_out, 20)
    data = json.loads(json.dumps(result.to_json()))
    assert data["steps_back"] == list(range(20))
    assert len(data["per_layer"]) == 2 and data["norm"] == data["per_layer"][1]
    assert all(v > 0 for layer in data["per_layer"] for v in layer)
    assert "spectral_radius" not in data and spectral_radius(model) is None


@pytest.mark.parametrize("cell", CELLS)
def test_saliency_equals_finite_differences(split: Corpus, cell: str) -> None:
    model = small_model(split, cell)
    text = split.text[100:130]
    result = saliency(model, split.vocab, text, position=25)
    assert result.text == text[:25] and result.target == text[25]
    inputs = one_hot(split.vocab, [text[:25]], torch.float64)
    target = split.vocab.char_to_idx[text[25]]

    def log_probs(x: torch.Tensor) -> torch.Tensor:
        """One log-probability of the target per sequence of the batch x (steps, batch, vocab)."""
        with torch.no_grad():
            output, _ = model.rnn(x)
            return torch.log_softmax(model.dense(output[-1]), -1)[:, target]

    eps = 1e-4
    size = len(split.vocab)
    for j in (0, 20, 24):
        # Every vocabulary entry of input j nudged up and down: one batch of 2 × vocab sequences.
        nudged = inputs.repeat(1, 2 * size, 1)
        nudged[j, torch.arange(size), torch.arange(size)] += eps
        nudged[j, size + torch.arange(size), torch.arange(size)] -= eps
        values = log_probs(nudged)
        grad = (values[:size] - values[size:]) / (2 * eps)
        assert result.saliency[j] == pytest.approx(float(grad.norm()), rel=1e-5, abs=1e-12), j
    assert 1 <= result.effective_context <= 25


def test_saliency_is_exactly_zero_before_a_state_reset(split: Corpus) -> None:
    model = small_model(split, "lstm")
    text = split.text[:60]
    result = saliency(model, split.vocab, text, position=50, reset_at=[30])
    assert all(value == 0.0 for value in result.saliency[:30])
    assert all(value > 0.0 for value in result.saliency[30:])
    assert result.effective_context <= 20


def test_effective_context_counts_back_to_ninety_percent() -> None:
    assert effective_context([0.0, 0.0, 1.0, 9.0]) == 1
    assert effective_context([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == 9
    assert effective_context([0.0, 0.0]) == 0


@pytest.mark.parametrize("cell", ("gru", "lstm"))
def test_recomputed_gates_match_torchs_cell(split: Corpus, cell: str) -> None:
    """The gates reproduce torch's cell: a step rebuilt from them equals nn.GRUCell / nn.LSTMCell to 1e-6."""
    model = small_model(split, cell, hidden=24)
    text = split.held_out[:40]
    values = gate_values(model, split.vocab, [text])
    inputs = one_hot(split.vocab, [text], torch.float64)
    cell_class = torch.nn.GRUCell if cell == "gru" else torch.nn.LSTMCell
    torch_cell = cell_class(len(split.vocab), model.hidden).double()
    torch_cell.load_state_dict({name.removesuffix("_l0"): p for name, p in model.rnn.state_dict().items()})
    h = torch.zeros(1, model.hidden, dtype=torch.float64)
    c = torch.zeros_like(h)
    hidden = model.hidden
    w_ih, w_hh, b_ih, b_hh = (
        model.rnn.get_parameter(f"{kind}_l0") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )
    with torch.no_grad():
        for t in range(len(text)):
            x = inputs[t]
            gh = F.linear(h, w_hh, b_hh)
            gi = F.linear(x, w_ih, b_ih)
            if cell == "gru":
                r, z = values["reset"][0][t], values["update"][0][t]
                n = torch.tanh(gi[:, 2 * hidden :] + r * gh[:, 2 * hidden :])
                rebuilt = (1 - z) * n + z * h
                h = torch_cell(x, h)
            else:
                i, f, o = values["input"][0][t], values["forget"][0][t], values["output"][0][t]
                g = torch.tanh((gi + gh)[:, 2 * hidden : 3 * hidden])
                c_rebuilt = f * c + i * g
                rebuilt = o * torch.tanh(c_rebuilt)
                h, c = torch_cell(x, (h, c))
                assert torch.allclose(c_rebuilt, c, rtol=0, atol=1e-6)
            assert torch.allclose(rebuilt, h, rtol=0, atol=1e-6), t


def test_gate_saturation_shares(split: Corpus) -> None:
    model = small_model(split, "lstm", layers=2)
    with torch.no_grad():  # large weights: gates pushed to both ends, so the shares are far from 0
        for parameter in model.rnn.parameters():
            parameter.mul_(12)
    result = gate_saturation(model, split.vocab, split.held_out, 35)
    data = result.to_json()
    assert set(data) == {"cell", "chars", "stretches", "every", "input", "forget", "output"}
    values = gate_values(model, split.vocab, [split.held_out[i : i + 35] for i in range(0, 1_500 - 34, 35)])
    for name in ("input", "forget", "output"):
        assert len(data[name]["low"]) == 2
        for layer in range(2):
            expected_low = float((values[name][layer] < LOW).double().mean())
            expected_high = float((values[name][layer] > HIGH).double().mean())
            assert data[name]["low"][layer] == pytest.approx(expected_low)
            assert data[name]["high"][layer] == pytest.approx(expected_high)
            assert data[name]["low"][layer] > 0.05 and data[name]["high"][layer] > 0.05
            assert data[name]["low"][layer] + data[name]["high"][layer] <= 1


def test_gates_of_a_plain_rnn_are_refused_in_one_line(split: Corpus) -> None:
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="has no gates"):
        gate_saturation(small_model(split, "rnn"), split.vocab, split.held_out)


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The entry point in-process: its exit code, stdout and stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, corpus_path: Path) -> dict[str, Path]:
    """Tiny RNN and LSTM runs of 2 epochs on the book's corpus and split, with --metrics."""
    folder = tmp_path_factory.mktemp("lab")
    made = {}
    for cell in ("rnn", "lstm"):
        made[cell] = folder / f"{cell}.ckpt"
        argv = ["train", "--headless", "--hidden", "16", "--epochs", "2", "--seed", "0", "--cell", cell]
        argv += ["--corpus", str(corpus_path)]  # the autouse fixture setting $RNN_TUI_CORPUS runs after this one
        assert main([*argv, "--save", str(made[cell]), "--metrics", str(folder / f"{cell}.jsonl")]) == 0
    return made


def test_metrics_record_the_gates_saturation_per_epoch_for_an_lstm_only(checkpoints: dict[str, Path]) -> None:
    lstm = [json.loads(line) for line in checkpoints["lstm"].with_suffix(".jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in lstm] == [1, 2]
    for record in lstm:
        shares = record["gate_saturation"]
        assert set(shares) == {"input", "forget", "output"}
        assert all(0 <= value <= 1 for gate in shares.values() for value in gate["low"] + gate["high"])
    rnn = [json.loads(line) for line in checkpoints["rnn"].with_suffix(".jsonl").read_text().splitlines()]
    assert all(record["gate_saturation"] is None for record in rnn)
    # The checkpoint's history keeps them too, and reads back; they are its weights' gates over the held-out text.
    from engine.lab.gates import EPOCH_EVERY
    from engine.lab.subject import load_subject

    subject = load_subject(str(checkpoints["lstm"]))
    assert subject.history[-1].gate_saturation == lstm[-1]["gate_saturation"]
    read = gate_saturation(subject.model, subject.vocab, subject.corpus.held_out, 35, EPOCH_EVERY).to_json()
    for name in ("input", "forget", "output"):
        for side in ("low", "high"):
            assert lstm[-1]["gate_saturation"][name][side] == pytest.approx(read[name][side])


def test_lab_commands_print_json_the_engine_computes(
    checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.lab.subject import load_subject

    subject = load_subject(str(checkpoints["lstm"]))
    code, out, _ = run_main(
        ["lab", "gradients", "--checkpoint", str(checkpoints["lstm"]), "--window", "30", "--json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    expected = gradients_through_time(subject.model, subject.vocab, subject.corpus.held_out, 30)
    assert data["steps_back"] == list(range(30)) and data["norm"] == pytest.approx(list(expected.norm))
    code, out, _ = run_main(["lab", "saliency", "--checkpoint", str(checkpoints["lstm"]), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and len(data["saliency"]) == len(data["text"]) == 100
    assert 1 <= data["effective_context"] <= 100
    code, out, _ = run_main(["lab", "gates", "--checkpoint", str(checkpoints["lstm"]), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and set(data) == {"cell", "chars", "stretches", "every", "input", "forget", "output", "source"}
    # The population --metrics reads after every epoch: its last record's shares, for these very weights.
    metrics = json.loads(checkpoints["lstm"].with_suffix(".jsonl").read_text().splitlines()[-1])["gate_saturation"]
    assert data["forget"]["low"] == pytest.approx(metrics["forget"]["low"]) and data["every"] == 4
    code, out, _ = run_main(["lab", "gates", "--checkpoint", str(checkpoints["lstm"])], capsys)
    assert code == 0 and "forget" in out and "saturated" in out
    assert "read: the held-out text" in out and "one in 4" in out


# The text each view reads, as its JSON's "source" names it (a horizon has one curve on each).
SOURCES = {
    "gradients": "held-out",
    "saliency": "held-out",
    "gates": "held-out",
    "horizon": {"train": "training", "held_out": "held-out"},
    "ngram": "held-out",
    "copies": "training",
    "timeline": "training",
}


@pytest.mark.parametrize("view", sorted(SOURCES))
def test_every_lab_view_names_the_text_it_read(
    checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str], view: str
) -> None:
    from tui.cli.lab import lab_commands

    assert {command.name for command in lab_commands()} == set(SOURCES)
    code, out, err = run_main(["lab", view, "--checkpoint", str(checkpoints["lstm"]), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["source"] == SOURCES[view]
    code, out, err = run_main(["lab", view, "--checkpoint", str(checkpoints["lstm"])], capsys)
    named = SOURCES[view] if isinstance(SOURCES[view], str) else "held-out"
    assert code == 0 and f"{named} text" in out, out


def test_saliency_reads_the_held_out_text_on_the_books_split(
    checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """No 101-character stretch of the book's held-out text is all in the vocabulary: the default still reads the
    held-out text (an unseen character as an all-zero input, as held-out evaluation reads it) and says so."""
    from engine.lab.subject import load_subject

    subject = load_subject(str(checkpoints["rnn"]))
    held_out = subject.corpus.held_out
    code, out, _ = run_main(["lab", "saliency", "--checkpoint", str(checkpoints["rnn"]), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["source"] == "held-out"
    assert (data["text"] + data["target"]) in held_out and data["target"] in subject.vocab.char_to_idx
    code, out, _ = run_main(["lab", "saliency", "--checkpoint", str(checkpoints["rnn"])], capsys)
    assert "read: the held-out text, characters" in out
    code, out, _ = run_main(
        ["lab", "saliency", "--checkpoint", str(checkpoints["rnn"]), "--text", "我想", "--json"], capsys
    )
    assert code == 0 and json.loads(out)["source"] == "given"


@pytest.mark.parametrize("view", ("gradients", "saliency", "gates"))
def test_lab_views_are_listed_and_explained(view: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["lab", "--help"], capsys)
    assert code == 0 and view in out
    code, out, _ = run_main(["lab", view, "--help"], capsys)
    assert code == 0 and "--checkpoint" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["gates"], "has no gates"),
        (["saliency", "--text", "abc"], "does not hold: 'c'"),
        (["saliency", "--text", "我想", "--position", "5"], "--position must be between 1 and 1"),
        (["gradients", "--window", "0"], "--window must be at least 1"),
        (["gradients", "--window", "5000"], "a window of 5000 needs at least 5001"),
    ],
)
def test_lab_commands_refuse_bad_input_in_one_line(
    checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run_main(["lab", argv[0], "--checkpoint", str(checkpoints["rnn"]), *argv[1:]], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and needle in err, err


def test_the_horizon_captions_a_held_out_curve_that_rises_with_context() -> None:
    """The book's run at epoch 250 (README): held-out 486 at k = 1, 19,214 at k = 32, 22,929 whole: memorisation's
    signature, captioned; a held-out curve that falls with context is not."""
    from engine.lab.horizon import Horizon

    rising = Horizon((1, 32, 9_999), (35.7, 2.22, 1.38), (486.0, 19_214.0, 22_929.0), 10_000, 1_500)
    assert rising.held_out_rises() and rising.to_json()["held_out_rises"] is True
    assert rising.caption().startswith("held-out rises with context (486.0 at k = 1, 22,929.0 whole): memorisation")
    falling = Horizon((1, 32, 9_999), (35.7, 2.22, 1.38), (300.0, 250.0, 240.0), 10_000, 1_500)
    assert not falling.held_out_rises() and falling.caption() == ""
    assert not Horizon((1, 2), (3.0, 2.0), (), 100, 0).held_out_rises()
