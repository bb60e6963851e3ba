"""The lessons' observations: the learner's own run as it ended (LessonRun) → one or two sentences naming its numbers,
and the same numbers by name for a class's CSV (Observation). One function a lesson (engine.lessons lists them); no
UI, no torch.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.config import SettingValue, TrainConfig, preset_config, to_argv
from engine.events import TRAP_RATIO, EpochEnd, best_held_out, is_trap
from engine.limits import config_parameter_count, parameter_count

if TYPE_CHECKING:  # torch-backed: the lesson list loads without torch (the app lists lessons before it is in)
    from engine.timeline import SampleRecord

Figure = float | int | str | None


@dataclass(frozen=True)
class LessonRun:
    """What an observation reads: the learner's own run, as it ended."""

    config: TrainConfig
    history: tuple[EpochEnd, ...]
    timeline: tuple[SampleRecord, ...] = ()
    vocab_size: int = 0
    training_text: str = ""
    failure: str = ""  # the message of a run that stopped on an error (a divergence)
    # (order, test perplexity) of the best counting model on the run's split, its order chosen on held-out (#28's
    # yardstick); None where the front end has not computed it: the generalise observation then says so.
    counting: tuple[int, float] | None = None


@dataclass(frozen=True)
class Observation:
    lesson: str
    text: str  # one or two sentences naming the run's own numbers
    figures: tuple[tuple[str, Figure], ...] = ()  # the same numbers by name: a class's CSV columns

    def figure(self, name: str) -> Figure:
        return dict(self.figures).get(name)


# ----- formatting -----


def shown(value: float) -> str:
    """A perplexity or ratio as a learner reads it: 224, 1.02, 19,013, inf."""
    if not math.isfinite(value):
        return "inf"
    if value >= 1e6:
        return f"{value:.3g}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _no_epochs(lesson: str) -> Observation:
    return Observation(lesson, "no epoch finished, so there is nothing to observe yet: let the run train")


# ----- the observations -----


BLOW_UP = 10.0  # the last epoch's perplexity this many times the best: the run diverged, though it never stopped


def observe_no_clipping(run: LessonRun) -> Observation:
    history = run.history
    if "diverged" in run.failure:
        epoch = len(history) + 1
        clip = run.config.clip
        text = (
            f"your run diverged in epoch {epoch} with clip {clip:g}: "
            + run.failure.split(":", 1)[-1].split(";")[0].strip()
            + ". One step along an exploded gradient threw the weights off; restart with clip 1 and it trains."
        )
        before = history[-1].perplexity if history else None
        figures: tuple[tuple[str, Figure], ...] = (
            ("diverged_epoch", epoch),
            ("clip", clip),
            ("last", before),
            ("best", None),
            ("best_epoch", None),
        )
        return Observation("no-clipping", text, figures)
    if not history:
        return _no_epochs("no-clipping")
    best = min(history, key=lambda e: e.perplexity)
    last = history[-1]
    rises = [(later.perplexity / earlier.perplexity, later) for earlier, later in itertools.pairwise(history)]
    jump, at = max(rises, key=lambda r: r[0]) if rises else (1.0, last)
    clips = ", ".join(f"{c:g}" for c in sorted({e.clip for e in history}))
    blew_up = last.perplexity / best.perplexity >= BLOW_UP
    text = (
        f"{'your run blew up' if blew_up else 'no divergence'} in {_plural(len(history), 'epoch')} with clip "
        f"{clips}: training perplexity fell to {shown(best.perplexity)} at epoch {best.epoch}"
    )
    if best is not last:
        text += f" and ended at {shown(last.perplexity)}"
    if jump > 1:
        text += f"; its largest rise was ×{shown(jump)} into epoch {at.epoch}"
    if blew_up:
        text += ". Unclipped steps threw the weights off without a single loss large enough to stop the run."
    else:
        text += (
            ". A small model or learning rate can survive without clipping; the lesson's own (the book's model, SGD "
            "at lr 1, seed 1) diverged in epoch 9 when measured."
        )
    figures = (
        ("diverged_epoch", None),
        ("clip", last.clip),
        ("last", last.perplexity),
        ("best", best.perplexity),
        ("best_epoch", best.epoch),
    )
    return Observation("no-clipping", text, figures)


def _distinct_share(text: str) -> float:
    return len(set(text)) / len(text) if text else 0.0


EXCERPT = 16  # characters of a sample quoted in an observation


def observe_untrained_writer(run: LessonRun) -> Observation:
    from engine.lab.copies import index_for, sample_copy

    timeline = [r for r in run.timeline if r.samples]
    if not timeline:
        return Observation("untrained-writer", "no samples were drawn yet: let the run train an epoch")
    first, last = timeline[0], timeline[-1]
    prefix, text = first.samples[0]
    early = text[len(prefix) :]
    top = Counter(early).most_common(1)[0][0] if early else ""  # the first met of equals: the same every run
    late_prefix, late_text = last.samples[0]
    late = late_text[len(late_prefix) :]
    copy = sample_copy(index_for(run.training_text), late_text, len(late_prefix)).longest_copy
    text_out = (
        f"at epoch {first.epoch} your model wrote {_plural(len(set(early)), 'distinct character')} in {len(early)} "
        f"({top!r} {early.count(top)} times: {early[:EXCERPT]!r}…); at epoch {last.epoch}, {len(set(late))} in "
        f"{len(late)} ({late[:EXCERPT]!r}…), and its longest stretch copied verbatim from the lyrics was "
        f"{_plural(copy, 'character')}."
    )
    figures: tuple[tuple[str, Figure], ...] = (
        ("first_epoch", first.epoch),
        ("first_distinct", len(set(early))),
        ("first_top_count", early.count(top)),
        ("last_epoch", last.epoch),
        ("last_distinct", len(set(late))),
        ("last_longest_copy", copy),
    )
    return Observation("untrained-writer", text_out, figures)


def observe_carried_state(run: LessonRun) -> Observation:
    evaluated = [e for e in run.history if e.horizon_perplexity is not None]
    if not evaluated:
        return Observation("carried-state", "no held-out evaluation ran: keep held-out on (val chars > 0)")
    last = evaluated[-1]
    whole = last.horizon_perplexity or math.nan
    fresh = last.fresh_perplexity if last.fresh_perplexity is not None else math.nan
    ratio = whole / last.perplexity
    state = run.config.state
    text = (
        f"with state {state}, your training perplexity at epoch {last.epoch} was {shown(last.perplexity)}, but the "
        f"whole training text read once from a zero state scores {shown(whole)}: ×{shown(ratio)} (fresh, the cold "
        f"start alone: {shown(fresh)}). "
    )
    if is_trap(whole, last.perplexity):
        text += "From a zero state, as generation starts, it predicts far worse than with the state training gave it"
    else:
        text += f"No trap (yet): under ×{TRAP_RATIO:g}, the model reads as well from a zero state"
    text += "; rerun with state epoch to compare." if state == "carry" else "; compare with state carry's gap."
    figures: tuple[tuple[str, Figure], ...] = (
        ("state", state),
        ("epoch", last.epoch),
        ("train", last.perplexity),
        ("fresh", fresh),
        ("whole", whole),
        ("ratio", ratio),
    )
    return Observation("carried-state", text, figures)


def observe_memorisation(run: LessonRun) -> Observation:
    history = list(run.history)
    best = best_held_out(history)
    if best is None or best.val_perplexity is None:
        return Observation("memorisation", "no held-out evaluation ran: keep held-out on (val chars > 0)")
    last = history[-1]
    end = last.val_perplexity if last.val_perplexity is not None else math.nan
    worse = end / best.val_perplexity
    patience = 10
    saved = last.epoch - (best.epoch + patience)
    text = (
        f"your held-out perplexity was best at epoch {best.epoch} ({shown(best.val_perplexity)}) and "
        f"{shown(worse)}× worse at epoch {last.epoch} ({shown(end)}), while training perplexity went to "
        f"{shown(last.perplexity)}: the model learnt the lyrics by heart."
    )
    if saved > 0:
        text += f" Patience {patience} would have stopped at epoch {best.epoch + patience}, {saved} epochs sooner."
    figures: tuple[tuple[str, Figure], ...] = (
        ("best_epoch", best.epoch),
        ("best_held_out", best.val_perplexity),
        ("last_epoch", last.epoch),
        ("last_held_out", end),
        ("times_worse", worse),
        ("last_train", last.perplexity),
    )
    return Observation("memorisation", text, figures)


def observe_cells(run: LessonRun) -> Observation:
    history = run.history
    if not history:
        return _no_epochs("cells")
    config = run.config
    params = config_parameter_count(config, run.vocab_size)
    book = parameter_count("rnn", run.vocab_size, 256, 1)
    total = sum(e.seconds for e in history)
    seconds = total / len(history)
    speed = sum(e.chars for e in history) / total if total > 0 else 0.0
    best = best_held_out(list(history))
    text = (
        f"your {config.cell} of {config.hidden} hidden has {params:,} parameters (the book's rnn of 256: {book:,}); "
        f"an epoch took {seconds:.2f} s on average ({speed:,.0f} characters/s)"
    )
    if best is not None and best.val_perplexity is not None:
        text += f", and its held-out perplexity was best at epoch {best.epoch} ({shown(best.val_perplexity)})"
    text += "."
    figures: tuple[tuple[str, Figure], ...] = (
        ("cell", config.cell),
        ("hidden", config.hidden),
        ("parameters", params),
        ("seconds_per_epoch", seconds),
        ("best_held_out", best.val_perplexity if best is not None else None),
        ("best_epoch", best.epoch if best is not None else None),
    )
    return Observation("cells", text, figures)


def observe_temperature(run: LessonRun) -> Observation:
    from engine.lab.copies import index_for, sample_copy

    timeline = [r for r in run.timeline if r.samples]
    if not timeline:
        return Observation("temperature", "no samples were drawn yet: let the run train to its first report")
    index = index_for(run.training_text)
    by_temperature: dict[str, list[tuple[float, int]]] = {}
    for record in timeline:
        value = record.setting("temperature")
        name = "greedy" if value is None else f"{value:g}"
        for prefix, text in record.samples:
            generated = text[len(prefix) :]
            copy = sample_copy(index, text, len(prefix)).longest_copy
            by_temperature.setdefault(name, []).append((_distinct_share(generated), copy))
    parts = []
    for name, seen in by_temperature.items():
        share = sum(s for s, _ in seen) / len(seen)
        copy = max(c for _, c in seen)
        parts.append(f"at temperature {name}, {share:.0%} of sampled characters were distinct, longest copy {copy}")
    last = timeline[-1]
    last_value = last.setting("temperature")
    last_name = "greedy" if last_value is None else f"{last_value:g}"
    last_share = sum(s for s, _ in by_temperature[last_name]) / len(by_temperature[last_name])
    text = "; ".join(parts) + " (over every report of the run)."
    if len(by_temperature) == 1:
        text += " Change temp (a live setting) and watch the next samples."
    figures: tuple[tuple[str, Figure], ...] = (
        ("temperatures", " ".join(by_temperature)),
        ("last_temperature", last_name),
        ("last_distinct_share", last_share),
        ("last_longest_copy", max(c for _, c in by_temperature[last_name])),
    )
    return Observation("temperature", text, figures)


def observe_one_hot(run: LessonRun) -> Observation:
    config = run.config
    vocab = run.vocab_size
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[config.cell]
    inputs = vocab * config.hidden * gates
    outputs = config.hidden * vocab + vocab
    params = parameter_count(config.cell, vocab, config.hidden, config.layers)
    share = (inputs + outputs) / params
    seconds = sum(e.seconds for e in run.history) / len(run.history) if run.history else math.nan
    text = (
        f"your vocabulary has {vocab:,} characters, so each one-hot input is {vocab:,} numbers with a single 1: the "
        f"input weights ({inputs:,}) and the output layer ({outputs:,}) are {share:.0%} of the model's "
        f"{params:,} parameters, and grow with the vocabulary (the book's 10,000 characters have 1,027)"
    )
    text += f"; an epoch took {seconds:.2f} s." if run.history else "."
    figures: tuple[tuple[str, Figure], ...] = (
        ("vocab", vocab),
        ("input_weights", inputs),
        ("parameters", params),
        ("vocab_share", share),
        ("seconds_per_epoch", seconds if run.history else None),
    )
    return Observation("one-hot", text, figures)


# ----- from memorising to generalising -----

# From memorising to generalising (#28): a ladder of runs on the whole Time Machine, each a step over the one before,
# each run's test perplexity against counting's on the same text. (name, what the step adds, its settings.)
GENERALISE_STEPS: tuple[tuple[str, str, dict[str, SettingValue]], ...] = (
    ("the book's run", "the English edition's run: 10,000 letters", {"preset": "d2l-en"}),
    (
        "the whole text",
        "the whole Time Machine, no regulariser",
        {"preset": "whole-en", "io_dropout": 0.0, "embed": 0, "tie": "off", "schedule": "constant"},
    ),
    (
        "dropout",
        "dropout on the layer's input and output",
        {"preset": "whole-en", "embed": 0, "tie": "off", "schedule": "constant"},
    ),
    ("embedding and tying", "an embedding tied to the output layer", {"preset": "whole-en", "schedule": "constant"}),
    ("the preset", "the cosine schedule: the whole whole-en preset", {"preset": "whole-en"}),
)
# The settings the steps differ in: a run is a step when these are the step's.
STEP_SETTINGS = ("preset", "max_chars", "io_dropout", "embed", "tie", "schedule", "cell", "hidden", "layers")


def generalise_step(config: TrainConfig) -> int | None:
    """Which step of GENERALISE_STEPS a run's settings are (0-based); None for a run of the learner's own."""
    for index, (_name, _adds, settings) in enumerate(GENERALISE_STEPS):
        step = preset_config(dict(settings))
        if all(getattr(config, name) == getattr(step, name) for name in STEP_SETTINGS):
            return index
    return None


def step_flags(index: int) -> str:
    """The command-line flags of a step (those its lesson's settings do not give already)."""
    return " ".join(to_argv(dict(GENERALISE_STEPS[index][2]), always=("preset",)))


def observe_generalise(run: LessonRun) -> Observation:
    history = list(run.history)
    if not history:
        return _no_epochs("generalise")
    best = best_held_out(history)
    test = history[-1].test_perplexity
    index = generalise_step(run.config)
    step = (
        f"step {index + 1} of {len(GENERALISE_STEPS)}, {GENERALISE_STEPS[index][0]}"
        if index is not None
        else "a run of your own"
    )
    if test is None or best is None or best.val_perplexity is None:
        return Observation(
            "generalise",
            f"{step}: no test perplexity was reported; keep held-out and test text on (val chars, test fraction > 0)",
            (("step", step), ("test", None), ("best_held_out", None), ("best_epoch", None),
             ("counting_order", None), ("counting_test", None), ("times_counting", None)),
        )  # fmt: skip
    text = (
        f"{step}: test perplexity {shown(test)} (the best held-out epoch, {best.epoch}: {shown(best.val_perplexity)})"
    )
    order: int | None = None
    counting: float | None = None
    ratio: float | None = None
    if run.counting is not None:
        order, counting = run.counting
        ratio = test / counting
        verdict = "better than counting" if ratio < 1 else "worse than counting"
        text += f"; counting ({order}-gram) gets {shown(counting)} on the same test text: ×{shown(ratio)}, {verdict}."
    else:
        text += "; compare counting's test figure on the same split (rnn-tui lab ngram)."
    if index is not None and index + 1 < len(GENERALISE_STEPS):
        text += f" Next, {GENERALISE_STEPS[index + 1][1]}: {step_flags(index + 1)}."
    figures: tuple[tuple[str, Figure], ...] = (
        ("step", step),
        ("test", test),
        ("best_held_out", best.val_perplexity),
        ("best_epoch", best.epoch),
        ("counting_order", order),
        ("counting_test", counting),
        ("times_counting", ratio),
    )
    return Observation("generalise", text, figures)


