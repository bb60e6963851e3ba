"""The lab's memory views on the real corpus: memory horizon, n-gram baselines, copied text (issue 23, items 1–3)."""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_bad_inputs import assert_one_line_error, run_main

from engine import events
from engine.config import stream_length
from engine.data.corpus import Corpus, Vocab
from engine.lab.copies import MIN_COPY, TextIndex, copies, sample_copy, suffix_array
from engine.lab.horizon import contexts, encode, horizon, perplexity
from engine.lab.ngram import KneserNey, ngram_table
from engine.lab.timeline import timeline_entries
from engine.session import Session, open_session
from engine.timeline import SampleRecord
from tui.main import main

MARK = "☃"  # a character the lyrics never hold: nothing can be copied across it


def train(overrides: dict[str, Any]) -> tuple[list[events.EpochEnd], list[events.Samples], Session]:
    seen: list[events.Event] = []
    session = open_session({"pred_period": 10**6, **overrides}, listener=seen.append, threads=1)
    session.trainer.run()
    epochs = [e for e in seen if isinstance(e, events.EpochEnd)]
    samples = [e for e in seen if isinstance(e, events.Samples)]
    return epochs, samples, session


# ----- memory horizon -----


def test_horizon_contexts_double_up_to_the_whole_text() -> None:
    assert contexts(9_999) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 9_999)
    assert contexts(1) == (1,)


def test_context_one_equals_an_independent_one_step_computation(corpus_path: Path) -> None:
    # A briefly trained model; k = 1 is every character predicted from the one before it and a zero state, computed
    # here with torch's own recurrent layer on one-hot inputs (not the engine's kernels), one position at a time.
    _, _, session = train({"corpus": str(corpus_path), "cell": "gru", "hidden": 32, "epochs": 2, "seed": 3})
    trainer = session.trainer
    model = trainer.copy_model().eval()
    text = trainer.corpus.text[:600]
    indices = encode(trainer.vocab, text)
    with torch.no_grad():
        inputs = F.one_hot(indices[:-1], model.vocab_size).float().unsqueeze(0)  # (1 step, positions, vocab)
        outputs, _ = model.rnn(inputs, torch.zeros(1, len(indices) - 1, model.hidden))
        losses = F.cross_entropy(model.dense(outputs[0]), indices[1:], reduction="mean")
    assert perplexity(model, indices, 1) == pytest.approx(math.exp(float(losses)), rel=1e-5)


def test_horizon_tells_the_carried_state_trap_from_a_cold_start(corpus_path: Path) -> None:
    # The case, small: a GRU trained with its state carried across epochs never starts from a zero state;
    # read from one along the whole training text it scores far above its training figure. The same GRU reset at
    # every epoch start (--state epoch) reads the whole text close to its training figure. Both are cold at k = 1.
    settings = {"corpus": str(corpus_path), "cell": "gru", "hidden": 128, "seed": 1, "clip": 0.0, "epochs": 60}
    found = {}
    for state in ("carry", "epoch"):
        history, _, session = train({**settings, "state": state, "val_chars": 0})
        trainer = session.trainer
        curve = horizon(trainer.copy_model(), trainer.vocab, trainer.corpus.text)
        found[state] = (history[-1].perplexity, curve)
    carried_train, carried = found["carry"]
    epoch_train, reset = found["epoch"]
    assert reset.longest < 1.5 * epoch_train  # within a small factor of training
    assert carried.longest > 20 * carried_train  # the trap: far above
    assert reset.train[0] > 10 * epoch_train and carried.train[0] > 10 * carried_train  # both cold at k = 1


# ----- n-gram baselines -----


def test_single_discount_ngram_perplexities_equal_a_hand_calculation_on_a_toy_corpus() -> None:
    vocab = Vocab(("a", "b", "c"))
    train_text, held = "abcab", "abca"  # targets b|a, c|b, a|c
    # 1-gram, add-one: counts a 2, b 2, c 1 of 5, V = 3 → (n + 1) / 8.
    unigram = math.exp(-(math.log(3 / 8) + math.log(2 / 8) + math.log(3 / 8)) / 3)
    # 2-gram, interpolated Kneser–Ney, D = 0.75. Bigrams ab 2, bc 1, ca 1. Continuation counts (distinct
    # predecessors): a {c} 1, b {a} 1, c {b} 1, total 3, 3 types; the bottom: (1 − D) / 3 + D · 3/3 · 1/3 = 1/3.
    d, low = 0.75, 1 / 3
    p_b_a = (2 - d) / 2 + d * 1 / 2 * low  # history a: N = 2, one type
    p_c_b = (1 - d) / 1 + d * 1 / 1 * low
    p_a_c = (1 - d) / 1 + d * 1 / 1 * low
    bigram = math.exp(-(math.log(p_b_a) + math.log(p_c_b) + math.log(p_a_c)) / 3)
    table = ngram_table(vocab, train_text, held, length=3, orders=(1, 2), single=True)
    assert table.held_out == pytest.approx((unigram, bigram), rel=1e-12)
    # The distributions sum to one over the vocabulary, whatever the history (seen or not).
    for order in (1, 2, 3):
        model = KneserNey(vocab.encode(train_text), order, 3)
        for history in ((), (0,), (1, 0), (2, 2)):
            assert sum(model.probability(history, c) for c in range(3)) == pytest.approx(1.0)


def test_the_unigram_on_the_books_split_is_what_counting_gives(corpus_path: Path) -> None:
    session = open_session({"corpus": str(corpus_path)})  # the book's split; nothing trained
    corpus, config = session.corpus, session.config
    table = ngram_table(corpus.vocab, corpus.text, corpus.held_out, stream_length(config), (1, 2, 3, 4, 5), single=True)
    counts, size = Counter(corpus.text), len(corpus.vocab)
    targets = corpus.held_out[1 : table.targets + 1]
    seen = [c for c in targets if c in counts]
    by_hand = math.exp(-sum(math.log((counts[c] + 1) / (len(corpus.text) + size)) for c in seen) / len(seen))
    assert table.held_out[0] == pytest.approx(by_hand, rel=1e-9)
    assert 220 < by_hand < 240  # the 232, over every held-out character instead of the figure's targets
    assert table.unseen == len(targets) - len(seen)
    assert list(table.held_out) == sorted(table.held_out, reverse=True)  # more context, lower perplexity, here
    assert table.held_out[1] < 224  # a bigram already beats the book's RNN at its best held-out epoch (224)


# ----- copied text -----


def test_the_suffix_array_sorts_suffixes_as_python_does() -> None:
    for text in ("banana", "分开不分开 分开", "aaaaaaa", "a", ""):
        assert list(suffix_array(text)) == sorted(range(len(text)), key=lambda i: text[i:])


def test_a_planted_copy_is_found_at_its_exact_length(corpus: Corpus) -> None:
    text = corpus.text
    index = TextIndex(text)
    planted = text[4_000:4_031]
    sample = "分开" + MARK * 3 + planted + MARK * 2 + text[7_000:7_005]  # 5 copied characters: too short to count
    found = sample_copy(index, sample, prefix=2)
    assert found.longest_copy == 31
    start = sample.index(planted)
    assert found.spans == ((start, start + 31),)
    assert found.copied == 31 and found.generated == len(sample) - 2
    nothing = sample_copy(index, MARK * 20, 0)
    assert (nothing.longest_copy, nothing.copied, nothing.spans) == (0, 0, ())


def by_the_definition(sample: str, prefix: int, source: str) -> tuple[int, int]:
    """(longest copy, copied) by brute force, as the definition reads: every stretch of the sample found verbatim in
    source, its generated characters counted; copied: those inside stretches of ≥ MIN_COPY (prefix included)."""
    longest, covered = 0, set()
    for start in range(len(sample)):
        end = start
        while end < len(sample) and sample[start : end + 1] in source:
            end += 1
        first = max(start, prefix)
        longest = max(longest, end - first)
        if end - start >= MIN_COPY:
            covered |= set(range(first, end))
    return longest, len(covered)


def test_a_planted_copy_reads_the_same_in_the_metrics_samples_and_timeline(corpus: Corpus) -> None:
    # The one detector behind every place a learner reads "copied": the trainer's figures and `lab copies` (copies),
    # the Samples panel (its SampleCopy) and the Lab's Timeline (timeline_entries) give the same numbers.
    text = corpus.text
    planted = text[4_000:4_031]
    sample = "分开" + MARK * 3 + planted + MARK * 2 + text[7_000:7_005]
    found = copies(TextIndex(text), [("分开", sample)])
    record = SampleRecord(5, (("分开", sample),), (), torch.Generator().get_state())
    (entry,) = timeline_entries((record,), text)
    on_timeline = entry.samples[0]
    assert found.longest == on_timeline.longest_copy == 31 == by_the_definition(sample, 2, text)[0]
    assert found.samples[0].copied == on_timeline.copy.copied == 31 == by_the_definition(sample, 2, text)[1]
    start = sample.index(planted)
    assert on_timeline.copy.spans == found.samples[0].spans == ((start, start + 31),)
    assert entry.to_json()["samples"][0]["longest_copy"] == found.to_json()["copy_longest"] == 31


def test_a_copy_running_on_from_its_prefix_counts_its_generated_characters_only(corpus: Corpus) -> None:
    # The prefix (4 characters of a line) is not the model's: of the 10-character stretch only the 6 generated
    # characters count, in the longest copy too; but the stretch is one copy of ≥ 8, which the 6 alone are not.
    text = corpus.text
    index = TextIndex(text)
    line = text[4_000:4_010]
    prefix, generated = line[:4], line[4:] + MARK * 10
    found = sample_copy(index, prefix + generated, len(prefix))
    assert (found.longest_copy, found.copied, found.generated) == (6, 6, 16)
    assert found.spans == ((4, 10),) and found.longest_start == 4  # the prefix is not marked
    assert (found.longest_copy, found.copied) == by_the_definition(prefix + generated, 4, text)
    alone = sample_copy(index, generated, 0)  # the same 6 characters without their prefix: no copy of 8
    assert (alone.longest_copy, alone.copied, alone.spans) == (6, 0, ())
    # A whole prefix that is lyrics, and a generated part that is not: nothing copied, longest 0.
    nothing = sample_copy(index, text[4_000:4_020] + MARK * 5, 20)
    assert (nothing.longest_copy, nothing.copied, nothing.spans) == (0, 0, ())


def test_the_detector_agrees_with_the_definition_on_real_samples(corpus: Corpus) -> None:
    # Mixed samples cut from the lyrics at random with random prefixes: brute force and the suffix array agree.
    text = corpus.text
    index = TextIndex(text)
    generator = torch.Generator().manual_seed(0)
    for _ in range(12):
        a, b, c = (int(v) for v in torch.randint(0, len(text) - 30, (3,), generator=generator))
        lengths = [int(v) for v in torch.randint(1, 14, (3,), generator=generator)]
        sample = text[a : a + lengths[0]] + text[b : b + lengths[1]] + MARK + text[c : c + lengths[2]]
        prefix = int(torch.randint(0, 6, (1,), generator=generator))
        found = sample_copy(index, sample, prefix)
        assert (found.longest_copy, found.copied) == by_the_definition(sample, prefix, text), (sample, prefix)


def test_a_memorised_run_copies_far_more_than_an_early_one_and_metrics_say_so(
    corpus_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Cheap memorisation: 3,000 characters, a GRU of 128 at lr 0.01 (training perplexity about 1.3 by epoch 30);
    # greedy samples at epoch 5 and at the end. --metrics carries the copy figures on sampling epochs only.
    ckpt, metrics = tmp_path / "memorised.ckpt", tmp_path / "m.jsonl"
    argv = ["train", "--headless", "--corpus", str(corpus_path), "--max-chars", "3000", "--cell", "gru"]
    argv += ["--hidden", "128", "--lr", "0.01", "--epochs", "30", "--pred-period", "5", "--seed", "1"]
    argv += ["--threads", "1", "--save", str(ckpt), "--metrics", str(metrics)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    early, late = records[4], records[-1]
    assert all(r["copy_longest"] is None and r["copy_share"] is None for r in records if r["epoch"] % 5)
    assert early["copy_share"] < 0.2 and early["copy_longest"] < MIN_COPY * 2
    assert late["copy_share"] > 0.7 and late["copy_longest"] > 4 * early["copy_longest"]
    assert late["horizon_perplexity"] is not None and early["horizon_perplexity"] is not None
    assert f"longest verbatim copy of the training text {late['copy_longest']} characters" in out
    # The lab's twin finds the same on the checkpoint (greedy samples from the same weights and prefixes).
    assert main(["lab", "copies", "--checkpoint", str(ckpt), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["copy_longest"] == late["copy_longest"]
    assert shown["copy_share"] == pytest.approx(late["copy_share"])
    assert [s["text"][:2] for s in shown["samples"]] == ["分开", "不分"]
    # ...and so does the timeline, on the same epoch's samples (one detector, one definition).
    assert main(["lab", "timeline", "--checkpoint", str(ckpt), "--json"]) == 0
    last_entry = json.loads(capsys.readouterr().out)["entries"][-1]["samples"]
    assert max(s["longest_copy"] for s in last_entry) == late["copy_longest"]
    assert sum(s["copied"] for s in last_entry) / sum(s["generated"] for s in last_entry) == pytest.approx(
        late["copy_share"]
    )
    for name in ("horizon", "ngram"):
        assert main(["lab", name, "--checkpoint", str(ckpt), "--json"]) == 0
        found = json.loads(capsys.readouterr().out)
        if name == "horizon":
            assert found["context"][-1] == 2_999 and len(found["train"]) == len(found["held_out"]) == 13
            assert found["train"][-1] == pytest.approx(late["horizon_perplexity"], rel=1e-4)
        else:
            assert found["n"] == list(range(1, 9)) and all(v > 1 for v in found["held_out"])
            assert found["model_best"]["held_out"] == min(r["val_perplexity"] for r in records)
    code, err = run_main(["lab", "copies", "--checkpoint", str(ckpt), "--len", "0"], capsys)
    assert_one_line_error(code, err, "--len")


# ----- in the app -----


@pytest.mark.parametrize("size", [(100, 30), (80, 24)])
async def test_the_app_shows_copies_baselines_and_both_lab_panes(corpus_path: Path, size: tuple[int, int]) -> None:
    from pilot_helpers import wait_for
    from textual.widgets import Static, TabbedContent

    from tui.app import RnnTuiApp
    from tui.app.screens import HelpScreen
    from tui.app.screens.lab import LabScreen
    from tui.app.screens.lab_horizon import HorizonPane
    from tui.app.screens.lab_ngram import NgramPane
    from tui.cli import app_options, parse

    argv = ["--corpus", str(corpus_path), "--max-chars", "3000", "--cell", "gru", "--hidden", "128", "--lr", "0.01"]
    app = RnnTuiApp(
        app_options(parse([*argv, "--epochs", "30", "--pred-period", "30", "--seed", "1", "--threads", "1"]))
    )
    async with app.run_test(size=size) as pilot:
        runs = app.run_control
        await wait_for(pilot, lambda: runs.status.state == "finished", "30 epochs", timeout=120)
        last = runs.epochs_seen[-1]
        assert last.copy_share is not None and last.copy_share > 0.7 and last.horizon_perplexity is not None
        # The samples say how much they copy, and mark it (reverse video: not colour alone).
        samples = app.main.samples
        copied = [line for line in samples.written if "copied" in line.plain]
        assert len(copied) == 2 and all(any("reverse" in str(span.style) for span in line.spans) for line in copied)
        shown = app.main.status.render_status().plain
        assert f"whole text {last.horizon_perplexity:,.2f}" in shown
        # 80×24 makes room for ‖g‖ and chars/s: fresh stands beside whole text without its label (F1 says it)
        assert ("(cold start)" in shown) == (size == (100, 30))
        assert f"held-out {last.val_perplexity:,.2f}" in "\n".join(shown.splitlines()[:4])  # in view at 80×24
        # The n-gram reference lines reach the plot once counted (a worker).
        await wait_for(pilot, lambda: len(app.main.plot.baselines) >= 1, "the n-gram reference lines")
        assert all(label.split()[0].endswith("-gram") for label, _ in app.main.plot.baselines)

        await pilot.press("f11")
        await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), "the lab")
        app.screen.query_one(TabbedContent).active = "lab-horizon"
        pane = app.screen.query_one(HorizonPane)
        await wait_for(pilot, lambda: pane.horizon is not None, "the horizon computed", timeout=60)
        assert pane.horizon is not None and pane.horizon.context[-1] == 2_999
        summary = app.screen.query_one("#horizon-summary", Static).render()
        assert f"whole text: {pane.horizon.longest:,.2f}" in str(summary)
        app.screen.query_one(TabbedContent).active = "lab-ngram"
        ngram = app.screen.query_one(NgramPane)
        await wait_for(pilot, lambda: "5-gram" in _text(ngram.view), "the n-gram table")
        assert "model, best" in _text(ngram.view) and "Kneser-Ney" in _text(ngram.view)
        await pilot.press("escape")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        help_text = str(app.screen.query_one("#help-settings", Static).render())
        assert "Memory horizon" in help_text and "N-gram baselines" in help_text and "whole text" in help_text


def _text(shown: object) -> str:
    """A rich renderable (a Text, a Table) as plain text, laid out 100 columns wide; "" for None."""
    if shown is None:
        return ""
    from rich.console import Console

    console = Console(width=100, record=True, file=io.StringIO())
    console.print(shown)
    return console.export_text()
