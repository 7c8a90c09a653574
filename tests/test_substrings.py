"""The body-substring index answers exactly what ``pattern in window`` answers,
on OONI's real patterns and on the edge cases a library could get wrong."""

from __future__ import annotations

import itertools
import random

import pytest

from probe.analysis.fingerprints import BODY_WINDOW
from probe.config.fingerprints import load_fingerprints
from probe.substrings import SubstringIndex
from tests.test_fingerprints import page

INDEX = load_fingerprints().substrings  # as the matcher builds it at load
PATTERNS = INDEX.patterns


def naive(patterns: tuple[bytes, ...], text: bytes) -> list[int]:
    return [i for i, p in enumerate(patterns) if p in text]


def pages() -> dict[str, bytes]:
    """Windows as the matcher sees them: genuine, a blockpage, and pages full of patterns."""
    rng = random.Random(20261201)  # fixed: a failure names a page that can be rebuilt
    clean = page(BODY_WINDOW)
    # Patterns cut into the page at random places, so they also straddle one another.
    spliced = bytearray(clean)
    for pattern in rng.sample(PATTERNS, 200):
        at = rng.randrange(len(spliced))
        spliced[at:at] = pattern
    # Halves and overlaps: each pattern's first half next to another's second half.
    halves = b"".join(p[: len(p) // 2] + q[len(q) // 2 :] for p, q in itertools.pairwise(PATTERNS))
    return {
        "empty": b"",
        "genuine": clean,
        "blockpage": "<p>Доступ к сайту ограничен в соответствии с Федеральными законами</p>".encode()
        + clean,
        "every pattern": b"".join(PATTERNS),
        "every pattern, spaced": b" ".join(PATTERNS[::-1]),
        "spliced": bytes(spliced),
        "halves": halves,
        "random bytes": rng.randbytes(BODY_WINDOW),
        "end of window": clean[: -len(PATTERNS[-1])] + PATTERNS[-1],
    }


@pytest.mark.parametrize("name", list(pages()))
def test_the_index_finds_what_a_naive_search_finds(name: str) -> None:
    window = pages()[name][:BODY_WINDOW]
    assert INDEX.found(window) == naive(PATTERNS, window)


def test_many_matches_are_all_reported_once() -> None:
    text = b"".join(PATTERNS)
    found = INDEX.found(text)
    assert found == list(range(len(PATTERNS)))  # every one, ascending, none twice


def test_every_pattern_at_every_offset() -> None:
    index = SubstringIndex.build(PATTERNS)
    for offset in range(8):
        for i, pattern in enumerate(PATTERNS):
            assert i in index.found(b"~" * offset + pattern + b"~" * 5), (offset, pattern)


def test_nested_repeated_and_empty_patterns() -> None:
    patterns = (b"abc", b"bc", b"abc", b"abcd", b"", b"zz", b"c")
    index = SubstringIndex.build(patterns)
    for text in (b"", b"xabcdx", b"abc", b"zzz", b"c", b"ab"):
        assert index.found(text) == naive(patterns, text), text
    assert SubstringIndex.build(()).found(b"anything") == []


def test_bytes_not_characters() -> None:
    # A pattern's UTF-8 bytes match inside other text's bytes, as ``in`` on bytes does.
    index = SubstringIndex.build(("ограничен".encode(), b"\xd0"))
    assert index.found("ограничено".encode()) == [0, 1]
    assert index.found(b"\xd0") == [1]
    assert index.found(b"\xff\xfe") == []
