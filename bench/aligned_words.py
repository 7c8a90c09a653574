"""The hand-written substring filter ``probe/substrings.py`` used before Aho-Corasick.

Kept only as ``bench/patterns.py``'s yardstick, so the library's figures are
ratios against it measured in the same run; nothing in ``probe`` imports it.
Its premise, that Python has no multi-pattern search, was about the standard
library; ``ahocorasick_rs`` now does this job (see ``probe.substrings``).

An aligned-word filter. The text is read as 8-byte words at offsets
0, 8, 16, ... and 4, 12, 20, ... (two memoryview casts: no copy, each word
one int) and the words are looked up in a set of words cut from the
patterns. Where a pattern lies in the text decides which of its words are
aligned, so each possible alignment gets one word in the set:

* a pattern of 15 bytes or more covers a whole word at a multiple of 8
  wherever it lies: for each of its 8 alignments its rarest such word;
* one of 11-14 bytes covers a whole word at a multiple of 4: 4 alignments,
  looked up in both passes;
* the few shorter ones are always searched for directly.

Only the patterns whose word turns up are searched for in full, so the
answer is exact. "Rarest" means shared by the fewest patterns (a word that
many patterns contain, such as ``"blocked "``, is ordinary text), then made
of the least common bytes: ordinary pages then turn up few candidates.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate

_WORD = 8
_SPAN = 40
# Bytes of web pages, most frequent first (roughly): a word made of them is a poor key.
_FREQUENT = b" etaoinsrhl<>/=\"'.,-_:;()\ndcumfpgwyb\t0123456789ETAOINSRHLDCUMP"
_COST = bytes(len(_FREQUENT) - _FREQUENT.index(b) if b in _FREQUENT else 0 for b in range(256))


@dataclass(frozen=True, slots=True)
class AlignedWordIndex:
    patterns: tuple[bytes, ...]
    at_8: dict[int, tuple[int, ...]]  # word at a multiple of 8 -> candidate patterns
    at_4: dict[int, tuple[int, ...]]  # word at an odd multiple of 4 -> candidate patterns
    short: tuple[int, ...]  # patterns always searched for
    keys_8: frozenset[int]
    keys_4: frozenset[int]

    @classmethod
    def build(cls, patterns: tuple[bytes, ...]) -> AlignedWordIndex:
        # Words from the first _SPAN bytes only: enough choice per alignment, half the work on long patterns.
        words = [[p[k : k + _WORD] for k in range(min(len(p), _SPAN) - _WORD + 1)] for p in patterns]
        shared: Counter[bytes] = Counter()
        for these in words:
            shared.update(set(these))
        at_8: dict[int, list[int]] = {}  # words of patterns of 15+ bytes, and of 11-14 at multiples of 8
        at_4: dict[int, list[int]] = {}  # words of patterns of 11-14 bytes
        short = []
        for index, (pattern, these) in enumerate(zip(patterns, words, strict=True)):
            if len(pattern) < 11:
                short.append(index)
                continue
            byte_cost = list(accumulate(pattern.translate(_COST), initial=0))
            cost = [shared[w] * 4096 + byte_cost[k + _WORD] - byte_cost[k] for k, w in enumerate(these)]
            stride = 8 if len(pattern) >= 15 else 4
            for alignment in range(stride):
                choices = cost[alignment::stride]
                word = int.from_bytes(these[alignment + stride * choices.index(min(choices))], sys.byteorder)
                for table in (at_8, at_4) if stride == 4 else (at_8,):
                    listed = table.setdefault(word, [])
                    if not listed or listed[-1] != index:
                        listed.append(index)
        return cls(
            patterns,
            {word: tuple(indexes) for word, indexes in at_8.items()},
            {word: tuple(indexes) for word, indexes in at_4.items()},
            tuple(short),
            frozenset(at_8),
            frozenset(at_4),
        )

    def found(self, text: bytes) -> list[int]:
        """Indexes of the patterns that occur in ``text``, ascending."""
        view = memoryview(text)
        candidates = set(self.short)
        for word in self.keys_8.intersection(view[: len(text) // _WORD * _WORD].cast("Q")):
            candidates.update(self.at_8[word])
        if self.keys_4 and len(text) >= 4 + _WORD:
            odd = view[4 : 4 + (len(text) - 4) // _WORD * _WORD].cast("Q")
            for word in self.keys_4.intersection(odd):
                candidates.update(self.at_4[word])
        return sorted(i for i in candidates if self.patterns[i] in text)
