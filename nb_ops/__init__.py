"""nb_ops: see, fetch and analyse Token Factory operations from Jupyter.

The public surface:

- :class:`Client` fetches operations from ``GET /v1/operations/{id}``;
- :class:`Operation` is one response, read-only, with a notebook status card;
- :func:`to_frame`, :func:`sources_frame`, :func:`destinations_frame` flatten
  operations into typed pandas DataFrames;
- :mod:`nb_ops.simulator` is a local, faithful API server for demos and tests.
"""

from __future__ import annotations

import logging

from .client import Batch, Client
from .errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    DataWarning,
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

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Client",
    "Batch",
    "Operation",
    "to_frame",
    "sources_frame",
    "destinations_frame",
    "NbOpsError",
    "ConfigError",
    "InvalidOperationId",
    "APIError",
    "AuthenticationError",
    "OperationNotFound",
    "ValidationError",
    "RateLimited",
    "TransportError",
    "NbOpsWarning",
    "DataWarning",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
