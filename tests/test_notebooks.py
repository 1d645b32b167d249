"""The demo notebooks as saved in git, and the nbval set-up that runs them in ``make test``.

nbval itself runs every cell of ``notebooks/*.ipynb`` in a kernel and compares outputs (see
``[tool:pytest]`` in setup.cfg). These tests check what nbval cannot: that the saved notebooks
are clean (run top to bottom, no errors, no widget state, no keys or secrets, small), that most
of their outputs are really compared, that the sanitizer replaces only what changes from run to
run, and that a developer's ``NEBIUS_*`` variables never make a notebook reach the real API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SANITIZER = ROOT / "notebooks" / "nbval-sanitize.cfg"
NAMES = ["01_quickstart.ipynb", "02_batch_analysis.ipynb", "03_live_monitoring.ipynb"]
FORBIDDEN = re.compile(r"sim-[A-Za-z0-9_-]{32}|simsecret-|Bearer\s+\S")
LIVE_MIME = "application/vnd.jupyter.widget-view+json"


def test_the_three_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == NAMES


@pytest.fixture(params=NAMES)
def saved(request):
    path = ROOT / "notebooks" / request.param
    return path, nbformat.read(path, as_version=4)


def test_saved_notebook_ran_top_to_bottom_without_errors(saved):
    path, nb = saved
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "run every cell once, in order"
    for cell in code:
        for out in cell.outputs:
            assert out.output_type != "error", cell.source
            assert not (out.output_type == "stream" and out.name == "stderr"), out.text
    # Prose between the code: no two code cells in a row without a word in between, bar the last.
    kinds = [c.cell_type for c in nb.cells[:-1]]
    assert "code,code" not in ",".join(kinds)


def test_saved_notebook_holds_no_widget_state_no_secrets_and_is_small(saved):
    path, nb = saved
    text = path.read_text(encoding="utf-8")
    assert "widgets" not in nb.metadata
    assert LIVE_MIME not in text  # the dashboard was saved as its static summary
    assert not FORBIDDEN.search(text)
    assert len(text.encode()) < 600_000


def test_first_output_says_where_the_data_comes_from(saved):
    _, nb = saved
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "os.environ.get(\"NEBIUS_API_KEY\")" in first.source
    text = "".join(o.get("text", "") for o in first.outputs)
    assert text.startswith("NEBIUS_API_KEY is not set: using the built-in simulator")


def test_outputs_are_compared_in_all_but_a_few_cells(saved):
    _, nb = saved
    code = [c for c in nb.cells if c.cell_type == "code"]
    lax = [c for c in code if re.search(r"^\s*#\s*NBVAL_(IGNORE_OUTPUT|SKIP|RAISES_EXCEPTION)\s*$", c.source, re.M)]
    lax += [c for c in code if set(c.metadata.get("tags", [])) & {"nbval-ignore-output", "nbval-skip", "raises-exception"}]
    assert len(lax) <= 2
    assert all("NBVAL_IGNORE_OUTPUT" in c.source for c in lax)  # never skipped, never allowed to raise
    checked = [c for c in code if c not in lax and c.outputs]
    assert len(checked) >= 5


def test_sanitizer_replaces_what_changes_and_keeps_the_simulators_pinned_times():
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns(SANITIZER.read_text(encoding="utf-8"))

    def sanitize(text):
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    assert sanitize("http://127.0.0.1:41234/v1/operations") == "http://127.0.0.1:PORT/v1/operations"
    assert sanitize("key sim-" + "A1_-" * 8 + " end") == "key SIM-KEY end"
    assert sanitize("stopped watching at 18:30:40 UTC: complete (watched for 10 s)") == (
        "stopped watching at HH:MM:SS UTC: complete (watched for DURATION)"
    )
    assert sanitize("[18:30:40] 3/15 finished") == "[HH:MM:SS] 3/15 finished"
    pinned = "Created 2026-01-15 08:05:01 UTC, 2026-01-15 08:18:36+00:00, 0 days 00:13:35, 52%"
    assert sanitize(pinned) == pinned


def _pytest(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_developers_nebius_variables_never_reach_the_notebooks():
    # With these set, a notebook that saw them would try the "real" API (a closed loopback port)
    # and fail; notebooks/conftest.py removes them before nbval starts the kernel.
    env = dict(os.environ, NEBIUS_API_KEY="developer-key", NEBIUS_BASE_URL="http://127.0.0.1:9")
    result = _pytest("notebooks/01_quickstart.ipynb", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "passed" in result.stdout and "failed" not in result.stdout


def test_a_developers_ipython_profile_cannot_bring_the_key_back(tmp_path):
    # A startup file in the developer's profile sets the key inside every kernel. The kernels of
    # the notebook tests get a fresh profile, so no request carries it to the "real" API (a
    # listener here that records what reaches it).
    import http.server
    import threading

    seen = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server interface
            seen.append(self.headers.get("Authorization"))
            self.send_error(500)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    startup = tmp_path / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-keys.py").write_text(
        "import os\n"
        "os.environ['NEBIUS_API_KEY'] = 'developer-real-key'\n"
        f"os.environ['NEBIUS_BASE_URL'] = 'http://127.0.0.1:{server.server_address[1]}'\n"
        "os.environ['NB_OPS_IDS'] = 'op-one'\n"
    )
    try:
        result = _pytest("notebooks/01_quickstart.ipynb", env=dict(os.environ, IPYTHONDIR=str(tmp_path)))
    finally:
        server.shutdown()
        server.server_close()
    assert seen == []
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_notebook_that_raises_fails_the_suite(tmp_path):
    nb = new_notebook(cells=[new_code_cell("print('fine')"), new_code_cell("raise RuntimeError('boom')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "raises.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    result = _pytest("-c", str(ROOT / "setup.cfg"), "--rootdir", str(ROOT), str(path))
    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 failed, 1 passed" in result.stdout and "boom" in result.stdout
