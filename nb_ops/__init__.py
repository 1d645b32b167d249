"""nb_ops: see, fetch and analyse Token Factory operations from Jupyter.

The public surface:

- :class:`Client` fetches operations from ``GET /v1/operations/{id}``;
- :class:`Operation` is one response, read-only, with a notebook status card;
- :func:`to_frame`, :func:`sources_frame`, :func:`destinations_frame` flatten
  operations into typed pandas DataFrames;
- :func:`plot_timeline`, :func:`plot_durations`, :func:`plot_training` draw
  timing charts with matplotlib (also as ``df.ops.timeline()`` …), which is
  imported on the first chart;
- :func:`watch` follows running operations live (widgets in Jupyter, text
  elsewhere) and returns a :class:`Monitor` with their history; both are
  imported on first use, so ``import nb_ops`` does not import ipywidgets;
- :mod:`nb_ops.simulator` is a local, faithful API server for demos and tests.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .client import Batch, Client
from .errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    DataWarning,
    FrameError,
    InvalidOperationId,
    NbOpsError,
    NbOpsWarning,
    OperationNotFound,
    RateLimited,
    TransportError,
    ValidationError,
)
from .frame import destinations_frame, sources_frame, to_frame
from .operation import Operation
from .plots import plot_durations, plot_timeline, plot_training  # registers ``df.ops``; matplotlib loads on first draw

if TYPE_CHECKING:
    from .monitor import Monitor, watch

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Client",
    "Batch",
    "Operation",
    "to_frame",
    "sources_frame",
    "destinations_frame",
    "Monitor",
    "watch",
    "plot_timeline",
    "plot_durations",
    "plot_training",
    "NbOpsError",
    "ConfigError",
    "InvalidOperationId",
    "FrameError",
    "APIError",
    "AuthenticationError",
    "OperationNotFound",
    "ValidationError",
    "RateLimited",
    "TransportError",
    "NbOpsWarning",
    "DataWarning",
]

_LAZY = {"Monitor": "monitor", "watch": "monitor"}


def __getattr__(name: str) -> Any:
    # The monitor's widgets stay out of `import nb_ops`, as tqdm keeps its notebook front end apart.
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


logging.getLogger(__name__).addHandler(logging.NullHandler())
