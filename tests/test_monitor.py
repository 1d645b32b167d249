"""nb_ops.watch / Monitor against the simulator over real HTTP, with time sped up.

Widget tests build real ipywidgets objects in this process (``display="widget"``; outside a
kernel they are built but not displayed) and assert on their traits. The kernel side (updates
reaching a front end) is tests/test_monitor_kernel.py. Waits are bounded generously: CI is a
loaded 2-core machine.
"""

from __future__ import annotations

import _thread
import io
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

import nb_ops
from nb_ops import monitor as monitor_module
from nb_ops.monitor import HISTORY_COLUMNS, TABLE_THRESHOLD, Monitor, watch

TERMINAL = ("succeeded", "failed", "cancelled")


def wait_until(condition, timeout=30.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step)
    return condition()


def ids_by_status(sim, *statuses, type_=None):
    now = sim.now()
    out = []
    for op_id, status in sim.fleet.statuses(now).items():
        if status in statuses and (type_ is None or sim.fleet.plan(op_id).type == type_):
            out.append(op_id)
    return out


def watch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("nb_ops-watch")]


@pytest.fixture(autouse=True)
def _no_monitor_left():
    yield
    for m in list(monitor_module._REGISTRY.values()):
        m.stop()
    assert wait_until(lambda: not watch_threads(), timeout=20), watch_threads()


def test_widgets_follow_operations_to_the_end(start_sim):
    sim = start_sim(speed=300, size=60)
    ids = ids_by_status(sim, "queued", "running")
    ft_running = ids_by_status(sim, "running", type_="finetuning")
    assert ft_running and len(ids) <= TABLE_THRESHOLD
    calls = []
    m = watch(ids, client=sim.client(), interval=0.05, display="widget", on_complete=calls.append)
    view = m._view
    assert m.widget is view.box and set(view.rows) == set(ids)
    seen_values = {op_id: set() for op_id in ids}
    seen_styles = {op_id: set() for op_id in ids}

    def record():
        for op_id, row in view.rows.items():
            seen_values[op_id].add(round(row.bar.value, 4))
            seen_styles[op_id].add(row.bar.bar_style)
        return not m.running

    assert wait_until(record, timeout=120, step=0.01)
    assert m.reason == "complete" and calls == [m]
    assert not m._thread.is_alive()
    # Values and styles changed as operations advanced.
    assert any(len(values) > 2 for values in seen_values.values())
    assert any({"info", "success"} <= styles or {"info", "danger"} <= styles for styles in seen_styles.values())
    # Rows end in the style of their final status.
    final = m.operations
    assert set(final) == set(ids) and all(op.status in TERMINAL for op in final.values())
    for op_id, row in view.rows.items():
        status = final[op_id].status
        assert row.bar.bar_style == {"succeeded": "success", "failed": "danger", "cancelled": ""}[status]
        assert status in row.status.value
        if status == "succeeded":
            assert row.bar.value == 1.0
        if status == "cancelled":
            assert row.bar.style.bar_color == "#7f7f7f"
    assert "stopped watching" in view.status.value and "complete" in view.status.value
    assert view.overall.value == 1.0
    assert view.final is not None and "complete" in view.final["text/plain"]
    assert "HBox" not in view.final["text/plain"] and "<table" in view.final["text/html"]
    # The history shows fine-tuning steps going up while running.
    history = m.history
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert str(history["observed_at"].dtype) == "datetime64[ns, UTC]"
    assert history["trained_steps"].dtype == "Int64" and isinstance(history["status"].dtype, pd.CategoricalDtype)
    for op_id in ft_running:
        steps = history.loc[(history["operation_id"] == op_id) & (history["status"] == "running"), "trained_steps"]
        assert len(steps) >= 2 and steps.is_monotonic_increasing and steps.iloc[-1] > steps.iloc[0]
    frame = m.frame()
    assert frame["id"].tolist() == ids and frame["is_terminal"].all()
    assert m.summary().count("\n") == len(ids) + 2
    assert wait_until(lambda: not watch_threads())


def test_terminal_operations_are_not_polled_again(start_sim):
    sim = start_sim(speed=0, size=60)
    done = ids_by_status(sim, *TERMINAL)[:5]
    running = ids_by_status(sim, "running")[:2]
    m = watch(done + running, client=sim.client(), interval=0.05, display=False)
    assert wait_until(lambda: all(len(sim.requests_for(i)) >= 4 for i in running))
    m.stop()
    assert all(len(sim.requests_for(i)) == 1 for i in done)
    assert m.reason == "stopped" and not m._thread.is_alive()


def test_all_terminal_completes_at_once(sim):
    ids = ids_by_status(sim, "succeeded")[:3]
    calls = []
    m = watch(ids, client=sim.client(), interval=0.05, display=False, on_complete=calls.append)
    assert m.wait(30) and m.reason == "complete" and calls == [m]
    m.stop()  # after the end: harmless, on_complete not called again
    assert calls == [m]


def test_stop_is_immediate_and_leaves_no_thread(start_sim):
    sim = start_sim(speed=0, size=60)
    ids = ids_by_status(sim, "running", "queued")
    m = watch(ids, client=sim.client(), interval=30, display="widget")
    assert wait_until(lambda: m.operations)
    started = time.monotonic()
    m.stop()
    assert time.monotonic() - started < 10  # loosely: it does not wait for the 30 s interval
    assert not m._thread.is_alive() and m.reason == "stopped"
    assert "stopped watching" in m._view.status.value and "still running" in m._view.status.value
    assert wait_until(lambda: not watch_threads())
    count = len(sim.requests)
    time.sleep(0.3)
    assert len(sim.requests) == count


def test_timeout_says_what_was_still_running(start_sim):
    sim = start_sim(speed=0, size=60)
    running = ids_by_status(sim, "running")
    queued = ids_by_status(sim, "queued")
    out = io.StringIO()
    m = watch(running + queued, client=sim.client(), interval=0.05, timeout=0.5, display="text", file=out)
    assert m.wait(30)
    assert m.reason == "timeout" and not m._thread.is_alive()
    text = out.getvalue()
    assert "timed out after" in text and "still running" in text
    assert f"{running[0][:8]} (running)" in text and f"{queued[0][:8]} (queued)" in text
    wm = watch(running, client=sim.client(), interval=0.05, timeout=0.3, display="widget")
    assert wm.wait(30) and wm.reason == "timeout"
    assert "timed out" in wm._view.status.value and running[0][:8] in wm._view.status.value


def test_rerun_stops_the_old_monitor(start_sim):
    sim = start_sim(speed=0, size=60)
    ids = ids_by_status(sim, "running")
    old = watch(ids, client=sim.client(), interval=0.05, display=False)
    assert wait_until(lambda: old.operations)
    new = watch(list(ids), client=sim.client(), interval=0.05, display=False)
    assert wait_until(lambda: not old._thread.is_alive(), timeout=20)
    assert old.reason == "stopped" and "replaced" in old.summary()
    assert new.running and monitor_module._REGISTRY[tuple(ids)] is new
    new.stop()
    assert tuple(ids) not in monitor_module._REGISTRY


def test_not_found_id_is_marked_and_not_polled_again(start_sim):
    sim = start_sim(speed=0, size=60)
    missing = "f" * 32
    running = ids_by_status(sim, "running")[:2]
    m = watch([missing, *running, " bad id "], client=sim.client(), interval=0.05, display="widget")
    assert wait_until(lambda: all(len(sim.requests_for(i)) >= 4 for i in running))
    assert len(sim.requests_for(missing)) == 1
    row = m._view.rows[missing]
    assert row.bar.bar_style == "danger" and "error" in row.status.value and "404" in row.eta.value
    assert m._view.rows[" bad id "].bar.bar_style == "danger"  # refused before any request
    assert m.errors[missing].status_code == 404
    history = m.history
    assert history.loc[history["operation_id"] == missing, "permanent"].tolist() == [True]
    m.stop()


def test_transient_fault_shows_then_recovers(start_sim):
    sim = start_sim(speed=0, size=60)
    flaky, steady = ids_by_status(sim, "running")[:2]
    sim.configure(faults={"error_rate": 1.0, "only_ids": [flaky]})
    m = watch([flaky, steady], client=sim.client(max_retries=0), interval=0.05, display="widget")
    row = m._view.rows[flaky]
    assert wait_until(lambda: "retrying" in row.eta.value)
    assert row.bar.bar_style == "info" or "pending" in row.status.value
    assert flaky in m.errors and steady not in m.errors
    sim.configure(faults={})
    assert wait_until(lambda: "retrying" not in row.eta.value and "running" in row.status.value)
    assert flaky not in m.errors and m.running
    history = m.history
    mine = history[history["operation_id"] == flaky]
    assert mine["error"].notna().any() and not mine["permanent"].any() and mine["status"].iloc[-1] == "running"
    m.stop()


def test_two_hundred_operations_refresh_within_one_interval(start_sim):
    sim = start_sim(speed=0, size=3000)
    ids = ids_by_status(sim, "queued", "running", "unknown")[:200]
    assert len(ids) == 200
    interval = 2.0
    m = watch(ids, client=sim.client(), interval=interval, display="widget")
    view = m._view
    assert view.rows is None and view.table is not None  # one HTML table instead of 200 rows
    assert wait_until(lambda: len(m._ticks) >= 2, timeout=60)
    for fetch, apply in m._ticks:
        assert fetch + apply < interval and apply < 0.5  # loosely: one tick fits in one interval
    assert view.table.value.count("<tr>") == 201 and "200</b> operations" in view.counts.value
    view.sort.value = "status"  # sortable: re-rendered from the last values
    assert view.table.value.count("<tr>") == 201
    m.stop()


def test_text_fallback_lines_and_summary(start_sim):
    sim = start_sim(speed=1200, size=60)
    ids = ids_by_status(sim, "queued", "running")
    out = io.StringIO()
    m = watch(ids, client=sim.client(), interval=0.05, file=out)  # not in a kernel: text
    assert m._mode == "text" and m.wait(120) and m.reason == "complete"
    text = out.getvalue()
    assert text.startswith("nb_ops.watch: watching")
    assert " -> succeeded" in text and f"{len(ids)}/{len(ids)} finished" in text
    assert "stopped watching at" in text and "complete" in text
    assert all(op_id[:8] in text for op_id in ids)


def test_text_of_a_watch_that_ends_at_the_first_look_is_the_summary_alone(sim):
    out = io.StringIO()
    m = watch(["no-such-operation"], client=sim.client(), interval=0.05, file=out)
    assert m.wait(30) and m.reason == "errors"
    text = out.getvalue()
    assert text.startswith("[")  # no header that already says watching stopped
    assert text.count("stopped watching at") == 1
    assert "nb_ops.watch: 1 operation (1 error)" in text and "not found (HTTP 404)" in text


def test_display_false_shows_nothing(sim, capsys):
    ids = ids_by_status(sim, "succeeded")[:2]
    m = watch(ids, client=sim.client(), interval=0.05, display=False)
    assert m.wait(30) and m.widget is None and m._view is None
    assert capsys.readouterr() == ("", "")


def test_keyboard_interrupt_in_wait_stops_polling(start_sim):
    sim = start_sim(speed=0, size=60)
    m = watch(ids_by_status(sim, "running"), client=sim.client(), interval=0.05, display=False)
    threading.Timer(0.3, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        m.wait()
    assert not m._thread.is_alive() and m.reason == "stopped" and "interrupted" in m.summary()


def test_on_complete_error_is_kept_not_raised(sim):
    def boom(monitor):
        raise RuntimeError("boom")

    m = watch(ids_by_status(sim, "succeeded")[:1], client=sim.client(), interval=0.05, display=False, on_complete=boom)
    assert m.wait(30) and isinstance(m.callback_error, RuntimeError)
    assert "on_complete raised RuntimeError" in m.summary()


def test_eta_shows_both_when_they_disagree():
    assert monitor_module._eta_text(600.0, 610.0) == "10 min 00 s"
    assert monitor_module._eta_text(600.0, 1200.0) == "10 min 00 s (server), 20 min 00 s (observed rate)"
    assert monitor_module._eta_text(None, 90.0) == "1 min 30 s (observed rate)"
    assert monitor_module._eta_text(None, None) == ""


def test_stale_rows_say_how_long(start_sim):
    sim = start_sim(speed=0, size=60)
    stuck = ids_by_status(sim, "running", type_="finetuning")[:1] + ids_by_status(sim, "queued")[:1]
    healthy = ids_by_status(sim, "running", type_="yql")[:1]  # no steps: nothing to change until it ends
    m = Monitor(stuck + healthy, client=sim.client(), interval=0.05, display="widget")
    m.stale_after = 0.0
    m.start()
    assert wait_until(lambda: all("no change for" in m._view.rows[i].eta.value for i in stuck))
    assert set(m.stale) == set(stuck)
    assert "no change" not in m._view.rows[healthy[0]].eta.value
    m.stop()


def test_bad_arguments():
    client = nb_ops.Client(api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(TypeError):
        watch("abc", client=client)
    with pytest.raises(nb_ops.ConfigError):
        watch(["a"], client=client, interval=0)
    with pytest.raises(nb_ops.ConfigError):
        watch(["a"], client=client, timeout=-1)
    with pytest.raises(nb_ops.ConfigError, match="NEBIUS_API_KEY"):
        watch(["a"])  # no key in the environment


def test_import_nb_ops_does_not_import_ipywidgets():
    code = "import nb_ops, sys; assert 'ipywidgets' not in sys.modules and 'nb_ops.monitor' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert nb_ops.watch is watch and nb_ops.Monitor is Monitor


def test_demo_watches_queued_and_running_to_the_end(tmp_path, capsys):
    import re

    from nb_ops.cli import main

    out = tmp_path / "demo"
    started = time.monotonic()
    assert main(["demo", "--out", str(out), "--size", "60"]) == 0
    assert time.monotonic() - started < 60  # loosely: the watch runs at 1200x, about 2 s
    printed = capsys.readouterr().out
    watched = re.search(r"Watching the (\d+) queued or running operations", printed)
    assert watched and f"{watched.group(1)}/{watched.group(1)} finished" in printed
    assert "complete: every operation finished" in printed
    assert printed.index("Operations by type") < printed.index("stopped watching at") < printed.index("Wrote 9 files")
    ops = pd.read_parquet(out / "operations.parquet")
    assert len(ops) == 60 and not ops["status"].isin(["queued", "running"]).any()  # written after the watch


# --- found by trying to break it ------------------------------------------------------------------


def test_watching_the_same_ids_from_many_threads_leaves_exactly_one_monitor(start_sim):
    import threading as th

    import nb_ops

    sim = start_sim(speed=0)
    client = sim.client()
    running = [op.id for op in client.get_operations(sim.operation_ids) if not op.is_terminal][:5]
    barrier = th.Barrier(12)
    monitors, errors = [], []

    def go():
        barrier.wait()
        try:
            monitors.append(nb_ops.watch(running, client=client, display=False, interval=0.1))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [th.Thread(target=go) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(monitors) == 12
    time.sleep(0.5)
    alive = [m for m in monitors if m.running]
    assert len(alive) == 1
    for m in monitors:
        m.stop()
    assert not [t for t in th.enumerate() if t.name.startswith("nb_ops-watch-") and "fetch" not in t.name]


def test_nothing_is_sent_after_stop_and_timeout_holds_during_a_slow_round(start_sim):
    import nb_ops

    sim = start_sim(speed=0)
    client = sim.client(timeout=1, max_retries=3, backoff_factor=0.1)
    running = [op.id for op in client.get_operations(sim.operation_ids) if not op.is_terminal][:4]
    sim.configure(faults={"stall_rate": 1.0, "stall_seconds": 3})
    monitor = nb_ops.watch(running, client=client, display=False, interval=0.1)
    time.sleep(0.3)
    monitor.stop()
    time.sleep(1.5)  # let attempts in flight time out
    before = len(sim.requests)
    time.sleep(3)
    assert len(sim.requests) == before  # no retries after stop()
    began = time.monotonic()
    slow = nb_ops.watch(running, client=sim.client(timeout=30), display=False, interval=0.5, timeout=1)
    slow.wait(20)
    assert slow.reason == "timeout" and time.monotonic() - began < 5


@pytest.mark.parametrize("display", [1, 0, "yes"])
def test_display_must_be_a_real_choice(sim, display):
    import nb_ops

    with pytest.raises(nb_ops.ConfigError):
        nb_ops.watch(sim.operation_ids[:2], client=sim.client(), display=display)


def test_a_broken_text_stream_does_not_stop_the_monitor(start_sim):
    import io

    import nb_ops

    class Broken(io.StringIO):
        def write(self, text):
            raise RuntimeError("disk on fire")

    sim = start_sim(speed=3000)
    ids = sim.operation_ids[:10]
    monitor = nb_ops.watch(ids, client=sim.client(), display="text", interval=0.05, timeout=2, file=Broken())
    assert monitor.wait(30) and monitor.reason == "timeout"  # polled to the end, not "crashed"
    with pytest.raises(TypeError, match="write"):
        nb_ops.watch(ids, client=sim.client(), display="text", file="out.txt")


def test_a_non_string_id_and_the_same_text_stay_two_rows(start_sim):
    import nb_ops

    sim = start_sim(speed=0)
    monitor = nb_ops.watch([5, "5"], client=sim.client(), display=False, interval=0.1)
    assert monitor.wait(30)
    assert set(monitor.errors) == {"<int 5>", "5"} and monitor.reason == "errors"


def test_clock_puts_observations_elapsed_and_eta_on_the_servers_time(start_sim):
    start = 1_790_000_000.0  # months from the wall clock
    sim = start_sim(speed=0, size=60, start_time=start)
    running = ids_by_status(sim, "running", type_="finetuning")
    m = watch(running, client=sim.client(), interval=0.05, display="widget", clock=sim.now)
    assert m.started_at.timestamp() == start
    assert wait_until(lambda: len(m.history) >= len(running))
    sim.advance(600)
    assert wait_until(lambda: m.history["observed_at"].max().timestamp() == start + 600)
    m.stop()
    assert m.ended_at.timestamp() == start + 600
    # Elapsed times come from the same clock as the operations' own timestamps: minutes, not months.
    assert " d " not in m.summary()  # with the wall clock: "73 d 04 h"
    assert all(" d " not in row.elapsed.value for row in m._view.rows.values())


def test_a_bad_clock_is_refused_and_a_clock_that_breaks_later_falls_back(start_sim, caplog):
    import logging

    client = nb_ops.Client(api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(TypeError, match="clock"):
        watch(["a"], client=client, clock=12.0)
    with pytest.raises(nb_ops.ConfigError, match="clock must return unix seconds"):
        watch(["a"], client=client, clock=lambda: "noon")
    with pytest.raises(nb_ops.ConfigError, match="not a time"):
        watch(["a"], client=client, clock=lambda: 1e20)
    start = 1_790_000_000.0
    sim = start_sim(speed=0, start_time=start)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) > 2:
            raise OSError("clock source gone")
        return sim.now()

    with caplog.at_level(logging.WARNING, logger="nb_ops.monitor"):
        m = watch(sim.operation_ids[:3], client=sim.client(), interval=0.05, display=False, clock=flaky, timeout=1)
        assert m.wait(30)
    assert m.reason in ("complete", "timeout") and len(m.history) >= 3
    assert caplog.text.count("the monitor's clock failed") == 1  # once, not every tick
    # It carries on from the clock's last reading, not from the wall clock months away.
    seen = [t.timestamp() for t in m.history["observed_at"]]
    assert all(start <= t < start + 60 for t in seen) and seen == sorted(seen)
    assert m.started_at <= m.ended_at
    with pytest.raises(nb_ops.ConfigError, match="1677-2262"):
        watch(["a"], client=client, clock=lambda: 1e10)  # year 2286: beyond what history can hold
    assert watch(["a"], client=client, clock=lambda: np.float32(1.79e9), display=False, timeout=0.1).wait(10)


def test_the_static_summary_reads_well_in_jupyterlab_and_without_operations(sim):
    import re

    m = watch(sim.operation_ids[:5], client=sim.client(), display=False, interval=0.05, timeout=2)
    m.wait(30)
    table = monitor_module._summary_html(m._snapshot())
    cells = re.findall(r"<t[dh](?: [^>]*)?>", table)
    assert cells and all("text-align:left" in c for c in cells)  # JupyterLab right-aligns cells by default
    empty = watch([], client=sim.client(), display=False)
    assert empty.wait(10) and empty.summary().splitlines()[0] == "nb_ops.watch: 0 operations"
