"""Real-browser check of the live dashboard: JupyterLab + headless Chromium (Debian's) + Playwright.

Run by ``make browser-test`` in its own environment (the Binder requirements plus Playwright, see
``tests/browser/requirements.txt``)::

    .venv-browser/bin/python tests/browser/check_dashboard.py [--out browser-test-output]

What it does, and what it asserts:

1. Copies ``notebooks/03_live_monitoring.ipynb`` into a temporary folder (so JupyterLab's
   autosave never touches the repository) and starts JupyterLab there on 127.0.0.1, with a fixed
   token, its own settings, workspaces and runtime folders, and no ``NEBIUS_*`` variables (so the
   notebook uses the simulator).
2. Opens the notebook in headless Chromium, runs all cells from the *Run* menu, and records every
   change of the dashboard's progress bars in the page (a MutationObserver), while sampling the
   page from here and taking screenshots.
3. Asserts that the dashboard rendered as widgets, never as the text ``HBox(...)``/``VBox(...)``
   or "Error displaying widget"; that there was one bar per watched operation plus the overall
   bar; that the bars advanced over time (the overall bar through several values, never back,
   most rows moving) and reached their final states (the overall bar and every succeeded row at
   100%, then the static summary replacing the widget says "complete", with no operation left
   running); and that every cell ran without an error.
4. Saves ``dashboard.png`` (mid-run), ``final.png`` (after the run) and ``bars.json`` (the
   recorded bar widths) in ``--out``, and shuts the browser, kernels and server down, also on
   failure.

Prints ``browser-test: 1 passed, 0 failed`` (or ``0 passed, 1 failed`` and why) and exits 0 or 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "03_live_monitoring.ipynb"
TOKEN = "nb-ops-browser-test"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As the machine notes recommend: no sandbox (root), and none of Chromium's background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT = 120.0  # seconds for all cells to run (the watch itself takes about 10 s)

# Records the dashboard's bars in the page on every DOM change, so no state is missed between two
# samples from Python (the widget is replaced by a static summary right after its last update).
OBSERVER_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  window.__bars = [];
  const snap = () => {
    const bars = [...panel.querySelectorAll('.widget-hprogress .progress-bar')];
    if (!bars.length) return;
    const state = bars.map(b => ({
      width: parseFloat(b.style.width || '0'),
      cls: b.className,
    }));
    const last = window.__bars[window.__bars.length - 1];
    const key = JSON.stringify(state);
    if (!last || last.key !== key) window.__bars.push({t: performance.now(), key, state});
  };
  new MutationObserver(snap).observe(panel, {subtree: true, childList: true, attributes: true,
                                             attributeFilter: ['style', 'class']});
  snap();
}
"""

PAGE_STATE_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const cells = [...panel.querySelectorAll('.jp-CodeCell')];
  return {
    text: panel.innerText,
    bars: panel.querySelectorAll('.widget-hprogress').length,
    widgetViews: panel.querySelectorAll('.jp-OutputArea-output .widget-vbox').length,
    summary: panel.querySelector('.nb-ops-watch-summary') ? panel.querySelector('.nb-ops-watch-summary').innerText : null,
    summaryRows: panel.querySelectorAll('.nb-ops-watch-summary tbody tr').length,
    prompts: cells.map(c => (c.querySelector('.jp-InputArea-prompt') || {}).innerText || ''),
    errors: panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length,
    status: (document.querySelector('.jp-Notebook-ExecutionIndicator') || {dataset: {}}).dataset.status || null,
  };
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s")


def api(url: str, path: str, method: str = "GET") -> object:
    req = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


def start_lab(workdir: Path, log) -> tuple[subprocess.Popen, str]:
    settings = workdir / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # The "Jupyter news" prompt would cover part of the page.
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEBIUS_")}
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(workdir / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(workdir / "lab-workspaces"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        JUPYTER_CONFIG_DIR=str(workdir / "config"),
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={workdir / 'notebooks'}",
        "--ServerApp.port_retries=0", "--LabApp.news_url=", "--ContentsManager.allow_hidden=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=workdir / "notebooks", env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_server(url, proc)
    return proc, url


def stop_lab(proc: subprocess.Popen, url: str) -> None:
    try:  # shut the kernels down first, so no kernel outlives the server
        for session in api(url, "/api/sessions") or []:
            api(url, f"/api/sessions/{session['id']}", method="DELETE")
    except Exception:  # noqa: BLE001 - the server may be gone already
        pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def step(text: str) -> None:
    print(f"browser-test: {text}", flush=True)


def copy_without_outputs(source: Path, target: Path) -> None:
    """Copy a notebook with its outputs and execution counts cleared, so whatever shows came from this run."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def ran(prompts: list[str]) -> bool:
    """True when every code cell's prompt shows an execution count, as "[12]:"."""
    return bool(prompts) and all(p.strip()[:1] == "[" and p.strip()[1:2].isdigit() for p in prompts)


def show_cell(page, inner: str) -> None:
    """Scroll the code cell holding ``inner`` to the top of the notebook, for a screenshot."""
    page.evaluate(
        """inner => {
          const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
          const hit = panel && panel.querySelector(inner);
          const cell = hit && hit.closest('.jp-CodeCell');
          if (cell) cell.scrollIntoView({block: 'start'});
        }""",
        inner,
    )
    time.sleep(0.3)  # let the virtual scroller render what came into view


def run_all_cells(page) -> None:
    """Run > Run All Cells, retried: right after load the command occasionally does nothing."""
    for _ in range(5):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            state = page.evaluate(PAGE_STATE_JS)
            if state and any(p.strip() not in ("[ ]:", "[ ]", "") for p in state["prompts"]):
                return  # "[*]:" or a count: the cells started
            time.sleep(0.2)
        page.keyboard.press("Escape")
    raise AssertionError("Run All Cells did not start running the notebook")


def check(out: Path, log) -> list[str]:
    from playwright.sync_api import sync_playwright

    failures: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="nb_ops-browser-"))
    (workdir / "notebooks").mkdir()
    copy_without_outputs(ROOT / "notebooks" / NOTEBOOK, workdir / "notebooks" / NOTEBOOK)
    proc = url = None
    try:
        t0 = time.monotonic()
        proc, url = start_lab(workdir, log)
        step(f"JupyterLab ready at {url} ({time.monotonic() - t0:.1f} s)")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{url}/lab/tree/{NOTEBOOK}?reset&token={TOKEN}")
                page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", timeout=60_000)
                page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
                step(f"notebook open, kernel idle ({time.monotonic() - t0:.1f} s)")
                page.evaluate(OBSERVER_JS)
                started = time.monotonic()
                run_all_cells(page)
                step("running all cells")
                samples, shot = [], False
                while time.monotonic() - started < RUN_TIMEOUT:
                    state = page.evaluate(PAGE_STATE_JS)
                    samples.append(state)
                    bars = page.evaluate("() => window.__bars.length ? window.__bars[window.__bars.length - 1].state : []")
                    if not shot and bars and 30 <= bars[0]["width"] < 100:
                        show_cell(page, ".widget-hprogress")
                        page.screenshot(path=str(out / "dashboard.png"))
                        shot = True
                        step(f"mid-run screenshot at {bars[0]['width']:.0f}% ({time.monotonic() - started:.1f} s)")
                    if ran(state["prompts"]) and state["status"] == "idle" and state["summary"]:
                        step(f"all cells ran ({time.monotonic() - started:.1f} s)")
                        break
                    time.sleep(0.25)
                else:
                    failures.append(f"the notebook did not finish within {RUN_TIMEOUT:.0f} s")
                show_cell(page, ".nb-ops-watch-summary")
                page.screenshot(path=str(out / "final.png"))
                history = page.evaluate("() => window.__bars.map(s => ({t: s.t, state: s.state}))")
                (out / "bars.json").write_text(json.dumps(history, indent=1))
                failures += judge(samples, history, shot)
            finally:
                browser.close()
    finally:
        if proc is not None:
            stop_lab(proc, url)
        shutil.rmtree(workdir, ignore_errors=True)
    return failures


def judge(samples: list[dict], history: list[dict], shot: bool) -> list[str]:
    """The assertions, on what the page showed."""
    failures = []
    texts = [s["text"] for s in samples if s]
    for bad in ("HBox(", "VBox(", "Error displaying widget", "Model not found", "Traceback"):
        if any(bad in t for t in texts):
            failures.append(f"the page showed {bad!r}")
    if any(s and s["errors"] for s in samples):
        failures.append("a cell wrote an error or to stderr")
    if not history:
        return failures + ["no progress bar was ever rendered: the dashboard did not show as widgets"]
    counts = {len(h["state"]) for h in history}
    widths = [[bar["width"] for bar in h["state"]] for h in history]
    n = max(counts)
    if n < 4:
        failures.append(f"only {n} progress bars rendered")
    live = [w for w in widths if len(w) == n]
    overall = [w[0] for w in live]
    if len(set(overall)) < 3:
        failures.append(f"the overall bar did not advance through several values: {sorted(set(overall))}")
    if any(b < a for a, b in zip(overall, overall[1:])):
        failures.append(f"the overall bar went back: {overall}")
    if overall and overall[0] >= 100:
        failures.append("the overall bar was full from the start")
    moved = sum(1 for i in range(1, n) if len({w[i] for w in live}) > 1)
    if moved < (n - 1) // 2:
        failures.append(f"only {moved} of {n - 1} row bars moved")
    final = live[-1] if live else []
    if not final or final[0] != 100:
        failures.append(f"the overall bar never reached 100% (last {final[:1]})")
    classes = history[-1]["state"]
    succeeded = [i for i, bar in enumerate(classes) if "progress-bar-success" in bar["cls"]]
    if not succeeded:
        failures.append("no row turned green (succeeded)")
    for i in succeeded:
        if final and final[i] != 100:
            failures.append(f"row bar {i} is green but at {final[i]}%")
    final_sample = next((s for s in reversed(samples) if s and s["summary"]), None)
    summary = final_sample["summary"] if final_sample else None
    if not summary:
        failures.append("the widget was never replaced by the static summary")
    elif final_sample["summaryRows"] != n - 1:
        failures.append(f"{n - 1} row bars but {final_sample['summaryRows']} rows in the summary")
    elif "complete" not in summary or "running" in summary.split("\n", 2)[-1]:
        failures.append(f"the summary does not say every operation finished: {summary[:300]!r}")
    last = next((s for s in reversed(samples) if s), None)
    if last and not ran(last["prompts"]):
        failures.append(f"not every cell ran: prompts {last['prompts']}")
    if not shot:
        failures.append("no mid-run screenshot: the overall bar was never caught between 30% and 100%")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run 03_live_monitoring.ipynb in JupyterLab in headless Chromium.")
    parser.add_argument("--out", type=Path, default=ROOT / "browser-test-output", help="screenshots and logs")
    args = parser.parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        print(f"browser-test: {CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)",
              file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(args.out / "jupyterlab.log", "w") as log:
        try:
            failures = check(args.out, log)
        except Exception as exc:  # noqa: BLE001 - reported as a failure with its traceback
            traceback.print_exc()
            failures = [f"{type(exc).__name__}: {exc}"]
    took = time.monotonic() - started
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"screenshots and bar history in {args.out}/ ({took:.1f} s)")
    print(f"browser-test: {0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
