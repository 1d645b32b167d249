"""The ``nb-ops`` command: run the simulator, fetch operations to files, and the demo.

This is the only module that prints. Bad arguments and API errors end with a
one-line message on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .client import Client
from .errors import AuthenticationError, NbOpsError, NbOpsWarning
from .frame import destinations_frame, sources_frame, to_frame
from .operation import Operation, format_duration
from .spec import API_KEY_ENV, BASE_URL_ENV

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_FORMATS = ("csv", "parquet", "json")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nb-ops`` command line and return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except NbOpsError as exc:
        _fail(str(exc))
        return EXIT_ERROR
    except OSError as exc:
        _fail(f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc))
        return EXIT_ERROR
    except UnicodeDecodeError:
        _fail("the ids file is not UTF-8 text")
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nb-ops",
        description="Fetch and analyse Token Factory operations, or run the local API simulator.",
    )
    parser.add_argument("--version", action="version", version=f"nb-ops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the local API simulator in the foreground")
    _simulator_options(serve)
    serve.add_argument("--port", type=_port, default=0, help="port to listen on (default: a free one)")
    serve.add_argument("--latency", type=_seconds, default=0.0, help="seconds added to every answer (default: 0)")
    serve.add_argument(
        "--faults",
        type=_faults,
        default=None,
        metavar="JSON",
        help='inject failures, e.g. \'{"error_rate": 0.1, "rate_limit_rate": 0.05, "drop_rate": 0.05}\' '
        "(keys: error_rate, rate_limit_rate, retry_after, retry_after_format, drop_rate, stall_rate, "
        "stall_seconds, corrupt_rate, only_ids)",
    )
    serve.set_defaults(func=_serve)

    fetch = sub.add_parser(
        "fetch",
        help="fetch operations and write their flattened frame",
        description="Fetch operations by id (uses NEBIUS_API_KEY and NEBIUS_BASE_URL) and write the "
        "flattened frame. With no output file, print a short table.",
    )
    fetch.add_argument("ids", nargs="*", metavar="ID", help="operation ids")
    fetch.add_argument("--ids-file", type=Path, help="read more ids from this file, one per line ('-' for stdin)")
    out = fetch.add_mutually_exclusive_group()
    for fmt in _FORMATS:
        out.add_argument(f"--{fmt}", type=Path, metavar="FILE", help=f"write the frame as {fmt.upper()}")
    fetch.set_defaults(func=_fetch)

    demo = sub.add_parser("demo", help="start the simulator, fetch its fleet, print a summary and write files")
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="folder for the files (default: %(default)s)")
    _simulator_options(demo)
    demo.set_defaults(func=_demo)
    return parser


def _simulator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="fleet seed (default: %(default)s)")
    parser.add_argument("--size", type=_positive_int, default=60, help="number of operations (default: %(default)s)")
    parser.add_argument(
        "--speed", type=_positive_float, default=60.0, help="simulated seconds per real second (default: %(default)s)"
    )


def _number(kind: type, low: float, high: float, what: str) -> Callable[[str], Any]:
    """An argparse type: ``kind`` (int or float) from ``low`` to ``high``, with a one-line refusal."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not low <= value <= high:  # NaN fails too
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}, got {text}")
        return value

    return parse


_positive_int = _number(int, 1, 10_000_000, "an integer")
_positive_float = _number(float, 1e-9, 1e9, "a number")
_seconds = _number(float, 0, 3600, "a number of seconds")
_port = _number(int, 0, 65535, "a port number")


def _faults(text: str) -> dict:
    from .simulator import Faults

    try:
        faults = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--faults takes a JSON object, e.g. '{\"error_rate\": 0.1}'") from None
    if not isinstance(faults, dict):
        raise argparse.ArgumentTypeError("--faults takes a JSON object, e.g. '{\"error_rate\": 0.1}'")
    try:
        Faults.from_mapping(faults)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return faults


def _fail(message: str) -> None:
    print(f"nb-ops: error: {message}", file=sys.stderr)


# serve -----------------------------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    from . import simulator

    with simulator.start(
        seed=args.seed, speed=args.speed, port=args.port, size=args.size, latency=args.latency, faults=args.faults
    ) as sim:
        print(f"nb_ops simulator {sim.base_url}  ({args.size} operations, seed {args.seed}, {args.speed:g}x time)")
        if args.latency or args.faults:
            print(f"  with {args.latency:g} s latency and faults {json.dumps(args.faults or {})}")
        print("Use it from a shell or a notebook with:")
        print(f"  export NEBIUS_BASE_URL={sim.base_url}")
        print(f"  export NEBIUS_API_KEY={sim.api_key}")
        ids = sim.operation_ids
        shown = ids if len(ids) <= 100 else ids[:20]
        print(f"Operation ids ({len(ids)}):")
        for op_id in shown:
            print(f"  {op_id}")
        if len(shown) < len(ids):
            print(f"  … and {len(ids) - len(shown)} more")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")
    return EXIT_OK


# fetch -----------------------------------------------------------------------------------------
def _fetch(args: argparse.Namespace) -> int:
    ids = list(args.ids)
    if args.ids_file is not None:
        ids.extend(_read_ids(args.ids_file))
    if not ids:
        _fail("no operation ids given: pass them as arguments or with --ids-file")
        return EXIT_USAGE
    ids = list(dict.fromkeys(ids))
    target = next(((fmt, getattr(args, fmt)) for fmt in _FORMATS if getattr(args, fmt) is not None), None)

    with Client() as client:
        if not client.has_api_key:  # the library's own message would suggest a Python argument
            _fail(f"no API key: set {API_KEY_ENV} (and {BASE_URL_ENV} for another endpoint than the default)")
            return EXIT_ERROR
        operations, failures = _fetch_all(client, ids)
    for op_id, exc in failures:
        print(f"nb-ops: {op_id!r}: {exc}", file=sys.stderr)
    if operations:
        frame = to_frame(operations)
        if target is None:
            print(_short_table(frame))
        else:
            fmt, path = target
            write_frame(frame, path, fmt)
            print(f"wrote {_plural(len(frame), 'operation')} to {path}")
    if failures:
        _fail(f"{len(failures)} of {len(ids)} operations could not be fetched")
        return EXIT_ERROR
    return EXIT_OK


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _read_ids(path: Path) -> list[str]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8-sig")  # a BOM is not an id
    text = text.removeprefix("\ufeff")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _fetch_all(client: Client, ids: Iterable[str]) -> tuple[list[Operation], list[tuple[str, Exception]]]:
    """Fetch the ids concurrently; errors about single ids are collected, a refused key ends the run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NbOpsWarning)  # the failures are printed one per line instead
        batch = client.get_operations(ids, progress=sys.stderr.isatty())
    failures = list(batch.errors.items())
    if failures and all(isinstance(exc, AuthenticationError) for _, exc in failures):
        raise failures[0][1]  # the same for every id: say it once
    return list(batch), failures


def _short_table(frame: pd.DataFrame) -> str:
    view = frame[["id", "type", "status", "created_at", "run_duration", "progress"]].copy()
    view["created_at"] = view["created_at"].dt.strftime("%Y-%m-%d %H:%M")
    view["run_duration"] = view["run_duration"].map(lambda td: "" if pd.isna(td) else format_duration(td))
    view["progress"] = view["progress"].map(lambda p: "" if pd.isna(p) else f"{p:.0%}")
    view = view.rename(columns={"created_at": "created (UTC)", "run_duration": "ran for"})
    return view.to_string(index=False)


def write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write a frame as CSV, Parquet or JSON (records), creating the parent folder.

    Cells holding lists or objects are written as JSON text in CSV, and in
    Parquet where Arrow cannot store them as they are.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        _jsonify_objects(frame, all_objects=True).to_csv(path, index=False)
    elif fmt == "parquet":
        _jsonify_objects(frame, all_objects=False).to_parquet(path, index=False)
    elif fmt == "json":
        frame.to_json(path, orient="records", date_format="iso", date_unit="s", indent=1)
    else:  # pragma: no cover - argparse only offers the three
        raise ValueError(fmt)


def _jsonify_objects(frame: pd.DataFrame, *, all_objects: bool) -> pd.DataFrame:
    import pyarrow as pa

    out = frame
    for name in frame.columns[frame.dtypes == object]:
        column = frame[name]
        if not all_objects:
            try:
                pa.array(column, from_pandas=True)
                continue
            except (pa.ArrowException, TypeError, ValueError):
                pass
        if out is frame:
            out = frame.copy()
        out[name] = column.map(lambda v: None if v is None else json.dumps(v, default=str))
    return out


# demo ------------------------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from . import simulator

    print(f"Starting the local simulator ({args.size} operations, seed {args.seed}, {args.speed:g}x time)…")
    with simulator.start(seed=args.seed, speed=args.speed, size=args.size) as sim:
        started = time.perf_counter()
        with sim.client() as client:
            operations, failures = _fetch_all(client, sim.operation_ids)
        took = time.perf_counter() - started
        print(f"Fetched {len(operations)} operations from {sim.base_url} in {took:.2f} s.")
        for op_id, exc in failures:
            print(f"  could not fetch {op_id!r}: {exc}", file=sys.stderr)
        frame = to_frame(operations)
        print()
        print(summary(frame))
        operations, history = _demo_watch(sim, operations, args.speed)
        now = sim.now()
    frame = to_frame(operations)  # the files hold the fleet as the watch left it
    sources, destinations = sources_frame(operations), destinations_frame(operations)

    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in (("operations", frame), ("sources", sources), ("destinations", destinations)):
        for fmt in ("parquet", "csv"):
            path = args.out / f"{name}.{fmt}"
            write_frame(table, path, fmt)
            written.append(path)
    written += write_charts(frame, history, args.out, now=now, title=f"simulated fleet, seed {args.seed}")
    print()
    print(f"Wrote {len(written)} files to {args.out}/:")
    for path in written:
        print(f"  {path.name:<20} {path.stat().st_size:>9,} bytes")
    return EXIT_ERROR if failures else EXIT_OK


#: Simulated seconds per real second while the demo watches: the fleet's queued and running
#: operations all finish within 40 simulated minutes, so about 2 s here.
DEMO_WATCH_SPEED = 1200.0


def _demo_watch(sim: Any, operations: list[Operation], speed: float) -> tuple[list[Operation], pd.DataFrame | None]:
    """Watch the queued and running operations to the end (text lines), time sped up.

    Returns the fleet's latest state and the monitor's history (None when nothing was active).
    """
    from .monitor import watch

    active = [op.id for op in operations if op.status in ("queued", "running") and op.id]
    if not active:
        return operations, None
    faster = max(DEMO_WATCH_SPEED, speed)
    print()
    print(f"Watching the {_plural(len(active), 'queued or running operation')} to the end ({faster:g}x time)…", flush=True)
    sim.configure(speed=faster)
    try:
        with sim.client() as client:
            monitor = watch(
                active, client=client, interval=0.2, timeout=120, display="text", file=sys.stdout, clock=sim.now
            )
            monitor.wait()
    finally:
        sim.configure(speed=speed)
    latest = monitor.operations
    return [latest.get(op.id or "", op) for op in operations], monitor.history


def write_charts(frame: pd.DataFrame, history: pd.DataFrame | None, out: Path, *, now: Any, title: str) -> list[Path]:
    """Draw the timeline, duration and training charts of a fleet into ``out`` as PNGs; return their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, whatever the user's default backend
    import matplotlib.pyplot as plt

    from .plots import plot_durations, plot_timeline, plot_training

    charts = (
        # The last two hours hold what the demo watched; a longer window squeezes it into the right edge.
        ("timeline.png", lambda: plot_timeline(frame, now=now, since="2h"), f"Operations of the last 2 hours ({title})"),
        ("durations.png", lambda: plot_durations(frame), "Time waiting in the queue and running, by type"),
        (
            "training.png",
            lambda: plot_training(history if history is not None else frame),
            "Fine-tuning steps while watched" if history is not None else "Fine-tuning progress",
        ),
    )
    paths = []
    for name, draw, heading in charts:
        ax = draw()
        ax.set_title(heading, loc="left")
        path = out / name
        ax.figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
        paths.append(path)
    return paths


def summary(frame: pd.DataFrame) -> str:
    """A readable text summary of a frame of operations: counts, durations, fine-tuning progress."""
    if frame.empty:
        return "No operations."
    counts = pd.crosstab(frame["type"], frame["status"], margins=True, margins_name="total", dropna=False)
    counts = counts.loc[counts["total"] > 0, counts.loc["total"] > 0]
    counts.index.name = counts.columns.name = None
    lines = ["Operations by type (rows) and status (columns)", _indent(counts.to_string()), ""]

    lines.append("Time in queue and running, by type (median and 90th percentile)")
    rows = []
    for op_type, group in frame.groupby("type", observed=True):
        queued, ran = group["queue_duration"].dropna(), group["run_duration"].dropna()
        rows.append(
            {
                "type": op_type,
                "ops": len(group),
                "queued, median": _human(queued.median()),
                "queued, p90": _human(queued.quantile(0.9)),
                "ran, median": _human(ran.median()),
                "ran, p90": _human(ran.quantile(0.9)),
                "ran, max": _human(ran.max()),
            }
        )
    table = pd.DataFrame(rows).set_index("type")
    table.index.name = None
    lines += [_indent(table.to_string()), ""]

    ft = frame[frame["type"] == "finetuning"]
    active = ft[ft["status"].isin(["queued", "running"])]
    lines.append(f"Fine-tuning: {len(ft)} jobs, {len(active)} queued or running")
    if len(active):
        trained, total = _column(active, "params.trained_steps"), _column(active, "params.total_steps")
        view = pd.DataFrame(
            {
                "id": active["id"],
                "status": active["status"].astype(str),
                "model": _column(active, "params.model_name").fillna(""),
                "steps": [_steps(t, n) for t, n in zip(trained, total)],
                "progress": active["progress"].map(lambda p: "" if pd.isna(p) else f"{p:.0%}"),
                "estimated finish": _column(active, "params.estimated_finish").map(
                    lambda t: "" if pd.isna(t) else t.strftime("%H:%M UTC")
                ),
            }
        )
        lines.append(_indent(view.to_string(index=False)))
    failed = ft.loc[ft["status"] == "failed", "progress"].dropna()
    if len(failed):
        lines.append(f"  failed jobs stopped at: {', '.join(f'{p:.0%}' for p in failed.sort_values())}")
    return "\n".join(lines)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column, or an all-missing one if no operation had that field."""
    return frame[name] if name in frame.columns else pd.Series(pd.NA, index=frame.index, dtype=object)


def _steps(trained: object, total: object) -> str:
    return "" if pd.isna(trained) or pd.isna(total) else f"{trained:,} / {total:,}"


def _human(td: pd.Timedelta) -> str:
    return "-" if pd.isna(td) else format_duration(td.to_pytimedelta())


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
