"""Live monitoring of operations: :func:`watch` and :class:`Monitor`.

``watch(ids)`` returns at once with a :class:`Monitor`. Its background thread
fetches the operations that are not finished yet, once per ``interval``, and
shows them moving: ipywidgets in a Jupyter front end, compact text lines
elsewhere (a terminal, CI, pytest), nothing with ``display=False``. Every
observation is kept in :attr:`Monitor.history`.

How updates reach a notebook
    The widgets are built and displayed in the caller's thread. The polling
    thread only computes new values and assigns them to the widgets' traits,
    once per tick and for all rows together; ipywidgets turns each change into
    a ``comm_msg`` on the kernel's iopub channel. The thread runs inside a
    copy of the caller's :mod:`contextvars` context, so the kernel's parent
    header travels with it: ipykernel 7.0.x drops updates sent from plain
    threads (ipykernel#1450, ipywidgets#4001); 7.1+ and 6.x deliver either way.
    When watching ends, the cell's output is replaced (same display id) by a
    static HTML and plain-text summary, so a saved notebook reads well without
    a kernel.

Fetching
    Each tick fetches the non-terminal ids with :meth:`Client.get_operation`
    on a few worker threads (one ``requests`` session each, as the client
    keeps them per thread). :meth:`Client.get_operations` is not used because
    it reports failures with ``warnings.warn``: silencing that from a
    background thread would mean ``warnings.catch_warnings``, which swaps
    process-wide state and is not thread-safe, and under ``-W error`` the
    warning would raise and lose the whole round.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import functools
import html
import logging
import math
import numbers
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Literal

from .client import Client, check_operation_id
from .errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    InvalidOperationId,
    OperationNotFound,
    ValidationError,
)
from .operation import STATUS_COLORS, Operation, format_duration
from .spec import STATUSES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["watch", "Monitor", "TABLE_THRESHOLD", "HISTORY_COLUMNS"]

logger = logging.getLogger(__name__)

#: With more operations than this, the widget shows one compact table instead of a row each.
TABLE_THRESHOLD = 30
#: Columns of :attr:`Monitor.history`, in order.
HISTORY_COLUMNS = (
    "operation_id",
    "observed_at",
    "status",
    "trained_steps",
    "total_steps",
    "estimated_finish",
    "progress",
    "error",
    "permanent",
)
#: HTTP statuses after which an id is not asked for again.
PERMANENT_STATUSES = frozenset({401, 403, 404, 422})

Reason = Literal["complete", "errors", "stopped", "timeout", "crashed"]

_PENDING_COLOR = "#bbbbbb"
_ERROR_COLOR = STATUS_COLORS["failed"]
_STATUS_ORDER = {
    s: i for i, s in enumerate(("running", "queued", "unknown", "pending", "succeeded", "failed", "cancelled", "error"))
}
_BAR_STYLES = {"succeeded": "success", "failed": "danger", "error": "danger", "running": "info", "unknown": "warning"}
_SHORT = 8
_MAX_LISTED = 10
_SAMPLES = 50  # step observations kept per operation for the rate estimate

# The most recent monitor for each tuple of ids: a re-run cell stops the one before.
_REGISTRY: dict[tuple[str, ...], Monitor] = {}
_REGISTRY_LOCK = threading.Lock()


def watch(
    ids: Iterable[str | Operation],
    *,
    client: Client | None = None,
    interval: float = 5.0,
    timeout: float | None = None,
    on_complete: Callable[[Monitor], Any] | None = None,
    display: bool | Literal["widget", "text"] = True,
    file: IO[str] | None = None,
    clock: Callable[[], float] | None = None,
) -> Monitor:
    """Watch operations until they finish, without blocking: widgets in Jupyter, text lines elsewhere.

    Returns at once; a background thread fetches the operations that are not
    finished yet once per ``interval`` and updates the display. Watching the
    same ids again (re-running the cell) stops the previous monitor.

    Parameters
    ----------
    ids : iterable of str or Operation
        Operation ids (or operations, whose ids are used). Duplicates are watched once.
    client : Client, optional
        The client to fetch with; by default one built from the environment
        (``NEBIUS_API_KEY``, ``NEBIUS_BASE_URL``), closed when watching ends.
    interval : float, default 5.0
        Seconds between fetch rounds (and between display updates).
    timeout : float, optional
        Stop watching after this many seconds, whatever the operations do.
    on_complete : callable, optional
        Called once, as ``on_complete(monitor)`` from the polling thread, when
        every operation is terminal (succeeded, failed or cancelled).
    display : bool or {"widget", "text"}, default True
        True: ipywidgets in a Jupyter front end, text lines elsewhere.
        False: show nothing. ``"widget"`` / ``"text"`` force one of them
        (widgets are only displayed inside a kernel, but always built).
    file : file-like, optional
        Where text lines go (default ``sys.stderr``, as tqdm does).
    clock : callable, optional
        The server's current time in unix seconds, used for ``observed_at``,
        elapsed times, staleness and ETAs; :func:`time.time` by default. With
        the simulator pass ``clock=sim.now``: its clock is not the wall clock.
        The polling pace (``interval``, ``timeout``) is always wall time.

    Returns
    -------
    Monitor
        Already polling; see :meth:`Monitor.wait`, :meth:`Monitor.stop`,
        :attr:`Monitor.history`, :meth:`Monitor.frame`.

    Raises
    ------
    ConfigError
        No API key, or a bad ``interval``/``timeout``.
    TypeError
        ``ids`` is a single string.

    Examples
    --------
    >>> monitor = nb_ops.watch(ids, interval=10)        # doctest: +SKIP
    >>> monitor.wait()                                  # doctest: +SKIP
    >>> monitor.history.groupby("operation_id")["trained_steps"].max()  # doctest: +SKIP
    """
    monitor = Monitor(
        ids, client=client, interval=interval, timeout=timeout, on_complete=on_complete, display=display, file=file,
        clock=clock,
    )
    monitor.start()
    return monitor


@dataclass
class _Row:
    """What the monitor knows about one operation; written by the polling thread only."""

    id: str
    op: Operation | None = None
    error: Exception | None = None
    permanent: bool = False
    changed_at: datetime | None = None  # when (status, trained_steps) last changed
    key: tuple[Any, ...] | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)  # (unix time observed, trained_steps)

    @property
    def status(self) -> str:
        if self.op is not None and self.op.status:
            return self.op.status
        return "error" if self.permanent else "pending"

    @property
    def terminal(self) -> bool:
        return self.op is not None and self.op.is_terminal

    @property
    def pollable(self) -> bool:
        return not self.terminal and not self.permanent


@dataclass(frozen=True)
class _RowView:
    """One row as displayed: computed by the polling thread, rendered by the views."""

    id: str
    short: str
    type: str
    status: str
    color: str
    value: float
    bar_style: str
    bar_color: str | None
    progress_text: str
    elapsed: str
    eta: str
    note: str
    progress: float | None
    elapsed_seconds: float | None
    eta_seconds: float | None


@dataclass(frozen=True)
class _Snapshot:
    rows: list[_RowView]
    counts: dict[str, int]
    done: int
    total: int
    status_line: str
    finished: bool
    reason: str | None
    changes: list[str]
    observed_at: datetime


class Monitor:
    """Watches operations from a background thread; made and started by :func:`watch`.

    Parameters are those of :func:`watch`. A monitor made directly starts
    polling on :meth:`start`.

    Attributes
    ----------
    ids : list of str
        The operations watched, in order, each once.
    interval, timeout : float
        As given.
    reason : str or None
        Why watching ended: ``"complete"`` (every operation terminal),
        ``"errors"`` (the rest could not be fetched for good: 404, 401, 403,
        422, invalid ids), ``"stopped"``, ``"timeout"`` or ``"crashed"``;
        None while watching.
    started_at, ended_at : datetime or None
        UTC times watching started and ended.
    stale_after : float
        Seconds without a change (of status, or of fine-tuning steps) after
        which a row says how long it has been stale; 600 by default. A
        running operation without step counts is never stale: it has nothing
        to change until it ends.
    widget : ipywidgets.VBox or None
        The dashboard, in widget mode.
    callback_error : Exception or None
        What ``on_complete`` raised, if it did (also logged).

    Examples
    --------
    >>> monitor = Monitor(ids, client=client, interval=2, display=False)  # doctest: +SKIP
    >>> monitor.start().wait(timeout=60)                # doctest: +SKIP
    True
    """

    stale_after: float = 600.0

    def __init__(
        self,
        ids: Iterable[str | Operation],
        *,
        client: Client | None = None,
        interval: float = 5.0,
        timeout: float | None = None,
        on_complete: Callable[[Monitor], Any] | None = None,
        display: bool | Literal["widget", "text"] = True,
        file: IO[str] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if isinstance(ids, str | bytes):
            raise TypeError("watch expects a collection of ids; for one id use watch([id])")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0.01 <= interval <= 86_400:
            raise ConfigError(f"interval must be seconds from 0.01 to 86400, got {interval!r:.60}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf
        ):
            raise ConfigError(f"timeout must be positive seconds or None, got {timeout!r:.60}")
        if not (display is True or display is False or display in ("widget", "text")):
            raise ConfigError(f"display must be True, False, 'widget' or 'text', got {display!r:.60}")
        self._owns_client = client is None
        self._client = Client() if client is None else client
        if not getattr(self._client, "_api_key", "set"):
            raise ConfigError("No API key: set NEBIUS_API_KEY or pass client=nb_ops.Client(api_key=...)")
        self.interval = float(interval)
        self.timeout = None if timeout is None else float(timeout)
        self.on_complete = on_complete
        self._rows: dict[str, _Row] = {}
        for item in ids:
            op_id = item.id if isinstance(item, Operation) else item
            # A non-string id gets a key no real id can have, so 5 and "5" stay two rows.
            key = op_id if isinstance(op_id, str) else f"<{type(op_id).__name__} {op_id!r:.60}>"
            if key in self._rows:
                continue
            row = self._rows[key] = _Row(key)
            try:
                check_operation_id(op_id)
            except InvalidOperationId as exc:  # refused before any request, never polled
                row.error, row.permanent = exc, True
        self.ids: list[str] = list(self._rows)
        self.reason: Reason | None = None
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.callback_error: Exception | None = None
        self._detail = ""  # more about the reason: what stopped it, what crashed
        self._history: list[tuple[Any, ...]] = []
        self._ticks: list[tuple[float, float]] = []  # (fetch seconds, apply seconds) per tick
        self._applied_by: set[str] = set()  # names of the threads that updated the display
        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._round_stop = threading.Event()  # ends the retries of fetches in flight
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._deadline: float | None = None
        self._last_snapshot: _Snapshot | None = None
        self._final_changes: list[str] = []
        mode = ("widget" if _in_kernel() else "text") if display is True else display
        self._mode: str | None = mode or None
        if file is not None and not callable(getattr(file, "write", None)):
            raise TypeError(f"file must be a text stream with a write() method, got {type(file).__name__}")
        self._file = file
        self._view: _WidgetView | _TextView | None = None
        if clock is not None:
            if not callable(clock):
                raise TypeError(f"clock must be a callable returning unix seconds, got {type(clock).__name__}")
            first = _read_clock(clock)  # a clock that cannot tell the time fails here, not in the polling thread
            self._clock_last = (first, time.monotonic())
        self._clock = clock
        self._clock_broken = False

    def _now(self) -> datetime:
        """The server's current time: the ``clock`` given, else the wall clock."""
        if self._clock is None:
            return datetime.now(UTC)
        try:
            value = _read_clock(self._clock)
        except BaseException as exc:  # noqa: BLE001 - a clock that broke mid-watch must not end (or hang) the watch
            if isinstance(exc, KeyboardInterrupt):
                raise
            # Carry on from the last good reading, on the same time base, as wall time passes.
            last, at = self._clock_last
            if not self._clock_broken:
                self._clock_broken = True
                logger.warning("the monitor's clock failed (%s); carrying on from its last reading", exc)
            return datetime.fromtimestamp(last + (time.monotonic() - at), UTC)
        self._clock_last = (value, time.monotonic())
        return datetime.fromtimestamp(value, UTC)

    # -- public ----------------------------------------------------------------------------------
    def start(self) -> Monitor:
        """Build and show the display (in this thread) and start polling; returns ``self``.

        Raises
        ------
        RuntimeError
            If the monitor was started before.
        """
        if self._thread is not None or self.started_at is not None:
            raise RuntimeError("this monitor was already started; call nb_ops.watch again for a new one")
        self.started_at = self._now()
        self._started = time.monotonic()
        self._deadline = None if self.timeout is None else self._started + self.timeout
        snapshot = self._snapshot()
        if self._mode == "widget":
            self._view = _WidgetView(snapshot)
            if _in_kernel():
                self._view.show()
        elif self._mode == "text":
            self._view = _TextView(self._file if self._file is not None else sys.stderr, self.interval)
        key = tuple(self.ids)
        # The thread runs in a copy of this context: ipykernel 7.0.x keeps the parent header of the
        # cell in a context variable, and updates sent without it are lost.
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(self._run,), name=f"nb_ops-watch-{len(self.ids)}ops", daemon=True
        )
        # Registering and starting happen under one lock, so two cells (or threads) watching the
        # same ids at once always leave exactly one monitor polling, and never join an unstarted thread.
        with _REGISTRY_LOCK:
            previous = _REGISTRY.get(key)
            _REGISTRY[key] = self
            if previous is not None and previous is not self:
                previous._request_stop("a new watch of the same operations replaced this one")
            if not self._stop_event.is_set():  # stop() before start() means: do not start at all
                thread.start()
                self._thread = thread
        if self._thread is None:
            self._finish("stopped")
        if previous is not None and previous is not self:
            previous._join(5.0)
        return self

    def stop(self) -> None:
        """Stop polling now: no request is started after this, and the display shows a final summary.

        Safe to call more than once, and after the monitor ended by itself.
        """
        self._request_stop("stopped by monitor.stop()")
        self._join(5.0)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until watching ends (all terminal, timeout, or stop); True if it has ended.

        Parameters
        ----------
        timeout : float, optional
            Give up waiting after this many seconds (the monitor goes on).

        Raises
        ------
        KeyboardInterrupt
            Re-raised after polling is stopped cleanly.
        """
        if self._thread is None or threading.current_thread() is self._thread:
            return self._done.is_set()
        end = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._done.is_set():
                left = 0.2 if end is None else min(0.2, end - time.monotonic())
                if left <= 0:
                    break
                self._done.wait(left)  # short slices: a KeyboardInterrupt is seen on every platform
        except KeyboardInterrupt:
            self._request_stop("interrupted (KeyboardInterrupt)")
            self._join(5.0)
            raise
        if self._done.is_set() and isinstance(self._view, _WidgetView):
            # The polling thread replaced the widget with the summary after its cell had finished;
            # a front end applies that, but a headless run (nbclient, nbconvert) only records updates
            # that arrive while some cell runs. Sent again from this cell, the summary is saved too.
            self._view.resend_final()
        return self._done.is_set()

    @property
    def running(self) -> bool:
        """True while the polling thread runs."""
        return self._thread is not None and not self._done.is_set()

    @property
    def widget(self) -> Any:
        """The ipywidgets dashboard (a ``VBox``), or None outside widget mode."""
        return self._view.box if isinstance(self._view, _WidgetView) else None

    @property
    def operations(self) -> dict[str, Operation]:
        """The latest :class:`Operation` of each id fetched at least once, in watch order."""
        with self._lock:
            return {row.id: row.op for row in self._rows.values() if row.op is not None}

    @property
    def errors(self) -> dict[str, Exception]:
        """Id → the last fetch error of rows whose last fetch failed (permanent or not)."""
        with self._lock:
            return {row.id: row.error for row in self._rows.values() if row.error is not None}

    @property
    def stale(self) -> dict[str, timedelta]:
        """Id → time without change, for unfinished operations stale for at least :attr:`stale_after`."""
        now = self._now()
        with self._lock:
            out = {}
            for row in self._rows.values():
                if row.op is not None and not row.terminal and row.changed_at is not None and _can_stall(row.op):
                    age = now - row.changed_at
                    if age.total_seconds() >= self.stale_after:
                        out[row.id] = age
            return out

    @property
    def history(self) -> pd.DataFrame:
        """Every observation, one row each: see :data:`HISTORY_COLUMNS`.

        ``observed_at`` is UTC; ``status`` categorical; step counts ``Int64``;
        ``error`` the message of a failed fetch (then the other fields are missing)
        and ``permanent`` whether that id is no longer asked for.
        """
        import pandas as pd

        with self._lock:
            records = list(self._history)
        columns = list(zip(*records, strict=True)) if records else [()] * len(HISTORY_COLUMNS)
        data = dict(zip(HISTORY_COLUMNS, columns, strict=True))
        return pd.DataFrame(
            {
                "operation_id": pd.Series(data["operation_id"], dtype=object),
                "observed_at": pd.Series(pd.to_datetime(list(data["observed_at"]), utc=True), dtype="datetime64[ns, UTC]"),
                "status": pd.Categorical(data["status"], categories=STATUSES),
                "trained_steps": pd.array(data["trained_steps"], dtype="Int64"),
                "total_steps": pd.array(data["total_steps"], dtype="Int64"),
                "estimated_finish": pd.Series(  # a server's year-2300 estimate becomes NaT, not an error
                    pd.to_datetime(list(data["estimated_finish"]), utc=True, errors="coerce"),
                    dtype="datetime64[ns, UTC]",
                ),
                "progress": pd.Series(data["progress"], dtype="float64"),
                "error": pd.Series(data["error"], dtype=object),
                "permanent": pd.Series(data["permanent"], dtype="bool"),
            }
        )

    def frame(self) -> pd.DataFrame:
        """:func:`nb_ops.to_frame` of the latest state of every operation fetched, in watch order."""
        from .frame import to_frame

        return to_frame(list(self.operations.values()))

    def summary(self) -> str:
        """A plain-text summary: the status line and one line per operation."""
        return _summary_text(self._snapshot())

    def __repr__(self) -> str:
        snapshot = self._snapshot()
        counts = ", ".join(f"{n} {s}" for s, n in snapshot.counts.items())
        state = "watching" if self.running else (self.reason or "not started")
        return f"<Monitor {len(self.ids)} operations ({counts}); {state}>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if isinstance(self._view, _WidgetView) and not self._done.is_set():
            self._view.show()
        else:
            snapshot = self._snapshot()
            display({"text/plain": _summary_text(snapshot), "text/html": _summary_html(snapshot)}, raw=True)

    # -- polling thread ----------------------------------------------------------------------------
    def _request_stop(self, why: str) -> None:
        with self._lock:
            if not self._stop_event.is_set() and not self._done.is_set():
                self._detail = why
            self._stop_event.set()
            if self._thread is None and not self._done.is_set():  # never started: nothing to wind down
                self.reason = "stopped"
                self._done.set()

    def _join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None and thread.ident is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        reason: Reason = "crashed"
        try:
            while True:
                started = time.monotonic()
                todo = self._pending()
                if not todo:
                    reason = self._ending()
                    break
                results = self._fetch_round(todo)
                if results is None:  # stopped, or out of time, during the round
                    reason = "stopped" if self._stop_event.is_set() else "timeout"
                    break
                fetched = time.monotonic()
                snapshot = self._observe(results)
                if not self._pending():
                    self._final_changes = snapshot.changes  # shown with the summary, not in a tick of their own
                    reason = self._ending()
                    break
                self._apply(snapshot)
                self._ticks.append((fetched - started, time.monotonic() - fetched))
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    reason = "timeout"
                    break
                wait = self.interval - (time.monotonic() - started)
                if self._deadline is not None:
                    wait = min(wait, self._deadline - time.monotonic())
                if self._stop_event.wait(max(0.0, wait)):
                    reason = "stopped"
                    break
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    reason = "timeout"
                    break
        except Exception as exc:  # noqa: BLE001 - a bug must still end the monitor cleanly
            logger.exception("nb_ops monitor crashed")
            self._detail = f"{type(exc).__name__}: {exc}"
        finally:
            self._finish(reason)

    def _ending(self) -> Reason:
        with self._lock:
            return "complete" if all(row.terminal for row in self._rows.values()) else "errors"

    def _pending(self) -> list[str]:
        with self._lock:
            return [row.id for row in self._rows.values() if row.pollable]

    def _fetch_round(self, ids: list[str]) -> dict[str, Operation | Exception] | None:
        if self._pool is None:
            workers = max(1, min(getattr(self._client, "max_workers", 16), len(self.ids)))
            self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="nb_ops-watch-fetch")
        fetch = functools.partial(_fetch_stoppable, self._client, self._round_stop)
        futures = {self._pool.submit(fetch, op_id): op_id for op_id in ids}
        pending: set[concurrent.futures.Future[Operation]] = set(futures)
        while pending:
            overdue = self._deadline is not None and time.monotonic() >= self._deadline
            if self._stop_event.is_set() or overdue:
                self._round_stop.set()  # in-flight fetches make no further attempt
                for future in pending:
                    future.cancel()
                return None
            _, pending = concurrent.futures.wait(pending, timeout=0.1)
        results: dict[str, Operation | Exception] = {}
        for future, op_id in futures.items():
            try:
                results[op_id] = future.result()
            except Exception as exc:  # noqa: BLE001 - one failed id never stops the others
                results[op_id] = exc
        return results

    def _observe(self, results: dict[str, Operation | Exception]) -> _Snapshot:
        now = self._now()
        changes: list[str] = []
        with self._lock:
            for op_id, result in results.items():
                row = self._rows[op_id]
                if isinstance(result, Operation):
                    changes.extend(self._observe_op(row, result, now))
                else:
                    changes.extend(self._observe_error(row, result, now))
            return self._snapshot(now, changes)

    def _observe_op(self, row: _Row, op: Operation, now: datetime) -> list[str]:
        changes = []
        before, had_error = row.op, row.error
        row.op, row.error = op, None
        status, trained = op.status, op.trained_steps
        key = (status, trained)
        if key != row.key:
            if row.key is None and trained is None:
                # First sight: the server says since when it is in this state. (With a step
                # counter there is no telling when the steps last moved: count from now.)
                since = _when(op.get("in_progress_at")) if status in ("running", "unknown") else None
                since = since or (_when(op.get("created_at")) if status in ("queued", "unknown") else None)
                row.changed_at = min(since, now) if since is not None else now
            else:
                row.changed_at = now
            row.key = key
        if trained is not None and (not row.samples or row.samples[-1][1] != trained):
            row.samples.append((now.timestamp(), trained))
            del row.samples[:-_SAMPLES]
        if before is not None and before.status != status:
            extra = ""
            start, end = _when(op.get("in_progress_at")), _when(op.get("finished_at"))
            if op.is_terminal and start is not None and end is not None:
                extra = f"  ran {format_duration(end - start)}"
            changes.append(f"{_short(row.id)}  {op.type or '?':<20} {before.status} -> {status}{extra}")
        if had_error is not None:
            changes.append(f"{_short(row.id)}  {op.type or '?':<20} fetched again after: {_error_text(had_error)}")
        estimated = _when(op.params.get("estimated_finish"))
        self._history.append(
            (row.id, now, status if status in STATUSES else None, trained, op.total_steps, estimated,
             op.progress, None, False)
        )
        return changes

    def _observe_error(self, row: _Row, exc: Exception, now: datetime) -> list[str]:
        permanent = _is_permanent(exc)
        new = row.error is None or type(row.error) is not type(exc)
        row.error, row.permanent = exc, permanent
        self._history.append((row.id, now, None, None, None, None, None, _error_text(exc), permanent))
        kind = row.op.type if row.op is not None and row.op.type else "?"
        if permanent:
            return [f"{_short(row.id)}  {kind:<20} {_error_text(exc)}; not asked for again"]
        return [f"{_short(row.id)}  {kind:<20} fetch failed, retrying next tick: {_error_text(exc)}"] if new else []

    def _apply(self, snapshot: _Snapshot) -> None:
        view = self._view
        if view is None:
            return
        started = time.monotonic()
        view.update(snapshot)
        self._applied_by.add(threading.current_thread().name)
        logger.debug("display updated in %.3f s", time.monotonic() - started)

    def _finish(self, reason: Reason) -> None:
        with self._lock:
            if self._stop_event.is_set() and reason not in ("complete", "errors", "crashed"):
                reason = "stopped"
            self.reason = reason
            self.ended_at = self._now()
            snapshot = self._snapshot(changes=self._final_changes)
        if self._view is not None:
            try:
                self._view.finish(snapshot)
                self._applied_by.add(threading.current_thread().name)
            except Exception:  # noqa: BLE001 - the display must not keep the monitor alive
                logger.exception("nb_ops monitor could not show its summary")
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._owns_client:
            self._client.close()
        key = tuple(self.ids)
        with _REGISTRY_LOCK:
            if _REGISTRY.get(key) is self:
                del _REGISTRY[key]
        logger.info("nb_ops monitor of %d operations ended: %s", len(self.ids), reason)
        try:
            if reason == "complete" and self.on_complete is not None:
                try:
                    self.on_complete(self)
                except Exception as exc:  # noqa: BLE001 - the user's callback must not crash the thread
                    self.callback_error = exc
                    logger.exception("on_complete raised %s", type(exc).__name__)
        finally:
            self._done.set()

    # -- views -------------------------------------------------------------------------------------
    def _snapshot(self, now: datetime | None = None, changes: list[str] | None = None) -> _Snapshot:
        now = now or self._now()
        with self._lock:
            rows = [_row_view(row, now, self.stale_after) for row in self._rows.values()]
            counts = collections.Counter(r.status for r in rows)
            ordered = {s: counts[s] for s in sorted(counts, key=lambda s: _STATUS_ORDER.get(s, 99))}
            done = sum(1 for row in self._rows.values() if row.terminal)
            snapshot = _Snapshot(
                rows=rows,
                counts=ordered,
                done=done,
                total=len(rows),
                status_line=self._status_line(rows, now),
                finished=self.reason is not None,
                reason=self.reason,
                changes=changes or [],
                observed_at=now,
            )
            self._last_snapshot = snapshot
            return snapshot

    def _status_line(self, rows: list[_RowView], now: datetime) -> str:
        operations = _count_operations(len(rows))
        if self.reason is None:
            if self.started_at is None:
                return f"not watching yet ({operations})"
            line = f"watching {operations} every {self.interval:g} s since {self.started_at:%H:%M:%S} UTC"
            if self.timeout is not None:
                line += f" (timeout {format_duration(timedelta(seconds=self.timeout))})"
            return line
        ended = self.ended_at or now
        took = format_duration(ended - self.started_at) if self.started_at else "?"
        why = {
            "complete": f"complete: every operation finished (watched for {took})",
            "errors": "nothing left to watch: the rest could not be fetched",
            "stopped": f"stopped ({self._detail or 'stopped'})",
            "timeout": f"timed out after {format_duration(timedelta(seconds=self.timeout or 0))}",
            "crashed": f"the monitor failed: {self._detail}",
        }[self.reason]
        line = f"stopped watching at {ended:%H:%M:%S} UTC: {why}"
        still = [r for r in rows if r.status not in ("succeeded", "failed", "cancelled", "error")]
        if still:
            listed = ", ".join(f"{r.short} ({r.status})" for r in still[:_MAX_LISTED])
            more = f" and {len(still) - _MAX_LISTED} more" if len(still) > _MAX_LISTED else ""
            line += f"; still running: {listed}{more}"
        failed = [r for r in rows if r.status == "error"]
        if failed:
            listed = ", ".join(f"{r.short}: {r.note}" for r in failed[:_MAX_LISTED])
            more = f" and {len(failed) - _MAX_LISTED} more" if len(failed) > _MAX_LISTED else ""
            line += f"; could not fetch: {listed}{more}"
        if self.callback_error is not None:
            line += f"; on_complete raised {type(self.callback_error).__name__}"
        return line


# -- pure helpers ---------------------------------------------------------------------------------
def _fetch_stoppable(client: Any, stop: threading.Event, operation_id: str) -> Operation:
    """One fetch whose retries end once ``stop`` is set (so nothing is sent after Monitor.stop)."""
    get = getattr(client, "_get_until", None)
    return get(operation_id, stop) if get is not None else client.get_operation(operation_id)


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel), where widgets can be seen."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a broken IPython means no front end
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def _when(value: Any) -> datetime | None:
    """Unix seconds as a UTC datetime, or None. Never warns: the polling thread must not touch
    warning filters, and :class:`Operation`'s properties warn about bad timestamps."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _is_permanent(exc: Exception) -> bool:
    """404, 401/403, 422, refused ids and a missing key never get better by asking again."""
    if isinstance(exc, InvalidOperationId | ConfigError | AuthenticationError | OperationNotFound | ValidationError):
        return True
    return isinstance(exc, APIError) and exc.status_code in PERMANENT_STATUSES


def _error_text(exc: Exception) -> str:
    if isinstance(exc, OperationNotFound):
        return "not found (HTTP 404)"
    if isinstance(exc, AuthenticationError):
        return f"key refused (HTTP {exc.status_code})"
    if isinstance(exc, ValidationError):
        return "id refused (HTTP 422)"
    if isinstance(exc, InvalidOperationId):
        return "invalid id"
    text = " ".join(str(exc).split())
    return text if len(text) <= 120 else text[:117] + "..."


def _short(op_id: str) -> str:
    return op_id if len(op_id) <= _SHORT else op_id[:_SHORT]


def _seconds(td: timedelta | None) -> float | None:
    return None if td is None else td.total_seconds()


def _duration(seconds: float | None) -> str:
    return "" if seconds is None else format_duration(timedelta(seconds=max(0.0, seconds)))


# An observed step rate needs a few moves over a little while before it means anything.
_RATE_SAMPLES = 3
_RATE_SPAN = 2.0  # seconds of wall time between the first and last sample


# Unix seconds pandas can hold as nanosecond timestamps (years 1677-2262): history stays a frame.
_CLOCK_RANGE = (-9_223_372_036, 9_223_372_036)


def _read_clock(clock: Callable[[], float]) -> float:
    value = clock()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"clock must return unix seconds as a number, got {value!r:.60}")
    if not _CLOCK_RANGE[0] <= value <= _CLOCK_RANGE[1]:
        raise ConfigError(f"clock returned {value!r:.60}, which is not a time in years 1677-2262 (unix seconds?)")
    return float(value)


def _eta(row: _Row, now: datetime) -> tuple[float | None, float | None]:
    """Seconds left by the server's ``estimated_finish``, and by the observed step rate."""
    op = row.op
    if op is None or op.is_terminal:
        return None, None
    server = None
    estimated = op.params.get("estimated_finish")
    if isinstance(estimated, int | float) and not isinstance(estimated, bool) and math.isfinite(estimated):
        server = max(0.0, estimated - now.timestamp())
    rate_left = None
    total, samples = op.total_steps, row.samples
    if total is not None and len(samples) >= _RATE_SAMPLES:
        (t0, s0), (t1, s1) = samples[0], samples[-1]
        if t1 - t0 >= _RATE_SPAN and s1 > s0:
            rate = (s1 - s0) / (t1 - t0)
            rate_left = max(0.0, (total - s1) / rate - (now.timestamp() - t1))
    return server, rate_left


def _eta_text(server: float | None, rate: float | None) -> str:
    if server is not None and rate is not None:
        if abs(server - rate) > max(60.0, 0.1 * max(server, rate)):
            return f"{_duration(server)} (server), {_duration(rate)} (observed rate)"
        return _duration(server)
    if server is not None:
        return _duration(server)
    if rate is not None:
        return f"{_duration(rate)} (observed rate)"
    return ""


def _can_stall(op: Operation) -> bool:
    """Whether "no change for …" means something: a running job without step counts has nothing to change
    until it ends, so only queued, unknown and step-counting operations are called stale."""
    return op.status != "running" or op.total_steps is not None or op.trained_steps is not None


def _row_view(row: _Row, now: datetime, stale_after: float) -> _RowView:
    op, status = row.op, row.status
    color = STATUS_COLORS.get(status, _ERROR_COLOR if status == "error" else _PENDING_COLOR)
    trained = op.trained_steps if op is not None else None
    total = op.total_steps if op is not None else None
    progress = op.progress if op is not None else None
    if total:
        value = trained / total if trained is not None else (1.0 if status == "succeeded" else 0.0)
        progress_text = f"{trained or 0:,} / {total:,} steps"
    else:
        value = {"queued": 0.0, "pending": 0.0, "error": 0.0, "running": 0.5, "unknown": 0.5}.get(status, 1.0)
        progress_text = {"queued": "queued", "running": "running", "unknown": "unknown"}.get(status, "")
    value = min(max(value, 0.0), 1.0)
    elapsed = elapsed_s = None
    if op is not None:
        start, end = _when(op.get("in_progress_at")), _when(op.get("finished_at"))
        created = _when(op.get("created_at"))
        if start is not None:
            elapsed_s = ((end or now) - start).total_seconds()
            elapsed = _duration(elapsed_s)
        elif created is not None:
            elapsed_s = ((end or now) - created).total_seconds()
            elapsed = f"queued {_duration(elapsed_s)}"
    server, rate = _eta(row, now)
    eta_s = server if server is not None else rate
    notes = []
    if row.error is not None:
        notes.append(_error_text(row.error) + ("" if row.permanent else ", retrying"))
    if op is not None and not row.terminal and row.changed_at is not None and _can_stall(op):
        age = (now - row.changed_at).total_seconds()
        if age >= stale_after or status == "unknown":
            notes.append(f"no change for {_duration(age)}")
    return _RowView(
        id=row.id,
        short=_short(row.id),
        type=(op.type if op is not None else None) or "",
        status=status,
        color=color,
        value=value,
        bar_style=_BAR_STYLES.get(status, ""),
        bar_color=STATUS_COLORS["cancelled"] if status == "cancelled" else None,
        progress_text=progress_text,
        elapsed=elapsed or "",
        eta=_eta_text(server, rate),
        note="; ".join(notes),
        progress=progress,
        elapsed_seconds=elapsed_s,
        eta_seconds=eta_s,
    )


_SORT_KEYS: dict[str, Callable[[tuple[int, _RowView]], Any]] = {
    "watch order": lambda item: item[0],
    "status": lambda item: (_STATUS_ORDER.get(item[1].status, 99), item[0]),
    "progress": lambda item: (item[1].progress is None, item[1].progress or 0.0, item[0]),
    "ETA": lambda item: (item[1].eta_seconds is None, item[1].eta_seconds or 0.0, item[0]),
    "elapsed": lambda item: (item[1].elapsed_seconds is None, -(item[1].elapsed_seconds or 0.0), item[0]),
    "type": lambda item: (item[1].type, item[0]),
}


def _sorted_rows(rows: list[_RowView], by: str) -> list[_RowView]:
    return [row for _, row in sorted(enumerate(rows), key=_SORT_KEYS.get(by, _SORT_KEYS["watch order"]))]


def _badge(status: str, color: str, count: int | None = None) -> str:
    text = html.escape(status) + ("" if count is None else f" {count}")
    return (
        f'<span style="background:{color};color:white;padding:1px 7px;border-radius:8px;'
        f'margin-right:4px;font-size:0.85em;white-space:nowrap">{text}</span>'
    )


def _counts_html(snapshot: _Snapshot) -> str:
    badges = "".join(
        _badge(s, STATUS_COLORS.get(s, _ERROR_COLOR if s == "error" else _PENDING_COLOR), n)
        for s, n in snapshot.counts.items()
    )
    return f"<b>{snapshot.total}</b> operations {badges}"


def _table_html(rows: list[_RowView]) -> str:
    esc = html.escape
    body = []
    for r in rows:
        pct = r.value * 100
        bar = (
            f'<div style="background:#e6e6e6;border-radius:3px;width:7em;height:0.7em;display:inline-block;'
            f'vertical-align:middle"><div style="background:{r.color};width:{pct:.0f}%;height:100%;'
            f'border-radius:3px"></div></div>'
        )
        # Every cell left-aligned explicitly: JupyterLab right-aligns table cells by default.
        td = '<td style="text-align:left;padding-right:10px">'
        body.append(
            f'<tr><td style="text-align:left;padding-right:10px" title="{esc(r.id)}"><code>{esc(r.short)}</code></td>'
            f"{td}{esc(r.type)}</td>{td}{_badge(r.status, r.color)}</td>{td}{bar} {esc(r.progress_text)}</td>"
            f"{td}{esc(r.elapsed)}</td>{td}{esc(r.eta)}</td>{td}{esc(r.note)}</td></tr>"
        )
    head = "".join(
        f'<th style="text-align:left;padding-right:10px">{h}</th>'
        for h in ("id", "type", "status", "progress", "elapsed", "ETA", "note")
    )
    return (
        '<table class="nb-ops-watch" style="font-size:0.85em;border-collapse:collapse">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _count_operations(n: int) -> str:
    return f"{n} operation" if n == 1 else f"{n} operations"


def _summary_html(snapshot: _Snapshot) -> str:
    return (
        f'<div class="nb-ops-watch-summary"><div>{_counts_html(snapshot)}</div>'
        f"<div>{html.escape(snapshot.status_line)}</div>{_table_html(snapshot.rows)}</div>"
    )


def _summary_text(snapshot: _Snapshot) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in snapshot.counts.items())
    lines = [f"nb_ops.watch: {_count_operations(snapshot.total)}" + (f" ({counts})" if counts else ""),
             snapshot.status_line]
    if snapshot.rows:
        width = max(4, *(len(r.type) for r in snapshot.rows))
        lines.append(f"  {'id':<8}  {'type':<{width}}  {'status':<9}  {'progress':<22}  {'elapsed':<16}  ETA / note")
        for r in snapshot.rows:
            tail = "; ".join(t for t in (r.eta, r.note) if t)
            lines.append(
                f"  {r.short:<8}  {r.type:<{width}}  {r.status:<9}  {r.progress_text:<22}  {r.elapsed:<16}  {tail}".rstrip()
            )
    return "\n".join(lines)


class _TextView:
    """Compact text lines on a stream: a line when something changes (or now and then), a summary at the end."""

    def __init__(self, file: IO[str], interval: float) -> None:
        self.file = file
        self.heartbeat = max(30.0, interval)
        self._last_line = -math.inf
        self._first = True

    def _write(self, text: str) -> None:
        if self.file is None:
            return
        try:
            self.file.write(text + "\n")
            self.file.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream must not stop the monitor
            logger.debug("could not write progress to %r; no more text output", self.file)
            self.file = None

    def update(self, snapshot: _Snapshot, *, force: bool = False) -> None:
        now = time.monotonic()
        if not (force or self._first or snapshot.changes or now - self._last_line >= self.heartbeat):
            return
        counts = ", ".join(f"{n} {s}" for s, n in snapshot.counts.items())
        head = f"[{snapshot.observed_at:%H:%M:%S}] {snapshot.done}/{snapshot.total} finished: {counts}"
        if self._first and snapshot.reason is None:  # an end on the first look is told by the summary alone
            head = f"nb_ops.watch: {snapshot.status_line}\n{head}"
        self._first = False
        self._last_line = now
        self._write("\n".join([head, *(f"  {change}" for change in snapshot.changes)]))

    def finish(self, snapshot: _Snapshot) -> None:
        self.update(snapshot, force=True)
        self._write(_summary_text(snapshot))


class _RowWidgets:
    """The widgets of one row; set from a :class:`_RowView`."""

    def __init__(self, w: Any) -> None:
        def html_cell(width: str) -> Any:  # fixed width: a long ETA wraps in its own cell, never squeezes these
            return w.HTML(layout=w.Layout(width=width, flex="0 0 auto"))

        self.id = html_cell("6.5em")
        self.type = html_cell("9.5em")
        self.status = html_cell("7.5em")
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="12em", flex="0 0 auto"))
        self.progress = html_cell("11em")
        self.elapsed = html_cell("8em")
        self.eta = w.HTML(layout=w.Layout(flex="1 1 0%", min_width="10em"))
        self.box = w.HBox([self.id, self.type, self.status, self.bar, self.progress, self.elapsed, self.eta])

    def set(self, r: _RowView) -> None:
        esc = html.escape
        _set(self.id, "value", f'<code title="{esc(r.id)}">{esc(r.short)}</code>')
        _set(self.type, "value", esc(r.type))
        _set(self.status, "value", _badge(r.status, r.color))
        with self.bar.hold_sync():  # value and style of one bar in one message
            _set(self.bar, "value", r.value)
            _set(self.bar, "bar_style", r.bar_style)
        _set(self.bar.style, "bar_color", r.bar_color)
        _set(self.progress, "value", esc(r.progress_text))
        _set(self.elapsed, "value", esc(r.elapsed))
        note = f' <span style="color:{_ERROR_COLOR if r.status == "error" or "HTTP" in r.note else "#888"}">{esc(r.note)}</span>'
        _set(self.eta, "value", esc(r.eta) + (note if r.note else ""))


def _set(widget: Any, name: str, value: Any) -> None:
    if getattr(widget, name) != value:  # unchanged traits send nothing anyway; skip the work too
        setattr(widget, name, value)


class _WidgetView:
    """The ipywidgets dashboard: a header (counts, overall bar, status line) and rows or one table."""

    def __init__(self, snapshot: _Snapshot) -> None:
        import ipywidgets as w

        self._lock = threading.Lock()
        self.counts = w.HTML()
        self.overall = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="20em"))
        self.overall_text = w.HTML()
        self.status = w.HTML()
        header = w.VBox([self.counts, w.HBox([self.overall, self.overall_text]), self.status])
        self.rows: dict[str, _RowWidgets] | None = None
        self.sort: Any = None
        self.table: Any = None
        if snapshot.total > TABLE_THRESHOLD:
            self.sort = w.Dropdown(
                options=list(_SORT_KEYS), value="watch order", description="sort by", layout=w.Layout(width="16em")
            )
            self.table = w.HTML()
            self.sort.observe(self._resort, names="value")
            body = w.VBox([self.sort, self.table])
        else:
            self.rows = {r.id: _RowWidgets(w) for r in snapshot.rows}
            body = w.VBox([rw.box for rw in self.rows.values()])
        self.box = w.VBox([header, body])
        self._snapshot = snapshot
        self._handle: Any = None
        self._shown_in: int | None = None
        self.final: dict[str, str] | None = None
        self.update(snapshot)

    def show(self) -> None:
        """Display in the caller's thread, once per cell; the text/plain fallback is readable."""
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        count = getattr(shell, "execution_count", None)
        if self._handle is not None and count == self._shown_in:
            return
        self._shown_in = count
        bundle = dict(self.box._repr_mimebundle_())
        bundle["text/plain"] = f"nb_ops.watch: {_count_operations(self._snapshot.total)} ({self._snapshot.status_line})"
        handle = display(bundle, raw=True, display_id=self._handle.display_id if self._handle else True)
        self._handle = self._handle or handle

    def update(self, snapshot: _Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot
            _set(self.counts, "value", _counts_html(snapshot))
            with self.overall.hold_sync():
                _set(self.overall, "value", snapshot.done / snapshot.total if snapshot.total else 1.0)
                style = "info"
                if snapshot.finished:
                    bad = any(r.status in ("failed", "error", "cancelled") for r in snapshot.rows)
                    style = "warning" if bad or snapshot.reason != "complete" else "success"
                _set(self.overall, "bar_style", style)
            _set(self.overall_text, "value", f"{snapshot.done} / {snapshot.total} finished")
            _set(self.status, "value", html.escape(snapshot.status_line))
            if self.rows is not None:
                for r in snapshot.rows:
                    self.rows[r.id].set(r)
            else:
                _set(self.table, "value", _table_html(_sorted_rows(snapshot.rows, self.sort.value)))

    def _resort(self, change: dict[str, Any]) -> None:
        with self._lock:
            _set(self.table, "value", _table_html(_sorted_rows(self._snapshot.rows, change["new"])))

    def finish(self, snapshot: _Snapshot) -> None:
        self.update(snapshot)
        self.final = {"text/plain": _summary_text(snapshot), "text/html": _summary_html(snapshot)}
        if self._handle is not None:
            # Replace the live widget by a static summary: a saved notebook then reads well without a kernel.
            self._handle.update(self.final, raw=True)

    def resend_final(self) -> None:
        """Send the final summary to the display again, from the calling thread (see Monitor.wait)."""
        if self._handle is not None and self.final is not None:
            self._handle.update(self.final, raw=True)
