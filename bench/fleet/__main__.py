"""The watchdogs' store at fleet scale: ``python -m bench.fleet``.

Starts victoria-metrics on loopback in a temporary directory and pushes the
remote writes of N simulated vantages into it (default 1,000; a few of them
censored), each with the built-in catalog's series labelled as the
volunteer's agent labels them (bench/fleet/catalog.py). Then it reports the
ingestion rate, the series count, the store's memory, and the evaluation time
of every shipped rule expression and dashboard query, beside the same
queries when the store holds one vantage only.

Time is compressed, not faked: the rounds carry real timestamps spaced one
scrape interval apart (default 2 min, the agent's) ending now, sent as fast
as the store takes them: R rounds backfill R intervals of history in the time
the store needs to ingest them. The recording rules are then evaluated over
that history by vmalert's own replay mode (-replay.timeFrom/-replay.timeTo),
so the dashboards and alerts that read recorded series find them.

    python -m bench.fleet                      # 1,000 vantages, 3 rounds
    python -m bench.fleet --vantages 100 --rounds 30 --json /tmp/fleet.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.fleet import catalog
from bench.fleet.store import Store, Writer, running
from tests.deploy.deploy_files import TEMPLATE_VALUES, panel_queries, rule_files, rules, substitute

SENDERS = 3  # threads: while one builds a request (GIL), the others wait on the store


def _identity(i: int) -> tuple[str, str, str]:
    # ISO 3166 user-assigned codes XA..XZ and 32-bit private-use ASNs: nobody's real network.
    return f"fleet-{i:04d}", "X" + chr(ord("A") + i % 26), str(4_200_000_000 + i)


def _send(
    store: Store, templates: dict[int, tuple[bytes, int]], vantages: range, stamps: list[int]
) -> tuple[float, int]:
    """Every round for these vantages, oldest first; (seconds, samples)."""
    local = threading.local()
    writers: list[Writer] = []

    def one(i: int, stamp: int, cycles: float) -> int:
        if not hasattr(local, "writer"):
            local.writer = Writer(store.port)
            writers.append(local.writer)
        body, series = templates[i]
        local.writer.send(catalog.for_round(body, stamp, cycles))
        return series

    start = time.perf_counter()
    samples = 0
    with concurrent.futures.ThreadPoolExecutor(SENDERS) as pool:
        for r, stamp in enumerate(stamps):
            t0 = time.perf_counter()
            futures = [pool.submit(one, i, stamp, 100.0 + r) for i in vantages]
            n = sum(f.result() for f in futures)
            samples += n
            if len(vantages) > 1:  # the first round creates the series, the others only append
                print(
                    f"  round {r + 1}/{len(stamps)}: {n / (time.perf_counter() - t0):,.0f} samples/s",
                    flush=True,
                )
    for w in writers:
        w.close()
    return time.perf_counter() - start, samples


def _wait_for_series(store: Store, want: int, timeout: float = 120) -> float:
    store.flush()
    deadline = time.monotonic() + timeout
    while True:
        (count,) = store.api("series/count")
        if count >= want or time.monotonic() > deadline:
            return float(count)
        time.sleep(0.5)
        store.flush()


def _replay(vmalert: str, store: Store, workdir: Path, start: float, end: float) -> float:
    """vmalert evaluates the shipped recording rules over [start, end] and writes the results."""
    recording = [
        p for p in rule_files() if "record" in yaml.safe_load(p.read_text())["groups"][0]["rules"][0]
    ]
    url = f"http://127.0.0.1:{store.port}"
    t0 = time.perf_counter()
    result = subprocess.run(
        [
            vmalert,
            *(f"-rule={p}" for p in recording),
            f"-datasource.url={url}",
            f"-remoteWrite.url={url}",
            f"-replay.timeFrom={datetime.fromtimestamp(start, UTC).isoformat()}",
            f"-replay.timeTo={datetime.fromtimestamp(end, UTC).isoformat()}",
            "-replay.rulesDelay=0s",
            # A recorded rule at fleet scale is ~10^6 samples per request: queue them all.
            "-remoteWrite.maxQueueSize=50000000",
            "-remoteWrite.maxBatchSize=20000",
            "-remoteWrite.concurrency=2",
            "-loggerLevel=ERROR",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=workdir,
    )
    if result.returncode != 0:
        raise RuntimeError(f"vmalert replay failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")
    store.flush()
    return time.perf_counter() - t0


def _queries(service: str) -> list[tuple[str, str, bool]]:
    """(id, expression, also as a range) for every rule and every dashboard query."""
    out = [(f"{r.kind} {r.name}", r.expr, False) for r in rules()]
    for q in panel_queries():
        out.append(
            (f"panel {q.id}", substitute(q.expr, {**TEMPLATE_VALUES, "service": service}), not q.instant)
        )
    return out


def _time_all(store: Store, queries: list[tuple[str, str, bool]], start: float, end: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, expr, ranged in queries:
        ms, n = store.time_query(expr, end)
        out[name] = {"ms": ms, "series": n}
        if ranged:
            ms, n = store.time_range(expr, start, end, "2m")
            out[f"{name} (range)"] = {"ms": ms, "series": n}
    return out


def _print_table(base: dict[str, Any], fleet: dict[str, Any], top: int) -> None:
    rows = sorted(fleet, key=lambda k: -fleet[k]["ms"])
    print(f"\n{'query':<78}{'1 vantage':>11}{'fleet':>11}{'ratio':>8}{'series':>9}")
    for name in rows:
        b, f = base[name]["ms"], fleet[name]["ms"]
        print(f"{name[:77]:<78}{b:>9.1f}ms{f:>9.1f}ms{f / max(b, 0.01):>7.0f}x{fleet[name]['series']:>9}")
    print(f"\nslowest {top}: " + ", ".join(f"{n} {fleet[n]['ms']:.0f} ms" for n in rows[:top]))
    total_b = sum(v["ms"] for v in base.values())
    total_f = sum(v["ms"] for v in fleet.values())
    print(f"all {len(rows)} queries once: {total_b:.0f} ms at 1 vantage, {total_f:.0f} ms at the fleet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--vantages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="scrape intervals of history to backfill")
    parser.add_argument("--interval", type=float, default=120.0, help="seconds between a vantage's scrapes")
    parser.add_argument("--censored", type=int, default=10, help="vantages with services blocked")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    victoria, vmalert = shutil.which("victoria-metrics"), shutil.which("vmalert")
    if not victoria or not vmalert:
        print("needs victoria-metrics and vmalert (Debian package victoria-metrics)", file=sys.stderr)
        return 2

    blocked = frozenset(catalog.services()[5:8])  # telegram, whatsapp, signal in the built-in catalog
    normal, censored = catalog.template(), catalog.template(blocked)
    per_vantage = normal.series
    # Censored vantages spread through the fleet; vantage 0 is one, so the baseline sees a block.
    step = max(1, args.vantages // max(1, args.censored))
    is_censored = {i for i in range(0, args.vantages, step)} if args.censored else set()
    templates = {
        i: ((censored if i in is_censored else normal).for_vantage(*_identity(i)), per_vantage)
        for i in range(args.vantages)
    }
    end = float(int(time.time()) // 60 * 60)
    stamps = [int((end - (args.rounds - 1 - r) * args.interval) * 1000) for r in range(args.rounds)]
    start = stamps[0] / 1000
    queries = _queries(sorted(blocked)[0])
    figures: dict[str, Any] = {"vantages": args.vantages, "rounds": args.rounds, "interval_s": args.interval}
    figures |= {
        "series_per_vantage": per_vantage,
        "censored": sorted(is_censored),
        "blocked": sorted(blocked),
    }
    print(
        f"{args.vantages} vantages x {per_vantage} series, {args.rounds} rounds {args.interval:.0f} s apart"
    )

    with tempfile.TemporaryDirectory(prefix="msgprobe-fleet-") as tmp, running(victoria, Path(tmp)) as store:
        seconds, samples = _send(store, templates, range(1), stamps)
        raw = _wait_for_series(store, per_vantage)
        _replay(vmalert, store, Path(tmp), start, end)
        (with_base_recorded,) = store.api("series/count")
        recorded_base = with_base_recorded - raw  # the baseline vantage's recorded series
        base = _time_all(store, queries, start, end)
        print(f"baseline (1 vantage): {samples} samples in {seconds:.1f} s; queries timed")

        seconds, samples = _send(store, templates, range(1, args.vantages), stamps)
        rate = samples / seconds
        count = _wait_for_series(store, per_vantage * args.vantages + recorded_base) - recorded_base
        rss, peak = store.rss_mib()
        print(f"ingested {samples:,} samples in {seconds:.1f} s: {rate:,.0f} samples/s accepted")
        print(f"series from the agents: {count:,.0f} ({count / args.vantages:,.0f} per vantage)")
        print(f"store RSS {rss:,.0f} MiB, peak {peak:,.0f} MiB")
        replay = _replay(vmalert, store, Path(tmp), start, end)
        print(f"vmalert replay of the recording rules over the history: {replay:.1f} s")
        (with_recorded,) = store.api("series/count")
        per = with_recorded / args.vantages
        print(f"series with the recorded ones: {with_recorded:,} ({per:,.0f} per vantage)")
        fleet = _time_all(store, queries, start, end)
        rss_after, peak_after = store.rss_mib()
        print(f"store RSS after the queries {rss_after:,.0f} MiB, peak {peak_after:,.0f} MiB")
        figures |= {
            "samples": samples,
            "ingest_seconds": seconds,
            "samples_per_second": rate,
            "rows_inserted": store.metric("vm_rows_inserted_total"),
            "series": count,
            "rss_mib": rss,
            "peak_rss_mib": max(peak, peak_after),
            "rss_after_queries_mib": rss_after,
            "replay_seconds": replay,
            "series_with_recorded": with_recorded,
            "data_bytes": sum(p.stat().st_size for p in (Path(tmp) / "data").rglob("*") if p.is_file()),
            "queries": {k: {"baseline": base[k], "fleet": fleet[k]} for k in fleet},
        }
    _print_table(base, fleet, top=5)
    print(f"on disk: {figures['data_bytes'] / 2**20:,.0f} MiB for {samples:,} samples")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
