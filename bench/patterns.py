"""The body-substring index on the real fingerprint set: two Aho-Corasick libraries
against the hand-written filter they replaced, measured side by side.

    python -m bench.patterns

Contestants, each built from ``load_fingerprints()``'s body substrings:

* ``old``: the aligned-word filter (``bench/aligned_words.py``), the yardstick;
* ``pyahocorasick`` (C): its wheels only search ``str``, so patterns and
  text are decoded as Latin-1 (one code point per byte: the same matches);
* ``ahocorasick-rs`` (Rust), contiguous NFA: what ``probe.substrings`` uses;
* ``ahocorasick-rs`` DFA: the same library's fastest automaton, for its size.

Pages of 512 KiB: ``genuine`` (no match), ``blockpage`` (the Roskomnadzor
stub at the top of the same page) and ``dense`` (every pattern, then the
page). Time is the best of 30 runs of ``found`` on the page's first
``BODY_WINDOW`` bytes (64K: what the probe searches) and on all of it
(512K). RSS is what building the index adds in a fresh process (for the
pure-Python filter that includes the build's garbage that the allocator
keeps), and what importing the library adds. Every contestant's answer is
checked against ``pattern in text`` first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.aligned_words import AlignedWordIndex
from probe.analysis.fingerprints import BODY_WINDOW
from probe.config.fingerprints import load_fingerprints
from probe.substrings import SubstringIndex
from probe.testbed.pages import ordinary_page

ROOT = Path(__file__).resolve().parents[1]
PAGE = 512 * 1024
STUB = "<p>Доступ к сайту ограничен в соответствии с Федеральными законами</p>".encode()
CONTESTANTS = ("old", "pyahocorasick", "ahocorasick-rs", "ahocorasick-rs DFA")

Found = Callable[[bytes], list[int]]


def genuine(size: int = PAGE) -> bytes:
    return ordinary_page(size)


def pages(patterns: tuple[bytes, ...]) -> dict[str, bytes]:
    clean = genuine()
    return {
        "genuine": clean,
        "blockpage": (STUB + clean)[:PAGE],
        "dense": (b" ".join(patterns) + b" " + clean)[:PAGE],
    }


def build(name: str, patterns: tuple[bytes, ...]) -> Found:
    if name == "old":
        return AlignedWordIndex.build(patterns).found
    if name == "pyahocorasick":
        import ahocorasick  # not a dependency: only the bench's rival

        automaton = ahocorasick.Automaton()
        for index, pattern in enumerate(patterns):
            automaton.add_word(pattern.decode("latin-1"), index)
        automaton.make_automaton()
        return lambda text: sorted({index for _, index in automaton.iter(text.decode("latin-1"))})
    if name == "ahocorasick-rs":
        return SubstringIndex.build(patterns).found
    from ahocorasick_rs import BytesAhoCorasick, Implementation

    dfa = BytesAhoCorasick(list(patterns), implementation=Implementation.DFA)
    return lambda text: sorted({i for i, _, _ in dfa.find_matches_as_indexes(text, overlapping=True)})


def best_ms(work: Callable[[], object], repeat: int = 30) -> float:
    work()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def timings(patterns: tuple[bytes, ...]) -> dict[tuple[str, str, str], float]:
    """(contestant, page, "window" | "page") -> best ms."""
    out = {}
    texts = pages(patterns)
    for name in CONTESTANTS:
        try:
            found = build(name, patterns)
        except ImportError:
            continue
        for page_name, text in texts.items():
            for span, part in (("window", text[:BODY_WINDOW]), ("page", text)):
                naive = [i for i, p in enumerate(patterns) if p in part]
                assert found(part) == naive, f"{name} disagrees with a naive search on the {page_name}"
                out[name, page_name, span] = best_ms(lambda f=found, t=part: f(t))
    return out


# Run as ``python -c`` so that RSS is read before bench.patterns is imported:
# its imports load the probe, and with it ahocorasick_rs.
_CHILD = """
import importlib, json, sys
from pathlib import Path
def rss():
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmRSS:")).split()[1])
name, library, patterns_file = sys.argv[1:]
patterns = tuple(p.encode("latin-1") for p in json.loads(Path(patterns_file).read_text()))
before = rss()
if library:
    importlib.import_module(library)
imported = rss()
from bench.patterns import build
ready = rss()
index = build(name, patterns)
print(json.dumps({"import_kib": imported - before, "index_kib": rss() - ready}))
"""
LIBRARY = {"old": "", "pyahocorasick": "ahocorasick", "ahocorasick-rs": "ahocorasick_rs"}


def sizes(patterns: tuple[bytes, ...]) -> dict[str, dict[str, int]]:
    out = {}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump([p.decode("latin-1") for p in patterns], f)
        f.flush()
        for name in CONTESTANTS:
            run = subprocess.run(
                [sys.executable, "-c", _CHILD, name, LIBRARY.get(name, "ahocorasick_rs"), f.name],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if run.returncode == 0:
                out[name] = json.loads(run.stdout)
            elif name != "pyahocorasick" or "ModuleNotFoundError" not in run.stderr:
                raise RuntimeError(f"index RSS of {name}: {run.stderr.strip().splitlines()[-1:]}")
    return out


def rows() -> list[tuple[str, str, str]]:
    """(figure, measured, note) rows for ``python -m bench``; the note is the ratio to ``old``."""
    patterns = load_fingerprints().substrings.patterns
    times, rss = timings(patterns), sizes(patterns)
    out = []
    for page_name in ("genuine", "blockpage", "dense"):
        for span, label in (("window", f"{BODY_WINDOW // 1024}K"), ("page", f"{PAGE // 1024}K")):
            old = times["old", page_name, span]
            for name in CONTESTANTS:
                if (name, page_name, span) in times:
                    ms = times[name, page_name, span]
                    out.append(
                        (f"substrings {page_name} {label}: {name}", f"{ms:.2f} ms", f"{ms / old:.2f}× old")
                    )
    for name, kib in rss.items():
        ratio = kib["index_kib"] / rss["old"]["index_kib"] if "old" in rss else float("nan")
        out.append(
            (
                f"substrings index RSS, {len(patterns)} patterns: {name}",
                f"{kib['index_kib'] / 1024:.1f} MB",
                f"{ratio:.2f}× old; import +{kib['import_kib'] / 1024:.1f} MB",
            )
        )
    return out


def main() -> None:
    for figure, measured, note in rows():
        print(f"{figure:<60}{measured:>14}   {note}")


if __name__ == "__main__":
    main()
