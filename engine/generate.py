"""Text generation from a prefix: greedy as the book's predict_rnn_pytorch, or sampled with temperature / top-k."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch

from engine.config import MAX_GENERATE_LEN, MAX_PREFIX_LEN, check_temperature
from engine.data.corpus import Vocab
from engine.errors import ConfigError, PrefixError
from engine.limits import available_memory, size_text
from engine.model import CharRNN, Stepper, evaluating

STEPPED_PREFIX_LEN = 64  # prefixes up to this long are fed one character at a time
PREFIX_CHUNK = 256  # a longer one is read this many characters a forward pass: its logits stay small at any length


def check_prefix(prefix: str, vocab: Vocab) -> None:
    """Raise PrefixError naming every character the model has never seen (the book raises KeyError)."""
    if not prefix:
        raise PrefixError("prefix is empty: type at least one character")
    if len(prefix) > MAX_PREFIX_LEN:
        raise PrefixError(f"the prefix is {len(prefix):,} characters long; the limit is {MAX_PREFIX_LEN:,}")
    unknown = vocab.unknown(prefix)
    if unknown:
        names = ", ".join(repr(c) for c in unknown)
        raise PrefixError(f"prefix has characters not in the vocabulary: {names}")


def generation_bytes(model: CharRNN, prefix_len: int, length: int) -> int:
    """About how many bytes generating takes beyond the weights: the prefix and text as Python lists and strings, and
    one chunk's gates, hidden states and logits (a few times over, as the forward pass makes copies)."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}.get(model.cell, 4)
    chunk = min(prefix_len, PREFIX_CHUNK)
    tensors = chunk * (model.vocab_size + (gates + 2) * model.hidden * model.layers) * 4 * 3
    return tensors + (prefix_len + length) * 64  # a list's slot, an int and a character: under 64 bytes each


def check_generation_memory(model: CharRNN, prefix_len: int, length: int) -> None:
    """PrefixError, with the numbers, when generating would take more memory than this process may still use (a
    served seat's share, the machine's): checked before anything is allocated."""
    needed = generation_bytes(model, prefix_len, length)
    available = available_memory()
    if available is not None and needed > available:
        raise PrefixError(
            f"generating from {prefix_len:,} characters needs about {size_text(needed)}; {size_text(available)} "
            "is available: use a shorter prefix"
        )


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
    A long prefix is read PREFIX_CHUNK characters a forward pass, then one character at a time is generated.
    """
    check_prefix(prefix, vocab)
    check_generation_settings(length, temperature, top_k)
    check_generation_memory(model, len(prefix), length)
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
        else:  # a long one in chunks: one pass over it all made T × vocab logits (2 GiB for a 330,000-char paste)
            state = model.init_state(1, device)
            starts = range(0, len(encoded), PREFIX_CHUNK)
            for start in starts[:-1]:  # the recurrent layer alone: only the last chunk's logits are wanted
                _, state = model.recurrent(
                    torch.tensor(encoded[start : start + PREFIX_CHUNK], device=device).view(-1, 1), state
                )
            logits, state = model(torch.tensor(encoded[starts[-1] :], device=device).view(-1, 1), state)
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
