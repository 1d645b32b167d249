"""pytest settings for the demo notebooks, which run under nbval as part of ``make test``.

The notebooks use the real API when ``NEBIUS_API_KEY`` is set. Tests must never reach it, so
every ``NEBIUS_*`` variable is removed from this process here, when pytest loads this file and
before nbval starts a kernel (kernels inherit this process's environment), and kernels get a
fresh IPython profile, whose startup files cannot set them again.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# One definition of "a clean environment for kernels", shared with tools/run_notebooks.py.
_spec = importlib.util.spec_from_file_location("_run_notebooks", Path(__file__).parent.parent / "tools" / "run_notebooks.py")
_tools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tools)
_tools.clean_environment()


def pytest_configure(config):
    # setup.cfg names the sanitizer relative to the repository root; find it from anywhere.
    path = getattr(config.option, "nbval_sanitize_with", None)
    if path and not Path(path).is_absolute() and not Path(path).exists():
        config.option.nbval_sanitize_with = str(config.rootpath / path)
