"""Text generation from a prefix: greedy as the book's predict_rnn_pytorch, or sampled with temperature / top-k."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch

from engine.config import MAX_GENERATE_LEN, check_temperature
from engine.corpus import Vocab
from engine.errors import ConfigError, PrefixError
from engine.model import CharRNN, Stepper, evaluating

STEPPED_PREFIX_LEN = 64  # prefixes up to this long are fed one character at a time


def check_prefix(prefix: str, vocab: Vocab) -> None:
    """Raise PrefixError naming every character the model has never seen (the book raises KeyError)."""
    if not prefix:
        raise PrefixError("prefix is empty: type at least one character")
    unknown = vocab.unknown(prefix)
    if unknown:
        names = ", ".join(repr(c) for c in unknown)
        raise PrefixError(f"prefix has characters not in the vocabulary: {names}")


def capped_length(length: int) -> tuple[int, str | None]:
    """A huge length is capped rather than refused; the note says so."""
    if length > MAX_GENERATE_LEN:
        return MAX_GENERATE_LEN, f"length {length:,} capped at {MAX_GENERATE_LEN:,} characters"
    return length, None


def check_generation_settings(length: int, temperature: float | None, top_k: int | None) -> None:
    if length < 0 or length > MAX_GENERATE_LEN:
        raise ConfigError(f"length must be between 0 and {MAX_GENERATE_LEN:,}, got {length:,}")
    check_temperature(temperature)
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top-k must be ≥ 1, got {top_k}")


@torch.inference_mode()
def generate(
    model: CharRNN,
    vocab: Vocab,
    prefix: str,
    length: int,
    temperature: float | None = None,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> str:
    """prefix followed by length generated characters.

    With neither temperature nor top_k, the most likely character is picked (greedy, the book);
    otherwise the next one is drawn from softmax(logits / temperature) (temperature 1 if not given),
    restricted to the top_k most likely when top_k is given.
    The prefix is read in one forward pass, then one character at a time.
    """
    check_prefix(prefix, vocab)
    check_generation_settings(length, temperature, top_k)
    chosen = [index for _, index in generation_steps(model, vocab, prefix, length, temperature, top_k, generator)]
    return prefix + vocab.decode(chosen)


def generation_steps(
    model: CharRNN,
    vocab: Vocab,
    prefix: str,
    length: int,
    temperature: float | None,
    top_k: int | None,
    generator: torch.Generator | None,
) -> Iterator[tuple[torch.Tensor, int]]:
    """The generation loop shared by generate() and the explanations: (logits, chosen index) per character.

    Arguments are checked, and inference mode entered, by the callers; the model is in eval mode meanwhile.
    """
    if length == 0:
        return
    with evaluating(model):
        device = model.dense.weight.device
        encoded = vocab.encode(prefix)
        if len(encoded) <= STEPPED_PREFIX_LEN:
            # A short prefix is cheaper stepped (no batching, logits only for its last character).
            step_once = Stepper(model, model.init_state(1, device))
            for index in encoded[:-1]:
                step_once.feed(index)
            last = step_once(encoded[-1])
        else:  # a long one is read in one forward pass
            logits, state = model(torch.tensor(encoded, device=device).view(-1, 1))
            last = logits[-1]
            step_once = Stepper(model, state)
        for step in range(length):
            index = pick_next(last, temperature, top_k, generator)
            yield last, index
            if step + 1 < length:
                last = step_once(index)


def fresh_generator(seed: int | None = None) -> torch.Generator:
    """A generator of its own, seeded (from the OS when no seed is given): sampling with it never shifts torch's
    global generator, whose draws a run training meanwhile needs for its dropout masks."""
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    return torch.Generator().manual_seed(seed)


def pick_next(
    logits: torch.Tensor, temperature: float | None, top_k: int | None, generator: torch.Generator | None
) -> int:
    if temperature is None and top_k is None:
        return int(logits.argmax())
    scaled = logits.float() / (temperature or 1.0)  # top-k alone samples at temperature 1
    if top_k is not None and top_k < scaled.numel():
        values, indices = scaled.topk(top_k)
        choice = torch.multinomial(torch.softmax(values, -1).cpu(), 1, generator=generator)
        return int(indices[int(choice)])
    return int(torch.multinomial(torch.softmax(scaled, -1).cpu(), 1, generator=generator))
