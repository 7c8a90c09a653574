"""Which of many byte strings occur in a text: one Aho-Corasick pass, not one pass per string.

The naive way, ``pattern in text`` for each pattern, costs a pass over the
text per pattern: ~20 ms for OONI's 1,300 body substrings against 64 KiB,
on every HTTP response, and a regex alternation of 1,300 literals is slower
still (sre tries the alternatives at each position). Aho-Corasick reads the
text once, whatever the number of patterns.

The automaton is ``ahocorasick_rs`` (bindings of the Rust ``aho-corasick``
crate that ripgrep uses), chosen over ``pyahocorasick`` by
``bench/patterns.py`` on the real fingerprint set: ~0.3 ms per 64 KiB, ~3x
faster than ``pyahocorasick`` and ~5x faster than the hand-written
aligned-word filter it replaced (kept as ``bench/aligned_words.py``, the
benchmark's yardstick); ~1 MB, under half of ``pyahocorasick``'s; and it
searches bytes as bytes, where ``pyahocorasick``'s wheels only take ``str``.
Its contiguous NFA, not its DFA: the DFA is ~2x faster on clean pages but
takes ~55 MB, and is slower on pages full of matches.

Matching stays exact: overlapping search with the standard match kind
reports every occurrence of every pattern, so a pattern inside another, or
one listed twice, is found just as ``pattern in text`` finds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ahocorasick_rs import BytesAhoCorasick, Implementation


@dataclass(frozen=True, slots=True)
class SubstringIndex:
    patterns: tuple[bytes, ...]
    _automaton: BytesAhoCorasick = field(repr=False, compare=False)
    _searched: tuple[int, ...] = field(repr=False, compare=False)  # automaton index -> pattern index
    # b"" occurs in every text, and the automaton refuses it: found without a search.
    _empty: tuple[int, ...] = field(repr=False, compare=False)

    @classmethod
    def build(cls, patterns: tuple[bytes, ...]) -> SubstringIndex:
        searched = tuple(i for i, p in enumerate(patterns) if p)
        automaton = BytesAhoCorasick(
            [patterns[i] for i in searched], implementation=Implementation.ContiguousNFA
        )
        return cls(patterns, automaton, searched, tuple(i for i, p in enumerate(patterns) if not p))

    def found(self, text: bytes) -> list[int]:
        """Indexes of the patterns that occur in ``text``, ascending."""
        matches = self._automaton.find_matches_as_indexes(text, overlapping=True)
        return sorted({self._searched[i] for i, _, _ in matches}.union(self._empty))
