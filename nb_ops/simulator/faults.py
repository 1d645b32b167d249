"""Injected latency and faults for the simulator, so retries, timeouts and error handling meet real HTTP.

:func:`nb_ops.simulator.start` takes ``latency=`` (seconds added to every
response) and ``faults=``, a dict of the keys below (all optional), checked by
:meth:`Faults.from_mapping`. :meth:`Simulator.configure` changes both while the
server runs.

Fault kinds, each with its rate (a probability in [0, 1]; the rates add up to
at most 1):

``error_rate`` -> ``"error"``
    500, 502 or 503 with a short body: ``{"detail": "Bad Gateway"}`` JSON for
    some, a load balancer's HTML page (``text/html``) for others.
``rate_limit_rate`` -> ``"rate_limit"``
    429 ``{"detail": "Rate limit exceeded"}`` with a ``Retry-After`` header:
    ``retry_after`` seconds (default 1, a number >= 0, at most a year), written as
    ``retry_after_format`` says: ``"seconds"`` (default, an integer, rounded
    up: ``Retry-After: 1``) or ``"http-date"`` (an RFC 7231 IMF-fixdate such as
    ``Retry-After: Tue, 21 Oct 2025 07:28:00 GMT``, at least ``retry_after``
    seconds, plus 0.1 s for transit, after the server's clock, rounded up to the
    next whole second, so a client never waits less than ``retry_after``).
``drop_rate`` -> ``"drop"``
    The connection is shut down without any response (``requests`` raises
    ``ConnectionError`` from urllib3's ``ProtocolError(RemoteDisconnected)``).
``stall_rate`` -> ``"stall"``
    The server waits ``stall_seconds`` (default 5.0) and then answers normally,
    so a client with a shorter read timeout times out. Only that connection
    waits; :meth:`Simulator.stop` ends the wait at once.
``corrupt_rate`` -> ``"corrupt"``
    Status 200 with a body that is not JSON: either the first half of the
    normal answer (``application/json``, a truncated document) or a line of
    plain text (``text/plain``). ``Content-Length`` always matches the bytes
    sent, so the client reads a complete, broken body.

``only_ids``, an iterable of operation ids, limits faults to requests for
those ids (others are served normally); by default every id is eligible.

**Which request gets which fault.** Faults model infrastructure in front of
the API, so they apply to every request on the operations path
(``/v1/operations/{segment}``, any method), before authentication and id
validation; other paths never get one. The server counts requests per
operation id (the percent-decoded segment): the n-th request for an id is its
*attempt* n, counted from 1 and thread-safely. For attempt n of id ``i`` the
server draws ``u, variant = fault_draw(seed, i, n)``, ``u`` uniform in
[0, 1), from a BLAKE2b digest of the three (not from Python's salted
``hash``, so it is the same in every process), and walks the
cumulative rates in the order ``error, rate_limit, drop, stall, corrupt``: the
first kind whose cumulative rate exceeds ``u`` is the fault, none if ``u`` is
beyond them all. ``variant`` picks the status and body of an error and the
kind of a corrupt body. Each request gets at most one fault, and the same
seed, id and attempt always get the same fault (and the same error status and
kind of body), whichever thread or connection sends them. (When several
threads ask for the *same* id at once, the order they arrive in decides which
of them is attempt n; the faults that id gets, in order, do not change.)
:meth:`Faults.choose` is that rule, for tests that want to predict it.

Every request the HTTP layer can parse is logged on arrival as a
:class:`RequestRecord` (arrival time, method, path, id, attempt, fault, and
the status sent once it is decided), see :attr:`Simulator.requests`; :meth:`Simulator.clear_requests`
empties the log and restarts the attempt counts, so the same requests meet
the same faults again. The server's own log stays at DEBUG level.

Latency is waited before the fault is applied (a stall waits
``latency + stall_seconds``). All waits are on an event that
:meth:`Simulator.stop` sets; a wait cut short by ``stop`` ends in a dropped
connection.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from email.utils import formatdate
from numbers import Real
from typing import Any, Final, Literal, NamedTuple
from urllib.parse import unquote

from .server import _PREFIX, App, Request, Response

__all__ = [
    "Faults",
    "FaultInjector",
    "RequestRecord",
    "FAULT_KINDS",
    "fault_draw",
    "REQUEST_LOG_SIZE",
]

logger = logging.getLogger(__name__)

#: Fault kinds in the order their rates are walked.
FAULT_KINDS: Final = ("error", "rate_limit", "drop", "stall", "corrupt")
_RATE_KEYS: Final = tuple(f"{kind}_rate" for kind in FAULT_KINDS)
_RETRY_AFTER_FORMATS: Final = ("seconds", "http-date")
#: The request log keeps this many most recent records.
REQUEST_LOG_SIZE: Final = 1_000_000
# An http-date Retry-After is at least this far beyond retry_after, for transit.
_DATE_MARGIN: Final = 0.1
# Longest latency, stall or Retry-After accepted: a year (beyond it waits overflow).
MAX_SECONDS: Final = 365 * 86_400

FaultKind = Literal["error", "rate_limit", "drop", "stall", "corrupt"]


class RequestRecord(NamedTuple):
    """One request as the simulator saw it (see :attr:`Simulator.requests`).

    Attributes
    ----------
    time : float
        ``time.monotonic()`` when the request arrived (its headers were read).
    method : str
        ``GET``, ``HEAD`` ...
    path : str
        The target's path, still percent-encoded, without the query.
    operation_id : str or None
        The percent-decoded segment after ``/v1/operations/``; None on other paths.
    attempt : int or None
        How many requests for this ``operation_id`` the server has seen,
        this one included (1 for the first); None on other paths.
    fault : str or None
        ``"error"``, ``"rate_limit"``, ``"drop"``, ``"stall"``, ``"corrupt"``, or None.
    status : int or None
        The status sent; None if the connection was dropped, or while the
        answer is still pending (latency, a stall).
    """

    time: float
    method: str
    path: str
    operation_id: str | None
    attempt: int | None
    fault: FaultKind | None
    status: int | None


def fault_draw(seed: int, operation_id: str, attempt: int) -> tuple[float, int]:
    """Return ``(u, variant)`` for attempt ``attempt`` of ``operation_id`` under ``seed``.

    ``u`` is uniform in [0, 1) and picks the fault; ``variant`` (0..255) picks
    the status and body of the fault. Both come from a BLAKE2b digest, so they
    are the same in every process and on every platform.
    """
    message = f"{seed}\x00{operation_id}\x00{attempt}".encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(message, digest_size=16, person=b"nb_ops-faults").digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / (1 << 53), digest[8]


def _number(key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not low <= value <= high:  # NaN fails too
        raise ValueError(f"faults[{key!r}] must be a number in [{low:.10g}, {high:.10g}], not {value!r}")
    return float(value)


def check_latency(latency: Any) -> float:
    """Return ``latency`` as a float, or raise ValueError unless it is a number of seconds in [0, a year]."""
    if isinstance(latency, bool) or not isinstance(latency, Real) or not 0 <= latency <= MAX_SECONDS:
        raise ValueError(f"latency must be a number of seconds in [0, {MAX_SECONDS}], not {latency!r}")
    return float(latency)


@dataclass(frozen=True)
class Faults:
    """A checked fault configuration; build it with :meth:`from_mapping`.

    Attributes are the keys described in :mod:`nb_ops.simulator.faults`;
    ``only_ids`` is a frozenset, or None for every id. ``Faults()`` injects nothing.
    """

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    drop_rate: float = 0.0
    stall_rate: float = 0.0
    corrupt_rate: float = 0.0
    retry_after: float = 1.0
    retry_after_format: Literal["seconds", "http-date"] = "seconds"
    stall_seconds: float = 5.0
    only_ids: frozenset[str] | None = None

    @classmethod
    def from_mapping(cls, faults: Mapping[str, Any] | None) -> Faults:
        """Check a ``faults=`` dict and return the configuration it describes.

        Parameters
        ----------
        faults : mapping or None
            Keys from :mod:`nb_ops.simulator.faults`, all optional; None or
            ``{}`` for no faults.

        Returns
        -------
        Faults

        Raises
        ------
        ValueError
            Naming the key: an unknown key, a rate outside [0, 1], rates that
            add up to more than 1, a ``retry_after`` or ``stall_seconds`` that
            is not a number of seconds in [0, a year], an unknown ``retry_after_format``, or ``only_ids``
            that is a string or not an iterable of strings.

        Example
        -------
        >>> Faults.from_mapping({"error_rate": 0.1, "retry_after": 2}).retry_after
        2.0
        """
        if faults is None:
            return cls()
        if not isinstance(faults, Mapping):
            raise ValueError(f"faults must be a dict (or None), not {type(faults).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in faults if k not in known)
        if unknown:
            raise ValueError(f"unknown faults key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for key in _RATE_KEYS:
            if key in faults:
                values[key] = _number(key, faults[key], 0.0, 1.0)
        total = math.fsum(values.values())
        if total > 1 + 1e-9:
            named = " + ".join(f"{k}={v:g}" for k, v in values.items() if v)
            raise ValueError(f"fault rates add up to {total:g} > 1 ({named}); each request gets at most one fault")
        for key in ("retry_after", "stall_seconds"):
            if key in faults:
                values[key] = _number(key, faults[key], 0.0, MAX_SECONDS)
        if "retry_after_format" in faults:
            fmt = faults["retry_after_format"]
            if fmt not in _RETRY_AFTER_FORMATS:
                raise ValueError(f"faults['retry_after_format'] must be 'seconds' or 'http-date', not {fmt!r}")
            values["retry_after_format"] = fmt
        if faults.get("only_ids") is not None:
            ids = faults["only_ids"]
            if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
                raise ValueError(f"faults['only_ids'] must be an iterable of operation ids, not {ids!r}")
            ids = frozenset(ids)
            if not all(isinstance(i, str) for i in ids):
                raise ValueError("faults['only_ids'] must hold operation ids as strings")
            values["only_ids"] = ids
        return cls(**values)

    @property
    def active(self) -> bool:
        """True if some rate is above 0."""
        return any(getattr(self, key) for key in _RATE_KEYS)

    def choose(self, seed: int, operation_id: str, attempt: int) -> FaultKind | None:
        """Return the fault for attempt ``attempt`` (from 1) of ``operation_id``, or None.

        This is the server's rule: ``u = fault_draw(seed, operation_id, attempt)[0]``
        against the cumulative rates in :data:`FAULT_KINDS` order, after ``only_ids``.
        """
        if not self.active or (self.only_ids is not None and operation_id not in self.only_ids):
            return None
        u, _ = fault_draw(seed, operation_id, attempt)
        edge = 0.0
        for kind, key in zip(FAULT_KINDS, _RATE_KEYS):
            edge += getattr(self, key)
            if u < edge:
                return kind  # type: ignore[return-value]
        return None

    def retry_after_header(self, now: float | None = None) -> str:
        """Return the ``Retry-After`` value to send at unix time ``now`` (default: the current time)."""
        if self.retry_after_format == "seconds":
            return str(math.ceil(self.retry_after))
        now = time.time() if now is None else now
        return formatdate(math.ceil(now + self.retry_after + _DATE_MARGIN), usegmt=True)


# -- the bodies of injected answers ---------------------------------------------------

_REASONS: Final = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
# What Envoy says when its upstream hangs up, here with a 200 in front of it.
_CORRUPT_TEXT: Final = (
    b"upstream connect error or disconnect/reset before headers. reset reason: connection termination"
)


def _html_page(status: int) -> bytes:
    title = f"{status} {_REASONS[status]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode("ascii")


class FaultInjector:
    """Middleware ``(request, call_next) -> Response`` adding latency, faults and the request log.

    The server puts one in front of the application; :class:`Simulator`
    exposes its settings (:meth:`Simulator.configure`) and its log
    (:attr:`Simulator.requests`).

    Parameters
    ----------
    seed : int
        The simulator's seed, the first input of every fault draw.
    stopping : threading.Event
        Set when the server stops; every wait ends at once then.
    latency : float
        Seconds added to every response.
    faults : Faults
        What to inject.
    """

    def __init__(
        self, seed: int, stopping: threading.Event, latency: float = 0.0, faults: Faults | None = None
    ) -> None:
        self.seed = seed
        self._stopping = stopping
        self._lock = threading.Lock()
        # One tuple, swapped whole, so a request never sees half of a configure().
        self._settings: tuple[float, Faults] = (check_latency(latency), faults or Faults())
        self._attempts: dict[str, int] = {}
        # Entries are lists in RequestRecord's field order, logged on arrival;
        # the status is filled in when the answer is decided.
        self._log: deque[list[Any]] = deque(maxlen=REQUEST_LOG_SIZE)

    # -- settings and log ------------------------------------------------------------

    @property
    def latency(self) -> float:
        return self._settings[0]

    @property
    def faults(self) -> Faults:
        return self._settings[1]

    def configure(self, *, latency: float | None = None, faults: Mapping[str, Any] | None = None) -> None:
        """Replace the latency and/or the faults (None leaves one as it is); checks before changing."""
        new_latency = None if latency is None else check_latency(latency)
        new_faults = None if faults is None else Faults.from_mapping(faults)
        with self._lock:
            old_latency, old_faults = self._settings
            self._settings = (
                old_latency if new_latency is None else new_latency,
                old_faults if new_faults is None else new_faults,
            )

    def records(self, operation_id: str | None = None) -> list[RequestRecord]:
        with self._lock:
            if operation_id is None:
                return [RequestRecord(*entry) for entry in self._log]
            return [RequestRecord(*entry) for entry in self._log if entry[3] == operation_id]

    def clear(self) -> None:
        with self._lock:
            self._log.clear()
            self._attempts.clear()

    # -- the middleware ----------------------------------------------------------------

    def __call__(self, request: Request, call_next: App) -> Response:
        arrived = time.monotonic()
        latency, faults = self._settings
        try:
            path = request.path
        except ValueError:  # an unreadable target; the application answers 400
            path = request.target
        operation_id: str | None = None
        attempt: int | None = None
        fault: FaultKind | None = None
        raw = path[len(_PREFIX) :]
        if path.startswith(_PREFIX) and "/" not in raw:
            operation_id = unquote(raw, errors="replace")
        with self._lock:  # one lock: an id's records are logged in attempt order
            if operation_id is not None:
                attempt = self._attempts[operation_id] = self._attempts.get(operation_id, 0) + 1
                fault = faults.choose(self.seed, operation_id, attempt)
            entry: list[Any] = [arrived, request.method, path, operation_id, attempt, fault, None]
            self._log.append(entry)

        response: Response | None = None
        if latency and self._stopping.wait(latency):
            response = Response(0, drop=True)
        elif fault is not None and operation_id is not None and attempt is not None:
            response = self._inject(fault, faults, request, call_next, operation_id, attempt)
        if response is None:
            try:
                response = call_next(request)
            except Exception:
                entry[-1] = 500  # what the handler sends
                raise
        entry[-1] = None if response.drop else response.status
        return response

    def _inject(
        self, fault: FaultKind, faults: Faults, request: Request, call_next: App, operation_id: str, attempt: int
    ) -> Response | None:
        """Return the faulty response, or None to answer normally (a stall that ran its course)."""
        logger.debug("injecting %s into %s %s (attempt %d)", fault, request.method, request.target, attempt)
        _, variant = fault_draw(self.seed, operation_id, attempt)
        if fault == "error":
            status = (500, 502, 503)[variant % 3]
            if variant & 0x10:
                return Response(status, _html_page(status), [("Content-Type", "text/html")])
            return Response.json(status, {"detail": _REASONS[status]})
        if fault == "rate_limit":
            return Response.json(429, {"detail": "Rate limit exceeded"}, [("Retry-After", faults.retry_after_header())])
        if fault == "drop":
            return Response(0, drop=True)
        if fault == "stall":
            if self._stopping.wait(faults.stall_seconds):
                return Response(0, drop=True)
            return None
        # corrupt
        if variant & 0x10:
            return Response(200, _CORRUPT_TEXT, [("Content-Type", "text/plain; charset=utf-8")])
        body = call_next(request).body
        # Any proper prefix of a JSON object or array is not JSON.
        return Response(200, body[: len(body) // 2] or b"{", [("Content-Type", "application/json")])
