"""Why the model wrote what it wrote: the next-character distribution at every generated position.

explain_generation() generates exactly as engine.generate.generate does (same logits, same sampler,
same generator draws), and records at each step the top-K candidates with their probabilities and the
character that was chosen. explain_text() does the same for a text that already exists (teacher-forced:
the model reads the text and is asked, at each position, what it expected next).

Probabilities shown are softmax(logits / temperature); with no temperature (greedy, or top-k alone)
they are the plain softmax(logits), whose argmax greedy takes. With top-k sampling the sampler
renormalises among the top k; the probability shown is still the one over the whole vocabulary, so
the K shown sum to at most 1.

find_loop() spots the repetition greedy decoding falls into (the book's "我有多难熬 我有多难熬 …").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engine.corpus import Vocab
from engine.errors import ConfigError
from engine.generate import check_generation_settings, check_prefix, pick_next
from engine.model import CharRNN

SPACE_MARK = "␣"  # the corpus turns line breaks into spaces; a visible mark keeps the columns readable


@dataclass(frozen=True)
class Candidate:
    char: str
    probability: float


@dataclass(frozen=True)
class ExplainStep:
    """One generated character and the distribution it was drawn from."""

    position: int  # index in the full text (prefix included) of the character this step chose
    candidates: tuple[Candidate, ...]  # the K most likely, most likely first
    chosen: str
    probability: float  # of the chosen character, under the displayed distribution
    rank: int  # 1 = the most likely character; > K when sampling picked one outside the top K
    entropy: float  # in nats: 0 = certain, log(vocab size) = clueless


@dataclass(frozen=True)
class Loop:
    """The text from start to its end repeats `unit` over and over (at least twice in full)."""

    start: int  # index in the full text where the repetition begins
    unit: str  # the repeated stretch

    def repeats(self, text: str) -> float:
        return (len(text) - self.start) / len(self.unit)


def check_top(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"explain needs a number of candidates ≥ 1, got {k!r}")


def display_distribution(logits: torch.Tensor, temperature: float | None) -> torch.Tensor:
    """softmax(logits / T); softmax(logits) when no temperature is given (greedy picks its argmax)."""
    return torch.softmax(logits.float() / (temperature or 1.0), -1)


def explain_step(
    logits: torch.Tensor, chosen: int, position: int, vocab: Vocab, temperature: float | None, k: int
) -> ExplainStep:
    probabilities = display_distribution(logits, temperature)
    top = probabilities.topk(min(k, probabilities.numel()))
    chosen_probability = probabilities[chosen]
    # Rank = 1 + how many characters are strictly more likely: ties share the better rank.
    rank = int((probabilities > chosen_probability).sum()) + 1
    entropy = float(-(probabilities * torch.log(probabilities.clamp_min(1e-30))).sum())
    return ExplainStep(
        position=position,
        candidates=tuple(
            Candidate(vocab.idx_to_char[int(i)], float(p)) for p, i in zip(top.values, top.indices, strict=True)
        ),
        chosen=vocab.idx_to_char[chosen],
        probability=float(chosen_probability),
        rank=rank,
        entropy=entropy,
    )


@torch.inference_mode()
def explain_generation(
    model: CharRNN,
    vocab: Vocab,
    prefix: str,
    length: int,
    temperature: float | None = None,
    top_k: int | None = None,
    k: int = 5,
    generator: torch.Generator | None = None,
) -> list[ExplainStep]:
    """Generate length characters after prefix, as generate() does, explaining each choice with K candidates."""
    check_prefix(prefix, vocab)
    check_generation_settings(length, temperature, top_k)
    check_top(k)
    steps: list[ExplainStep] = []
    if length == 0:
        return steps
    was_training = model.training
    model.eval()
    try:
        device = model.dense.weight.device
        logits, state = model(torch.tensor(vocab.encode(prefix), device=device).view(-1, 1))
        last = logits[-1]
        for step in range(length):
            # The very sampler generate() uses, so the same generator gives the same characters.
            index = pick_next(last, temperature, top_k, generator)
            steps.append(explain_step(last, index, len(prefix) + step, vocab, temperature, k))
            if step + 1 < length:
                logits, state = model(torch.tensor([[index]], device=device), state)
                last = logits[-1]
        return steps
    finally:
        model.train(was_training)


@torch.inference_mode()
def explain_text(
    model: CharRNN, vocab: Vocab, text: str, start: int = 1, temperature: float | None = None, k: int = 5
) -> list[ExplainStep]:
    """For an existing text: at every position from start on, what the model expected there, given what precedes.

    The model reads text[:start] first (the prefix of a sample), so a sample explained this way shows the
    distributions it was generated from (when it was generated by this model, from a fresh state).
    """
    check_prefix(text, vocab)
    check_top(k)
    if not 1 <= start <= len(text):
        raise ConfigError(f"start must be between 1 and the text's length {len(text)}, got {start}")
    if start == len(text):
        return []
    was_training = model.training
    model.eval()
    try:
        indices = vocab.encode(text)
        inputs = torch.tensor(indices[:-1], device=model.dense.weight.device).view(-1, 1)
        logits, _ = model(inputs)  # logits[t] predicts character t + 1
        return [
            explain_step(logits[position - 1], indices[position], position, vocab, temperature, k)
            for position in range(start, len(text))
        ]
    finally:
        model.train(was_training)


def generated_text(prefix: str, steps: Sequence[ExplainStep]) -> str:
    return prefix + "".join(step.chosen for step in steps)


def find_loop(text: str, start: int = 0, min_span: int = 4) -> Loop | None:
    """The longest run at the end of text (from start on) that repeats one stretch at least twice.

    A stretch of p characters repeats when text[i] == text[i + p] all the way to the end; the run must
    cover two full copies and at least min_span characters, so "哈哈" alone is no loop. Among
    equally long runs the shortest stretch wins ("ab" rather than "abab").
    """
    best: Loop | None = None
    best_span = 0
    end = len(text)
    for period in range(1, (end - start) // 2 + 1):
        i = end - period - 1
        while i >= start and text[i] == text[i + period]:
            i -= 1
        loop_start = i + 1
        span = end - loop_start
        if span >= 2 * period and span >= min_span and span > best_span:
            best, best_span = Loop(loop_start, text[loop_start : loop_start + period]), span
    return best


def display_width(text: str) -> int:
    """Terminal columns: CJK and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def visible(text: str) -> str:
    return text.replace(" ", SPACE_MARK)


def cell(char: str) -> str:
    """A character in two columns, whatever its width, so the probabilities after it line up."""
    return pad_right(visible(char), 2)


def pad_left(text: str, width: int) -> str:
    return " " * max(0, width - display_width(text)) + text


def pad_right(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def context_before(text: str, position: int, width: int) -> str:
    """The characters just before position, as many as fit in width columns (an ellipsis when cut)."""
    shown = ""
    for char in reversed(visible(text[:position])):
        if display_width(char + shown) > width - 1:
            return "…" + shown
        shown = char + shown
    return shown


def format_explanation(prefix: str, steps: Sequence[ExplainStep], context_width: int = 12) -> str:
    """One line per generated character: the text before it, the choice with its probability, the top K.

    ␣ marks a space (a line break in the lyrics); (#r) marks a choice that was not the most likely.
    """
    text = generated_text(prefix, steps)
    loop = find_loop(text, start=len(prefix))
    lines = [f"{visible(text)}", f"{'#':>4}  {pad_left('after', context_width)}  {'chose':<17}top {_k(steps)}"]
    for number, step in enumerate(steps, start=1):
        choice = f"{cell(step.chosen)} {step.probability:.3f}" + (f" (#{step.rank})" if step.rank > 1 else "")
        candidates = "  ".join(f"{cell(c.char)} {c.probability:.3f}" for c in step.candidates)
        repeating = loop is not None and step.position >= loop.start + len(loop.unit)
        lines.append(
            f"{number:>4}  {pad_left(context_before(text, step.position, context_width), context_width)}  "
            f"{pad_right(choice, 17)}{candidates}" + ("  ↻" if repeating else "")
        )
    if loop is not None:
        lines.append(describe_loop(text, loop))
    return "\n".join(lines)


def describe_loop(text: str, loop: Loop) -> str:
    return (
        f"↻ loop: from character {loop.start + 1} the text repeats “{visible(loop.unit)}” "
        f"({len(loop.unit)} characters, {loop.repeats(text):.1f} times)"
    )


def _k(steps: Sequence[ExplainStep]) -> int:
    return len(steps[0].candidates) if steps else 0
