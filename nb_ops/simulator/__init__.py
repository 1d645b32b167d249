"""A local, faithful simulator of the operations API, for demos, Binder and tests.

:func:`start` serves ``GET /v1/operations/{operation_id}`` (bearer auth) over
real HTTP on 127.0.0.1, from a deterministic fleet of synthetic operations
whose statuses, timestamps and fine-tuning progress advance with a simulated
clock running ``speed`` times faster than real time::

    from nb_ops import simulator

    with simulator.start(seed=0, speed=60) as sim:
        client = sim.client()              # an nb_ops.Client for this server
        ids = sim.operation_ids            # 60 ids, every type x status at start

For reproducible timestamps pin ``start_time=``; with ``speed=0`` time moves
only when :meth:`Simulator.advance` says so. The server is stdlib-only.

To test a client's retries, timeouts and error handling, add ``latency=`` and
``faults=`` (5xx, 429 with ``Retry-After``, dropped connections, stalls,
corrupt bodies), change them with :meth:`Simulator.configure`, and read what
each request got in :attr:`Simulator.requests`::

    with simulator.start(faults={"error_rate": 0.1, "drop_rate": 0.05}) as sim:
        ...
        [r.fault for r in sim.requests_for(sim.operation_ids[0])]

Faults depend only on the seed, the id and the attempt number, so a run
repeats exactly. :mod:`nb_ops.simulator.fleet` describes the fleet and its
time model; :mod:`nb_ops.simulator.server` the HTTP answers, including the
rule for valid ids (percent-decoded, ``^[A-Za-z0-9_-]{1,128}$``, anything else
is 422); :mod:`nb_ops.simulator.faults` the faults and which request gets which.
"""

from __future__ import annotations

from .faults import FAULT_KINDS, Faults, RequestRecord
from .fleet import SECRET_PREFIX, Fleet
from .server import OPERATION_ID_PATTERN, Simulator, start

__all__ = [
    "start",
    "Simulator",
    "Fleet",
    "Faults",
    "RequestRecord",
    "FAULT_KINDS",
    "OPERATION_ID_PATTERN",
    "SECRET_PREFIX",
]
