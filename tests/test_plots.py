"""Charts: drawn with Agg, checked on the artists (lanes, span positions and widths, colours, units)."""

from __future__ import annotations

import subprocess
import sys
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import nb_ops
from nb_ops.plots import MEASURE_STYLES, QUEUE_TINT
from nb_ops.spec import STATUS_COLORS

T0 = 1_790_000_000  # unix seconds, 2026-09-21
NOW = T0 + 5_000


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def day(unix: float) -> float:
    return float(mdates.date2num(pd.Timestamp(unix, unit="s").to_datetime64()))


def rgba(color) -> tuple:
    return tuple(np.round(mcolors.to_rgba(color), 6))


def light(color) -> tuple:
    r, g, b, a = mcolors.to_rgba(color)
    return tuple(np.round([r + (1 - r) * QUEUE_TINT, g + (1 - g) * QUEUE_TINT, b + (1 - b) * QUEUE_TINT, a], 6))


def op(op_id, status, created=None, started=None, finished=None, *, type="yql", **params):
    return {
        "id": op_id, "type": type, "status": status, "params": params, "src": [], "dst": [],
        "created_at": created, "in_progress_at": started, "finished_at": finished,
    }


FLEET = [
    op("a-succeeded", "succeeded", T0, T0 + 600, T0 + 3_600),
    op("b-failed-no-wait", "failed", T0 + 100, T0 + 100, T0 + 1_000),
    op("c-queued", "queued", T0 + 4_000),
    op("d-running-ft", "running", T0 + 200, T0 + 1_200, None, type="finetuning", model_name="m",
       trained_steps=40, total_steps=100, estimated_finish=NOW + 2_000),
    op("e-cancel-queued", "cancelled", T0 + 300, None, T0 + 900),
    op("f-instant", "succeeded", T0 + 2_000, T0 + 2_000, T0 + 2_000),
    op("g-no-times", "unknown"),
]


def by_gid(ax, gid):
    found = [a for a in [*ax.collections, *ax.lines] if a.get_gid() == gid]
    assert len(found) <= 1, f"more than one artist with gid {gid}"
    return found[0] if found else None


def spans(collection):
    """(lane, start, width) of each rectangle, and its face colour."""
    out = []
    faces = collection.get_facecolors()
    if len(faces) != len(collection.get_paths()):  # outlines only (facecolor "none"): their edge colours
        faces = collection.get_edgecolors()
    for path, face in zip(collection.get_paths(), faces, strict=True):
        xs, ys = path.vertices[:4, 0], path.vertices[:4, 1]
        out.append((round(float(ys.mean()), 6), float(xs.min()), float(xs.max() - xs.min()), tuple(np.round(face, 6))))
    return sorted(out)


def lane_of(ax, name):
    labels = [t.get_text() for t in ax.get_yticklabels()]
    return labels.index(name)


def timeline(**kwargs):
    return nb_ops.plot_timeline(nb_ops.to_frame(FLEET), now=pd.Timestamp(NOW, unit="s", tz="UTC"), label="id",
                                **kwargs)


# --- timeline ---------------------------------------------------------------------------------------


def test_timeline_has_a_lane_per_operation_in_creation_order():
    ax = timeline()
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "a-succeeded", "b-failed-no-wait", "d-running-ft", "e-cancel-queued", "f-instant", "c-queued",
        "g-no-times",
    ]
    bottom, top = ax.get_ylim()
    assert bottom == 6.5 and -1.5 < top < -0.5  # first lane on top, a strip above it for the "now" tag
    assert len(ax.patches) == 0 and len(ax.collections) <= 6  # collections, not a patch per bar


def test_timeline_spans_start_and_width_equal_the_data():
    ax = timeline()
    queue, run = spans(by_gid(ax, "queue")), spans(by_gid(ax, "run"))
    lane = {name: lane_of(ax, name) for name in ("a-succeeded", "b-failed-no-wait", "d-running-ft",
                                                 "e-cancel-queued", "f-instant", "c-queued")}
    green, red, blue = STATUS_COLORS["succeeded"], STATUS_COLORS["failed"], STATUS_COLORS["running"]
    expected_queue = {
        (lane["a-succeeded"], T0, T0 + 600, light(green)),
        (lane["b-failed-no-wait"], T0 + 100, T0 + 100, light(red)),
        (lane["d-running-ft"], T0 + 200, T0 + 1_200, light(blue)),
        (lane["e-cancel-queued"], T0 + 300, T0 + 900, light(STATUS_COLORS["cancelled"])),  # never started
        (lane["f-instant"], T0 + 2_000, T0 + 2_000, light(green)),
        (lane["c-queued"], T0 + 4_000, NOW, light(STATUS_COLORS["queued"])),  # still waiting: open to now
    }
    expected_run = {
        (lane["a-succeeded"], T0 + 600, T0 + 3_600, rgba(green)),
        (lane["b-failed-no-wait"], T0 + 100, T0 + 1_000, rgba(red)),
        (lane["d-running-ft"], T0 + 1_200, NOW, rgba(blue)),  # running: open to now
        (lane["f-instant"], T0 + 2_000, T0 + 2_000, rgba(green)),
    }
    for got, want in ((queue, expected_queue), (run, expected_run)):
        assert len(got) == len(want)
        for (y, start, width, face), (wy, ws, we, wface) in zip(got, sorted(want), strict=True):
            assert y == wy and face == wface
            assert start == pytest.approx(day(ws), abs=1e-9)
            assert width == pytest.approx(day(we) - day(ws), abs=1e-9)


def test_timeline_marks_open_spans_now_and_estimated_finish():
    ax = timeline()
    now = by_gid(ax, "now")
    assert now.get_xdata()[0] == pytest.approx(day(NOW))
    open_ends = by_gid(ax, "open").get_offsets()
    assert sorted(open_ends[:, 1]) == sorted([lane_of(ax, "c-queued"), lane_of(ax, "d-running-ft")])
    assert np.allclose(open_ends[:, 0], day(NOW))
    (segment,) = by_gid(ax, "estimated_finish").get_segments()
    assert segment[0] == pytest.approx([day(NOW), lane_of(ax, "d-running-ft")])
    assert segment[1] == pytest.approx([day(NOW + 2_000), lane_of(ax, "d-running-ft")])
    assert by_gid(ax, "estimated_finish").get_linestyle()[0][1] is not None  # dashed
    assert ax.get_xlim()[1] > day(NOW + 2_000)  # the estimate is in view
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:5] == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert "estimated finish" in legend and "not finished yet, to now" in legend


def test_timeline_zero_length_span_shows_as_a_marker_and_missing_times_draw_nothing():
    ax = timeline()
    instants = by_gid(ax, "instant").get_offsets()
    assert instants.tolist() == [[pytest.approx(day(T0 + 2_000)), lane_of(ax, "f-instant")]]
    g = lane_of(ax, "g-no-times")
    everything = [*spans(by_gid(ax, "queue")), *spans(by_gid(ax, "run"))]
    assert all(y != g for y, *_ in everything)


def test_timeline_hatches_an_unknown_operations_open_span_instead_of_drawing_it_running():
    ops = [*FLEET, op("h-unknown", "unknown", T0 + 50, T0 + 150)]
    ax = nb_ops.plot_timeline(nb_ops.to_frame(ops), now=NOW)
    h = lane_of(ax, "h-unknown")
    assert all(y != h for y, *_ in spans(by_gid(ax, "run")))  # not a solid "running for days" bar
    (hatched,) = [s for s in spans(by_gid(ax, "uncertain")) if s[0] == h]
    assert hatched[1] == pytest.approx(day(T0 + 150)) and hatched[1] + hatched[2] == pytest.approx(day(NOW))
    assert by_gid(ax, "uncertain").get_hatch() == "////"
    assert h not in by_gid(ax, "open").get_offsets()[:, 1]  # no "still going" arrow either
    assert "status unknown since" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_timeline_since_keeps_what_was_alive_in_the_window():
    frame = nb_ops.to_frame(FLEET)
    ax = nb_ops.plot_timeline(frame, now=NOW, since="1h")  # window NOW-3600 .. NOW
    names = [t.get_text() for t in ax.get_yticklabels()]
    # a (finished T0+3600 > NOW-3600), d running, f (T0+2000), c queued stay; b and e ended before; g has no times.
    assert names == ["a-succeeded", "d-running-ft", "f-instant", "c-queued"]
    left, right = day(NOW - 3600), day(NOW + 2_000)  # d's estimated finish is the rightmost thing drawn
    assert ax.get_xlim() == pytest.approx((left, right + 0.02 * (right - left)))  # not widened by a week-old lane
    same = nb_ops.plot_timeline(frame, now=NOW, since=pd.Timestamp(NOW - 3600, unit="s", tz="UTC"))
    assert [t.get_text() for t in same.get_yticklabels()] == names
    empty = nb_ops.plot_timeline(frame.iloc[[1]], now=NOW, since="10min")
    assert [t.get_text() for t in empty.texts] == ["no operations in this window"]
    for bad in (5, "soon", pd.Timedelta("-1h"), True):
        with pytest.raises(nb_ops.FrameError, match="since must be"):
            nb_ops.plot_timeline(frame, now=NOW, since=bad)


def test_legend_sits_beside_a_chart_made_here_and_inside_given_axes():
    own = timeline()
    assert own.get_legend().get_bbox_to_anchor().x0 > own.get_window_extent().x1 - 1
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    nb_ops.plot_timeline(nb_ops.to_frame(FLEET), now=NOW, ax=left)
    fig.canvas.draw()
    box = left.get_legend().get_window_extent()
    area = left.get_window_extent()
    assert area.x0 <= box.x0 and box.x1 <= area.x1 + 1  # does not spill onto the neighbour


def test_timeline_without_open_operations_has_no_now_line():
    done = [o for o in FLEET if o["status"] in ("succeeded", "failed", "cancelled")]
    ax = nb_ops.plot_timeline(nb_ops.to_frame(done))
    assert by_gid(ax, "now") is None and by_gid(ax, "open") is None and by_gid(ax, "estimated_finish") is None
    assert "now" not in [t.get_text() for t in ax.texts]


def test_timeline_axis_is_utc_dates_and_draws_without_warnings():
    ax = timeline()
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    ax.figure.canvas.draw()  # any warning is an error here (filterwarnings = error)
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and ax.get_xlabel() == "time (UTC)"


def test_timeline_now_as_unix_seconds_or_naive_datetime_is_utc():
    a = spans(by_gid(timeline(), "run"))
    b = spans(by_gid(nb_ops.plot_timeline(nb_ops.to_frame(FLEET), now=NOW), "run"))
    c = spans(by_gid(nb_ops.plot_timeline(nb_ops.to_frame(FLEET), now=pd.Timestamp(NOW, unit="s").to_pydatetime()),
                     "run"))
    assert a == b == c


def test_timeline_default_now_is_not_before_the_data():
    # A frame whose times are ahead of the wall clock (a sped-up simulator): open spans end at the latest time, not before it.
    future = T0 + 10 * 365 * 86400
    ops = [op("x", "running", future, future + 60), op("y", "succeeded", future, future + 10, future + 500)]
    ax = nb_ops.plot_timeline(nb_ops.to_frame(ops))
    (y, start, width, _), _ = spans(by_gid(ax, "run"))
    assert start + width == pytest.approx(day(future + 500))


def test_timeline_sorts_and_labels_by_other_columns_and_keeps_frame_order_with_none():
    frame = nb_ops.to_frame(FLEET)
    ax = nb_ops.plot_timeline(frame, now=NOW, sort=None)
    assert [t.get_text() for t in ax.get_yticklabels()] == frame["id"].tolist()
    ax = nb_ops.plot_timeline(frame, now=NOW, sort=["status", "id"], label="type")
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["yql", "finetuning"]  # queued, then running
    ax = nb_ops.plot_timeline(frame, now=NOW, label=None)
    assert ax.get_yticklabels() == []


def test_timeline_of_1000_operations_is_fast_and_thins_labels(start_sim):
    sim = start_sim(speed=0, size=1000)
    with sim.client() as client:
        frame = nb_ops.to_frame(client.get_operations(sim.operation_ids))
    started = time.perf_counter()
    ax = nb_ops.plot_timeline(frame, now=sim.now())
    ax.figure.savefig(_devnull(), format="png")
    took = time.perf_counter() - started
    assert took < 5.0, f"1,000 lanes took {took:.1f} s"  # about 0.5 s here; the bound only catches an artist per bar
    assert len(ax.patches) == 0 and len(ax.collections) <= 6
    assert len(by_gid(ax, "queue").get_paths()) + len(by_gid(ax, "run").get_paths()) >= 1000
    visible = [t for t in ax.get_yticklabels() if t.get_text()]
    assert 10 <= len(visible) <= 100
    # The labels that are shown do not overlap.
    boxes = sorted((t.get_window_extent().y0, t.get_window_extent().y1) for t in visible)
    assert all(b0 >= a1 - 0.5 for (_, a1), (b0, _) in zip(boxes, boxes[1:]))


def test_timeline_labels_every_lane_when_they_fit():
    ops = [op(f"op-{i:02d}", "succeeded", T0 + i * 60, T0 + i * 60 + 10, T0 + i * 60 + 50) for i in range(60)]
    ax = nb_ops.plot_timeline(nb_ops.to_frame(ops))
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"op-{i:02d}" for i in range(60)]


def test_timeline_shortens_long_ids_and_draws_on_given_axes():
    fig, ax = plt.subplots()
    ops = [op("97f4087b05d93a67f41717960ebb6224", "succeeded", T0, T0 + 1, T0 + 2)]
    assert nb_ops.plot_timeline(nb_ops.to_frame(ops), ax=ax) is ax
    assert [t.get_text() for t in ax.get_yticklabels()] == ["97f4087b…"]


def test_timeline_accepts_a_batch_and_an_empty_frame(sim):
    with sim.client() as client:
        batch = client.get_operations(sim.operation_ids[:5])
    ax = nb_ops.plot_timeline(batch, now=sim.now())
    assert len(ax.get_yticklabels()) == 5
    empty = nb_ops.plot_timeline(nb_ops.to_frame([]))
    assert [t.get_text() for t in empty.texts] == ["no operations"]


def test_timeline_kwargs_reach_the_running_spans():
    ax = timeline(alpha=0.5, linewidths=2)
    assert by_gid(ax, "run").get_alpha() == 0.5 and by_gid(ax, "run").get_linewidths()[0] == 2


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda f: nb_ops.plot_timeline(f.drop(columns="in_progress_at")), "needs a 'in_progress_at' column"),
        (lambda f: nb_ops.plot_timeline(f, sort="nope"), "'nope'"),
        (lambda f: nb_ops.plot_timeline(f, label="nope"), "'nope'"),
        (lambda f: nb_ops.plot_timeline(f, now="not a time"), "now must be a time"),
        (lambda f: nb_ops.plot_timeline(f, now=True), "now must be a time"),
        (lambda f: nb_ops.plot_timeline("op-1"), "expected a DataFrame"),
        (lambda f: nb_ops.plot_timeline({"id": "x"}), "expected a DataFrame"),
        (lambda f: nb_ops.plot_durations(f, which="status"), "holds category values"),
        (lambda f: nb_ops.plot_durations(f, which=()), "at least one"),
        (lambda f: nb_ops.plot_durations(f, unit="weeks"), "unit must be one of"),
        (lambda f: nb_ops.plot_durations(f, by="nope"), "'nope'"),
        (lambda f: nb_ops.plot_training(f[["id", "status"]].rename(columns={"id": "x"})), "plot_training needs"),
    ],
)
def test_bad_input_raises_a_frame_error(call, message):
    with pytest.raises(nb_ops.FrameError, match=message) as info:
        call(nb_ops.to_frame(FLEET))
    assert isinstance(info.value, ValueError)


def test_timeline_tolerates_times_as_unix_numbers_and_strings():
    frame = nb_ops.to_frame(FLEET)
    raw = frame.assign(
        created_at=[o["created_at"] for o in FLEET],  # unix seconds, as the API sends them
        in_progress_at=frame["in_progress_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        finished_at=frame["finished_at"].dt.tz_localize(None),  # naive: taken as UTC
    )
    assert spans(by_gid(nb_ops.plot_timeline(raw, now=NOW), "run")) == spans(by_gid(timeline(), "run"))


# --- durations --------------------------------------------------------------------------------------


def durations_frame(seconds_by_type):
    rows = []
    for i, (kind, queue, run) in enumerate(seconds_by_type):
        rows.append(op(f"op{i}", "succeeded", T0, T0 + queue, T0 + queue + run, type=kind))
    return nb_ops.to_frame(rows)


def medians(ax):
    return [(round(s[0][1] + (s[1][1] - s[0][1]) / 2, 6), s[0][0]) for s in by_gid(ax, "medians").get_segments()]


@pytest.mark.parametrize(
    "scale, unit",
    [(1, "s"), (60, "min"), (3600, "h"), (86400 * 3, "d")],
)
def test_durations_unit_is_chosen_from_the_data(scale, unit):
    frame = durations_frame([("yql", 2 * scale, 3 * scale), ("yql", 4 * scale, 5 * scale), ("yql", 3 * scale, 9 * scale)])
    ax = nb_ops.plot_durations(frame)
    assert ax.get_xlabel() == f"duration ({unit})"
    factor = {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit]
    got = sorted(x for _, x in medians(ax))
    assert got == pytest.approx(sorted([3 * scale / factor, 5 * scale / factor]))


def test_durations_boxes_quartiles_whiskers_and_groups_equal_the_data():
    frame = durations_frame(
        [("yql", q, r) for q, r in [(60, 600), (120, 660), (180, 720), (240, 780), (3000, 840)]]
        + [("finetuning", 30, 3000), ("finetuning", 90, 3600)]
    )
    ax = nb_ops.plot_durations(frame, log=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["yql (n=5)", "finetuning (n=2)"]  # the spec's type order
    assert ax.get_xlabel() == "duration (min)"
    boxes = by_gid(ax, "boxes").get_paths()
    assert len(boxes) == 4  # two groups x two measures
    yql_queue = np.array([60, 120, 180, 240, 3000]) / 60
    q1, q3 = np.percentile(yql_queue, [25, 75])
    assert boxes[0].vertices[:4, 0].min() == pytest.approx(q1) and boxes[0].vertices[:4, 0].max() == pytest.approx(q3)
    # Tukey whiskers: 3000 s lies beyond 1.5 IQR, so the upper whisker stops at 240 s.
    whisker_ends = [seg[1][0] for seg in by_gid(ax, "whiskers").get_segments()[:4][1:2]]
    assert whisker_ends == [pytest.approx(4.0)]
    faces = by_gid(ax, "boxes").get_facecolors()
    assert rgba(faces[0])[:3] == rgba(MEASURE_STYLES["queue_duration"][1])[:3]
    assert rgba(faces[1])[:3] == rgba(MEASURE_STYLES["queue_duration"][1])[:3]  # measures outer, groups inner
    assert rgba(faces[2])[:3] == rgba(MEASURE_STYLES["run_duration"][1])[:3]
    dots = by_gid(ax, "queue_duration").get_offsets()
    assert sorted(dots[:, 0]) == pytest.approx(sorted([1, 2, 3, 4, 50, 0.5, 1.5]))  # every operation drawn
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["waiting in queue", "running"]


def test_durations_use_a_log_scale_when_they_span_orders_of_magnitude():
    frame = durations_frame([("yql", 5, 2), ("yql", 7, 20_000), ("batch_inference", 9, 40_000), ("yql", 8, 30)])
    ax = nb_ops.plot_durations(frame)
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel().endswith("log scale)")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "1 h" in labels or "2 h" in labels  # ticks read as durations, not powers of ten
    zeros = durations_frame([("yql", 0, 2), ("yql", 0, 20_000), ("yql", 3, 40_000)])
    ax = nb_ops.plot_durations(zeros)
    assert ax.get_xscale() == "symlog"  # a zero wait stays on the chart
    ax.figure.canvas.draw()


def test_durations_by_none_one_column_and_missing_values():
    frame = durations_frame([("yql", 60, 120), ("finetuning", 120, 240)])
    frame.loc[1, "run_duration"] = pd.NaT
    ax = nb_ops.plot_durations(frame, by=None, which="run_duration")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["all (n=1)"]  # n counts what is drawn
    assert len(by_gid(ax, "boxes").get_paths()) == 1
    assert by_gid(ax, "run_duration").get_offsets()[:, 0].tolist() == [2.0]  # the missing one is not drawn


def test_durations_with_no_data_say_so():
    ax = nb_ops.plot_durations(nb_ops.to_frame([op("q", "queued", T0)]))
    assert [t.get_text() for t in ax.texts] == ["no durations to draw"]


# --- training ---------------------------------------------------------------------------------------


def test_training_from_a_monitor_history_follows_the_steps(start_sim):
    sim = start_sim(speed=0, size=60, start_time=T0)
    with sim.client() as client:
        ops = client.get_operations(sim.operation_ids)
    ft = [o.id for o in ops if o.type == "finetuning" and o.status == "running" and o.total_steps]
    assert ft, "the seed-0 fleet has running fine-tuning jobs"
    with sim.client() as client:
        monitor = nb_ops.watch(ft, client=client, interval=0.05, display=False, clock=sim.now, timeout=60)
        while monitor.running:
            sim.advance(240)
            time.sleep(0.06)
    history = monitor.history
    ax = nb_ops.plot_training(monitor)
    curves = by_gid(ax, "steps").get_segments()
    assert len(curves) == len(ft)
    for op_id, curve in zip(ft, curves, strict=True):
        rows = history[(history["operation_id"] == op_id) & history["trained_steps"].notna()]
        assert curve[:, 1].tolist() == rows["trained_steps"].astype(float).tolist()
        assert curve[:, 0] == pytest.approx(mdates.date2num(rows["observed_at"].dt.tz_localize(None).to_numpy()))
        assert curve[-1, 1] == rows["total_steps"].iloc[-1]  # watched to the end
    targets = by_gid(ax, "targets").get_segments()
    assert sorted(t[0][1] for t in targets) == sorted(float(o.total_steps) for o in ops if o.id in ft)
    # Observations are on the simulator's clock, like the estimated finish.
    assert T0 <= history["observed_at"].min().timestamp() < T0 + 3600  # months from the wall clock
    # Every job finished: their old estimates are not drawn as if still pending.
    assert set(history.groupby("operation_id")["status"].last()) <= {"succeeded", "failed", "cancelled"}
    assert by_gid(ax, "estimated_finish") is None and by_gid(ax, "projections") is None
    assert ax.get_ylabel() == "trained steps"


def test_training_history_curves_relative_and_with_gaps():
    t = pd.Timestamp(T0, unit="s", tz="UTC")
    history = pd.DataFrame({
        "operation_id": ["a", "a", "a", "b", "b", "c"],
        "observed_at": [t, t + pd.Timedelta("1min"), t + pd.Timedelta("2min"), t, t + pd.Timedelta("2min"), t],
        "status": ["running"] * 6,
        "trained_steps": pd.array([10, None, 30, 5, 50, None], dtype="Int64"),
        "total_steps": pd.array([100, 100, 100, 50, 50, None], dtype="Int64"),
        "estimated_finish": [t + pd.Timedelta("10min"), pd.NaT, t + pd.Timedelta("8min"), pd.NaT, pd.NaT, pd.NaT],
    })
    ax = nb_ops.plot_training(history)
    curves = by_gid(ax, "steps").get_segments()
    assert [c[:, 1].tolist() for c in curves] == [[10, 30], [5, 50]]  # missing steps skipped; c never had any
    (star,) = by_gid(ax, "estimated_finish").get_offsets()
    assert star.tolist() == [pytest.approx(day(T0 + 480)), 100]  # the latest estimate
    (projection,) = by_gid(ax, "projections").get_segments()
    assert projection.tolist() == [[pytest.approx(day(T0 + 120)), 30], [pytest.approx(day(T0 + 480)), 100]]
    rel = nb_ops.plot_training(history, relative=True)
    assert [c[:, 1].tolist() for c in by_gid(rel, "steps").get_segments()] == [[0.1, 0.3], [0.1, 1.0]]
    assert rel.get_ylabel() == "share of total steps"


def test_training_curves_are_coloured_by_status_and_named_at_their_end():
    t = pd.Timestamp(T0, unit="s", tz="UTC")
    minute = pd.Timedelta("1min")
    history = pd.DataFrame({
        "operation_id": ["ok", "ok", "bad", "bad", "once"],
        "observed_at": [t, t + minute, t, t + minute, t],
        "status": pd.Categorical(["running", "succeeded", "running", "failed", "succeeded"]),
        "trained_steps": pd.array([50, 100, 10, 54, 2824], dtype="Int64"),
        "total_steps": pd.array([100, 100, 126, 126, 2824], dtype="Int64"),
        "estimated_finish": [pd.NaT] * 5,
    })
    ax = nb_ops.plot_training(history)
    assert [rgba(c) for c in by_gid(ax, "steps").get_colors()] == [
        rgba(STATUS_COLORS["succeeded"]), rgba(STATUS_COLORS["failed"]), rgba(STATUS_COLORS["succeeded"])]
    assert [t.get_text() for t in ax.texts] == ["ok", "bad", "once"]
    assert by_gid(ax, "stopped").get_offsets().tolist() == [[pytest.approx(day(T0 + 60)), 54]]
    # The job seen once still has a visible target line.
    once = [seg for seg in by_gid(ax, "targets").get_segments() if seg[0][1] == 2824][0]
    assert once[1][0] - once[0][0] > 0.02 * (ax.get_xlim()[1] - ax.get_xlim()[0])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["succeeded (2)", "failed (1)"] and "stopped (failed, cancelled)" in legend


def test_training_names_of_jobs_ending_together_do_not_overlap():
    t = pd.Timestamp(T0, unit="s", tz="UTC")
    minute = pd.Timedelta("1min")
    ids = ["a" * 8 + "1" * 24, "b" * 8 + "2" * 24, "c" * 8 + "3" * 24, "far-below"]
    history = pd.DataFrame({  # three jobs of different lengths reach 100% at the same moment
        "operation_id": [i for i in ids for _ in range(2)],
        "observed_at": [t, t + 20 * minute] * 4,
        "status": ["running", "succeeded"] * 4,
        "trained_steps": pd.array([100, 720, 20, 140, 1, 50, 1, 2], dtype="Int64"),
        "total_steps": pd.array([720, 720, 140, 140, 50, 50, 1000, 1000], dtype="Int64"),
    })
    ax = nb_ops.plot_training(history, relative=True)
    ax.figure.canvas.draw()
    names = [t for t in ax.texts if t.get_gid() == "job_label"]
    assert [t.get_text() for t in names] == ["aaaaaaaa…", "bbbbbbbb…", "cccccccc…", "far-below"]
    boxes = [t.get_window_extent() for t in names]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all(ax.bbox.y0 <= b.y0 and b.y1 <= ax.figure.bbox.y1 for b in boxes)  # still on the figure
    assert names[-1].xyann == (4, 2)  # a name with room stays at its line's end


def test_training_with_no_steps_says_so():
    history = pd.DataFrame({"operation_id": ["a"], "observed_at": [pd.Timestamp(T0, unit="s", tz="UTC")],
                            "trained_steps": pd.array([None], dtype="Int64"),
                            "total_steps": pd.array([None], dtype="Int64")})
    ax = nb_ops.plot_training(history)
    assert [t.get_text() for t in ax.texts] == ["no training steps observed"]
    ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == []  # no 1970 date axis around nothing


def test_training_from_a_frame_draws_progress_bars():
    ops = [
        op("ft-run", "running", T0, T0 + 10, type="finetuning", trained_steps=763, total_steps=1480,
           estimated_finish=NOW),
        op("ft-done", "succeeded", T0, T0 + 10, T0 + 99, type="finetuning", trained_steps=48, total_steps=48),
        op("ft-queued", "queued", T0, type="finetuning", total_steps=3512),
        op("ft-no-steps", "running", T0, T0 + 1, type="finetuning"),
        op("not-ft", "succeeded", T0, T0 + 1, T0 + 2),
    ]
    ax = nb_ops.to_frame(ops).ops.training()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ft-run", "ft-queued", "ft-done"]  # in flight first
    bars = spans(by_gid(ax, "progress"))
    assert [(y, start, round(width, 6), face) for y, start, width, face in bars] == [
        (0.0, 0.0, round(763 / 1480, 6), rgba(STATUS_COLORS["running"])),
        (1.0, 0.0, 0.0, rgba(STATUS_COLORS["queued"])),
        (2.0, 0.0, 1.0, rgba(STATUS_COLORS["succeeded"])),
    ]
    # The empty queued bar still shows its status: every bar's outline is its status colour.
    assert [rgba(c) for c in by_gid(ax, "totals").get_edgecolors()] == [
        rgba(STATUS_COLORS[s]) for s in ("running", "queued", "succeeded")]
    notes = [t.get_text() for t in ax.texts]
    assert notes[0].startswith("763 / 1,480 steps · ETA") and notes[1] == "– / 3,512 steps" and notes[2] == "48 / 48 steps"


# --- accessor and import ----------------------------------------------------------------------------


def test_accessor_draws_the_same_charts():
    frame = nb_ops.to_frame(FLEET)
    a = frame.ops.timeline(now=NOW)
    b = nb_ops.plot_timeline(frame, now=NOW)
    assert spans(by_gid(a, "run")) == spans(by_gid(b, "run"))
    assert frame.ops.durations().get_xlabel().startswith("duration")
    assert isinstance(frame.ops.training(), matplotlib.axes.Axes)


def test_import_does_not_load_matplotlib_but_registers_the_accessor():
    code = (
        "import sys, pandas as pd, nb_ops\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
        "assert hasattr(pd.DataFrame(), 'ops')\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def _devnull():
    import io

    return io.BytesIO()


# --- found by trying to break it ----------------------------------------------------------------------


def test_far_dates_are_drawn_where_they_are_or_left_out_with_a_warning():
    frame = nb_ops.to_frame(FLEET[:2])
    frame["finished_at"] = frame["finished_at"].astype("datetime64[us, UTC]")
    frame.loc[0, "finished_at"] = pd.Timestamp("2300-01-01", tz="UTC")  # fine in microseconds, not in ns
    ax = nb_ops.plot_timeline(frame, now=pd.Timestamp("2300-01-02", tz="UTC"))
    assert mdates.num2date(ax.get_xlim()[1]).year >= 2299  # not wrapped round into the 1700s
    # Seen from now, the year 2300 has not happened yet: left out, so the other lanes are not squashed.
    for now in (NOW, None):  # None: the default now is not dragged to 2300 by one cell either
        with pytest.warns(nb_ops.DataWarning, match=r"1 time\(s\) more than a day after now .*finished_at '2300-01-01"):
            ax = nb_ops.plot_timeline(frame, now=now)
        assert mdates.num2date(ax.get_xlim()[1]).year < 2100
    raw = nb_ops.to_frame(FLEET[:2]).assign(created_at=[6e11, T0 + 100])  # unix seconds in year ~20975
    with pytest.warns(nb_ops.DataWarning, match="'created_at' are not times in range") as caught:
        ax = nb_ops.plot_timeline(raw, since="1000D")  # sorted, windowed, default now: still one warning
    assert len(caught) == 1
    assert mdates.num2date(ax.get_xlim()[0]).year >= 2000  # the bad value is not placed in 1692
    mixed = nb_ops.to_frame(FLEET[:3]).astype({"created_at": object})
    mixed.loc[1, "created_at"] = T0 + 100  # a Timestamp column with one unix number in it: no warning
    nb_ops.plot_timeline(mixed, now=NOW).figure.canvas.draw()


def test_a_failed_jobs_old_estimate_is_not_drawn():
    t = pd.Timestamp(T0, unit="s", tz="UTC")
    history = pd.DataFrame({
        "operation_id": ["a", "a"], "observed_at": [t, t + pd.Timedelta("10min")], "status": ["running", "failed"],
        "trained_steps": [50, 54], "total_steps": [126, 126], "estimated_finish": [t + pd.Timedelta("2h"), pd.NaT],
    })
    ax = nb_ops.plot_training(history)
    assert by_gid(ax, "estimated_finish") is None and by_gid(ax, "projections") is None
    assert ax.get_xlim()[1] < day(T0 + 3600)  # the axis is not stretched to the stale estimate


def test_negative_durations_are_drawn_not_cut_off_and_whiskers_never_enter_the_box():
    bad = pd.DataFrame({"type": ["yql"] * 3, "queue_duration": pd.to_timedelta([-100, -50, -60], unit="s"),
                        "run_duration": pd.to_timedelta([-10, -20, -30], unit="s")})
    ax = nb_ops.plot_durations(bad)
    low, high = ax.get_xlim()
    assert ax.get_xlabel() == "duration (s)" and low < -100 and high > -10
    w = pd.DataFrame({"type": ["x"] * 4, "run_duration": pd.to_timedelta([130, 131, 217, 681], unit="s")})
    ax = nb_ops.plot_durations(w, which="run_duration", log=False)
    box = by_gid(ax, "boxes").get_paths()[0].vertices[:4, 0]
    lower, upper = by_gid(ax, "whiskers").get_segments()[:2]
    assert lower[0][0] <= box.min() and upper[1][0] >= box.max()


def test_text_from_data_is_shown_as_written_not_as_mathtext():
    ops = [op("$\\foo$", "succeeded", T0, T0 + 1, T0 + 2), op("costs $5 to $10", "$\\bar$", T0, T0 + 1, T0 + 5)]
    frame = nb_ops.to_frame(ops)
    ax = nb_ops.plot_timeline(frame, now=NOW, label="id")
    ax.figure.canvas.draw()  # mathtext would raise here
    assert [t.get_text() for t in ax.get_yticklabels()] == ["$\\foo$".replace("$", "\\$"), "costs \\$5 to \\$10"]
    nb_ops.plot_durations(frame.assign(type=["$\\foo$", "a\nb"]), by="type").figure.canvas.draw()


def test_ids_instead_of_operations_are_refused_clearly():
    for ids in (["op-1", "op-2"], pd.Series(["op-1"]), [1, 2]):
        with pytest.raises(nb_ops.FrameError, match="not ids|not Series"):
            nb_ops.plot_timeline(ids)


def test_now_and_options_are_checked_where_they_are_given():
    frame = nb_ops.to_frame(FLEET)
    for bad in (1e12, "9999999-01-01", pd.Timedelta("1h"), np.timedelta64(5, "s")):
        with pytest.raises(nb_ops.FrameError, match="now must be"):
            nb_ops.plot_timeline(frame, now=bad)
    for call in (lambda: nb_ops.plot_timeline(frame, sort=5), lambda: nb_ops.plot_timeline(frame, label=["id"]),
                 lambda: nb_ops.plot_durations(frame, which=None), lambda: nb_ops.plot_durations(frame, log="no"),
                 lambda: nb_ops.plot_training(frame, relative="no")):
        with pytest.raises(nb_ops.FrameError):
            call()
    mixed = frame.assign(mixed=[1, "a", 2.5, None, "b", 3, {"x": 1}])
    with pytest.raises(nb_ops.FrameError, match="cannot sort lanes"):
        nb_ops.plot_timeline(mixed, sort="mixed")
    a = nb_ops.plot_timeline(frame, now=NOW, since="6H")  # pandas' deprecated capital: no warning
    b = nb_ops.plot_timeline(frame, now=NOW, since=np.timedelta64(6 * 3600, "s"))
    assert a.get_xlim() == b.get_xlim()


def test_grouping_by_a_column_of_lists_works():
    frame = nb_ops.to_frame([op("a", "succeeded", T0, T0 + 5, T0 + 50, tags=["x"]),
                             op("b", "succeeded", T0, T0 + 9, T0 + 90, tags=["x", "y"])])
    ax = nb_ops.plot_durations(frame, by="params.tags")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["['x', 'y'] (n=1)", "['x'] (n=1)"]


def test_shortened_ids_stay_distinct():
    ops = [op(f"ftjob-2026-12-01-{name}", "succeeded", T0 + i, T0 + i + 1, T0 + i + 2)
           for i, name in enumerate(["alpha", "beta", "gamma"])]
    ax = nb_ops.plot_timeline(nb_ops.to_frame(ops))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["ftjob-20…-alpha", "ftjob-20…1-beta", "ftjob-20…-gamma"]


def test_degenerate_time_ranges_stay_readable():
    ax = nb_ops.plot_timeline(nb_ops.to_frame([op("f", "succeeded", T0, T0, T0)]))
    low, high = ax.get_xlim()
    assert high - low <= 2.5 / 24  # about an hour either side, not years
    ax = nb_ops.plot_timeline(nb_ops.to_frame([op("g", "unknown"), op("h", "succeeded")]), now=NOW)
    assert "no times to draw" in [t.get_text() for t in ax.texts]
    assert mdates.num2date(ax.get_xlim()[0]).year == 2026  # around now, not 1970


# --- frames as they come back from files, and bad input ---------------------------------------------


def test_pyarrow_backed_frames_draw_like_numpy_ones(tmp_path):
    frame = nb_ops.to_frame(FLEET)
    frame.drop(columns=[c for c in frame.columns if frame[c].dtype == object]).to_parquet(tmp_path / "ops.parquet")
    arrow = pd.read_parquet(tmp_path / "ops.parquet", dtype_backend="pyarrow")
    assert isinstance(arrow["created_at"].dtype, pd.ArrowDtype) and isinstance(arrow["run_duration"].dtype, pd.ArrowDtype)
    before = arrow.copy()
    for draw in (lambda f: nb_ops.plot_timeline(f, now=NOW), nb_ops.plot_durations):
        got, want = draw(arrow), draw(frame)
        for gid in ("queue", "run", "queue_duration", "run_duration", "boxes"):
            if by_gid(want, gid) is not None and gid in ("queue", "run"):
                assert [np.round(p.vertices, 9).tolist() for p in by_gid(got, gid).get_paths()] == \
                    [np.round(p.vertices, 9).tolist() for p in by_gid(want, gid).get_paths()]
                if hasattr(by_gid(want, gid), "get_offsets"):  # the same durations (groups may come in another order)
                    assert sorted(by_gid(got, gid).get_offsets()[:, 0]) == sorted(by_gid(want, gid).get_offsets()[:, 0])
    pd.testing.assert_frame_equal(arrow, before)  # the caller's frame is left alone


def test_durations_read_back_as_text_are_drawn_and_bad_text_is_one_warning():
    frame = pd.DataFrame({"type": ["a", "a", "b"], "queue_duration": ["0 days 00:10:00", "soon", None],
                          "run_duration": pd.to_timedelta(["1h", "2h", None])})
    with pytest.warns(nb_ops.DataWarning, match=r"1 value\(s\) of 'queue_duration' are not durations .*'soon'"):
        ax = nb_ops.plot_durations(frame, unit="min")
    assert by_gid(ax, "queue_duration").get_offsets()[:, 0].tolist() == [10.0]
    assert by_gid(ax, "run_duration").get_offsets()[:, 0].tolist() == [60.0, 120.0]


def test_durations_of_centuries_do_not_wrap_round():
    frame = pd.DataFrame({"type": ["a", "a"], "queue_duration": pd.array(
        [np.timedelta64(300 * 365, "D"), np.timedelta64(36, "h")], dtype="timedelta64[s]")})
    ax = nb_ops.plot_durations(frame, which="queue_duration", unit="d")
    assert sorted(by_gid(ax, "queue_duration").get_offsets()[:, 0].tolist()) == [1.5, 300 * 365]


def test_repeated_column_labels_are_refused_by_name():
    frame = nb_ops.to_frame(FLEET)
    twice = pd.concat([frame, frame[["status"]]], axis=1)
    for draw in (lambda f: nb_ops.plot_timeline(f, now=NOW), nb_ops.plot_durations, nb_ops.plot_training):
        with pytest.raises(nb_ops.FrameError, match="more than one column named 'status'"):
            draw(twice)


def test_training_leaves_out_observations_without_an_id_or_a_time():
    t = pd.Timestamp(T0, unit="s", tz="UTC")
    history = pd.DataFrame({
        "operation_id": ["j1", "j1", None], "observed_at": [t, t + pd.Timedelta("1min"), t],
        "status": ["running"] * 3, "trained_steps": pd.array([1, 2, 3], dtype="Int64"),
        "total_steps": pd.array([10] * 3, dtype="Int64"),
    })
    with pytest.warns(nb_ops.DataWarning, match="1 observation"):
        ax = nb_ops.plot_training(history)
    assert [c[:, 1].tolist() for c in by_gid(ax, "steps").get_segments()] == [[1, 2]]
    no_times = history.iloc[:2].assign(observed_at=pd.NaT)
    ax = nb_ops.plot_training(no_times)
    assert "no observation times" in " ".join(t.get_text() for t in ax.texts) and by_gid(ax, "steps") is None


def test_training_status_is_the_latest_look_even_one_without_steps():
    t = pd.Timestamp(T0, unit="s", tz="UTC")
    history = pd.DataFrame({  # the last look says failed, with no step count
        "operation_id": ["j", "j"], "observed_at": [t, t + pd.Timedelta("1min")], "status": ["running", "failed"],
        "trained_steps": pd.array([10, None], dtype="Int64"), "total_steps": pd.array([100, 100], dtype="Int64"),
        "estimated_finish": [t + pd.Timedelta("9min")] * 2,
    })
    ax = nb_ops.plot_training(history)
    assert [rgba(c) for c in by_gid(ax, "steps").get_colors()] == [rgba(STATUS_COLORS["failed"])]
    assert by_gid(ax, "stopped") is not None and by_gid(ax, "estimated_finish") is None
    (target,) = by_gid(ax, "targets").get_segments()
    assert target[1][0] < day(T0 + 9 * 60)  # not drawn on to the dead job's old estimate
    assert ax.get_xlim()[1] - ax.get_xlim()[0] < 2 / 24  # one instant: not a date axis of years


def test_finished_bars_carry_no_estimate():
    ops = [op("ft-done", "succeeded", T0, T0 + 10, T0 + 99, type="finetuning", trained_steps=48, total_steps=48,
              estimated_finish=T0 + 99)]
    ax = nb_ops.plot_training(nb_ops.to_frame(ops))
    assert [t.get_text() for t in ax.texts] == ["48 / 48 steps"]


def test_a_chart_that_fails_while_drawing_closes_the_figure_it_made(monkeypatch):
    mine = plt.figure()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C half-way through a large chart

    monkeypatch.setattr(nb_ops.plots, "_lane_labels", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nb_ops.plot_timeline(nb_ops.to_frame(FLEET), now=NOW)
    assert plt.get_fignums() == [mine.number]


def test_a_chart_that_fails_closes_the_figure_it_made_and_ax_is_checked():
    frame = nb_ops.to_frame(FLEET)
    mine = plt.figure()
    with pytest.raises(nb_ops.FrameError, match="plot_timeline: extra keyword.*PolyCollection.*'nwo'"):
        nb_ops.plot_timeline(frame, nwo=NOW)  # a typo is refused by name, before anything is drawn
    assert plt.get_fignums() == [mine.number]  # no half-drawn figure left; the user's own kept
    with pytest.raises(nb_ops.FrameError, match="not-a-colour"):  # a bad value too, before a figure is made
        nb_ops.plot_timeline(frame, now=NOW, edgecolors="not-a-colour")
    assert plt.get_fignums() == [mine.number]
    # On axes the caller gave, a wrong keyword leaves them as they were.
    fig, given = plt.subplots()
    before = given.xaxis.get_major_formatter()
    for chart, word in ((nb_ops.plot_timeline, "PolyCollection"), (nb_ops.plot_durations, "scatter"),
                        (nb_ops.plot_training, "PolyCollection of progress bars")):
        with pytest.raises(nb_ops.FrameError, match=f"{word}.*'bogus'"):
            chart(frame, ax=given, bogus=1)
    assert given.xaxis.get_major_formatter() is before and not given.collections and not given.texts
    for projection in ("polar", "3d"):
        odd = fig.add_subplot(projection=projection)
        with pytest.raises(nb_ops.FrameError, match=f"plain x-y Axes.*'{projection}'"):
            nb_ops.plot_timeline(frame, ax=odd)
    _, axes = plt.subplots(1, 2)
    with pytest.raises(nb_ops.FrameError, match=r"ax must be one matplotlib Axes.*ax=axes\[0\]"):
        nb_ops.plot_durations(frame, ax=axes)
    with pytest.raises(nb_ops.FrameError, match="unit must be one of"):
        nb_ops.plot_durations(frame, unit=["s"])


def test_lanes_sort_on_the_column_even_when_an_index_level_shares_its_name():
    frame = nb_ops.to_frame(FLEET)
    indexed = frame.set_index("created_at", drop=False)
    got = [t.get_text() for t in nb_ops.plot_timeline(indexed, now=NOW).get_yticklabels()]
    assert got == [t.get_text() for t in nb_ops.plot_timeline(frame, now=NOW).get_yticklabels()]


def test_ids_alike_at_both_ends_are_shown_whole():
    ops = [op(f"ftjob-2024-01-{name}-xyz123", "succeeded", T0, T0 + 1, T0 + 2) for name in ("aaaa", "bbbb")]
    labels = [t.get_text() for t in nb_ops.plot_timeline(nb_ops.to_frame(ops)).get_yticklabels()]
    assert labels == ["ftjob-2024-01-aaaa-xyz123", "ftjob-2024-01-bbbb-xyz123"]


def test_a_window_looks_ahead_no_further_than_it_looks_back():
    frame = nb_ops.to_frame([op("ft", "running", NOW - 600, NOW - 300, type="finetuning", trained_steps=1,
                                total_steps=9, estimated_finish=NOW + 30 * 86400)])
    ax = nb_ops.plot_timeline(frame, now=NOW, since="1h")
    low, high = ax.get_xlim()
    assert low == pytest.approx(day(NOW - 3600)) and high <= day(NOW + 3600) + 0.03 * (2 / 24)
    assert by_gid(ax, "estimated_finish") is not None  # drawn, running off the edge
    with pytest.raises(nb_ops.FrameError, match="further back than pandas can count"):
        nb_ops.plot_timeline(frame, now=NOW, since="200000D")


# --- after a fresh-user trial and an adversarial pass (round 3) --------------------------------------


def _overlaps(boxes):
    boxes = sorted(boxes, key=lambda b: b.x0)
    return [(a, b) for a, b in zip(boxes, boxes[1:]) if b.x0 < a.x1 - 0.5]


def test_date_ticks_of_a_narrow_panel_do_not_run_together(start_sim):
    sim = start_sim(speed=0, size=120, seed=1)
    with sim.client() as client:
        frame = client.get_operations(sim.operation_ids).frame()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
    nb_ops.plot_timeline(frame, ax=axes[0], now=sim.now(), since="3h")
    nb_ops.plot_durations(frame, ax=axes[1])
    nb_ops.plot_training(frame, ax=axes[2])
    fig.canvas.draw()
    labels = [t for t in axes[0].get_xticklabels() if t.get_text()]
    assert len(labels) >= 3
    assert not _overlaps([t.get_window_extent() for t in labels])
    # The bars' step notes are left out when the bars are thinner than a line of text.
    notes = [t for t in axes[2].texts if "steps" in t.get_text()]
    boxes = sorted((t.get_window_extent() for t in notes), key=lambda b: b.y0)
    assert all(b.y0 >= a.y1 - 0.5 for a, b in zip(boxes, boxes[1:]))


def test_a_legend_inside_given_axes_does_not_hide_the_lone_long_run():
    frame = pd.DataFrame({"type": ["yql"] * 6, "queue_duration": pd.to_timedelta([60, 70, 80, 90, 100, 110], unit="s"),
                          "run_duration": pd.to_timedelta([5, 6, 6, 5, 4, 530], unit="s")})
    fig, ax = plt.subplots(figsize=(6, 3))
    nb_ops.plot_durations(frame, ax=ax, log=False, unit="s")
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    dots = by_gid(ax, "run_duration")
    for x, y in ax.transData.transform(dots.get_offsets()):
        assert not legend.contains(x, y)


def test_a_unit_asked_for_is_a_linear_axis_and_empty_groups_get_no_row(start_sim):
    sim = start_sim(speed=0, size=120, seed=1)
    with sim.client() as client:
        frame = client.get_operations(sim.operation_ids).frame()
    ax = nb_ops.plot_durations(frame, unit="h")
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == "duration (h)"
    assert nb_ops.plot_durations(frame, unit="h", log=True).get_xscale() in ("log", "symlog")
    rows = [t.get_text() for t in nb_ops.plot_durations(frame, by="status").get_yticklabels()]
    assert not any(r.endswith("(n=0)") for r in rows)
    assert not any(r.startswith("queued") for r in rows)  # no queued operation has a duration yet


def test_training_bars_are_limited_and_say_how_many_are_left_out():
    ops = [op(f"ft-{i:03d}", "succeeded" if i % 4 else "running", T0, T0 + 10, None if i % 4 == 0 else T0 + 99,
              type="finetuning", trained_steps=i, total_steps=100) for i in range(100)]
    frame = nb_ops.to_frame(ops)
    ax = nb_ops.plot_training(frame)
    assert len(by_gid(ax, "progress").get_paths()) == 60
    assert "40 more finished jobs not shown; limit=60" in ax.get_xlabel()
    names = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert names[0] == "ft-000"  # jobs in flight first
    assert len(by_gid(nb_ops.plot_training(frame, limit=None), "progress").get_paths()) == 100
    for bad in (0, -1, 2.5, True, "10"):
        with pytest.raises(nb_ops.FrameError, match="limit must be"):
            nb_ops.plot_training(frame, limit=bad)


def test_training_bars_without_a_status_column_are_drawn_as_unknown():
    frame = nb_ops.to_frame(FLEET).drop(columns="status")
    ax = nb_ops.plot_training(frame)
    assert [rgba(c) for c in by_gid(ax, "progress").get_facecolors()] == [rgba(STATUS_COLORS["unknown"])]


def test_pyarrow_dates_decimals_and_lists_are_drawn(tmp_path, start_sim):
    import pyarrow as pa

    sim = start_sim(speed=0, size=60, seed=0)
    with sim.client() as client:
        frame = client.get_operations(sim.operation_ids).frame()
    frame.to_parquet(tmp_path / "ops.parquet")
    arrow = pd.read_parquet(tmp_path / "ops.parquet", dtype_backend="pyarrow")
    assert isinstance(arrow["params.tags"].dtype, pd.ArrowDtype)
    arrow["day"] = arrow["created_at"].astype("datetime64[ns, UTC]").dt.tz_localize(None).dt.normalize().astype(
        pd.ArrowDtype(pa.date32()))
    steps = [None if pd.isna(v) else int(v) for v in frame["params.total_steps"]]
    arrow["params.total_steps"] = pd.array(steps, dtype=pd.ArrowDtype(pa.decimal128(20, 0)))
    nb_ops.plot_timeline(arrow, now=sim.now(), sort="day")
    groups = [t.get_text() for t in nb_ops.plot_durations(arrow, by="params.tags").get_yticklabels()]
    assert groups == [t.get_text() for t in nb_ops.plot_durations(frame, by="params.tags").get_yticklabels()]
    nb_ops.plot_timeline(arrow, now=sim.now(), sort="params.tags")
    bars = by_gid(nb_ops.plot_training(arrow), "progress")
    assert len(bars.get_paths()) == len(by_gid(nb_ops.plot_training(frame), "progress").get_paths()) > 0


def test_spans_that_end_before_they_start_are_left_out_with_one_warning():
    ops = [op("good", "succeeded", T0, T0 + 60, T0 + 600), op("backwards", "succeeded", T0 + 900, T0 + 950, T0 + 100)]
    with pytest.warns(nb_ops.DataWarning, match=r"1 operation\(s\) end before they start \(first: 'backwards'\)"):
        ax = nb_ops.plot_timeline(nb_ops.to_frame(ops), now=NOW)
    assert [lane for lane, *_ in spans(by_gid(ax, "run"))] == [lane_of(ax, "good")]


def test_durations_as_bare_numbers_are_refused_not_read_as_nanoseconds():
    numbers = pd.DataFrame({"type": ["a", "b"], "run_duration": pd.Series([90.0, 3600.0], dtype=object)})
    with pytest.raises(nb_ops.FrameError, match="numbers without a unit.*pd.to_timedelta"):
        nb_ops.plot_durations(numbers, which="run_duration")
    mixed = numbers.assign(run_duration=pd.Series([90.0, "0 days 01:00:00"], dtype=object))
    with pytest.warns(nb_ops.DataWarning, match=r"1 value\(s\) of 'run_duration' are not durations \(first: '90.0'\)"):
        ax = nb_ops.plot_durations(mixed, which="run_duration", unit="min")
    assert by_gid(ax, "run_duration").get_offsets()[:, 0].tolist() == [60.0]


def test_durations_of_many_groups_thin_their_labels_and_years_are_named():
    frame = pd.DataFrame({"id": [f"op-{i:04d}" for i in range(500)],
                          "run_duration": pd.to_timedelta(np.where(np.arange(500) % 2, 1, 3 * 365), unit="D")})
    ax = nb_ops.plot_durations(frame, by="id", which="run_duration")
    ax.figure.canvas.draw()
    shown = [t for t in ax.get_yticklabels() if t.get_text()]
    assert 5 <= len(shown) < 100
    boxes = sorted((t.get_window_extent() for t in shown), key=lambda b: b.y0)
    assert all(b.y0 >= a.y1 - 0.5 for a, b in zip(boxes, boxes[1:]))
    assert "2 y" in [t.get_text() for t in ax.get_xticklabels()]


def test_training_curves_with_infinite_steps_and_a_far_estimate():
    t = pd.Timestamp(T0, unit="s", tz="UTC")
    history = pd.DataFrame({
        "operation_id": ["a"] * 4, "observed_at": [t + pd.Timedelta(minutes=m) for m in (0, 10, 20, 30)],
        "status": ["running"] * 4, "trained_steps": [10.0, np.inf, 30.0, 40.0], "total_steps": [100] * 4,
        "estimated_finish": [pd.Timestamp("2200-01-01", tz="UTC")] * 4,
    })
    with pytest.warns(nb_ops.DataWarning, match=r"1 trained_steps value\(s\) are not finite numbers"):
        ax = nb_ops.plot_training(history)
    ax.figure.canvas.draw()
    assert by_gid(ax, "observations").get_offsets().shape == (3, 2)
    # Ahead no further than the watch reaches back (an hour here), not to the year 2200.
    assert ax.get_xlim()[1] < day(T0 + 30 * 60 + 2 * 3600)


def test_text_follows_the_style_dark_backgrounds_and_plain_dollars():
    t = pd.Timestamp(T0, unit="s", tz="UTC")
    history = pd.DataFrame({"operation_id": ["cost$5"], "observed_at": [t], "status": ["running"],
                            "trained_steps": [5], "total_steps": [10]})
    with plt.style.context("dark_background"):
        ax = nb_ops.plot_training(history)
        label = next(a for a in ax.texts if a.get_gid() == "job_label")
        assert rgba(label.get_color()) == rgba("white")
    with matplotlib.rc_context({"text.parse_math": False}):
        ax = nb_ops.plot_training(history)
        assert next(a for a in ax.texts if a.get_gid() == "job_label").get_text() == "cost$5"
    assert next(a for a in nb_ops.plot_training(history).texts if a.get_gid() == "job_label").get_text() == r"cost\$5"


def test_the_now_tag_sits_between_the_first_lane_and_a_title():
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    nb_ops.plot_timeline(nb_ops.to_frame(FLEET), ax=ax, now=NOW)
    ax.set_title("Timeline")
    fig.canvas.draw()
    tag = next(t for t in ax.texts if t.get_text() == "now").get_window_extent()
    first_lane_top = ax.transData.transform((0, -0.5))[1]  # y grows downwards in lanes, upwards on screen
    assert tag.y0 >= first_lane_top - 0.5 and tag.y1 <= ax.get_window_extent().y1 + 0.5
    assert not tag.overlaps(ax.title.get_window_extent())


def test_a_frame_that_finishes_over_a_week_in_the_future_keeps_every_bar():
    start = pd.Timestamp("2030-01-01", tz="UTC")
    n = 100
    frame = pd.DataFrame({"id": [f"op{i}" for i in range(n)], "type": "x", "status": "succeeded",
                          "created_at": [start] * n, "in_progress_at": [start] * n,
                          "finished_at": start + pd.to_timedelta(np.linspace(0.1, 10, n), unit="D")})
    ax = nb_ops.plot_timeline(frame)  # the default now: the frame's own latest time, none left out
    assert len(by_gid(ax, "run").get_paths()) == n


def test_narrow_date_axes_keep_at_least_two_ticks_and_many_lanes_keep_a_fixed_legend_corner():
    spans_s = (61 * 60, 86400, 32 * 86400, 366 * 86400)
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.5), layout="constrained")
    for ax, span in zip(axes, spans_s, strict=True):
        ops = [op("a", "succeeded", T0, T0 + 1, T0 + span), op("b", "succeeded", T0, T0 + 2, T0 + span // 2)]
        nb_ops.plot_timeline(nb_ops.to_frame(ops), ax=ax, now=T0 + span)
    fig.canvas.draw()
    for ax in axes:
        assert len([t for t in ax.get_xticklabels() if t.get_text()]) >= 2
    many = [op(f"op-{i}", "succeeded", T0 + i, T0 + i + 5, T0 + i + 60) for i in range(1500)]
    fig, ax = plt.subplots()
    nb_ops.plot_timeline(nb_ops.to_frame(many), ax=ax)
    assert ax.get_legend()._loc == mpl_legend_code("lower left")


def mpl_legend_code(name):
    from matplotlib.legend import Legend

    return Legend.codes[name]


def test_durations_take_linewidth_by_any_name_and_timedelta_objects():
    frame = pd.DataFrame({"type": ["a", "a"], "queue_duration": pd.Series(
        [np.timedelta64(5, "s"), np.timedelta64(50, "s")], dtype=object)})
    for width in ({"linewidth": 1}, {"lw": 1}, {"linewidths": 1}):
        ax = nb_ops.plot_durations(frame, which="queue_duration", unit="s", **width)
        assert by_gid(ax, "queue_duration").get_offsets()[:, 0].tolist() == [5.0, 50.0]
        assert by_gid(ax, "queue_duration").get_linewidths()[0] == 1


def test_an_estimate_before_the_look_that_reported_it_is_ignored():
    t = pd.Timestamp(T0, unit="s", tz="UTC")
    history = pd.DataFrame({"operation_id": ["a", "a"], "observed_at": [t, t + pd.Timedelta("10min")],
                            "status": ["running"] * 2, "trained_steps": [10, 20], "total_steps": [100, 100],
                            "estimated_finish": [pd.Timestamp(0, tz="UTC"), pd.Timestamp("1990-01-01", tz="UTC")]})
    ax = nb_ops.plot_training(history)
    assert by_gid(ax, "estimated_finish") is None
    assert ax.get_xlim()[0] > day(T0 - 86400)
