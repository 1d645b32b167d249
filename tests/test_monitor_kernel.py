"""nb_ops.watch in a real Jupyter kernel: widget updates sent from the polling thread reach iopub, in order.

A small notebook runs in the venv's ``python3`` kernel through nbclient. Its first cell starts the
simulator (time sped up) and calls ``watch()``, and returns at once. The test then keeps reading the
kernel's iopub messages after that cell went idle (as a front end would): every ``comm_msg``
``update`` read there was sent while the main thread was idle, so by the polling thread. It checks
that progress bars only move forward, and that the live widget is finally replaced by a static
summary (``update_display_data`` with text/plain and text/html) that reads well without a kernel.

ipykernel, nbclient and nbformat are test dependencies: if one is missing this module fails; it
never skips.
"""

from __future__ import annotations

import queue
import sys
import time

import ipykernel  # noqa: F401 - a missing kernel must fail this test, not skip it
import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

START = """\
import sys
import nb_ops
from nb_ops import simulator

sim = simulator.start(seed=0, size=60, speed=300)
statuses = sim.fleet.statuses(sim.now())
ids = [i for i, s in statuses.items() if s in ("queued", "running")]
monitor = nb_ops.watch(ids, client=sim.client(), interval=0.1)
print(sys.prefix, len(ids), monitor._mode)
"""

CHECK = """\
assert monitor.wait(60)
print(monitor.reason, sorted(monitor._applied_by), monitor._thread.name)
sim.stop()
"""


def _outputs_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def test_widget_updates_from_the_polling_thread_reach_the_front_end(tmp_path):
    nb = new_notebook(cells=[new_code_cell(START), new_code_cell(CHECK)])
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        prefix, count, mode = _outputs_text(nb.cells[0]).split()
        assert prefix == sys.prefix  # the kernel is this venv's python
        assert mode == "widget" and int(count) > 3
        displayed = [o for o in nb.cells[0].outputs if o.get("output_type") == "display_data"]
        assert len(displayed) == 1
        bundle = displayed[0]["data"]
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert bundle["text/plain"].startswith("nb_ops.watch:")  # not "VBox(children=...)"
        display_id = displayed[0]["transient"]["display_id"] if "transient" in displayed[0] else None

        # Widget models opened by the cell, as the front end learned them (comm_open, before idle).
        bars = {
            model_id
            for model_id, state in client.widget_state.items()
            if state.get("_model_name") == "FloatProgressModel"
        }
        assert len(bars) == int(count) + 1  # one a row, and the overall bar

        # Everything read from here on was sent after the cell went idle: by the polling thread.
        updates: dict[str, list[float]] = {}
        finals = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not finals:
            try:
                msg = run_sync(client.kc.get_iopub_msg)(timeout=1)
            except queue.Empty:
                continue
            kind = msg["header"]["msg_type"]
            content = msg["content"]
            if kind == "comm_msg" and content["data"].get("method") == "update":
                state = content["data"]["state"]
                if content["comm_id"] in bars and "value" in state:
                    updates.setdefault(content["comm_id"], []).append(state["value"])
            elif kind == "update_display_data":
                finals.append(content)

        assert updates, "no widget update arrived after the cell returned"
        assert sum(len(v) for v in updates.values()) >= 5
        for values in updates.values():
            assert values == sorted(values), values  # arrived in order: bars only move forward
        assert any(len(v) >= 3 for v in updates.values())
        assert any(v[-1] == 1.0 for v in updates.values())

        # The live widget is replaced by a static summary that reads well without a kernel.
        assert finals, "the monitor never replaced its widget with a summary"
        data = finals[0]["data"]
        assert "application/vnd.jupyter.widget-view+json" not in data
        assert data["text/plain"].startswith("nb_ops.watch:") and "stopped watching" in data["text/plain"]
        assert "complete" in data["text/plain"] and "<table" in data["text/html"]
        if display_id is not None:
            assert finals[0]["transient"]["display_id"] == display_id

        client.execute_cell(nb.cells[1], 1)
        reason, *threads = _outputs_text(nb.cells[1]).split()
        assert reason == "complete"
        assert all(name.strip("[]',").startswith("nb_ops-watch") for name in threads)  # never the main thread
    # The saved notebook: the watch cell's output is the static summary (monitor.wait() re-sent it
    # while its own cell ran, so even a headless run records it), not a widget view or "watching…".
    saved = nbformat.from_dict(nb)
    outputs = [o for o in saved.cells[0].outputs if o.get("output_type") == "display_data"]
    assert len(outputs) == 1
    data = outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data and "HBox(" not in data["text/plain"]
    assert "stopped watching" in data["text/plain"] and "complete" in data["text/plain"]
    assert "<table" in data["text/html"]
