"""Flattening benchmark: nb_ops.to_frame against pandas.json_normalize plus the conversions a user adds.

The baseline is what a data scientist writes by hand::

    df = pd.json_normalize(records)
    for c in ("created_at", "in_progress_at", "finished_at", "params.estimated_finish"):
        df[c] = pd.to_datetime(df[c], unit="s", utc=True)
    for c in ("params.start_datetime", "params.end_datetime"):
        df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")

(it still leaves ``src``/``dst`` as lists in cells, integers with NaN as floats,
and no durations, so ``to_frame`` does more work for the same call).

Records are the simulator's fleet as the API would answer (plain dicts).
Each measurement runs in a fresh process, so one method's garbage never
counts against the other: time is the best of a few runs, and peak memory is
the growth of the process's resident set (VmHWM, reset before the call via
/proc/self/clear_refs) over its size just before the call, so memory that
pandas and Arrow allocate outside Python counts too.

Run: ``python benchmarks/bench_frame.py [--sizes 10000 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time

METHODS = ("to_frame", "json_normalize")


def _records(size: int) -> list[dict]:
    from nb_ops.simulator.fleet import Fleet

    epoch = 1_764_000_000
    fleet = Fleet(seed=0, size=size, epoch=epoch)
    # A round trip through JSON gives the records exactly as a client decodes them.
    return json.loads(json.dumps([fleet.snapshot(op_id, epoch + 600) for op_id in fleet.ids]))


def _json_normalize(records: list[dict]):
    import pandas as pd

    df = pd.json_normalize(records)
    for c in ("created_at", "in_progress_at", "finished_at", "params.estimated_finish"):
        df[c] = pd.to_datetime(df[c], unit="s", utc=True)
    for c in ("params.start_datetime", "params.end_datetime"):
        df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
    return df


def _to_frame(records: list[dict]):
    import nb_ops

    return nb_ops.to_frame(records)


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _measure(method: str, size: int, repeat: int) -> dict:
    """In this (fresh) process: best time of `repeat` runs, then peak memory of one more."""
    import pandas  # noqa: F401 - imported before measuring, as in a notebook
    import nb_ops  # noqa: F401

    fn = {"to_frame": _to_frame, "json_normalize": _json_normalize}[method]
    records = _records(size)
    fn(records[:100])  # warm imports and caches
    # Memory first, before earlier runs leave freed memory in the process to reuse.
    gc.collect()
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # reset the peak resident set (VmHWM) to the current size
    frame = fn(records)
    peak = _status_kib("VmHWM") - before
    shape = list(frame.shape)
    del frame
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        frame = fn(records)
        times.append(time.perf_counter() - started)
        del frame
    return {"seconds": min(times), "peak_mib": peak / 1024, "shape": shape}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child[0], int(args.child[1]), args.repeat)))
        return

    print("Flattening: nb_ops.to_frame vs pandas.json_normalize + to_datetime conversions")
    print(f"{'records':>8}  {'method':<15} {'seconds':>8} {'peak MiB':>9} {'columns':>8}")
    for size in args.sizes:
        results = {}
        for method in METHODS:
            out = subprocess.run(
                [sys.executable, __file__, "--child", method, str(size), "--repeat", str(args.repeat)],
                check=True, capture_output=True, text=True,
            )
            results[method] = json.loads(out.stdout)
            r = results[method]
            print(f"{size:>8,}  {method:<15} {r['seconds']:>8.2f} {r['peak_mib']:>9.1f} {r['shape'][1]:>8}")
        ours, theirs = results["to_frame"], results["json_normalize"]
        time_ratio, memory_ratio = ours["seconds"] / theirs["seconds"], ours["peak_mib"] / theirs["peak_mib"]
        print(
            f"{'':>8}  to_frame / json_normalize: time {time_ratio:.2f}x, "
            f"peak memory {memory_ratio:.2f}x   (below 1 is better)"
        )
        if size == 100_000:
            verdict = {True: "met", False: "NOT met"}
            print(f"{'':>8}  target (both at most 1.00 at 100,000): time {verdict[time_ratio <= 1]}, "
                  f"memory {verdict[memory_ratio <= 1]}")


if __name__ == "__main__":
    main()
