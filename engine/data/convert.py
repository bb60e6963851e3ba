"""Traditional -> Simplified prefixes.

The book's page prints its prefixes in Traditional characters (分開, 不分開)
while the corpus is Simplified, so a prefix copied from the page would hit
characters the model has never seen. We convert such prefixes with OpenCC
(pure-Python port, no native library) and say so, instead of failing.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache

import opencc

from engine.data.corpus import UNK, preprocess
from engine.errors import PrefixError


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    # Building the converter loads its dictionaries (tens of ms); do it once.
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Convert Traditional Chinese characters and phrases to Simplified (OpenCC t2s)."""
    return str(_t2s().convert(text)) if text else text


def _unknown(text: str, vocabulary: Collection[str]) -> list[str]:
    """Distinct characters of text missing from vocabulary, in order of appearance."""
    return list(dict.fromkeys(ch for ch in text if ch not in vocabulary))


def resolve_prefix(prefix: str, vocabulary: Collection[str]) -> tuple[str, str | None]:
    """Return (usable prefix, note or None), or raise PrefixError.

    With a vocabulary holding <unk> (preset d2l-en), the prefix is preprocessed as the corpus was, with a note
    when that changes it. Otherwise a prefix whose characters are all known is returned unchanged. Otherwise, if its
    t2s conversion (same length, so positions still line up) is fully known, the
    conversion is returned with a note for the user. Otherwise the error names each
    unknown character, taken from whichever text (original or converted) has fewer.
    """
    if not prefix:
        raise PrefixError("prefix is empty: type at least one character")
    if UNK in vocabulary:
        # The English edition's vocabulary: the prefix is read as its corpus was (letters only, lower case), and a
        # character still outside the vocabulary becomes <unk>, as the book maps it.
        read = preprocess(prefix, "d2l-en")
        if read != prefix:
            return read, f"read as the corpus is (letters only, lower case): {prefix!r} → {read!r}"
        return prefix, None
    unknown = _unknown(prefix, vocabulary)
    if not unknown:
        return prefix, None

    converted = to_simplified(prefix)
    if len(converted) == len(prefix) and converted != prefix:
        unknown_converted = _unknown(converted, vocabulary)
        if not unknown_converted:
            note = f"converted Traditional to Simplified: {prefix} → {converted}"
            return converted, note
        if len(unknown_converted) < len(unknown):
            unknown = unknown_converted
    # repr() quotes each character and keeps the message on one line
    # (a tab or newline shows as '\t' or '\n').
    names = ", ".join(repr(ch) for ch in unknown)
    raise PrefixError(f"prefix has characters not in the vocabulary: {names}")
