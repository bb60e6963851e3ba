"""engine.data.convert with the real corpus vocabulary (1,027 characters)."""

from __future__ import annotations

import zipfile

import pytest
from conftest import BOOK_CORPUS

from engine.data.convert import resolve_prefix, to_simplified
from engine.errors import PrefixError, RnnTuiError

REAL_CORPUS = BOOK_CORPUS

pytestmark = pytest.mark.skipif(not REAL_CORPUS.is_file(), reason=f"real corpus not found at {REAL_CORPUS}")


@pytest.fixture(scope="module")
def vocab() -> list[str]:
    # Built inline, as the book does, so this test does not depend on engine.data.corpus.
    with zipfile.ZipFile(REAL_CORPUS) as zf:
        text = zf.read("jaychou_lyrics.txt").decode("utf-8")
    text = text.replace("\n", " ").replace("\r", " ")[:10000]
    chars = sorted(set(text))
    assert len(chars) == 1027
    return chars


def test_to_simplified() -> None:
    assert to_simplified("分開") == "分开"
    assert to_simplified("不分開") == "不分开"
    assert to_simplified("分开") == "分开"
    assert to_simplified("") == ""


def test_traditional_prefix_is_converted_with_note(vocab: list[str]) -> None:
    prefix, note = resolve_prefix("分開", vocab)
    assert prefix == "分开"
    assert note == "converted Traditional to Simplified: 分開 → 分开"

    prefix, note = resolve_prefix("不分開", set(vocab))
    assert prefix == "不分开"
    assert note is not None and "不分開" in note


def test_simplified_prefix_is_unchanged(vocab: list[str]) -> None:
    assert resolve_prefix("分开", vocab) == ("分开", None)
    assert resolve_prefix("不分开", vocab) == ("不分开", None)


def test_unknown_characters_are_named(vocab: list[str]) -> None:
    assert "x" not in vocab and "Ω" not in vocab
    with pytest.raises(PrefixError) as info:
        resolve_prefix("Ωx分", vocab)
    message = str(info.value)
    assert message == "prefix has characters not in the vocabulary: 'Ω', 'x'"
    assert isinstance(info.value, RnnTuiError)


def test_unknowns_reported_from_converted_text(vocab: list[str]) -> None:
    # 開 converts (to 开, known); Ω does not: only Ω is named.
    with pytest.raises(PrefixError) as info:
        resolve_prefix("分開Ω", vocab)
    assert str(info.value) == "prefix has characters not in the vocabulary: 'Ω'"


def test_unknowns_listed_once_on_one_line(vocab: list[str]) -> None:
    with pytest.raises(PrefixError) as info:
        resolve_prefix("ΩΩ\n分", vocab)
    message = str(info.value)
    assert "\n" not in message
    assert message.count("'Ω'") == 1
    assert "'\\n'" in message


def test_empty_prefix_raises(vocab: list[str]) -> None:
    with pytest.raises(PrefixError, match="prefix is empty: type at least one character"):
        resolve_prefix("", vocab)
