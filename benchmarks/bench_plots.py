"""Timeline benchmark: nb_ops.plot_timeline against the per-bar loop a user writes by hand.

The baseline draws the same picture the usual way, one ``ax.barh`` per span::

    for i, row in enumerate(df.itertuples()):
        ax.barh(i, queue_width, left=created, color=light)
        ax.barh(i, run_width, left=started, color=solid)

Both draw the simulator's fleet (statuses frozen) on a new figure and render it to PNG
in memory; time is the best of a few runs, side by side in one process.

Run: ``python benchmarks/bench_plots.py [--sizes 1000 3000] [--repeat 3]`` (10,000 by hand takes minutes)
"""

from __future__ import annotations

import argparse
import io
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import nb_ops  # noqa: E402
from nb_ops.spec import STATUS_COLORS  # noqa: E402


def _frame(size: int):
    from nb_ops.simulator.fleet import Fleet

    epoch = 1_764_000_000
    fleet = Fleet(seed=0, size=size, epoch=epoch)
    now = epoch + 600
    return nb_ops.to_frame([fleet.snapshot(op_id, now) for op_id in fleet.ids]), now


def _nb_ops(frame, now) -> None:
    ax = nb_ops.plot_timeline(frame, now=now)
    ax.figure.savefig(io.BytesIO(), format="png")
    plt.close(ax.figure)


def _by_hand(frame, now) -> None:
    fig, ax = plt.subplots(figsize=(10, 12), layout="constrained")
    now_day = mdates.date2num(np.datetime64(int(now), "s"))
    for i, row in enumerate(frame.itertuples()):
        colour = STATUS_COLORS.get(str(row.status), "#8c564b")
        created = mdates.date2num(row.created_at.tz_localize(None)) if row.created_at is not None else None
        started = mdates.date2num(row.in_progress_at.tz_localize(None)) if not _nat(row.in_progress_at) else None
        finished = mdates.date2num(row.finished_at.tz_localize(None)) if not _nat(row.finished_at) else now_day
        if created is not None:
            ax.barh(i, (started or finished) - created, left=created, color=colour, alpha=0.4)
        if started is not None:
            ax.barh(i, finished - started, left=started, color=colour)
    ax.set_yticks(range(len(frame)), frame["id"].str[:8])
    ax.xaxis_date()
    ax.invert_yaxis()
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)


def _nat(value) -> bool:
    return value is None or value != value


def _best(fn, *args, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("timeline: nb_ops.plot_timeline vs one barh per span (draw + render to PNG, best of runs)")
    for size in args.sizes:
        frame, now = _frame(size)
        ours = _best(_nb_ops, frame, now, repeat=args.repeat)
        theirs = _best(_by_hand, frame, now, repeat=args.repeat)
        print(f"  {size:>6,} operations: nb_ops {ours:6.2f} s   by hand {theirs:6.2f} s   {theirs / ours:5.1f}x faster")


if __name__ == "__main__":
    main()
