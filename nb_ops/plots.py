"""Timing charts of operations with matplotlib: timelines, duration distributions, training progress.

Every chart takes a frame of this library (:func:`nb_ops.to_frame`, or
:attr:`nb_ops.Monitor.history` for training curves), draws on ``ax`` or on a
new figure's axes, and returns the :class:`~matplotlib.axes.Axes`; nothing is
shown or saved here. The same charts hang off any DataFrame as ``df.ops``
(``df.ops.timeline()``, ``df.ops.durations()``, ``df.ops.training()``), the way
pandas offers ``df.plot``.

matplotlib is imported on the first chart, so ``import nb_ops`` stays light.
Times are drawn in UTC with matplotlib's date locators; many operations are
drawn as a few collections, not one artist per bar, so 1,000 lanes stay fast.
"""

from __future__ import annotations

import functools
import math
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import DataWarning, FrameError
from .frame import to_frame
from .spec import STATUS_COLORS, STATUSES, TERMINAL_STATUSES, UNSEEN_STATUS_COLOR

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_timeline", "plot_durations", "plot_training", "OpsAccessor", "DURATION_UNITS", "MEASURE_STYLES"]

#: Units a duration axis can be drawn in, smallest first: (name, seconds).
DURATION_UNITS: tuple[tuple[str, int], ...] = (("s", 1), ("min", 60), ("h", 3600), ("d", 86400))
#: Label and colour of each duration column: waiting has the ``queued`` hue, running the ``running`` one.
MEASURE_STYLES: dict[str, tuple[str, str]] = {
    "queue_duration": ("waiting in queue", STATUS_COLORS["queued"]),
    "run_duration": ("running", STATUS_COLORS["running"]),
    "total_duration": ("created to finished", "#7f7f7f"),
}
#: Up to this many bars in a training chart each is annotated with its steps and ETA.
LABELLED_LANES = 40
#: Share of white mixed into a status colour for the time spent waiting in the queue.
QUEUE_TINT = 0.6
#: Up to this many training curves each carry their job's id at the end; more would only clutter.
NAMED_CURVES = 10

_LANE = 0.8  # bar height, in lanes
_BAR_ORDER = {s: i for i, s in enumerate(("running", "queued", "unknown", "succeeded", "failed", "cancelled"))}
_NS_PER_S = 1_000_000_000
_OTHER_COLORS = ("#17becf", "#bcbd22", "#8c564b", "#e377c2", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
                 "#3182bd", "#e6550d", "#31a354")
# Round durations for ticks of a log-scaled duration axis, in seconds.
_NATURAL_TICKS = (
    1e-6, 1e-5, 1e-4, 0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 4 * 3600, 8 * 3600, 12 * 3600,
    86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 90 * 86400, 365 * 86400,
    *(years * 365 * 86400 for years in (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)),
)


# --- the charts -------------------------------------------------------------------------------------


def _chart(draw: Callable[..., Axes]) -> Callable[..., Axes]:
    """Check ``ax=``; if drawing fails, close the figure the chart made rather than leave it half drawn."""

    @functools.wraps(draw)
    def chart(*args: Any, **kwargs: Any) -> Axes:
        ax = kwargs.get("ax")
        if ax is not None:
            from matplotlib.axes import Axes as MplAxes

            if not isinstance(ax, MplAxes):
                hint = "; from plt.subplots(1, 2), pass one of them: ax=axes[0]" if isinstance(ax, np.ndarray) else ""
                raise FrameError(f"ax must be one matplotlib Axes, not {type(ax).__name__}{hint}")
            if getattr(ax, "name", "rectilinear") != "rectilinear":
                raise FrameError(f"ax must be plain x-y Axes; these charts cannot draw on {ax.name!r} axes")
            return draw(*args, **kwargs)
        pyplot = sys.modules.get("matplotlib.pyplot")  # not imported yet: no figure of the user's to spare
        before = set(pyplot.get_fignums()) if pyplot is not None else set()
        try:
            return draw(*args, **kwargs)
        except BaseException:
            pyplot = sys.modules.get("matplotlib.pyplot")
            for number in set(pyplot.get_fignums()) - before if pyplot is not None else ():
                pyplot.close(number)
            raise

    return chart


@_chart
def plot_timeline(
    frame: Any,
    *,
    ax: Axes | None = None,
    now: Any = None,
    sort: str | Sequence[str] | None = "created_at",
    label: str | None = "id",
    since: Any = None,
    **kwargs: Any,
) -> Axes:
    """Draw one lane per operation: time waiting in the queue (light), then running (solid).

    Spans are coloured by status. A queued or running operation runs
    open-ended to ``now`` (marked with a ``>``), a "now" line is drawn, and a
    running fine-tuning job's ``params.estimated_finish`` extends its lane as
    a dashed line. An ``unknown`` operation's open span is hatched: it may
    have ended any time since. Operations that never started show only their
    queue span; a span of zero length shows as a diamond.

    Parameters
    ----------
    frame : DataFrame
        A frame from :func:`nb_ops.to_frame` (``status``, ``created_at``,
        ``in_progress_at`` and ``finished_at`` are needed), or anything
        :func:`~nb_ops.to_frame` accepts (a :class:`~nb_ops.Batch`, a list of
        operations).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure sized to the number of lanes by default.
    now : datetime-like or float, optional
        Where open spans end (a float is unix seconds). Defaults to the wall
        clock, or to the latest time in the frame if that is later. With the
        simulator pass ``now=sim.now()``: its clock is not the wall clock.
    sort : str or list of str or None
        Column(s) the lanes are ordered by, top to bottom (missing values
        last); ``None`` keeps the frame's order.
    label : str or None
        Column that names each lane (long ids are shortened); ``None`` for no
        lane labels. When the lanes outnumber the lines the axes can hold,
        labels are thinned to what fits.
    since : str, Timedelta or datetime-like, optional
        Show only what was alive in a recent window: a duration before
        ``now`` (``"6h"``, ``pd.Timedelta(days=1)``) or a time. Operations
        that ended before it are left out and the axis starts there.
    **kwargs
        Passed to the :class:`~matplotlib.collections.PolyCollection` of
        running spans (``alpha``, ``linewidth``, ...).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    FrameError
        If a needed column is missing, or ``sort``/``label`` names no column.

    Examples
    --------
    >>> ax = nb_ops.plot_timeline(df, now=sim.now())  # doctest: +SKIP
    >>> ax.figure.savefig("timeline.png", bbox_inches="tight")  # doctest: +SKIP
    """
    frame = _as_frame(frame)
    _require(frame, ("status", "created_at", "in_progress_at", "finished_at"), "plot_timeline")
    if sort is not None and not isinstance(sort, str) and not (
        isinstance(sort, Sequence) and all(isinstance(c, str) for c in sort)
    ):
        raise FrameError(f"sort must be a column name, a list of them, or None; not {sort!r:.60}")
    if label is not None and not isinstance(label, str):
        raise FrameError(f"label must be a column name or None, not {label!r:.60}")
    sort_by = [sort] if isinstance(sort, str) else list(sort or ())
    _require(frame, [*sort_by, *([label] if label is not None else [])], "plot_timeline", what="column")
    now_day = _now_days(now, frame)
    since_day = None
    if since is not None:
        since_day = _since_days(since, now_day)
        frame = frame[_alive_after(frame, since_day, now_day)]
    if sort_by:
        # Sorted on the columns alone: an index level of the same name (set_index(..., drop=False)) is no matter.
        keys = pd.DataFrame({c: frame[c].reset_index(drop=True) for c in sort_by})
        try:
            frame = frame.iloc[keys.sort_values(sort_by, na_position="last", kind="stable", key=_sort_key).index]
        except (TypeError, ValueError) as exc:  # values that do not compare (mixed types, dicts)
            raise FrameError(f"cannot sort lanes by {sort!r}: its values do not compare ({exc})") from None
    mpl = _matplotlib()
    _check_style("plot_timeline", "the PolyCollection of running spans",
                 lambda: mpl.collections.PolyCollection([], **{"linewidths": 0.5, **kwargs}))
    n = len(frame)
    own = ax is None
    if ax is None:
        ax = _new_axes(mpl, width=10.0, height=min(12.0, max(2.5, 0.28 * n + 1.4)))
    _time_axis(mpl, ax)
    if n == 0:
        return _no_data(ax, "no operations" if since is None else "no operations in this window")

    created = _days(frame["created_at"])
    started = _days(frame["in_progress_at"])
    finished = _days(frame["finished_at"])
    _drop_late(frame, {"created_at": created, "in_progress_at": started, "finished_at": finished}, now_day)
    status = _statuses(frame)
    color = np.array([mpl.colors.to_rgba(STATUS_COLORS.get(s, UNSEEN_STATUS_COLOR)) for s in status])
    light = _tint(color, QUEUE_TINT)
    terminal = _terminal(status)
    # Open spans of an operation whose status says it is waiting or running are known to reach now;
    # for any other open one (``unknown``) nobody knows, so it is drawn hatched, not solid.
    live = np.isin(status, ("queued", "running"))
    lanes = np.arange(n, dtype=float)

    # Waiting: created -> started; never started: -> finished, or -> now while not terminal.
    queue_end = np.where(~np.isnan(started), started, np.where(~np.isnan(finished), finished, np.nan))
    queue_open = np.isnan(queue_end) & ~terminal & ~np.isnan(created)
    queue_end = np.where(queue_open, np.maximum(now_day, created), queue_end)
    has_queue = ~np.isnan(created) & ~np.isnan(queue_end)
    # Running: started -> finished, or -> now while not terminal.
    run_open = ~np.isnan(started) & np.isnan(finished) & ~terminal
    run_end = np.where(run_open, np.maximum(now_day, started), finished)
    has_run = ~np.isnan(started) & ~np.isnan(run_end)
    # Times out of order (finished before it started) would draw as an ordinary bar: left out instead.
    backwards_queue, backwards_run = has_queue & (queue_end < created), has_run & (run_end < started)
    if backwards_queue.any() or backwards_run.any():
        first = frame["id"].iloc[int(np.flatnonzero(backwards_queue | backwards_run)[0])] if "id" in frame.columns else "?"
        warnings.warn(f"{int((backwards_queue | backwards_run).sum())} operation(s) end before they start "
                      f"(first: {_plain(first, 40)!r}); those spans are left out of the chart", DataWarning, stacklevel=4)
        has_queue, has_run = has_queue & ~backwards_queue, has_run & ~backwards_run
    doubt_queue, doubt_run = has_queue & queue_open & ~live, has_run & run_open & ~live
    sure_queue, sure_run = has_queue & ~doubt_queue, has_run & ~doubt_run

    queue_bars = mpl.collections.PolyCollection(
        _rects(created[sure_queue], queue_end[sure_queue], lanes[sure_queue]),
        facecolors=light[sure_queue], edgecolors=light[sure_queue], linewidths=0.5,
    )
    queue_bars.set_gid("queue")
    ax.add_collection(queue_bars)
    run_style = {"facecolors": color[sure_run], "edgecolors": color[sure_run], "linewidths": 0.5, **kwargs}
    run_bars = mpl.collections.PolyCollection(_rects(started[sure_run], run_end[sure_run], lanes[sure_run]),
                                              **run_style)
    run_bars.set_gid("run")
    ax.add_collection(run_bars)
    if doubt_queue.any() or doubt_run.any():
        doubt = mpl.collections.PolyCollection(
            np.concatenate([_rects(created[doubt_queue], queue_end[doubt_queue], lanes[doubt_queue]),
                            _rects(started[doubt_run], run_end[doubt_run], lanes[doubt_run])]),
            facecolors="none", edgecolors=np.concatenate([light[doubt_queue], color[doubt_run]]),
            hatch="////", linewidths=0.8,
        )
        doubt.set_gid("uncertain")
        ax.add_collection(doubt)

    size = _marker_size(ax, n)
    # Zero-length: everything drawn for the lane starts and ends at one instant.
    lo = np.fmin(np.where(has_queue, created, np.nan), np.where(has_run, started, np.nan))
    hi = np.fmax(np.where(has_queue, queue_end, np.nan), np.where(has_run, run_end, np.nan))
    point = ~np.isnan(lo) & (lo == hi)
    # Started (or finished) but with no usable creation time: a mark where it is known.
    lone = ~has_queue & ~has_run & (~np.isnan(started) | ~np.isnan(finished))
    point_x = np.where(point, lo, np.where(~np.isnan(started), started, finished))
    show = point | lone
    points = ax.scatter(point_x[show], lanes[show], s=size**2, marker="D", c=color[show], zorder=3)
    points.set_gid("instant")

    open_end = (queue_open | run_open) & live
    if open_end.any():
        ends = ax.scatter(
            np.full(int(open_end.sum()), now_day), lanes[open_end], s=size**2, marker=">",
            c=np.where(run_open[open_end, None], color[open_end], light[open_end]), zorder=3,
        )
        ends.set_gid("open")
    headroom = 0.0  # lanes of empty space above the first lane, for the "now" tag
    if (queue_open | run_open).any():
        ink = mpl.rcParams["text.color"]  # dark grey on white, light on a dark style
        ax.axvline(now_day, color=ink, alpha=0.85, linestyle=":", linewidth=1.2, zorder=4, gid="now")
        # In a strip of its own at the top of the axes: over a lane it would hide that lane's end,
        # above the axes it would collide with a title.
        tag = 1.4 * mpl.font_manager.FontProperties(size="small").get_size_in_points() + 2
        height = ax.get_window_extent().height * 72.0 / ax.figure.dpi
        headroom = tag * n / (height - tag) if height > 2 * tag else 0.2 * n
        ax.annotate("now", (now_day, 1), xycoords=("data", "axes fraction"), xytext=(-3, -2),
                    textcoords="offset points", ha="right", va="top", fontsize="small", color=ink,
                    annotation_clip=False, zorder=5)

    eta = _estimated_finish(frame)
    extend = run_open & live & ~np.isnan(eta) & (eta > run_end)
    if extend.any():
        dashes = mpl.collections.LineCollection(  # from where the running span ends (now, or its start if later)
            [((r, y), (e, y)) for r, e, y in zip(run_end[extend], eta[extend], lanes[extend], strict=True)],
            colors=color[extend], linestyles="--", linewidths=max(1.0, min(2.0, size / 3)),
        )
        dashes.set_gid("estimated_finish")
        ax.add_collection(dashes)

    ax.autoscale_view()
    ax.margins(x=0.02)
    drawn = has_queue | has_run | show
    if not drawn.any():
        _no_data(ax, "no times to draw")
        ax.set_xlim(now_day - 1 / 24, now_day + 1 / 24)
    elif ax.dataLim.width == 0 and since_day is None:  # one instant: an hour either side, not years
        ax.set_xlim(ax.dataLim.x0 - 1 / 24, ax.dataLim.x0 + 1 / 24)
    if since_day is not None:  # the margin is 2% of the window, not of everything the lanes reach back to
        # Ahead of now at most as far as the window reaches back: a far estimate runs off the edge.
        right = min(max(ax.dataLim.x1, now_day), now_day + max(now_day - since_day, 1 / 24))
        ax.set_xlim(since_day, right + 0.02 * (right - since_day))
    ax.set_ylim(n - 0.5, -0.5 - headroom)
    _lane_labels(mpl, ax, frame[label] if label is not None else None, label == "id")
    ax.set_xlabel("time (UTC)")
    ax.grid(axis="x", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)

    handles, names = [], []
    waited, ran = set(status[has_queue]), set(status[has_run])
    for s in _present(status):
        solid = mpl.colors.to_rgba(STATUS_COLORS.get(s, UNSEEN_STATUS_COLOR))
        shades = []
        if s in waited:
            shades.append(mpl.patches.Patch(color=_tint(np.array([solid]), QUEUE_TINT)[0]))
        if s in ran or not shades:
            shades.append(mpl.patches.Patch(color=solid))
        handles.append(tuple(shades))
        names.append(_plain(s, 25))
    grey = mpl.colors.to_rgba("0.35")
    handles.append((mpl.patches.Patch(color=_tint(np.array([grey]), QUEUE_TINT)[0]), mpl.patches.Patch(color=grey)))
    names.append("light: waiting, solid: running")
    if open_end.any():
        handles.append(mpl.lines.Line2D([], [], color=mpl.rcParams["text.color"], linestyle=":", marker=">"))
        names.append("not finished yet, to now")
    if doubt_queue.any() or doubt_run.any():
        handles.append(mpl.patches.Patch(facecolor="none", edgecolor="0.35", hatch="////"))
        names.append("status unknown since")
    if extend.any():
        handles.append(mpl.lines.Line2D([], [], color="0.35", linestyle="--"))
        names.append("estimated finish")
    _legend(mpl, ax, handles, names, outside=own, corner="lower left", items=n)
    return ax


@_chart
def plot_durations(
    frame: Any,
    *,
    ax: Axes | None = None,
    by: str | None = "type",
    which: str | Sequence[str] = ("queue_duration", "run_duration"),
    unit: str | None = None,
    log: bool | None = None,
    **kwargs: Any,
) -> Axes:
    """Draw the distribution of queue and run durations per group: a box and every operation as a dot.

    Boxes span the quartiles with the median as a thick line and whiskers to
    the furthest value within 1.5 IQR (Tukey, as :meth:`~matplotlib.axes.Axes.boxplot`).
    The axis is in the time unit that suits the data (s, min, h or d), and on
    a log scale, with ticks such as ``30 s``, ``10 min``, ``2 h``, when the
    durations span more than two orders of magnitude. Group labels count the
    operations that have a duration drawn (``yql (n=28)``); a group with none
    (no queued operation has a run time yet) gets no row.

    Parameters
    ----------
    frame : DataFrame
        A frame from :func:`nb_ops.to_frame` (or anything it accepts).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.
    by : str or None
        Column to group by, one row of boxes per value (``None``: all together).
    which : str or sequence of str
        Duration columns (``timedelta64``) to draw, one box per group each.
    unit : {"s", "min", "h", "d"}, optional
        Draw a linear axis in this unit. By default the unit and the scale
        are chosen from the data.
    log : bool, optional
        Force a log (``True``) or linear (``False``) scale; by default log
        when the durations span more than two orders of magnitude and no
        ``unit`` is given. Ticks of a log axis name their own units
        (``30 s``, ``10 min``, ``2 h``). Zero durations stay visible on a
        log axis (symlog below one second).
    **kwargs
        Passed to the scatter of individual operations (``s``, ``alpha``, ...).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    FrameError
        If a column is missing or is not a duration, or ``unit`` is unknown.

    Examples
    --------
    >>> ax = df.ops.durations(by="type")  # doctest: +SKIP
    """
    frame = _as_frame(frame)
    if isinstance(which, str):
        measures = [which]
    elif isinstance(which, Sequence) and all(isinstance(m, str) for m in which):
        measures = list(which)
    else:
        raise FrameError(f"which must be a duration column name or a list of them, not {which!r:.60}")
    if by is not None and not isinstance(by, str):
        raise FrameError(f"by must be a column name or None, not {by!r:.60}")
    if log is not None and not isinstance(log, (bool, np.bool_)):
        raise FrameError(f"log must be True, False or None (chosen from the data), not {log!r:.60}")
    if not measures:
        raise FrameError("plot_durations needs at least one duration column in which=")
    _require(frame, [*measures, *([by] if by is not None else [])], "plot_durations", what="column")
    seconds = {}
    for name in measures:
        seconds[name] = _seconds(frame[name])
    names = dict(DURATION_UNITS)
    if unit is not None and (not isinstance(unit, str) or unit not in names):
        raise FrameError(f"unit must be one of {', '.join(names)}, not {unit!r}")

    # n: the operations in the group with at least one of the durations drawn; groups without any
    # (by="status": queued operations have no run time yet) get no empty row.
    drawn = np.zeros(len(frame), dtype=bool)
    for v in seconds.values():
        drawn |= ~np.isnan(v)
    groups = [(key, rows) for key, rows in _groups(frame, by) if (rows & drawn).any()]
    mpl = _matplotlib()
    # Colours the caller gives replace the measure's own (then every measure has them).
    own_colours = not {"c", "color", "facecolor", "facecolors"} & set(kwargs)
    # Ours unless the caller names the same property by another of its names (scatter refuses both).
    base = {"s": 9, **({} if {"linewidth", "lw", "linewidths"} & set(kwargs) else {"linewidths": 0}), "zorder": 3}
    _check_style("plot_durations", "the scatter of operations",
                 lambda: _scratch_axes().scatter([], [], **{**base, **({"color": "C0"} if own_colours else {}), **kwargs}))
    if ax is None:
        ax = _new_axes(mpl, width=9.0, height=min(10.0, max(2.5, 0.5 * len(groups) * len(measures) + 1.4)))
    values = np.concatenate([v[~np.isnan(v)] for v in seconds.values()]) if seconds else np.array([])
    if values.size == 0:
        return _no_data(ax, "no durations to draw")
    if log is None:  # a unit asked for is a linear axis in that unit; else the data decides
        log = False if unit is not None else _wants_log(values)
    unit = unit or _pick_unit(values)
    scale = names[unit]

    rng = np.random.default_rng(0)  # the same jitter on every draw
    slot = _LANE / len(measures)
    handles, labels = [], []
    boxes, medians, whiskers = [], [], []
    box_faces, box_edges, line_colors = [], [], []
    for j, name in enumerate(measures):
        title, colour = MEASURE_STYLES.get(name, (name, _OTHER_COLORS[j % len(_OTHER_COLORS)]))
        offset = -_LANE / 2 + slot * (j + 0.5)
        xs, ys = [], []
        for i, (_, rows) in enumerate(groups):
            data = seconds[name][rows]
            data = data[~np.isnan(data)] / scale
            if data.size == 0:
                continue
            y = i + offset
            q1, med, q3 = np.percentile(data, [25, 50, 75])
            reach = 1.5 * (q3 - q1)
            # Tukey, clamped to the box as Axes.boxplot does: a whisker never runs back inside it.
            low = min(data[data >= q1 - reach].min(), q1)
            high = max(data[data <= q3 + reach].max(), q3)
            half = slot * 0.35
            boxes.append(((q1, y - half), (q1, y + half), (q3, y + half), (q3, y - half)))
            medians.append(((med, y - half), (med, y + half)))
            whiskers += [((low, y), (q1, y)), ((q3, y), (high, y)),
                         ((low, y - half / 2), (low, y + half / 2)), ((high, y - half / 2), (high, y + half / 2))]
            box_faces.append(mpl.colors.to_rgba(colour, 0.22))
            box_edges.append(colour)
            line_colors += [colour] * 4
            xs.append(data)
            ys.append(y + rng.uniform(-half * 0.9, half * 0.9, data.size))
        if xs:
            count = sum(x.size for x in xs)
            style = {**base, "alpha": float(np.clip(6 / math.sqrt(count), 0.12, 0.7)),
                     **({"color": colour} if own_colours else {}), **kwargs}
            dots = ax.scatter(np.concatenate(xs), np.concatenate(ys), **style)
            dots.set_gid(name)
            handles.append(mpl.patches.Patch(facecolor=mpl.colors.to_rgba(colour, 0.22), edgecolor=colour))
            labels.append(title)
    ax.add_collection(mpl.collections.PolyCollection(boxes, facecolors=box_faces, edgecolors=box_edges,
                                                     linewidths=1.2, zorder=2, gid="boxes"))
    ax.add_collection(mpl.collections.LineCollection(whiskers, colors=line_colors, linewidths=1.0, zorder=2,
                                                     gid="whiskers"))
    ax.add_collection(mpl.collections.LineCollection(medians, colors=box_edges, linewidths=2.5, zorder=4,
                                                     gid="medians"))

    if log:
        positive = values[values > 0] / scale
        if (values <= 0).any() or positive.size == 0:  # zeros (and bad negatives) stay visible
            ax.set_xscale("symlog", linthresh=1 / scale, linscale=0.3)
        else:
            ax.set_xscale("log")
        low_s = max(positive.min() * scale if positive.size else 1.0, 1e-9)
        ticks = [t for t in _NATURAL_TICKS if low_s / 1.5 <= t <= max(values.max(), low_s) * 1.5]
        width = ax.get_window_extent().width * 72.0 / ax.figure.dpi
        most = max(3, int(width / 50))  # about 50 points per label, so "20 min" and "1 h" never touch
        ticks = ticks[:: max(1, math.ceil(len(ticks) / most))]
        if (values < 0).any():
            ticks = [-t for t in reversed(ticks)] + [0] + ticks
        elif (values == 0).any():
            ticks = [0, *ticks]
        ax.xaxis.set_major_locator(mpl.ticker.FixedLocator([t / scale for t in ticks]))
        ax.xaxis.set_major_formatter(mpl.ticker.FixedFormatter([_human_tick(t) for t in ticks]))
        ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
        ax.set_xlabel("duration (log scale)")  # each tick names its unit
    else:
        ax.set_xlabel(f"duration ({unit})")
    ax.autoscale_view()
    if not log:  # from zero, unless bad data has negative durations: those are drawn, not cut off
        ax.set_xlim(left=min(0.0, float(values.min()) / scale * 1.05))
    ax.set_ylim(len(groups) - 0.5, -0.5)
    _lane_ticks(mpl, ax, [f"{key} (n={int((rows & drawn).sum())})" for key, rows in groups],
                mpl.rcParams["ytick.labelsize"])  # thinned when hundreds of groups (by="id") outnumber the lines
    ax.grid(axis="x", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    _legend(mpl, ax, handles, labels, outside=False, corner="lower right", items=len(frame))
    return ax


@_chart
def plot_training(
    history_or_frame: Any,
    *,
    ax: Axes | None = None,
    relative: bool = False,
    limit: int | None = 60,
    **kwargs: Any,
) -> Axes:
    """Draw fine-tuning progress: step curves from a monitor's history, or current progress bars from a frame.

    From :attr:`nb_ops.Monitor.history` (or the :class:`~nb_ops.Monitor`
    itself): ``trained_steps`` against time for each operation, its
    ``total_steps`` as a dashed target, and its latest estimated finish as a
    star (with a dotted projection while unfinished). From a frame of
    :func:`nb_ops.to_frame`: one bar per fine-tuning operation with step
    counts, filled to its progress and coloured by status.

    Parameters
    ----------
    history_or_frame : DataFrame or Monitor
        ``Monitor.history`` (columns ``operation_id``, ``observed_at``,
        ``trained_steps``, ``total_steps``, ``estimated_finish``) or a
        ``to_frame`` frame (``params.trained_steps``, ``params.total_steps``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.
    relative : bool
        Draw history curves as a share of ``total_steps`` (0 to 1) so jobs of
        very different lengths can be compared.
    limit : int or None
        Progress bars at most (from a frame): jobs in flight first, then
        finished ones in the frame's order; the chart says how many more
        were left out. ``None`` draws them all.
    **kwargs
        Passed to the main collection: the curves, or the progress bars.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    FrameError
        If the frame is neither a history nor a frame of operations.

    Examples
    --------
    >>> monitor = nb_ops.watch(ids, client=client); monitor.wait()  # doctest: +SKIP
    >>> ax = nb_ops.plot_training(monitor.history)  # doctest: +SKIP
    """
    if not isinstance(relative, (bool, np.bool_)):
        raise FrameError(f"relative must be True or False, not {relative!r:.60}")
    if limit is not None and (isinstance(limit, (bool, np.bool_)) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise FrameError(f"limit must be a whole number of bars (1 or more) or None, not {limit!r:.60}")
    data = history_or_frame
    if not isinstance(data, pd.DataFrame) and isinstance(getattr(data, "history", None), pd.DataFrame):
        data = data.history
    data = _as_frame(data)
    mpl = _matplotlib()
    if {"operation_id", "observed_at", "trained_steps"} <= set(data.columns):
        return _training_curves(mpl, data, ax, relative, kwargs)
    if "params.total_steps" in data.columns or {"id", "type"} <= set(data.columns):
        return _training_bars(mpl, data, ax, limit, kwargs)
    raise FrameError(
        "plot_training needs a Monitor's history (operation_id, observed_at, trained_steps, ...) or a frame "
        f"from nb_ops.to_frame; this frame has {_some_columns(data)}"
    )


def _training_curves(mpl: Any, history: pd.DataFrame, ax: Axes | None, relative: bool, kwargs: dict) -> Axes:
    _require(history, ("total_steps",), "plot_training")
    _check_style("plot_training", "the LineCollection of step curves",
                 lambda: mpl.collections.LineCollection([], **{"linewidths": 1.8, **kwargs}))
    own = ax is None
    if ax is None:
        ax = _new_axes(mpl, width=10.0, height=4.5)
    _time_axis(mpl, ax)
    unnamed = history["operation_id"].isna().to_numpy()
    if unnamed.any():
        warnings.warn(f"{int(unnamed.sum())} observation(s) without an operation_id are left out of the chart",
                      DataWarning, stacklevel=4)
        history = history[~unnamed]
    # A job's status is its latest observation's, steps or not (the last look may be a failure without steps).
    latest = _latest_statuses(history)
    trained = _numbers(history, "trained_steps")
    odd = np.isnan(trained) & history["trained_steps"].notna().to_numpy()
    if odd.any():
        first = history["trained_steps"][odd].iloc[0]
        warnings.warn(f"{int(odd.sum())} trained_steps value(s) are not finite numbers (first: {str(first)[:40]!r}); "
                      "they are left out of the chart", DataWarning, stacklevel=4)
    seen = history[~np.isnan(trained)]
    if seen.empty:
        return _no_data(ax, "no training steps observed")
    when = _days(seen["observed_at"])
    if np.isnan(when).all():
        return _no_data(ax, "no observation times (observed_at) to draw")
    timed = ~np.isnan(when)
    seen, when, steps = seen[timed], when[timed], trained[~np.isnan(trained)][timed]
    totals = _numbers(seen, "total_steps")
    etas = _days(seen["estimated_finish"]) if "estimated_finish" in seen.columns else np.full(len(seen), np.nan)
    etas[etas < when] = np.nan  # a finish estimated before the look that reported it (0, a stale value) says nothing
    keys = seen["operation_id"].astype(str).to_numpy()
    # Each job's rows in one pass (a comparison of every row per job is quadratic in 10,000 jobs).
    codes, order = pd.factorize(keys)  # jobs in order of first appearance
    by_job = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[by_job], np.arange(len(order) + 1))

    curves, colours, ends, finals = [], [], [], []
    targets, projections, stars = [], [], []
    for k, key in enumerate(order):
        rows = by_job[bounds[k]:bounds[k + 1]]
        rows = rows[np.argsort(when[rows], kind="stable")]
        x, y = when[rows], steps[rows]
        total, eta = _last(totals[rows]), _last(etas[rows])
        if relative:
            if not total or np.isnan(total):
                continue
            y, total = y / total, 1.0
        # Coloured by the latest status, as in the other charts: the id at the end of the line tells jobs apart.
        final = latest.get(key, "unknown")
        colour = mpl.colors.to_rgba(STATUS_COLORS.get(final, UNSEEN_STATUS_COLOR))
        curves.append(np.column_stack([x, y]))
        colours.append(colour)
        ends.append((key, x[-1], y[-1]))
        finals.append(final)
        if not np.isnan(total):
            ongoing = final not in TERMINAL_STATUSES  # a finished job's old estimate says nothing
            targets.append((x[0], max(x[-1], eta) if ongoing and not np.isnan(eta) else x[-1], total, colour))
            if ongoing and not np.isnan(eta):
                stars.append((eta, total, colour))
                if y[-1] < total and eta > x[-1]:
                    projections.append(((x[-1], y[-1]), (eta, total)))
    if not curves:
        return _no_data(ax, "no operation has total_steps to compare against")

    style = {"linewidths": 1.8, "colors": colours, "gid": "steps", **kwargs}
    ax.add_collection(mpl.collections.LineCollection(curves, **style))
    dots = np.concatenate(curves)
    ax.scatter(dots[:, 0], dots[:, 1], s=10, zorder=3, gid="observations",
               c=np.repeat(np.array(colours), [len(c) for c in curves], axis=0))
    stopped = [i for i, f in enumerate(finals) if f in ("failed", "cancelled")]
    if stopped:
        ax.scatter([ends[i][1] for i in stopped], [ends[i][2] for i in stopped], marker="X", s=70, zorder=5,
                   c=[colours[i] for i in stopped], edgecolors="white", linewidths=0.6, gid="stopped")
    if stars:
        xy = np.array([(x, y) for x, y, _ in stars])
        ax.scatter(xy[:, 0], xy[:, 1], marker="*", s=120, c=[c for *_, c in stars], edgecolors="black",
                   linewidths=0.5, zorder=5, gid="estimated_finish")
    ax.autoscale_view()
    ax.margins(x=0.03, y=0.05)
    if ax.dataLim.width == 0:  # one instant: half an hour either side, not the years of a date axis' default
        ax.set_xlim(ax.dataLim.x0 - 1 / 48, ax.dataLim.x0 + 1 / 48)
    # Ahead of the last observation at most as far as the observations reach back (an hour at least):
    # one estimate years away would squash every curve into a line; its projection runs off the edge.
    reach = float(when.max()) + max(float(when.max() - when.min()), 1 / 24)
    if ax.dataLim.x1 > reach:
        pad = 0.03 * (reach - ax.dataLim.x0)
        ax.set_xlim(ax.dataLim.x0 - pad, reach + pad)
    if targets:
        # A job seen once still gets a visible target: at least 3% of the time axis wide.
        low, high = ax.get_xlim()
        reach = 0.03 * (high - low)
        segments = [((a, t), (max(b, a + reach), t)) for a, b, t, _ in targets]
        ax.add_collection(mpl.collections.LineCollection(segments, colors=[c for *_, c in targets],
                                                         linestyles="--", linewidths=1.0, gid="targets"),
                          autolim=False)
    if projections:
        ax.add_collection(mpl.collections.LineCollection(projections, colors="0.45", linestyles=":",
                                                         linewidths=1.0, gid="projections"))
    named = len(curves) <= NAMED_CURVES
    if named:
        low, high = ax.get_xlim()
        ax.set_xlim(low, high + 0.1 * (high - low))  # room for the names at the right-hand ends
    ax.set_ylim(bottom=0)
    if named:  # once the limits are final: names of jobs that end close together are stacked, not overprinted
        rises = _label_rises(ax, [(x, y) for _, x, y in ends], mpl.font_manager.FontProperties(size="x-small"))
        for (key, x, y), rise in zip(ends, rises, strict=True):
            ax.annotate(_short(key), (x, y), xytext=(4, 2 + rise), textcoords="offset points", fontsize="x-small",
                        color=mpl.rcParams["text.color"], gid="job_label")
    if relative:
        ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
        ax.set_ylabel("share of total steps")
    else:
        ax.yaxis.set_major_formatter(mpl.ticker.StrMethodFormatter("{x:,.0f}"))
        ax.set_ylabel("trained steps")
    ax.set_xlabel("time (UTC)")
    ax.grid(color="0.92", linewidth=0.8)
    ax.set_axisbelow(True)
    present = _present(np.array(finals, dtype=object))
    handles = [mpl.lines.Line2D([], [], color=STATUS_COLORS.get(s, UNSEEN_STATUS_COLOR), marker="o", markersize=4)
               for s in present]
    names = [f"{_plain(s, 25)} ({finals.count(s)})" for s in present]
    if targets:
        handles.append(mpl.lines.Line2D([], [], color="0.35", linestyle="--"))
        names.append("total steps")
    if stars:
        handles.append(mpl.lines.Line2D([], [], color="0.35", marker="*", linestyle="none", markersize=10))
        names.append("estimated finish")
    if stopped:
        handles.append(mpl.lines.Line2D([], [], color="0.35", marker="X", linestyle="none", markersize=7))
        names.append("stopped (failed, cancelled)")
    _legend(mpl, ax, handles, names, outside=own, corner="lower right", items=len(seen))
    return ax


def _latest_statuses(history: pd.DataFrame) -> dict[str, str]:
    """Each operation's status at its latest observation that has one (``unknown`` without a status column)."""
    if "status" not in history.columns:
        return {}
    known = history[history["status"].notna().to_numpy()]
    when = _quiet_days(known["observed_at"])
    order = np.argsort(np.where(np.isnan(when), -np.inf, when), kind="stable")
    return dict(zip(known["operation_id"].astype(str).to_numpy()[order], _statuses(known)[order], strict=True))


def _label_rises(ax: Axes, points: list[tuple[float, float]], font: Any) -> list[float]:
    """How far (in points) to lift each label at the right of a point so that no two overlap."""
    if not points:
        return []
    per_point = ax.figure.dpi / 72
    xy = ax.transData.transform(points) / per_point  # in points
    size = font.get_size_in_points()
    height, width = 1.25 * size, 6.5 * size  # a line of text; a shortened id ("7fa5b2ea…") is about 5 ems
    rises = [0.0] * len(points)
    placed: list[tuple[float, float]] = []  # (x, bottom of the label), lowest first
    for i in np.argsort(xy[:, 1], kind="stable"):
        x, bottom = xy[i]
        for px, pbottom in placed:
            if abs(px - x) < width and abs(pbottom - bottom) < height:
                bottom = pbottom + height
        rises[i] = float(bottom - xy[i][1])
        placed.append((x, bottom))
        placed.sort(key=lambda p: p[1])
    return rises


def _training_bars(mpl: Any, frame: pd.DataFrame, ax: Axes | None, limit: int | None, kwargs: dict) -> Axes:
    _check_style("plot_training", "the PolyCollection of progress bars",
                 lambda: mpl.collections.PolyCollection([], **{"linewidths": 0, **kwargs}))
    total = _numbers(frame, "params.total_steps")
    trained = _numbers(frame, "params.trained_steps")
    keep = ~np.isnan(total) & (total > 0)
    if "type" in frame.columns:
        keep &= (frame["type"].astype(object) == "finetuning").to_numpy()
    rows = frame[keep]
    total, trained = total[keep], trained[keep]
    # Jobs in flight first (running, queued, unknown), then finished ones; frame order within a status.
    rank = np.array([_BAR_ORDER.get(s, len(_BAR_ORDER)) for s in _statuses(rows)], dtype=int)
    order = np.argsort(rank, kind="stable")
    left_out = 0 if limit is None else max(0, len(order) - int(limit))
    if left_out:
        order = order[: int(limit)]
    rows, total, trained = rows.iloc[order], total[order], trained[order]
    n = len(rows)
    own = ax is None
    if own:
        ax = _new_axes(mpl, width=9.0, height=min(12.0, max(2.5, 0.3 * n + 1.4)))
    if n == 0:
        return _no_data(ax, "no fine-tuning operation with step counts")
    share = np.clip(np.nan_to_num(trained, nan=0.0) / total, 0.0, 1.0)
    status = _statuses(rows)
    colour = np.array([mpl.colors.to_rgba(STATUS_COLORS.get(s, UNSEEN_STATUS_COLOR)) for s in status])
    lanes = np.arange(n, dtype=float)
    ax.add_collection(mpl.collections.PolyCollection(
        _rects(np.zeros(n), np.ones(n), lanes), facecolors="0.94", edgecolors=colour, linewidths=0.8, gid="totals"))
    style = {"linewidths": 0, "facecolors": colour, "gid": "progress", **kwargs}
    ax.add_collection(mpl.collections.PolyCollection(_rects(np.zeros(n), share, lanes), **style))
    eta = _estimated_finish(rows)
    # A note per bar while they are few and each bar has a line of text's height (never overprinted).
    line = 1.25 * mpl.font_manager.FontProperties(size="small").get_size_in_points()
    if n <= min(LABELLED_LANES, ax.get_window_extent().height * 72.0 / ax.figure.dpi / line):
        for y, done, of, when, finished in zip(lanes, trained, total, eta, _terminal(status), strict=True):
            text = f"{_count(done)} / {_count(of)} steps"
            if not np.isnan(when) and not finished:  # a finished job's last estimate is history
                text += f" · ETA {mpl.dates.num2date(when, tz='UTC'):%b %d %H:%M} UTC"
            ax.annotate(text, (1.0, y), xytext=(6, 0), textcoords="offset points", va="center",
                        fontsize="small", annotation_clip=False)
    ax.set_xlim(0, 1)
    ax.set_ylim(n - 0.5, -0.5)
    ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
    ax.set_xlabel("trained steps, share of total")
    if left_out:  # jobs in flight come first: once a finished one is drawn, all those left out are finished
        jobs = "finished jobs" if rank[order[-1]] >= _BAR_ORDER["succeeded"] else "jobs"
        ax.set_xlabel(f"trained steps, share of total ({left_out:,} more {jobs} not shown; limit={limit})")
    label = rows["id"] if "id" in rows.columns else None
    _lane_labels(mpl, ax, label, True)
    handles = [mpl.patches.Patch(color=STATUS_COLORS.get(s, UNSEEN_STATUS_COLOR), label=_plain(s, 25))
               for s in _present(status)]
    # Above the bars (their right holds the step counts); in three columns at most on axes given, which may be narrow.
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01),
              ncols=len(handles) if own else min(3, len(handles)),
              borderaxespad=0.0, fontsize="small", frameon=False)
    return ax


# --- pandas accessor --------------------------------------------------------------------------------


@pd.api.extensions.register_dataframe_accessor("ops")
class OpsAccessor:
    """nb_ops charts of a frame of operations, as ``df.ops.timeline()``, like pandas' ``df.plot``.

    Examples
    --------
    >>> df = nb_ops.to_frame(client.get_operations(ids))  # doctest: +SKIP
    >>> df[df["type"] == "finetuning"].ops.timeline(now=sim.now())  # doctest: +SKIP
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def timeline(self, **kwargs: Any) -> Axes:
        """:func:`nb_ops.plot_timeline` of this frame."""
        return plot_timeline(self._frame, **kwargs)

    def durations(self, **kwargs: Any) -> Axes:
        """:func:`nb_ops.plot_durations` of this frame."""
        return plot_durations(self._frame, **kwargs)

    def training(self, **kwargs: Any) -> Axes:
        """:func:`nb_ops.plot_training` of this frame (a ``to_frame`` frame or a monitor's history)."""
        return plot_training(self._frame, **kwargs)


# --- helpers ----------------------------------------------------------------------------------------


class _Matplotlib:
    """The matplotlib modules the charts use, imported once, on the first chart."""

    def __init__(self) -> None:
        import matplotlib.collections
        import matplotlib.colors
        import matplotlib.dates
        import matplotlib.font_manager
        import matplotlib.legend_handler
        import matplotlib.lines
        import matplotlib.patches
        import matplotlib.pyplot
        import matplotlib.ticker

        self.collections = matplotlib.collections
        self.colors = matplotlib.colors
        self.dates = matplotlib.dates
        self.font_manager = matplotlib.font_manager
        self.legend_handler = matplotlib.legend_handler
        self.lines = matplotlib.lines
        self.patches = matplotlib.patches
        self.pyplot = matplotlib.pyplot
        self.ticker = matplotlib.ticker
        self.rcParams = matplotlib.rcParams


_MPL: _Matplotlib | None = None


def _matplotlib() -> _Matplotlib:
    global _MPL
    if _MPL is None:
        _MPL = _Matplotlib()
    return _MPL


def _as_frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return _numpy_times(data)
    if isinstance(data, (str, bytes, Mapping, pd.Series)) or not isinstance(data, Iterable):
        raise FrameError(f"expected a DataFrame from nb_ops.to_frame (or operations), not {type(data).__name__}")
    items = list(data)
    if any(isinstance(item, (str, bytes, int, float)) for item in items[:100]):
        raise FrameError(
            "expected operations or a frame of them, not ids: fetch them first, "
            "e.g. nb_ops.plot_timeline(client.get_operations(ids))"
        )
    return to_frame(items)


def _numpy_times(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame, refused if its column labels repeat, with pyarrow-backed times and durations as numpy ones.

    ``pd.read_parquet(path, dtype_backend="pyarrow")`` of an exported frame gives
    ``timestamp[ns, tz=UTC][pyarrow]`` columns: the same times, drawn the same way.
    """
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):
        raise FrameError(
            f"this frame has more than one column named {repeated[0]!r}; keep one, e.g. "
            "df.loc[:, ~df.columns.duplicated()]"
        )
    arrow = {}
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.ArrowDtype) and dtype.kind in "mM":
            kind = dtype.pyarrow_dtype
            tz = getattr(kind, "tz", None)
            unit = getattr(kind, "unit", "ms")  # date32/date64 have none: midnight, to the millisecond
            target = (pd.DatetimeTZDtype(unit, tz) if tz else f"datetime64[{unit}]") if dtype.kind == "M" \
                else f"timedelta64[{unit}]"
            arrow[name] = frame[name].astype(target)
    if not arrow:
        return frame
    frame = frame.copy(deep=False)  # the caller's frame is left as it is
    for name, column in arrow.items():
        frame[name] = column
    return frame


def _some_columns(frame: pd.DataFrame) -> str:
    names = [str(c) for c in frame.columns[:8]]
    more = len(frame.columns) - len(names)
    return ("columns " + ", ".join(names) + (f" and {more} more" if more > 0 else "")) if names else "no columns"


def _require(frame: pd.DataFrame, columns: Iterable[str], chart: str, *, what: str = "column") -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FrameError(
            f"{chart} needs a {missing[0]!r} {what}, which this frame lacks ({_some_columns(frame)}); "
            "pass a frame from nb_ops.to_frame"
        )


def _check_style(chart: str, target: str, make: Callable[[], Any]) -> None:
    """Refuse keyword arguments the chart's main artist does not take, before anything is drawn.

    Checked on a throwaway artist, so axes the caller gave are left untouched when one is wrong.
    """
    try:
        make()
    except (AttributeError, TypeError, ValueError) as exc:
        raise FrameError(f"{chart}: extra keyword arguments go to {target}, which refuses them: {exc}") from None


def _scratch_axes() -> Axes:
    """Axes of a figure pyplot does not know: nothing to close, nothing shown."""
    from matplotlib.figure import Figure

    return Figure().add_subplot()


def _new_axes(mpl: _Matplotlib, *, width: float, height: float) -> Axes:
    _, ax = mpl.pyplot.subplots(figsize=(width, height), layout="constrained")
    return ax


def _no_data(ax: Axes, text: str) -> Axes:
    """Say why the chart is empty, on axes without ticks (no 1970 dates around nothing)."""
    import matplotlib.ticker

    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4", gid="no_data")
    for axis in (ax.xaxis, ax.yaxis):  # NullFormatter too: ConciseDateFormatter fails on no ticks
        axis.set_major_locator(matplotlib.ticker.NullLocator())
        axis.set_major_formatter(matplotlib.ticker.NullFormatter())
        axis.set_minor_locator(matplotlib.ticker.NullLocator())
    return ax


def _time_axis(mpl: _Matplotlib, ax: Axes) -> None:
    axis = ax.xaxis
    locator = _fitting_date_locator(mpl)
    axis.set_major_locator(locator)
    axis.set_major_formatter(mpl.dates.ConciseDateFormatter(locator, tz="UTC"))


_LOCATOR_CLASS: type | None = None
#: Width of one date tick label and its gap, in points ("05:45", "Dec 04", "2026").
_DATE_TICK_POINTS = 48


def _fitting_date_locator(mpl: _Matplotlib) -> Any:
    """An AutoDateLocator in UTC that never puts more ticks on the axis than its width holds.

    matplotlib's own asks for 5 to 12 ticks whatever the width, so on a narrow panel of a
    subplot grid "03:00" and "03:30" run together; this one reads the axes' width each time
    it places ticks (after constrained layout has settled it).
    """
    global _LOCATOR_CLASS
    if _LOCATOR_CLASS is None:

        class FittingDateLocator(mpl.dates.AutoDateLocator):
            def get_locator(self, dmin: Any, dmax: Any) -> Any:
                axes = getattr(self.axis, "axes", None)
                if axes is not None:
                    width = axes.get_window_extent().width * 72.0 / axes.figure.dpi
                    # 5 to 12. At least 2 ticks, and at most half as many as the most: then every unit
                    # has an interval that fits (12 hours x (most - 1) >= 2 days x minticks, ...) and
                    # matplotlib never warns it found none; 5 is the fewest for which both hold.
                    most = min(12, max(5, int(width // _DATE_TICK_POINTS)))
                    self.maxticks = dict.fromkeys(self.maxticks, most)
                    self.minticks = max(2, (most - 1) // 2)
                return super().get_locator(dmin, dmax)

        _LOCATOR_CLASS = FittingDateLocator
    return _LOCATOR_CLASS(tz="UTC")


def _days(column: pd.Series) -> np.ndarray:
    """Matplotlib date numbers (float days) of a column of times, NaN where missing; naive times are UTC.

    Takes datetimes (any unit, any time zone), unix seconds (as the API sends them) and ISO
    strings. A value that is not a time in years 1-9999 becomes NaN with one :class:`DataWarning`
    per column, so one bad cell never costs the chart (nor lands silently in another century).
    """
    import matplotlib.dates

    if isinstance(column.dtype, pd.DatetimeTZDtype):
        days = _datetime_days(column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy())
    elif pd.api.types.is_datetime64_dtype(column.dtype):
        days = _datetime_days(column.to_numpy())
    elif pd.api.types.is_bool_dtype(column.dtype) or not (
        pd.api.types.is_numeric_dtype(column.dtype) or column.dtype == object or pd.api.types.is_string_dtype(column.dtype)
    ):
        raise FrameError(f"column {column.name!r} holds {column.dtype} values, not times")
    elif pd.api.types.is_numeric_dtype(column.dtype):  # unix seconds
        days = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan) / 86400.0 + _epoch_days()
    else:
        days = np.array([_one_day(v) for v in column.to_numpy(dtype=object)], dtype=float)
    low, high = _day_bounds()
    with np.errstate(invalid="ignore"):
        days[~((days >= low) & (days <= high))] = np.nan
    lost = np.isnan(days) & column.notna().to_numpy()
    if lost.any():
        first = column[lost].iloc[0]
        warnings.warn(
            f"{int(lost.sum())} value(s) of {column.name!r} are not times in range (first: {str(first)[:40]!r}); "
            "they are left out of the chart",
            DataWarning,
            stacklevel=4,
        )
    return days


def _seconds(column: pd.Series) -> np.ndarray:
    """Seconds (float) of a column of durations, NaN where missing.

    Takes timedeltas of any unit and their text (``"0 days 00:10:00"``, as a CSV
    file holds them); text that is not a duration becomes NaN with one
    :class:`DataWarning` per column.
    """
    if pd.api.types.is_timedelta64_dtype(column.dtype):
        # Whole seconds and the rest apart: a timedelta64[s] of centuries would wrap round in nanoseconds.
        values = column.to_numpy()
        whole = values.astype("timedelta64[s]")
        seconds = whole.astype("int64").astype(float) + (values - whole).astype("timedelta64[ns]").astype("int64") / 1e9
        seconds[pd.isna(column).to_numpy()] = np.nan
        return seconds
    if not (column.dtype == object or pd.api.types.is_string_dtype(column.dtype)):
        raise FrameError(f"plot_durations draws durations, but column {column.name!r} holds {column.dtype} values")
    cells = column.astype(object).where(column.notna(), None)
    # Bare numbers have no unit (pandas would read 90 as 90 nanoseconds): not durations, as in a float column.
    bare = cells.map(lambda v: isinstance(v, (int, float, np.integer, np.floating))
                     and not isinstance(v, (bool, np.timedelta64)))  # np.timedelta64 is an integer type
    if bare.any() and bare.sum() == column.notna().sum():
        raise FrameError(f"plot_durations draws durations, but column {column.name!r} holds numbers without a unit; "
                         "convert them, e.g. pd.to_timedelta(df[col].astype(float), unit='s')")
    parsed = pd.to_timedelta(cells.where(~bare, "not a duration"), errors="coerce")
    lost = parsed.isna().to_numpy() & column.notna().to_numpy()
    if lost.any():
        warnings.warn(
            f"{int(lost.sum())} value(s) of {column.name!r} are not durations (first: {str(column[lost].iloc[0])[:40]!r}); "
            "they are left out of the chart",
            DataWarning,
            stacklevel=4,
        )
    return _seconds(parsed.rename(column.name))


def _datetime_days(values: np.ndarray) -> np.ndarray:
    import matplotlib.dates

    # Native unit (not forced to ns): a year-2300 value stays in 2300 instead of wrapping round.
    return np.asarray(matplotlib.dates.date2num(values), dtype=float)


def _epoch_days() -> float:
    import matplotlib.dates

    return float(matplotlib.dates.date2num(np.datetime64("1970-01-01T00:00:00")))


def _one_day(value: Any) -> float:
    """One cell of an object column: unix seconds, an ISO string, a datetime; NaN if it is none of them."""
    if value is None or isinstance(value, bool) or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value) / 86400.0 + _epoch_days()
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        return float(value) / 86400.0 + _epoch_days()
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    if stamp is pd.NaT:
        return math.nan
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
    return float(_datetime_days(np.array([stamp.to_datetime64()]))[0])


def _now_days(now: Any, frame: pd.DataFrame | None = None) -> float:
    import matplotlib.dates

    if now is None:
        wall = float(matplotlib.dates.date2num(pd.Timestamp.now(tz="UTC").tz_localize(None).to_datetime64()))
        if frame is None:
            return wall
        times = np.concatenate([_quiet_days(frame[c]) for c in ("created_at", "in_progress_at", "finished_at")])
        times = times[np.isfinite(times)]
        if not times.size:
            return wall
        # The latest time in the frame (a simulator's clock may run ahead of the wall clock), but not a
        # stray cell far beyond the rest (a finished_at in 2200): one whose gap to the next time down is
        # wider than everything below it spans (and than a day). At most a tenth of the cells are stray.
        times = np.sort(times)
        top = len(times)
        while top > 1 and top > 0.9 * len(times):
            gap, below = times[top - 1] - times[top - 2], times[top - 2] - times[0]
            if gap <= max(below, _LATE_DAYS):
                break
            top -= 1
        return max(wall, float(times[top - 1]))
    message = f"now must be a time (datetime, Timestamp, ISO string or unix seconds) in years 1-9999, not {now!r:.60}"
    if isinstance(now, (bool, np.bool_, pd.Timedelta, np.timedelta64)) or hasattr(now, "total_seconds"):
        raise FrameError(message)
    if isinstance(now, (int, float, np.integer, np.floating)):  # unix seconds, as the API and sim.now() count
        day = float(now) / 86400.0 + _epoch_days()
    else:
        try:
            stamp = pd.Timestamp(now)
        except (TypeError, ValueError, OverflowError):
            raise FrameError(message) from None
        if stamp is pd.NaT:
            raise FrameError(message)
        stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
        day = float(_datetime_days(np.array([stamp.to_datetime64()]))[0])
    if not _in_years(day):
        raise FrameError(message)
    return day


#: Times this many days after ``now`` have not happened yet: the timeline leaves them out.
_LATE_DAYS = 1.0
_TIME_COLUMNS = frozenset({"created_at", "in_progress_at", "finished_at", "params.estimated_finish"})


def _sort_key(column: pd.Series) -> pd.Series:
    """Time columns sort as times whatever they hold (Timestamps, unix numbers, ISO strings)."""
    return pd.Series(_quiet_days(column), index=column.index) if column.name in _TIME_COLUMNS else _comparable(column)


def _comparable(column: pd.Series) -> pd.Series:
    """A pyarrow column of lists or structs (``params.tags`` read back from Parquet) as their text.

    pyarrow can neither sort nor group nested values; a numpy frame holds the same cells as lists,
    grouped by their text too (:func:`_groups`).
    """
    dtype = column.dtype
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow

        if pyarrow.types.is_nested(dtype.pyarrow_dtype):
            return column.astype(object).map(
                lambda v: v if _missing(v) else str(v.tolist() if isinstance(v, np.ndarray) else v))
    return column


def _quiet_days(column: pd.Series) -> np.ndarray:
    """:func:`_days` for a look ahead (sorting, windows, the default now): the drawing warns once, not these."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return _days(column)


def _day_bounds() -> tuple[float, float]:
    """The date numbers matplotlib can draw and name: years 1 to 9999, a day's margin each side."""
    import matplotlib.dates

    return (float(matplotlib.dates.date2num(np.datetime64("0001-01-02"))),
            float(matplotlib.dates.date2num(np.datetime64("9999-12-30"))))


def _in_years(day: float) -> bool:
    low, high = _day_bounds()
    return bool(math.isfinite(day) and low <= day <= high)


def _since_days(since: Any, now_day: float) -> float:
    message = f"since must be a duration before now ('6h', a Timedelta) or a time, not {since!r:.60}"
    if isinstance(since, (bool, np.bool_)):
        raise FrameError(message)
    span = None
    if isinstance(since, (str, pd.Timedelta, np.timedelta64)) or hasattr(since, "total_seconds"):
        try:
            with warnings.catch_warnings():  # "6H": pandas deprecates the capital, the meaning is plain
                warnings.simplefilter("ignore")
                span = pd.Timedelta(since)
        except (pd.errors.OutOfBoundsTimedelta, OverflowError):
            raise FrameError(f"since={since!r:.60} reaches further back than pandas can count (about 292 years)") from None
        except (TypeError, ValueError):
            span = None
    elif isinstance(since, (int, float, np.integer, np.floating)):
        raise FrameError(message + " (a bare number is ambiguous: write '90min' or pass a time)")
    if span is not None:
        if span is pd.NaT or span < pd.Timedelta(0):
            raise FrameError(message)
        day = now_day - span / pd.Timedelta(days=1)
    else:
        try:
            day = _now_days(since)
        except FrameError:
            raise FrameError(message) from None
    if not _in_years(day):
        raise FrameError(message)
    return day


def _drop_late(frame: pd.DataFrame, columns: dict[str, np.ndarray], now_day: float) -> None:
    """Set times more than a day after ``now`` to NaN (in place), with one warning for them all.

    They have not happened yet: a bad cell (a finished_at in 2200) would otherwise stretch the
    time axis over centuries and squash every other lane.
    """
    import matplotlib.dates

    late = {name: days > now_day + _LATE_DAYS for name, days in columns.items()}
    count = sum(int(mask.sum()) for mask in late.values())
    if not count:
        return
    name = next(n for n, mask in late.items() if mask.any())
    first = frame[name][late[name]].iloc[0]
    now_text = f"{matplotlib.dates.num2date(now_day, tz='UTC'):%Y-%m-%d %H:%M} UTC"
    warnings.warn(f"{count} time(s) more than a day after now ({now_text}) are left out of the chart "
                  f"(first: {name} {str(first)[:40]!r}); if the frame runs on another clock, pass now=",
                  DataWarning, stacklevel=5)
    for name, mask in late.items():
        columns[name][mask] = np.nan


def _alive_after(frame: pd.DataFrame, since_day: float, now_day: float) -> np.ndarray:
    """Rows whose drawn extent reaches ``since_day``: finished after it, or not finished at all."""
    finished = _quiet_days(frame["finished_at"])
    latest = np.fmax(np.fmax(_quiet_days(frame["created_at"]), _quiet_days(frame["in_progress_at"])), finished)
    status = _statuses(frame)
    open_ = np.isnan(finished) & ~_terminal(status) & ~np.isnan(latest)
    return (open_ & (now_day >= since_day)) | (latest >= since_day)


#: Up to this many bars or points, a legend inside the axes is placed where it covers least.
BEST_LEGEND_ITEMS = 1000


def _legend(mpl: _Matplotlib, ax: Axes, handles: list, names: list[str], *, outside: bool, corner: str,
            items: int) -> None:
    """Beside the axes on a figure the chart made; inside axes the caller gave, where it covers least.

    ``loc="best"`` is placed at draw time, against the spans, points and labels drawn (matplotlib
    weighs every bar of a PolyCollection), so a legend does not hide the one failed job's end. It
    is weighed again on every draw and costs seconds with 10,000 bars: beyond
    :data:`BEST_LEGEND_ITEMS` the legend takes ``corner``.
    """
    options: dict[str, Any] = {"fontsize": "small", "handler_map": {tuple: mpl.legend_handler.HandlerTuple(ndivide=None)}}
    if outside:
        options.update(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    else:
        options.update(loc="best" if items <= BEST_LEGEND_ITEMS else corner, framealpha=0.9)
    ax.legend(handles, names, **options)


def _statuses(frame: pd.DataFrame) -> np.ndarray:
    """Each row's status as text; ``unknown`` where it is missing (or the frame has no status column)."""
    if "status" not in frame.columns:
        return np.full(len(frame), "unknown", dtype=object)
    return np.array(["unknown" if pd.isna(s) else str(s) for s in frame["status"].astype(object)], dtype=object)


def _terminal(status: np.ndarray) -> np.ndarray:
    return np.array([s in TERMINAL_STATUSES for s in status], dtype=bool)


def _present(status: np.ndarray) -> list[str]:
    seen = set(status)
    return [s for s in STATUSES if s in seen] + sorted(seen - set(STATUSES))


def _estimated_finish(frame: pd.DataFrame) -> np.ndarray:
    if "params.estimated_finish" not in frame.columns:
        return np.full(len(frame), np.nan)
    return _days(frame["params.estimated_finish"])


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Floats of a column of counts, NaN where missing, not a number, or infinite."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[column]
    try:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError, NotImplementedError):  # pyarrow decimals with nulls trip pandas: go cell by cell
        numbers = pd.to_numeric(values.astype(object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    numbers = np.where(np.isfinite(numbers), numbers, np.nan)  # a copy: to_numpy may hand out a read-only view
    return numbers


def _tint(rgba: np.ndarray, share: float) -> np.ndarray:
    """Mix ``share`` of white into each colour (opaque, so grid lines do not show through)."""
    if len(rgba) == 0:
        return np.zeros((0, 4))
    out = rgba.copy()
    out[:, :3] = rgba[:, :3] + (1.0 - rgba[:, :3]) * share
    return out


def _rects(start: np.ndarray, end: np.ndarray, lanes: np.ndarray) -> np.ndarray:
    """Rectangles (n, 4, 2) from start to end, ``_LANE`` high around each lane."""
    top, bottom = lanes - _LANE / 2, lanes + _LANE / 2
    return np.stack(
        [np.column_stack([start, top]), np.column_stack([start, bottom]),
         np.column_stack([end, bottom]), np.column_stack([end, top])],
        axis=1,
    )


def _marker_size(ax: Axes, lanes: int) -> float:
    """Marker size in points: most of a lane's height, between 2 and 8 points."""
    height = ax.get_window_extent().height * 72.0 / ax.figure.dpi
    return float(np.clip(0.7 * height / max(lanes, 1), 2.0, 8.0))


def _plain(value: Any, limit: int = 40) -> str:
    """Text from data as matplotlib should show it: one line, cut at ``limit``, ``$`` not read as maths."""
    if value is None or (not isinstance(value, (list, tuple, dict, set, np.ndarray)) and pd.isna(value)):
        return ""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    import matplotlib

    # Escaped only where matplotlib would read maths: with text.parse_math off a "\\$" shows as typed.
    return text.replace("$", r"\$") if matplotlib.rcParams["text.parse_math"] else text


def _short(value: Any) -> str:
    text = str(value)
    return _plain(text[:8] + "…" if len(text) > 16 else text)


def _label_texts(labels: pd.Series, shorten: bool) -> list[str]:
    """Lane labels; shortened ids stay unique (``ftjob-20…alpha``) when their first characters collide."""
    values = list(labels.astype(object))
    if not shorten:
        return [_plain(v, 25) for v in values]
    texts = [_short(v) if not _missing(v) else "" for v in values]
    seen: dict[str, set[str]] = {}
    for v, t in zip(values, texts, strict=True):
        if t:
            seen.setdefault(t, set()).add(str(v))
    clash = {t for t, originals in seen.items() if len(originals) > 1}
    texts = [_plain(str(v)[:8] + "…" + str(v)[-6:]) if t in clash else t for v, t in zip(values, texts, strict=True)]
    seen = {}
    for v, t in zip(values, texts, strict=True):
        if t:
            seen.setdefault(t, set()).add(str(v))
    clash = {t for t, originals in seen.items() if len(originals) > 1}  # alike at both ends: shown whole
    return [_plain(v) if t in clash else t for v, t in zip(values, texts, strict=True)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT or value is pd.NA


def _lane_labels(mpl: _Matplotlib, ax: Axes, labels: pd.Series | None, shorten: bool) -> None:
    if labels is None:
        ax.yaxis.set_major_locator(mpl.ticker.NullLocator())
        return
    ax.tick_params(axis="y", labelsize="small")
    _lane_ticks(mpl, ax, _label_texts(labels, shorten), "small")


def _lane_ticks(mpl: _Matplotlib, ax: Axes, texts: list[str], size: str | float) -> None:
    """One y tick label per lane (lane ``i`` at ``y = i``), thinned to what the axes' height holds."""
    # As many labels as the axes' height holds at the label font size (1.25 lines each).
    font = mpl.font_manager.FontProperties(size=size).get_size_in_points()
    height = ax.get_window_extent().height * 72.0 / ax.figure.dpi
    room = max(2, int(height / (1.25 * font)))
    if len(texts) <= room:
        ax.set_yticks(range(len(texts)), texts)
        return

    def name(value: float, _pos: int) -> str:
        i = int(round(value))
        return texts[i] if abs(value - i) < 1e-6 and 0 <= i < len(texts) else ""

    ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=room, integer=True, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(name))


def _groups(frame: pd.DataFrame, by: str | None) -> list[tuple[str, np.ndarray]]:
    """(name, row mask) per value of ``by`` that occurs, in category order (or sorted), missing last."""
    if by is None:
        return [("all", np.ones(len(frame), dtype=bool))]
    column = frame[by]
    if not isinstance(column, pd.Series):
        raise FrameError(f"by={by!r} names more than one column")
    column = _comparable(column)
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        names = [str(c) for c in column.cat.categories]
        order = [i for i in range(len(names)) if (codes == i).any()]
    else:
        try:
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
        except TypeError:  # lists in cells (params.tags): group by their text
            codes, uniques = pd.factorize(column.map(lambda v: v if _missing(v) else str(v)), use_na_sentinel=True)
        names = [str(u) for u in uniques]
        order = sorted(range(len(names)), key=lambda i: names[i])
    out = [(_plain(names[i], 30), codes == i) for i in order]
    missing = codes == -1
    if missing.any():
        out.append(("(missing)", missing))
    return out


def _pick_unit(seconds: np.ndarray) -> str:
    """The largest unit in which the median duration is at least 1 (so most numbers read 1 to a few hundred)."""
    typical = float(np.median(seconds))
    chosen = DURATION_UNITS[0][0]
    for name, size in DURATION_UNITS:
        if typical >= size:
            chosen = name
    return chosen


def _wants_log(seconds: np.ndarray) -> bool:
    positive = seconds[seconds > 0]
    if positive.size < 2:
        return False
    # With few values every one counts; with many, the outer 5% do not decide the scale.
    low, high = np.percentile(positive, [5, 95]) if positive.size >= 20 else (positive.min(), positive.max())
    return bool(high / max(low, 1e-9) > 100)


def _human_tick(seconds: float) -> str:
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds >= 2 * 365 * 86400:  # "730 d" reads better as "2 y"
        return f"{sign}{seconds / (365 * 86400):g} y"
    for name, size in reversed(DURATION_UNITS):
        if seconds >= size:
            return f"{sign}{seconds / size:g} {name}"
    if seconds == 0:
        return "0"
    if seconds < 0.001:
        return f"{sign}{seconds * 1e6:g} µs"
    return f"{sign}{seconds * 1000:g} ms" if seconds < 0.1 else f"{sign}{seconds:g} s"


def _last(values: np.ndarray) -> float:
    known = values[~np.isnan(values)]
    return float(known[-1]) if known.size else math.nan


def _count(value: float) -> str:
    return "–" if np.isnan(value) else f"{int(value):,}"
