"""Fetching benchmark: Client.get_operations against the loop a user writes by hand.

Both fetch the same ids from the local simulator with injected latency (the
time a real API takes to answer), side by side in one run:

- the hand-written baseline: ``for id in ids: requests.get(url, headers=...).json()``;
- ``nb_ops``: ``Client(max_workers=16).get_operations(ids)``.

The ideal time is ``ids x latency / workers``: every worker busy all the time
and no cost but the server's. Simulated time stands still (``speed=0``), so
nothing finishes during the run and no answer comes from a cache.

Run: ``python benchmarks/bench_fetch.py [--ids 1000] [--latency 0.05] [--workers 16]``
"""

from __future__ import annotations

import argparse
import time

import requests

from nb_ops import simulator


def sequential(base_url: str, api_key: str, ids: list[str]) -> int:
    """What people write first: one requests.get after another."""
    fetched = 0
    for op_id in ids:
        response = requests.get(
            f"{base_url}/v1/operations/{op_id}", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )
        response.raise_for_status()
        fetched += bool(response.json())
    return fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()

    with simulator.start(size=args.ids, latency=args.latency, speed=0) as sim:
        ids = sim.operation_ids
        ideal = len(ids) * args.latency / args.workers

        started = time.perf_counter()
        with sim.client(max_workers=args.workers) as client:
            batch = client.get_operations(ids, progress=False)
        ours = time.perf_counter() - started
        assert len(batch) == len(ids) and not batch.errors

        started = time.perf_counter()
        assert sequential(sim.base_url, sim.api_key, ids) == len(ids)
        loop = time.perf_counter() - started

    print(f"Fetching {len(ids):,} operations, {args.latency * 1000:.0f} ms latency each")
    print(f"  {'method':<38} {'seconds':>8} {'vs loop':>8} {'vs ideal':>9}")
    print(f"  {'sequential requests.get loop':<38} {loop:>8.2f} {1:>7.1f}x {loop / ideal:>8.2f}x")
    label = f"nb_ops get_operations ({args.workers} workers)"
    print(f"  {label:<38} {ours:>8.2f} {loop / ours:>7.1f}x {ours / ideal:>8.2f}x")
    print(f"  {'ideal (ids x latency / workers)':<38} {ideal:>8.2f}")
    verdict = {True: "met", False: "NOT met"}
    print(f"Targets: at least 10x faster than the loop: {verdict[loop / ours >= 10]}; "
          f"within 1.5x of the ideal: {verdict[ours / ideal <= 1.5]}")


if __name__ == "__main__":
    main()
