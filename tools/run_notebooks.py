"""Run the demo notebooks top to bottom in a fresh kernel; optionally save their outputs.

    python tools/run_notebooks.py                 # run notebooks/*.ipynb, fail if a cell raises
    python tools/run_notebooks.py --write         # ... and save the outputs into the notebooks
    python tools/run_notebooks.py notebooks/01_quickstart.ipynb

The saved outputs are what ``make test`` (nbval) compares new runs against, so refresh them with
``make notebooks`` after a change that alters what a notebook shows. The kernel is the
``python3`` kernel of the Python running this script. ``NEBIUS_*`` variables are removed first
and the kernel gets a fresh IPython profile (see :func:`clean_environment`), so the notebooks
always use the simulator here, never the real API. Whether or not ``--write``
is given, the outputs are checked: no error outputs, no simulator keys or secrets, no widget state,
and a size limit per notebook. Exit status 0 if every notebook ran and passed the checks.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
#: Things that must never be in a saved notebook: the simulator's bearer key (``sim-`` and 32
#: URL-safe characters), its fake secrets, and an Authorization header.
FORBIDDEN = re.compile(r"sim-[A-Za-z0-9_-]{32}|simsecret-|Bearer\s+\S")
#: A notebook larger than this holds more than small outputs and a few charts.
MAX_BYTES = 600_000


def clean_environment() -> None:
    """Kernels started from this process never see the developer's API settings or profile.

    ``NEBIUS_*`` and ``NB_OPS_IDS`` are removed; IPython's profile is a fresh temporary one (a
    startup file in ``~/.ipython`` could set the key again inside the kernel); matplotlib reads its
    default settings, not a user ``matplotlibrc`` (whose ``figure.dpi`` would change the outputs).
    ``notebooks/conftest.py`` calls this too, before nbval starts any kernel.
    """
    for name in [n for n in os.environ if n.startswith("NEBIUS_") or n == "NB_OPS_IDS"]:
        del os.environ[name]
    profile = tempfile.mkdtemp(prefix="nb_ops-ipython-")
    atexit.register(shutil.rmtree, profile, ignore_errors=True)
    os.environ["IPYTHONDIR"] = profile
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        os.environ["MATPLOTLIBRC"] = str(Path(spec.submodule_search_locations[0]) / "mpl-data" / "matplotlibrc")


def problems(nb: nbformat.NotebookNode, text: str) -> list[str]:
    """What is wrong with an executed notebook (``text`` is its JSON)."""
    found = []
    first = next((o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream"), None)
    if first is None or not str(first.get("text", "")).startswith("NEBIUS_API_KEY is not set"):
        found.append("the first output does not say the simulator is used: these outputs must not come from the real API")
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {i} raised {out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                found.append(f"cell {i} wrote to stderr: {out.get('text', '')[:200]!r}")
    match = FORBIDDEN.search(text)
    if match:
        found.append(f"output holds a key or secret ({match.group(0)[:8]}...)")
    if "widgets" in nb.metadata:
        found.append("notebook metadata holds widget state")
    if len(text.encode()) > MAX_BYTES:
        found.append(f"notebook is {len(text.encode()):,} bytes, more than {MAX_BYTES:,}")
    return found


def run(path: Path, *, write: bool, timeout: int) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,  # widget models are live state; the saved output is the summary
        record_timing=False,
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        return [str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)]
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    text = nbformat.writes(nb) + "\n"
    found = problems(nb, text)
    if write and not found:
        path.write_text(text, encoding="utf-8")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--write", action="store_true", help="save the outputs into the notebooks")
    parser.add_argument("--timeout", type=int, default=300, help="seconds a cell may take (default: %(default)s)")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        print("run_notebooks: no notebooks found", file=sys.stderr)
        return 1
    clean_environment()
    failed = 0
    for path in paths:
        started = time.perf_counter()
        found = run(path, write=args.write, timeout=args.timeout)
        took = time.perf_counter() - started
        status = "ok" if not found else "FAILED"
        print(f"{path.name}: {status} in {took:.1f} s{' (saved)' if args.write and not found else ''}", flush=True)
        for problem in found:
            print(f"  {problem}", flush=True)
        failed += bool(found)
    print(f"run_notebooks: {len(paths) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
