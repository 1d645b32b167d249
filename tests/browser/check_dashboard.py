"""Real-browser check of the live dashboard: JupyterLab + headless Chromium (Debian's) + Playwright.

Run by ``make browser-test`` in its own environment (the Binder requirements plus Playwright, see
``tests/browser/requirements.txt``)::

    .venv-browser/bin/python tests/browser/check_dashboard.py [--out browser-test-output]

The Chromium binary is ``$CHROMIUM`` (default ``/usr/bin/chromium``). Two runs can go at the same
time with different ``--out`` folders (each has its own port, token and temporary folder; runs
sharing an ``--out`` folder take turns).

What it does, and what it asserts:

1. Copies ``notebooks/03_live_monitoring.ipynb`` into a temporary folder (so JupyterLab's
   autosave never touches the repository) and starts JupyterLab there on 127.0.0.1 and a free
   port, with a random token (never printed), its own settings, workspaces, data, runtime and
   IPython folders, and no ``NEBIUS_*`` variables (so the notebook uses the simulator).
2. Opens the notebook in headless Chromium and waits until its kernel has settled: the page's
   kernel is connected and idle, and the sessions API shows that one kernel, unchanged for a few
   seconds. (Right after the page loads, JupyterLab sometimes starts a kernel and replaces it at
   once, or asks for a kernel in a "Select Kernel" dialog, which is answered with
   Python 3 (ipykernel).) Then it runs all cells from the *Run* menu, retried until the
   execution prompts show the cells started, and records every change of the dashboard's
   progress bars and row texts in the page (a MutationObserver), while sampling the page from
   here and taking screenshots. If the run is lost on the way (the kernel is replaced, or it sits
   idle with cells still waiting and no error shown), the page and kernel are thrown away and the
   notebook runs once more from a clean copy; a second loss fails the check.
3. Asserts that the dashboard rendered as widgets, never as the text ``HBox(...)``/``VBox(...)``
   or "Error displaying widget"; that there was one bar per watched operation plus the overall
   bar; that each live row showed its text cells, read at the mid-run sample: a short id, a known
   operation type, a known status, a progress text and an elapsed time; that the bars advanced
   over time (the overall bar through several values, never back, most rows moving) and reached
   their final states (the overall bar and every succeeded row at 100%, then the static summary
   replacing the widget says "complete", with one finished row per operation and no operation
   left running); and that every cell ran without an error.
4. Saves ``dashboard.png`` (mid-run), ``final.png`` (after the run), ``bars.json`` (the recorded
   bar widths and row texts) and ``jupyterlab.log`` in ``--out``; ``failure.png`` when an
   exception stopped the check, ``lost-run.png`` when a first run was lost. Shuts the browser,
   kernels and server down and removes the temporary folder, also on failure and on SIGTERM,
   SIGHUP or SIGINT (turned into an exception, so the clean-up runs).

Prints ``browser-test: 1 passed, 0 failed`` (or ``0 passed, 1 failed`` and why) and exits 0 or 1.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "03_live_monitoring.ipynb"
#: A new token for every run; it is never printed (see :func:`redact`).
TOKEN = secrets.token_hex(16)
#: Set in the environment of everything this run starts (JupyterLab, kernels, the Playwright driver,
#: Chromium): the clean-up finds what is left by it, and never touches anybody else's processes.
RUN_MARK = "NB_OPS_BROWSER_TEST_RUN"
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
    # Nothing beyond loopback, not even DNS: without this Chromium looks up accounts.google.com (seen
    # with strace). What stays is its IPv6 route probe: connect() on a UDP socket, which sends nothing.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
KERNEL_NAME, KERNEL_DISPLAY_NAME = "python3", "Python 3 (ipykernel)"
RUN_TIMEOUT = 120.0  # seconds for all cells to run (the watch itself takes about 10 s)
SETTLE_TIMEOUT = 90.0  # seconds for the page's kernel to settle before running
SETTLE_FOR = 3.0  # seconds the same kernel must stay connected and idle before running
LOST_AFTER = 12.0  # seconds without kernel activity, cells waiting and no error shown: the run was lost
ARTIFACTS = ("dashboard.png", "final.png", "failure.png", "lost-run.png", "bars.json")

# What an operation row of the dashboard holds, left to right: id, type, status (HTML), the bar,
# then progress, elapsed and ETA/note (HTML). "h" is an HTML widget, "b" the progress bar.
ROW_LAYOUT = "hhhbhhh"
# Statuses the API has (nb_ops.spec.STATUSES), plus the monitor's own "pending" (not fetched yet)
# and "error" (fetching failed for good).
API_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "unknown")
KNOWN_STATUSES = frozenset(API_STATUSES) | {"pending", "error"}
FINISHED_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
# nb_ops.operation.format_duration: "45 s", "12 min 05 s", "3 h 07 min", "2 d 04 h".
DURATION = r"-?(?:\d+ s|\d+ min \d\d s|\d+ h \d\d min|\d+ d \d\d h)"
ELAPSED_RE = re.compile(rf"(?:queued )?{DURATION}")
PROGRESS_RE = re.compile(r"[\d,]+ / [\d,]+ steps|queued|running|unknown|")
SHORT_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,8}")

# The visible notebook, as the app sees it (JupyterLab runs with expose_app_in_browser, so
# window.jupyterapp is there, as in JupyterLab's own browser tests).
JS_PANEL = r"""
const nbPanel = name => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  return [...app.shell.widgets('main')].find(w => w.context && w.context.path === name && w.sessionContext) || null;
};
const nbNode = name => {
  const panel = nbPanel(name);
  return panel ? panel.node : document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
};
const kernelState = name => {
  const app = window.jupyterapp;
  const dialogs = [...document.querySelectorAll('.jp-Dialog')].map(
    d => ((d.querySelector('.jp-Dialog-header') || d).innerText || '').trim().slice(0, 200));
  const panel = nbPanel(name);
  if (!panel) return {panel: false, app: !!(app && app.shell), dialogs};
  const ctx = panel.sessionContext;
  const kernel = ctx.session ? ctx.session.kernel : null;
  const specs = app.serviceManager.kernelspecs.specs;
  return {
    panel: true, app: true, dialogs, ready: ctx.isReady, display: ctx.kernelDisplayStatus, noKernel: ctx.hasNoKernel,
    kernelId: kernel ? kernel.id : null, status: kernel ? kernel.status : null,
    connection: kernel ? kernel.connectionStatus : null, specs: specs ? Object.keys(specs.kernelspecs) : null,
  };
};
// The operation rows of the dashboard: boxes holding a progress bar and several HTML widgets
// (the header's box holds the overall bar and a single HTML widget).
const text = node => (node.textContent || '').replace(/\s+/g, ' ').trim();
const dashboardRows = root => [...root.querySelectorAll('.widget-hbox')]
  .filter(box => [...box.children].some(c => c.classList.contains('widget-hprogress'))
                 && [...box.children].filter(c => c.classList.contains('widget-html')).length >= 2)
  .map(box => {
    const kids = [...box.children];
    const fill = box.querySelector(':scope > .widget-hprogress .progress-bar');
    const code = box.querySelector('.widget-html-content code');
    return {
      layout: kids.map(c => c.classList.contains('widget-hprogress') ? 'b' : c.classList.contains('widget-html') ? 'h' : '?').join(''),
      texts: kids.filter(c => c.classList.contains('widget-html'))
                 .map(c => text(c.querySelector('.widget-html-content') || c)),
      title: code ? code.getAttribute('title') : null,
      width: fill ? parseFloat(fill.style.width || '0') : null,
      cls: fill ? fill.className : '',
    };
  });
"""

# Records the dashboard's bars and row texts in the page on every DOM change, so no state is
# missed between two samples from Python (the widget is replaced by a static summary right after
# its last update).
OBSERVER_JS = f"""
name => {{
  {JS_PANEL}
  const panel = nbNode(name);
  window.__bars = [];
  const snap = () => {{
    const bars = [...panel.querySelectorAll('.widget-hprogress .progress-bar')];
    if (!bars.length) return;
    const state = bars.map(b => ({{width: parseFloat(b.style.width || '0'), cls: b.className}}));
    const rows = dashboardRows(panel).map(r => r.texts);
    const last = window.__bars[window.__bars.length - 1];
    const key = JSON.stringify([state, rows]);
    if (!last || last.key !== key) window.__bars.push({{t: performance.now(), key, state, rows}});
  }};
  new MutationObserver(snap).observe(panel, {{subtree: true, childList: true, characterData: true, attributes: true,
                                             attributeFilter: ['style', 'class']}});
  snap();
}}
"""

PAGE_STATE_JS = f"""
name => {{
  {JS_PANEL}
  const kernel = kernelState(name);
  const panel = nbNode(name);
  if (!panel) return {{kernel, prompts: [], text: '', bars: 0, errors: 0, summary: null, summaryRows: []}};
  const cells = [...panel.querySelectorAll('.jp-CodeCell')];
  const summary = panel.querySelector('.nb-ops-watch-summary');
  return {{
    kernel,
    // textContent, not innerText: JupyterLab does not render cells scrolled out of view
    // (content-visibility), and their innerText is empty while their text is there.
    text: panel.textContent,
    bars: panel.querySelectorAll('.widget-hprogress').length,
    summary: summary ? (summary.innerText || summary.textContent) : null,
    summaryRows: summary ? [...summary.querySelectorAll('tbody tr')].map(
      tr => [...tr.querySelectorAll('td')].map(text)) : [],
    summaryTitles: summary ? [...summary.querySelectorAll('tbody tr td:first-child')].map(td => td.getAttribute('title')) : [],
    prompts: cells.map(c => (c.querySelector('.jp-InputArea-prompt') || {{}}).textContent || ''),
    errors: panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length,
    status: (document.querySelector('.jp-Notebook-ExecutionIndicator') || {{dataset: {{}}}}).dataset.status || null,
  }};
}}
"""

ROWS_JS = f"""
name => {{
  {JS_PANEL}
  const panel = nbNode(name);
  return panel ? dashboardRows(panel) : [];
}}
"""

KERNEL_JS = f"""
name => {{
  {JS_PANEL}
  return kernelState(name);
}}
"""

DIALOG_JS = """
() => [...document.querySelectorAll('.jp-Dialog')].map(d => ({
  title: ((d.querySelector('.jp-Dialog-header') || d).innerText || '').trim().slice(0, 200),
  options: [...d.querySelectorAll('select option')].map(o => ({value: o.value, text: (o.textContent || '').trim()})),
}))
"""


class Terminated(Exception):
    """SIGTERM, SIGHUP or SIGINT arrived; raised in the main thread so that every clean-up runs."""


class RunLost(Exception):
    """The notebook run was lost to JupyterLab, not to the notebook: retried once from scratch."""


class _Signals:
    cleaning = False  # once the clean-up has begun, a further signal no longer interrupts it
    received: str | None = None


def _on_signal(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    first = _Signals.received is None
    _Signals.received = name
    if first and not _Signals.cleaning:
        raise Terminated(f"received {name}")


def install_signal_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_signal)


def redact(text: str) -> str:
    return text.replace(TOKEN, "<token>")


def step(text: str) -> None:
    print(redact(f"browser-test: {text}"), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, path: str, method: str = "GET") -> object:
    req = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


def wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> bool:
    """True once JupyterLab answers with our token; False if it exited first (its port taken, say)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            api(url, "/api/status")
            return True
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s")


def _die_with_parent() -> None:
    """Run in JupyterLab's process before it starts: SIGTERM when this script dies, even by SIGKILL
    (Linux's PR_SET_PDEATHSIG), so the server then shuts its kernels down by itself."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM, 0, 0, 0)


try:
    _LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None
except OSError:
    _LIBC = None


def become_subreaper() -> None:
    """Descendants orphaned on the way (Chromium's helpers, a kernel whose server died) become this
    process's children rather than init's, so the clean-up can stop them and collect their exits."""
    if _LIBC is not None:
        _LIBC.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def collect_children(timeout: float = 3.0) -> None:
    """Wait for this process's remaining children to exit, so none is left behind as a zombie."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children left
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def start_lab(workdir: Path, log) -> tuple[subprocess.Popen, str]:
    settings = workdir / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # The "Jupyter news" prompt would cover part of the page.
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEBIUS_") and k != "NB_OPS_IDS"}
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(workdir / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(workdir / "lab-workspaces"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        JUPYTER_CONFIG_DIR=str(workdir / "config"),
        JUPYTER_DATA_DIR=str(workdir / "data"),
        IPYTHONDIR=str(workdir / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    for attempt in range(3):  # a free port can be taken by someone else before JupyterLab binds it
        port = free_port()
        cmd = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={workdir / 'notebooks'}",
            "--ServerApp.port_retries=0", "--LabApp.news_url=", "--ContentsManager.allow_hidden=False",
            "--LabApp.expose_app_in_browser=True",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        proc = subprocess.Popen(cmd, cwd=workdir / "notebooks", env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509 - no threads yet
        url = f"http://127.0.0.1:{port}"
        try:
            if wait_for_server(url, proc):
                return proc, url
        except BaseException:
            stop_lab(proc, None)
            raise
        step(f"JupyterLab exited with status {proc.returncode} before it was ready (port {port}); trying another port")
    raise RuntimeError("JupyterLab did not start (see jupyterlab.log)")


def shutdown_kernels(url: str) -> None:
    """Shut every session and kernel of this server down, so no kernel outlives its use."""
    with contextlib.suppress(Exception):
        for session in api(url, "/api/sessions") or []:
            with contextlib.suppress(Exception):
                api(url, f"/api/sessions/{session['id']}", method="DELETE")
    with contextlib.suppress(Exception):
        for kernel in api(url, "/api/kernels") or []:
            with contextlib.suppress(Exception):
                api(url, f"/api/kernels/{kernel['id']}", method="DELETE")


def stop_lab(proc: subprocess.Popen, url: str | None) -> None:
    if url is not None and proc.poll() is None:
        shutdown_kernels(url)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def marked_processes(mark: str) -> list[int]:
    """Processes started by this run (they carry RUN_MARK=mark in their environment), but this one."""
    needle = f"\0{RUN_MARK}={mark}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = b"\0" + f.read()
        except OSError:
            continue
        if needle in environ:
            found.append(int(entry))
    return found


def reap(mark: str) -> list[int]:
    """Stop whatever this run started that is still alive (kernels, Chromium): TERM, then KILL."""
    pids = marked_processes(mark)
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = [pid for pid in pids if pid in marked_processes(mark)]
        if not pids:
            break
    return pids


def copy_without_outputs(source: Path, target: Path) -> None:
    """Copy a notebook with its outputs and execution counts cleared, so whatever shows came from this run."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def ran(prompts: list[str]) -> bool:
    """True when every code cell's prompt shows an execution count, as "[12]:"."""
    return bool(prompts) and all(re.match(r"\[\d+\]", p.strip()) for p in prompts)


def started(prompts: list[str]) -> bool:
    """True when some code cell is waiting or running ("[*]:") or has run ("[3]:")."""
    return any(re.match(r"\[(\*|\d+)\]", p.strip()) for p in prompts)


def show_cell(page, inner: str) -> None:
    """Scroll the code cell holding ``inner`` to the top of the notebook, for a screenshot."""
    page.evaluate(
        f"""inner => {{
          {JS_PANEL}
          const panel = nbNode({json.dumps(NOTEBOOK)});
          const hit = panel && panel.querySelector(inner);
          const cell = hit && hit.closest('.jp-CodeCell');
          if (cell) cell.scrollIntoView({{block: 'start'}});
        }}""",
        inner,
    )
    time.sleep(0.3)  # let the virtual scroller render what came into view


def screenshot(page, path: Path) -> None:
    """A screenshot for diagnosis; never raises (the page may be gone)."""
    if page is None:
        return
    try:
        page.screenshot(path=str(path), timeout=10_000)
        step(f"saved {path.name}")
    except Exception as exc:  # noqa: BLE001
        step(f"could not save {path.name}: {type(exc).__name__}: {str(exc)[:200]}")


def handle_dialogs(page, seen: list[str]) -> bool:
    """Answer JupyterLab dialogs: "Select Kernel" with Python 3 (ipykernel), anything else dismissed.

    Returns True if there was a dialog. Each dialog's title is added to ``seen``.
    """
    dialogs = page.evaluate(DIALOG_JS)
    if not dialogs:
        return False
    dialog = dialogs[-1]  # the top one
    seen.append(dialog["title"])
    start = None
    for option in dialog["options"]:
        with contextlib.suppress(ValueError, TypeError):
            value = json.loads(option["value"])
            if isinstance(value, dict) and value.get("name") == KERNEL_NAME and not value.get("id"):
                start = option["value"]
                break
    top = page.locator(".jp-Dialog").last
    try:
        if start is not None:
            top.locator("select").first.select_option(value=start, timeout=5_000)
            top.locator(".jp-Dialog-button.jp-mod-accept").first.click(timeout=5_000)
            step(f"dialog {dialog['title']!r}: chose {KERNEL_DISPLAY_NAME}")
        else:  # a kernel dialog from before the kernel specs loaded has nothing to choose: start one later
            reject = top.locator(".jp-Dialog-button.jp-mod-reject")
            if reject.count():
                reject.first.click(timeout=5_000)
            else:
                page.keyboard.press("Escape")
            step(f"dialog {dialog['title']!r}: dismissed")
    except Exception as exc:  # noqa: BLE001 - the dialog may have closed by itself meanwhile
        step(f"dialog {dialog['title']!r}: could not answer it ({type(exc).__name__})")
    time.sleep(0.5)
    return True


def settle_kernel(page, url: str, dialogs: list[str]) -> str:
    """Wait until one kernel is the notebook's for good: returns its id, or raises RunLost.

    Settled means: the page's kernel is connected and idle, the sessions API lists exactly one
    session, on that kernel, the server runs no other kernel and calls it idle, no dialog is open,
    and all that has held for SETTLE_FOR seconds.
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT
    candidate, since, no_kernel_since, last = None, 0.0, None, {}
    while time.monotonic() < deadline:
        if handle_dialogs(page, dialogs):
            candidate = None
            continue
        kernel = page.evaluate(KERNEL_JS, NOTEBOOK)
        kid = kernel.get("kernelId")
        ok = bool(kid) and kernel.get("ready") and kernel.get("status") == "idle" and kernel.get("connection") == "connected"
        sessions, kernels = [], []
        if ok:  # then ask the server (not before: its kernel list can answer 500 while a kernel starts)
            try:
                sessions = api(url, "/api/sessions") or []
                kernels = api(url, "/api/kernels") or []
            except (OSError, ValueError) as exc:
                sessions, kernels = [{"error": str(exc)}], []
            ok = (
                len(sessions) == 1
                and sessions[0].get("kernel", {}).get("id") == kid
                and [k.get("id") for k in kernels] == [kid]
                and kernels[0].get("execution_state") == "idle"
            )
        last = {"page": kernel, "sessions": [s.get("kernel", s) for s in sessions]}
        now = time.monotonic()
        if not ok:
            candidate = None
        elif kid != candidate:
            candidate, since = kid, now
        elif now - since >= SETTLE_FOR:
            return kid
        # No kernel and no dialog for a while (a dialog dismissed before the specs loaded): ask for
        # one as a user would, from the Kernel menu; the dialog it opens is answered above.
        if kernel.get("panel") and kernel.get("noKernel") and kernel.get("specs"):
            no_kernel_since = no_kernel_since or now
            if now - no_kernel_since > 5:
                step("the notebook has no kernel: choosing one from Kernel > Change Kernel")
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:change-kernel')")
                no_kernel_since = None
        else:
            no_kernel_since = None
        time.sleep(0.25)
    raise RunLost(f"the notebook's kernel did not settle within {SETTLE_TIMEOUT:.0f} s: {json.dumps(last)[:600]}")


def run_all_cells(page, dialogs: list[str]) -> int:
    """Run > Run All Cells, until the prompts show that cells started; returns the number of tries."""
    for attempt in range(1, 5):
        handle_dialogs(page, dialogs)
        try:
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click(timeout=5_000)
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click(timeout=5_000)
        except Exception as exc:  # noqa: BLE001 - a dialog or a closing menu was in the way: try again
            step(f"Run > Run All Cells: could not click ({type(exc).__name__}); again")
            page.keyboard.press("Escape")
            continue
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            if started(page.evaluate(PAGE_STATE_JS, NOTEBOOK)["prompts"]):
                return attempt
            time.sleep(0.2)
        step("Run All Cells did not start the cells; again")
        page.keyboard.press("Escape")
    raise RunLost("Run All Cells did not start running the notebook (4 tries)")


def run_notebook(page, url: str, out: Path, dialogs: list[str]) -> tuple[list[dict], list[dict], list[dict] | None]:
    """Open the notebook, run all its cells and sample the page until they ran.

    Returns the samples, the recorded bar history and the dashboard rows at the mid-run screenshot
    (None if the overall bar was never caught mid-run). Raises RunLost if JupyterLab lost the run.
    """
    t0 = time.monotonic()
    page.goto(f"{url}/lab/tree/{NOTEBOOK}?reset&token={TOKEN}", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", timeout=60_000)
    kernel_id = settle_kernel(page, url, dialogs)
    step(f"notebook open, kernel settled and idle ({time.monotonic() - t0:.1f} s)")
    page.evaluate(OBSERVER_JS, NOTEBOOK)
    begun = time.monotonic()
    tries = run_all_cells(page, dialogs)
    step("running all cells" + (f" (Run All Cells clicked {tries} times)" if tries > 1 else ""))
    samples: list[dict] = []
    mid_rows = None
    prompts_before, active_at, api_at = None, time.monotonic(), 0.0
    while time.monotonic() - begun < RUN_TIMEOUT:
        state = page.evaluate(PAGE_STATE_JS, NOTEBOOK)
        samples.append(state)
        kernel, now = state["kernel"], time.monotonic()
        if kernel.get("dialogs"):
            handle_dialogs(page, dialogs)
        if kernel.get("kernelId") != kernel_id:
            raise RunLost(f"the page's kernel changed during the run ({kernel_id} -> {kernel.get('kernelId')})")
        if now - api_at > 2:
            api_at = now
            with contextlib.suppress(OSError, ValueError):
                ids = sorted(s.get("kernel", {}).get("id") for s in api(url, "/api/sessions") or [])
                if ids != [kernel_id]:
                    raise RunLost(f"the server's sessions changed during the run: kernels {ids}, not {[kernel_id]}")
        if kernel.get("status") == "busy" or state["prompts"] != prompts_before:
            active_at, prompts_before = now, state["prompts"]
        bars = page.evaluate("() => window.__bars.length ? window.__bars[window.__bars.length - 1].state : []")
        if mid_rows is None and bars and 30 <= bars[0]["width"] < 100:
            show_cell(page, ".widget-hprogress")
            mid_rows = page.evaluate(ROWS_JS, NOTEBOOK)
            page.screenshot(path=str(out / "dashboard.png"))
            step(f"mid-run screenshot at {bars[0]['width']:.0f}% ({time.monotonic() - begun:.1f} s)")
        if ran(state["prompts"]) and kernel.get("status") == "idle" and state["summary"]:
            step(f"all cells ran ({time.monotonic() - begun:.1f} s)")
            break
        idle = now - active_at
        if state["errors"] and kernel.get("status") == "idle" and idle > 3:
            step("a cell failed and the kernel is idle: not waiting any longer")
            break
        if idle > LOST_AFTER and not state["errors"] and not ran(state["prompts"]):
            raise RunLost(f"the kernel sat idle for {idle:.0f} s with cells still waiting: prompts {state['prompts']}")
        time.sleep(0.25)
    else:
        step(f"the notebook did not finish within {RUN_TIMEOUT:.0f} s")
    show_cell(page, ".nb-ops-watch-summary")
    page.screenshot(path=str(out / "final.png"))
    history = page.evaluate("() => window.__bars.map(s => ({t: s.t, state: s.state, rows: s.rows}))")
    (out / "bars.json").write_text(json.dumps(history, indent=1))
    return samples, history, mid_rows


def sweep_stale_workdirs(older_than: float = 86400.0) -> None:
    """Remove what runs killed outright (SIGKILL, a machine shut down) left a day or more ago.

    A run's folder holds JupyterLab's cookie secret and notebook signing key; a run lasts minutes,
    so a folder untouched for a day belongs to no run still going.
    """
    cutoff = time.time() - older_than
    for stale in Path(tempfile.gettempdir()).glob("nb_ops-browser-*"):
        with contextlib.suppress(OSError):
            if stale.is_dir() and not stale.is_symlink() and stale.stat().st_mtime < cutoff:
                shutil.rmtree(stale, ignore_errors=True)


def check(out: Path, log) -> list[str]:
    from playwright.sync_api import sync_playwright

    proc = url = page = None
    dialogs: list[str] = []
    sweep_stale_workdirs()
    workdir = Path(tempfile.mkdtemp(prefix="nb_ops-browser-"))
    try:
        t0 = time.monotonic()
        (workdir / "notebooks").mkdir()
        (workdir / "tmp").mkdir()
        # Everything started from here on carries the mark (see reap); Playwright's Chromium profile
        # and every other temporary file land in the temporary folder.
        os.environ[RUN_MARK] = str(workdir)
        os.environ["TMPDIR"] = str(workdir / "tmp")
        become_subreaper()
        proc, url = start_lab(workdir, log)
        specs = api(url, "/api/kernelspecs")  # also warms the server up before the page asks
        if KERNEL_NAME not in (specs or {}).get("kernelspecs", {}):
            raise RuntimeError(f"JupyterLab has no {KERNEL_NAME!r} kernel: {sorted((specs or {}).get('kernelspecs', {}))}")
        step(f"JupyterLab ready at {url} ({time.monotonic() - t0:.1f} s)")
        pw = sync_playwright().start()
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for attempt in (1, 2):
                copy_without_outputs(ROOT / "notebooks" / NOTEBOOK, workdir / "notebooks" / NOTEBOOK)
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                try:
                    samples, history, mid_rows = run_notebook(page, url, out, dialogs)
                    break
                except RunLost as lost:
                    screenshot(page, out / "lost-run.png")
                    if attempt == 2:
                        raise AssertionError(f"the notebook run was lost twice; the second time: {lost}") from None
                    step(f"the run was lost ({lost}); once more, with a fresh page, kernel and notebook copy")
                    page = None
                    context.close()
                    shutdown_kernels(url)
                    for name in ("dashboard.png", "final.png", "bars.json"):
                        (out / name).unlink(missing_ok=True)
            failures = judge(samples, history, mid_rows)
        except BaseException:
            _Signals.cleaning = _Signals.received is not None
            screenshot(page, out / "failure.png")
            raise
        finally:
            _Signals.cleaning = True
            if dialogs:
                step(f"dialogs seen: {dialogs}")
            try:
                pw.stop()  # closes the browser too
            except Exception as exc:  # noqa: BLE001 - reap() below stops Chromium anyway
                step(f"could not stop Playwright cleanly: {type(exc).__name__}")
    finally:
        _Signals.cleaning = True
        if proc is not None:
            stop_lab(proc, url)
        left = reap(str(workdir))
        if left:
            step(f"processes of this run that would not stop: {left}")
        collect_children()
        shutil.rmtree(workdir, ignore_errors=True)
    return failures


def judge_rows(rows: list[dict], expected: int, when: str) -> list[str]:
    """The text cells of the dashboard's live rows: each a short id, a known type and status, a
    progress text and an elapsed time, in that order around the bar."""
    from nb_ops.spec import TYPES  # the operation types of the API spec

    if len(rows) != expected:
        return [f"{when}: {len(rows)} dashboard rows with text cells, expected {expected} (one per bar but the overall)"]
    failures, ids = [], set()
    for i, row in enumerate(rows):
        where = f"{when}: row {i}"
        if row["layout"] != ROW_LAYOUT:
            failures.append(f"{where} has cells {row['layout']!r}, expected {ROW_LAYOUT!r} "
                            "(id, type, status, bar, progress, elapsed, ETA)")
            continue
        short, kind, status, progress, elapsed, _eta = row["texts"]
        if any("<" in t or "&lt;" in t or "&amp;" in t for t in row["texts"]):
            failures.append(f"{where} shows markup as text: {row['texts']}")
        if not SHORT_ID_RE.fullmatch(short) or not (row["title"] or "").startswith(short) or short in ids:
            failures.append(f"{where}: id {short!r} is not a unique short id of {row['title']!r}")
        ids.add(short)
        if kind not in TYPES:
            failures.append(f"{where}: type {kind!r} is not one of {TYPES}")
        if status not in KNOWN_STATUSES:
            failures.append(f"{where}: status {status!r} is not one of {sorted(KNOWN_STATUSES)}")
        if not PROGRESS_RE.fullmatch(progress):
            failures.append(f"{where}: progress {progress!r} is neither steps nor queued/running/unknown")
        if not ELAPSED_RE.fullmatch(elapsed):
            failures.append(f"{where}: elapsed {elapsed!r} is not a duration")
    return failures


def judge_summary(rows: list[list[str]], titles: list[str | None], expected: int) -> list[str]:
    """The static summary's table: one finished row per watched operation."""
    from nb_ops.spec import TYPES

    failures = []
    if len(rows) != expected:
        return [f"{expected} row bars but {len(rows)} rows in the summary"]
    for i, (cells, title) in enumerate(zip(rows, titles)):
        if len(cells) != 7:
            failures.append(f"summary row {i} has {len(cells)} cells, expected 7: {cells}")
            continue
        short, kind, status, _progress, elapsed = cells[:5]
        if not SHORT_ID_RE.fullmatch(short) or not (title or "").startswith(short):
            failures.append(f"summary row {i}: id {short!r} is not a short id of {title!r}")
        if kind not in TYPES or status not in FINISHED_STATUSES or not ELAPSED_RE.fullmatch(elapsed):
            failures.append(f"summary row {i} is not a finished operation with a type and an elapsed time: {cells}")
    return failures


def judge(samples: list[dict], history: list[dict], mid_rows: list[dict] | None) -> list[str]:
    """The assertions, on what the page showed."""
    failures = []
    texts = [s["text"] for s in samples if s]
    for bad in ("HBox(", "VBox(", "Error displaying widget", "Model not found", "Traceback"):
        if any(bad in t for t in texts):
            failures.append(f"the page showed {bad!r}")
    if any(s and s["errors"] for s in samples):
        failures.append("a cell wrote an error or to stderr")
    last = next((s for s in reversed(samples) if s), None)
    if last and not ran(last["prompts"]):
        failures.append(f"not every cell ran: prompts {last['prompts']}")
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
    if any(b < a for a, b in itertools.pairwise(overall)):
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
    if mid_rows is None:
        failures.append("no mid-run screenshot: the overall bar was never caught between 30% and 100%")
    else:
        failures += judge_rows(mid_rows, n - 1, "mid-run")
    final_sample = next((s for s in reversed(samples) if s and s["summary"]), None)
    summary = final_sample["summary"] if final_sample else None
    if not summary:
        failures.append("the widget was never replaced by the static summary")
    elif "complete" not in summary or "running" in summary.split("\n", 2)[-1]:
        failures.append(f"the summary does not say every operation finished: {summary[:300]!r}")
    else:
        failures += judge_summary(final_sample["summaryRows"], final_sample["summaryTitles"], n - 1)
    return failures


@contextlib.contextmanager
def output_lock(out: Path):
    """One run at a time per output folder (runs with different --out folders go side by side)."""
    with open(out / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            step(f"another browser-test is writing to {out}/; waiting for it (give --out another folder to run both)")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run 03_live_monitoring.ipynb in JupyterLab in headless Chromium.")
    parser.add_argument("--out", type=Path, default=ROOT / "browser-test-output", help="screenshots and logs")
    args = parser.parse_args(argv)
    install_signal_handlers()
    if not os.access(CHROMIUM, os.X_OK):
        print(f"browser-test: {CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)",
              file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    started_at = time.monotonic()
    try:
        with output_lock(args.out):
            for name in ARTIFACTS:  # nothing from an earlier run can pass for this one's
                (args.out / name).unlink(missing_ok=True)
            log_path = args.out / "jupyterlab.log"
            try:
                with open(log_path, "w") as log:
                    failures = check(args.out, log)
            except Exception as exc:  # noqa: BLE001 - reported as a failure with its traceback
                if not isinstance(exc, (Terminated, AssertionError)):
                    print(redact(traceback.format_exc()), file=sys.stderr, end="")
                failures = [f"{type(exc).__name__}: {exc}"]
            with contextlib.suppress(OSError):  # the server hides the token in its log; make sure
                text = log_path.read_text(errors="replace")
                if TOKEN in text:
                    log_path.write_text(redact(text))
    except Terminated as exc:  # while waiting for the output folder
        failures = [f"Terminated: {exc}"]
    if _Signals.received and not any(f.startswith("Terminated") for f in failures):
        failures.append(f"Terminated: received {_Signals.received} during the clean-up")
    took = time.monotonic() - started_at
    for failure in failures:
        print(redact(f"FAILED: {failure}"))
    print(f"screenshots and bar history in {args.out}/ ({took:.1f} s)")
    print(f"browser-test: {0 if failures else 1} passed, {1 if failures else 0} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
