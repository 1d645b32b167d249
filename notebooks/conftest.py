"""pytest settings for the demo notebooks, which run under nbval as part of ``make test``.

The notebooks use the real API when ``NEBIUS_API_KEY`` is set. Tests must never reach it, so
every ``NEBIUS_*`` variable is removed from this process here, when pytest loads this file and
before nbval starts a kernel (kernels inherit this process's environment).
"""

from __future__ import annotations

import os
from pathlib import Path

for _name in [n for n in os.environ if n.startswith("NEBIUS_")]:
    del os.environ[_name]


def pytest_configure(config):
    # setup.cfg names the sanitizer relative to the repository root; find it from anywhere.
    path = getattr(config.option, "nbval_sanitize_with", None)
    if path and not Path(path).is_absolute() and not Path(path).exists():
        config.option.nbval_sanitize_with = str(config.rootpath / path)
