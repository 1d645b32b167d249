"""Client: configuration, the HTTP session, and fetching operations from the API.

Configuration is resolved once, in :class:`Client`: an explicit argument wins,
then the environment (``NEBIUS_API_KEY``, ``NEBIUS_BASE_URL``), then the
defaults in :mod:`nb_ops.spec`. The API key is kept out of every repr, error
message and log record.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import html
import ipaddress
import json
import logging
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    InvalidOperationId,
    NbOpsWarning,
    OperationNotFound,
    RateLimited,
    TransportError,
    ValidationError,
)
from .operation import STATUS_COLORS, Operation
from .spec import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, OPERATION_PATH, TERMINAL_STATUSES, UNSEEN_STATUS_COLOR

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Client", "Batch", "check_operation_id", "RETRY_STATUSES", "MAX_RETRY_AFTER"]

logger = logging.getLogger(__name__)

#: Longest wait for a TCP connection, whatever the read timeout.
MAX_CONNECT_TIMEOUT = 10.0
#: Longest timeout accepted (a day): beyond it a request would simply never end.
MAX_TIMEOUT = 86_400.0
#: Statuses retried: rate limiting and the transient failures of gateways and servers.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Longest wait a server's Retry-After can impose on one retry, in seconds.
MAX_RETRY_AFTER = 120.0
_EXCERPT = 200
# Characters a bearer token may hold (RFC 6750 b64token); anything else cannot go in a header.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_USER_AGENT = "nb_ops/{version} python-requests/{requests}"


class _BearerAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer …``; its repr never shows the key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"


class Client:
    """Fetches operations from the Token Factory API.

    Parameters
    ----------
    api_key : str, optional
        Bearer token. Defaults to the ``NEBIUS_API_KEY`` environment variable.
        A missing key is reported when a request is about to be made.
    base_url : str, optional
        API root. Defaults to ``NEBIUS_BASE_URL``, else
        ``https://api.tokenfactory.nebius.com``. Plain ``http://`` is accepted
        only for loopback hosts (such as the local simulator), so the key is
        never sent unencrypted over a network.
    timeout : float or (float, float), default 30.0
        Seconds to wait for the server to answer (read timeout). A single
        number also bounds the connect timeout, at most 10 s; a pair gives
        ``(connect, read)`` explicitly.
    max_workers : int, default 16
        Requests :meth:`get_operations` runs at once. Each worker thread has
        its own ``requests.Session`` (sessions are not documented as
        thread-safe), so connection pools never overflow.
    max_retries : int, default 5
        Retries of one request after a 429, 500, 502, 503 or 504, a
        connection error or a read timeout, with exponential backoff and
        jitter, honouring ``Retry-After`` (seconds or HTTP-date, at most
        :data:`MAX_RETRY_AFTER`). 0 turns retries off.
    backoff_factor : float, default 0.5
        Base of the exponential backoff in seconds: with 0.5, the retries wait
        0, 1, 2, 4, 8 … s, each plus up to 0.5 s of random jitter, at most 30 s.
    cache_dir : str or path-like, optional
        Keep finished operations on disk here too, so a re-run notebook
        fetches them with no request. Finished operations (succeeded, failed,
        cancelled) never change, so they are always kept in memory.

    Raises
    ------
    ConfigError
        If ``base_url``, ``timeout`` or another option is unusable, or the
        key holds characters a header cannot carry.

    Examples
    --------
    >>> client = Client(api_key="...")                       # doctest: +SKIP
    >>> op = client.get_operation("3a3fd2317bbe4b3bb9842bc1b5275eb9")  # doctest: +SKIP
    >>> op.status, op.progress                               # doctest: +SKIP
    ('running', 0.42)
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | tuple[float, float] = 30.0,
        max_workers: int = 16,
        max_retries: int = 5,
        backoff_factor: float = 0.5,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if key is not None and not isinstance(key, str):
            raise ConfigError(f"api_key must be a string, got {type(key).__name__}")
        key = key.strip() if key else None
        if key and not _TOKEN.fullmatch(key):
            # Say where the key came from, never what it is.
            source = "api_key" if api_key is not None else API_KEY_ENV
            raise ConfigError(f"{source} holds characters a bearer token cannot contain (spaces, quotes, newlines…)")
        self._api_key = key or None
        self.base_url = _resolve_base_url(base_url if base_url is not None else os.environ.get(BASE_URL_ENV))
        self.timeout = _resolve_timeout(timeout)
        # Loopback is plain http: never let an HTTP(S)_PROXY from the environment relay the key
        # in the clear. (For https, a proxy only tunnels the encrypted stream, so it may stay.)
        self._trust_env = not _is_loopback(urllib3.util.parse_url(self.base_url).host or "")
        self.max_workers = _bounded_int("max_workers", max_workers, 1, 256)
        self.max_retries = _bounded_int("max_retries", max_retries, 0, 50)
        if isinstance(backoff_factor, bool) or not isinstance(backoff_factor, int | float) or not 0 <= backoff_factor <= 60:
            raise ConfigError(f"backoff_factor must be seconds from 0 to 60, got {backoff_factor!r:.60}")
        self._retry = _retry_policy(self.max_retries, float(backoff_factor))
        self._local = threading.local()
        self._sessions: list[tuple[threading.Thread, requests.Session]] = []
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._finished: dict[str, Operation] = {}  # terminal operations never change
        self._disk = _DiskCache(cache_dir, self.base_url, self._api_key) if cache_dir is not None else None

    @property
    def _session(self) -> requests.Session:
        """This thread's session, made on first use."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._new_session()
            with self._lock:
                # Sessions of threads that have ended are closed here, so short-lived threads leave no sockets.
                ended = [(t, s) for t, s in self._sessions if not t.is_alive()]
                for item in ended:
                    item[1].close()
                    self._sessions.remove(item)
                self._sessions.append((threading.current_thread(), session))
        return session

    def _new_session(self) -> requests.Session:
        from . import __version__

        session = requests.Session()
        # One thread uses a session at a time: a pool of 2 leaves room for a reconnect.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=2, max_retries=self._retry)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.trust_env = self._trust_env
        session.headers["User-Agent"] = _USER_AGENT.format(version=__version__, requests=requests.__version__)
        session.headers["Accept"] = "application/json"
        if self._api_key:
            session.auth = _BearerAuth(self._api_key)
        return session

    @property
    def has_api_key(self) -> bool:
        """Whether a key was given (``api_key=`` or ``NEBIUS_API_KEY``); the key itself is never shown."""
        return bool(self._api_key)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        return f"Client(base_url={self.base_url!r}, api_key={key}, timeout={self.timeout!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections and the worker threads. The client can still be used; it reconnects."""
        with self._lock:
            executor, self._executor = self._executor, None
            sessions, self._sessions = self._sessions, []
            self._local = threading.local()  # every thread starts a fresh session next time
        if executor is not None:
            # Queued fetches are cancelled; running ones end after their current attempt, in the background.
            executor.shutdown(wait=False, cancel_futures=True)
        for _, session in sessions:
            session.close()

    def get_operation(self, operation_id: str, *, refresh: bool = False) -> Operation:
        """Fetch one operation.

        A finished operation (succeeded, failed or cancelled) never changes:
        once fetched it comes from the client's cache (and ``cache_dir``, if
        set) with no request, unless ``refresh=True``.

        Parameters
        ----------
        operation_id : str
            The operation's id. It is sent as one percent-encoded path
            segment, so it cannot reach another endpoint.
        refresh : bool, default False
            Ask the API even if the operation is cached.

        Returns
        -------
        Operation
            The response, with write-only secrets redacted.

        Raises
        ------
        ConfigError
            No API key: set ``NEBIUS_API_KEY`` or pass ``api_key=``.
        InvalidOperationId
            ``operation_id`` is not a string, is empty, or is blank.
        AuthenticationError
            401/403: the key was refused.
        OperationNotFound
            404: no such operation.
        ValidationError
            422: the server refused the id; ``detail`` has its reasons.
        APIError
            Any other error status, or a body that is not an operation.
        TransportError
            Connection refused or dropped, or a timeout.

        Examples
        --------
        >>> client.get_operation("3a3fd2317bbe4b3bb9842bc1b5275eb9").status  # doctest: +SKIP
        'succeeded'
        """
        check_operation_id(operation_id)
        if not refresh:
            cached = self._cached(operation_id)
            if cached is not None:
                return cached
        op = self._fetch(operation_id)
        if op.is_terminal:
            self._finished[operation_id] = op
            if self._disk is not None:
                self._disk.put(operation_id, op._data)
        return op

    def get_operations(
        self, ids: Iterable[str], *, progress: bool | None = None, refresh: bool = False
    ) -> Batch:
        """Fetch many operations at once; one failure never costs the others.

        Requests run on ``max_workers`` threads, each retried as described in
        :class:`Client`. Each distinct id is fetched once; finished operations
        already cached cost no request (unless ``refresh=True``).

        Parameters
        ----------
        ids : iterable of str
            Operation ids. Invalid ones (empty, blank, not strings) are refused
            without a request and land in :attr:`Batch.errors`.
        progress : bool, optional
            Show a progress bar (``tqdm.auto``: a widget in Jupyter, text in a
            terminal). By default, shown for more than 20 requests in an
            interactive session.
        refresh : bool, default False
            Ask the API even for cached operations.

        Returns
        -------
        Batch
            The operations fetched, in the order their ids first appear, and
            ``errors``: id → exception for those that failed.

        Raises
        ------
        ConfigError
            No API key (nothing is requested).
        TypeError
            ``ids`` is a single string rather than a collection of ids.

        Warns
        -----
        NbOpsWarning
            One summary when some ids failed: how many, and why.

        Examples
        --------
        >>> batch = client.get_operations(ids)                 # doctest: +SKIP
        >>> batch                                              # doctest: +SKIP
        Batch(998 operations, 2 errors)
        >>> batch.errors                                       # doctest: +SKIP
        {'abc': OperationNotFound("Operation 'abc' not found (HTTP 404)")}
        >>> df = batch.frame()                                 # doctest: +SKIP
        """
        if isinstance(ids, str | bytes):
            raise TypeError("get_operations expects a collection of ids; for one id use get_operation(id)")
        if not self._api_key:
            raise ConfigError(f"No API key: set {API_KEY_ENV} or pass api_key= to nb_ops.Client")
        errors: dict[Any, Exception] = {}
        found: dict[str, Operation] = {}
        order: list[str] = []  # distinct valid ids, as they first appear
        todo: list[str] = []
        seen: set[str] = set()
        sequence: list[Any] = []  # every distinct id or refused key, as it first appears
        for op_id in ids:
            try:
                check_operation_id(op_id)
            except InvalidOperationId as exc:
                key = _error_key(op_id)
                if key not in errors:
                    sequence.append(key)
                errors[key] = exc
                continue
            if op_id in seen:
                continue
            seen.add(op_id)
            order.append(op_id)
            sequence.append(op_id)
            cached = None if refresh else self._cached(op_id)
            if cached is not None:
                found[op_id] = cached
            else:
                todo.append(op_id)
        asked = len(sequence)
        found.update(self._fetch_many(todo, errors, progress=progress, refresh=refresh))
        errors = {key: errors[key] for key in sequence if key in errors}  # input order, not completion order
        batch = Batch([found[op_id] for op_id in order if op_id in found], errors)
        if errors:
            warnings.warn(batch._error_summary(asked), NbOpsWarning, stacklevel=2)
        return batch

    def _fetch_many(
        self, ids: list[str], errors: dict[Any, Exception], *, progress: bool | None, refresh: bool
    ) -> dict[str, Operation]:
        if not ids:
            return {}
        if progress is None:
            progress = len(ids) > 20 and _interactive()
        stop = threading.Event()  # set on Ctrl-C: no new attempts, no more waiting between them
        refused: list[AuthenticationError] = []  # a 401 fails every id: stop asking

        def fetch(op_id: str) -> Operation:
            if refused:  # one error object per id, each naming its own id
                first = refused[0]
                raise AuthenticationError(
                    str(first), status_code=first.status_code, operation_id=op_id, body_excerpt=first.body_excerpt
                )
            if stop.is_set():
                raise TransportError(f"Operation {op_id!r:.80} was not fetched: the batch was interrupted", operation_id=op_id)
            try:
                return self._get_until(op_id, stop, refresh=refresh)
            except AuthenticationError as exc:
                if exc.status_code == 401:  # a 403 may concern this operation only
                    refused.append(exc)
                raise

        from tqdm.auto import tqdm

        results: dict[str, Operation] = {}
        bar = tqdm(total=len(ids), desc="operations", unit="op", disable=not progress, leave=True)
        futures: dict[Future[Operation], str] = {}
        try:
            pool = self._pool()
            for i, op_id in enumerate(ids):
                try:
                    futures[pool.submit(fetch, op_id)] = op_id
                except RuntimeError:  # close() shut the pool down while this loop was submitting
                    for rest in ids[i:]:
                        errors[rest] = TransportError(
                            f"Operation {rest!r:.80} was not fetched: the client was closed", operation_id=rest
                        )
                    bar.update(len(ids) - i)
                    break
            pending = set(futures)
            while pending:
                # Not as_completed: futures cancelled by close() would never be reported done.
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                closed = {f for f in pending if f.cancelled()}
                pending -= closed
                for future in (*done, *closed):
                    op_id = futures[future]
                    try:
                        results[op_id] = future.result()
                    except CancelledError:
                        errors[op_id] = TransportError(
                            f"Operation {op_id!r:.80} was not fetched: the client was closed", operation_id=op_id
                        )
                    except Exception as exc:  # noqa: BLE001 - one failed id must never cost the others
                        errors[op_id] = exc
                    bar.update(1)
        except BaseException:  # KeyboardInterrupt in a notebook: stop what has not started, and the retries
            stop.set()
            for future in futures:
                future.cancel()
            raise
        finally:
            bar.close()
        return results

    def _get_until(self, operation_id: str, stop: threading.Event, *, refresh: bool = False) -> Operation:
        """:meth:`get_operation` whose retries and waits end as soon as ``stop`` is set."""
        _batch.stop = stop
        try:
            return self.get_operation(operation_id, refresh=refresh)
        finally:
            _batch.stop = None

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="nb_ops-fetch")
            return self._executor

    def _cached(self, operation_id: str) -> Operation | None:
        op = self._finished.get(operation_id)
        if op is None and self._disk is not None:
            data = self._disk.get(operation_id)
            if data is not None:
                try:
                    op = self._finished[operation_id] = Operation(data)
                except (ValueError, RecursionError):  # a file too deep to use: a miss, rewritten on fetch
                    return None
        return op

    def _fetch(self, operation_id: str) -> Operation:
        """One GET, with the adapter's retries; the response mapped to an Operation or a typed error."""
        if not self._api_key:
            raise ConfigError(f"No API key: set {API_KEY_ENV} or pass api_key= to nb_ops.Client")
        url = self.base_url + OPERATION_PATH.format(operation_id=quote(operation_id, safe=""))
        started = time.perf_counter()
        # Errors are raised "from None": the requests exception holds the prepared request,
        # Authorization header included, which a verbose traceback would print.
        retry: Retry = self._retry
        while True:
            try:
                response = self._session.get(url, timeout=self.timeout)
                break
            except requests.Timeout:
                raise TransportError(
                    f"Timed out fetching operation {operation_id!r:.80} from {self.base_url} "
                    f"(timeout {self.timeout[1]:g} s); retry later or pass a larger timeout=",
                    operation_id=operation_id,
                ) from None
            except requests.RequestException as exc:
                if _broke_in_body(exc):
                    # The headers came, then the body broke off or stalled: the adapter's Retry
                    # never sees that (requests reads the body later), so count it here, as a read error.
                    try:
                        retry = retry.increment("GET", url, error=urllib3.exceptions.ProtocolError(_reason(exc)))
                    except urllib3.exceptions.MaxRetryError:
                        pass
                    else:
                        retry.sleep()
                        continue
                gave_up = f" (gave up after {self.max_retries} retries)" if "Max retries exceeded" in str(exc) else ""
                reason = _reason(exc)
                raise TransportError(
                    f"Could not fetch operation {operation_id!r:.80} from {self.base_url}: {reason}{gave_up}",
                    operation_id=operation_id,
                ) from None
        logger.debug(
            "GET operation %s -> %s in %.3f s", operation_id, response.status_code, time.perf_counter() - started
        )
        data = self._parse(response, operation_id)
        try:
            return Operation(data)
        except ValueError as exc:  # nested too deeply to be an operation
            raise APIError(
                f"Operation {operation_id!r:.80}: {exc}", status_code=response.status_code, operation_id=operation_id
            ) from None

    def _parse(self, response: requests.Response, operation_id: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise self._error_for(response, operation_id)
        try:
            data = response.json()
        except (ValueError, RecursionError):
            raise APIError(
                f"Operation {operation_id!r:.80}: the API answered HTTP {response.status_code} with a body that is not JSON",
                status_code=response.status_code,
                operation_id=operation_id,
                body_excerpt=self._excerpt(response),
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            what = "an object without an id" if isinstance(data, dict) else f"a JSON {type(data).__name__}"
            raise APIError(
                f"Operation {operation_id!r:.80}: the API answered with {what}, not an operation",
                status_code=response.status_code,
                operation_id=operation_id,
                body_excerpt=self._excerpt(response),
            )
        return data

    def _error_for(self, response: requests.Response, operation_id: str) -> APIError:
        """Map an error response to its exception class: the one place that does."""
        status = response.status_code
        excerpt = self._excerpt(response)
        detail = _detail(response)
        common: dict[str, Any] = {"status_code": status, "operation_id": operation_id, "body_excerpt": excerpt}
        if status in (401, 403):
            return AuthenticationError(
                f"The API refused the key (HTTP {status}): set {API_KEY_ENV} to a valid key or pass api_key=",
                **common,
            )
        if status == 404:
            return OperationNotFound(f"Operation {operation_id!r:.80} not found (HTTP 404)", **common)
        if status == 422:
            reason = self._scrub(" ".join(_first_msg(detail).split()))[:_EXCERPT]
            return ValidationError(
                f"The API refused operation id {operation_id!r:.80} (HTTP 422){': ' + reason if reason else ''}",
                detail=self._scrub_obj(detail),
                **common,
            )
        if status == 429:
            return RateLimited(f"Rate limited by the API (HTTP 429) fetching operation {operation_id!r:.80}", **common)
        reason = self._scrub(" ".join((response.reason or "").split()))[:_EXCERPT]
        return APIError(
            f"HTTP {status} {reason} fetching operation {operation_id!r:.80}".replace("  ", " ")
            + (f": {excerpt}" if excerpt else ""),
            **common,
        )

    def _excerpt(self, response: requests.Response) -> str:
        # Scrub a window longer than the excerpt, then cut: a key straddling the cut is caught whole.
        window = response.text[: _EXCERPT + 2 * len(self._api_key or "")] if response.content else ""
        return self._scrub(" ".join(window.split()))[:_EXCERPT]

    def _scrub(self, text: str) -> str:
        """Remove the key from text a server sent back, in case it echoes it (also JSON-escaped)."""
        if not self._api_key or not text:
            return text
        for form in {self._api_key, self._api_key.replace("/", "\\/")}:
            text = text.replace(form, "***")
        return text

    def _scrub_obj(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, list):
            return [self._scrub_obj(v) for v in value]
        if isinstance(value, dict):
            return {k: self._scrub_obj(v) for k, v in value.items()}
        return value


def check_operation_id(operation_id: Any) -> None:
    """Refuse an id that is not a non-blank string, before any request is made.

    Raises
    ------
    InvalidOperationId
        With a message saying what is wrong.
    """
    if not isinstance(operation_id, str):
        raise InvalidOperationId(
            f"operation ids are strings, got {type(operation_id).__name__} {operation_id!r:.60}", operation_id
        )
    if not operation_id.strip():
        raise InvalidOperationId(f"operation id is empty or blank: {operation_id!r:.80}", operation_id)
    if operation_id != operation_id.strip():
        raise InvalidOperationId(
            f"operation id {operation_id!r:.80} has leading or trailing whitespace; strip it first", operation_id
        )
    if operation_id in (".", ".."):
        # Percent-encoding leaves dots alone and URL normalisation would climb out of /v1/operations/.
        raise InvalidOperationId(f"operation id {operation_id!r:.80} is a relative path, not an id", operation_id)
    try:
        operation_id.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidOperationId(
            f"operation id {operation_id!r:.60} holds characters that are not valid text (lone surrogates)",
            operation_id,
        ) from None


def _resolve_base_url(value: Any) -> str:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"base_url must be a string URL, got {type(value).__name__}")
    url = (value or DEFAULT_BASE_URL).strip().rstrip("/")
    example = f"an http(s) URL such as {DEFAULT_BASE_URL!r}"
    if any(ch in url for ch in "\\ \t\r\n") or not url.isprintable():
        raise ConfigError(f"base_url must be {example}, without spaces, backslashes or control characters")
    try:
        parts = urlsplit(url)
        # The host as the connection will see it (urllib3's parser, which requests uses),
        # must be the host this check sees.
        host = urllib3.util.parse_url(url).host
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except (ValueError, urllib3.exceptions.LocationParseError):
        raise ConfigError(f"base_url must be {example}, got {url!r:.100}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not host:
        raise ConfigError(f"base_url must be {example}, got {url!r:.100}")
    if host.strip("[]").lower() != parts.hostname.lower():
        raise ConfigError(f"base_url {url!r:.100} is ambiguous about its host; write it plainly")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("base_url must not hold credentials; pass the key as api_key= or NEBIUS_API_KEY")
    if parts.query or parts.fragment:
        raise ConfigError(f"base_url must not have a query or fragment, got {url!r:.100}")
    try:
        parts.hostname.encode("idna")  # labels of at most 63 characters, a valid name
    except UnicodeError:
        raise ConfigError(f"base_url has an invalid host name: {parts.hostname!r:.100}") from None
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"Refusing to send the API key over plain http to {parts.hostname!r}: use https:// "
            "(plain http is allowed only for loopback hosts such as the local simulator)"
        )
    return url


def _is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP literal; other names could resolve anywhere."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resolve_timeout(timeout: Any) -> tuple[float, float]:
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        seconds = float(timeout) if abs(timeout) < MAX_TIMEOUT * 2 else float("inf")
        pair = (min(seconds, MAX_CONNECT_TIMEOUT), seconds)
    elif (
        isinstance(timeout, tuple)
        and len(timeout) == 2
        and all(isinstance(t, int | float) and not isinstance(t, bool) for t in timeout)
    ):
        pair = tuple(float(t) if abs(t) < MAX_TIMEOUT * 2 else float("inf") for t in timeout)  # type: ignore[assignment]
    else:
        raise ConfigError(f"timeout must be seconds or a (connect, read) pair, got {timeout!r}")
    if not all(0 < t <= MAX_TIMEOUT for t in pair):
        raise ConfigError(f"timeouts must be positive seconds, at most {MAX_TIMEOUT:g}, got {timeout!r:.60}")
    return pair


def _broke_in_body(exc: requests.RequestException) -> bool:
    """True for a failure while reading the body, after the status and headers arrived."""
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(cause, urllib3.exceptions.ReadTimeoutError)


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _reason(exc: requests.RequestException) -> str:
    """A short cause for a transport failure: "Connection refused", "SSL error: …", not a pool repr."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        detail = re.search(r"SSLError\((?:\d+, )?'?([^'\")]+)", text)
        return "TLS/SSL error" + (f": {detail.group(1)}" if detail else "")
    if isinstance(exc, requests.exceptions.ProxyError):
        return "proxy error"
    match = _ERRNO.search(text)
    if match:
        return match.group(1).strip()
    for known in ("Read timed out", "Connection aborted", "RemoteDisconnected", "Connection reset", "IncompleteRead"):
        if known in text:
            return known
    return type(exc).__name__


def _detail(response: requests.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("detail") if isinstance(body, dict) else None


def _first_msg(detail: Any) -> str:
    """The server's first reason, uncut (the caller scrubs, then cuts)."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return str(detail[0].get("msg", ""))
    return ""


class Batch(Sequence[Operation]):
    """The result of :meth:`Client.get_operations`: operations in order, and the errors.

    A read-only sequence of the :class:`Operation` objects fetched, in the
    order their ids first appear in the request (each id once).

    Attributes
    ----------
    errors : dict
        Id → exception for each id that could not be fetched
        (:class:`OperationNotFound`, :class:`TransportError`, …).
    """

    __slots__ = ("_operations", "errors")

    def __init__(self, operations: Iterable[Operation], errors: dict[Any, Exception] | None = None) -> None:
        self._operations = tuple(operations)
        self.errors: dict[Any, Exception] = dict(errors or {})

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list(self._operations[index])
        return self._operations[index]

    def __len__(self) -> int:
        return len(self._operations)

    @property
    def ids(self) -> list[str | None]:
        """The ids of the operations fetched, in order."""
        return [op.id for op in self._operations]

    def frame(self) -> pd.DataFrame:
        """:func:`nb_ops.to_frame` of these operations."""
        from .frame import to_frame

        return to_frame(self._operations)

    def sources(self) -> pd.DataFrame:
        """:func:`nb_ops.sources_frame` of these operations."""
        from .frame import sources_frame

        return sources_frame(self._operations)

    def destinations(self) -> pd.DataFrame:
        """:func:`nb_ops.destinations_frame` of these operations."""
        from .frame import destinations_frame

        return destinations_frame(self._operations)

    def __repr__(self) -> str:
        errors = len(self.errors)
        return f"Batch({len(self)} operations, {errors} error{'' if errors == 1 else 's'})"

    def _repr_html_(self) -> str:
        counts = collections.Counter(op.status or "?" for op in self._operations)
        items = "".join(
            f'<span style="background:{STATUS_COLORS.get(status, UNSEEN_STATUS_COLOR)};color:white;padding:1px 7px;'
            f'border-radius:8px;margin-right:4px;font-size:0.85em">{html.escape(status)} {count}</span>'
            for status, count in counts.most_common()
        )
        text = f"<div><b>{len(self)}</b> operations {items}</div>"
        if self.errors:
            shown = list(self.errors.items())[:5]
            rows = "".join(
                f"<li><code>{html.escape(str(op_id))[:60]}</code>: {html.escape(str(exc))[:200]}</li>"
                for op_id, exc in shown
            )
            more = f"<li>… and {len(self.errors) - len(shown)} more</li>" if len(self.errors) > len(shown) else ""
            text += f'<div style="color:#d62728">{len(self.errors)} failed:<ul>{rows}{more}</ul></div>'
        return text

    def _error_summary(self, asked: int) -> str:
        kinds = collections.Counter(type(exc).__name__ for exc in self.errors.values())
        why = ", ".join(f"{count} {name}" for name, count in kinds.most_common())
        return f"{len(self.errors)} of {asked} operations could not be fetched ({why}); see batch.errors"


# The batch a worker thread is fetching for: its `stop` event ends retries early (Ctrl-C).
_batch = threading.local()


class _Retry(Retry):
    """urllib3's Retry with server-requested waits capped at :data:`MAX_RETRY_AFTER`, a malformed
    ``Retry-After`` ignored (plain backoff instead), and waits that end when the batch is interrupted."""

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        try:
            wait = super().get_retry_after(response)
        except urllib3.exceptions.InvalidHeader:
            return None
        return None if wait is None else min(wait, MAX_RETRY_AFTER)

    def increment(self, *args: Any, **kwargs: Any) -> Retry:
        stop: threading.Event | None = getattr(_batch, "stop", None)
        if stop is not None and stop.is_set():
            retry = self.new(total=0, connect=0, read=0, status=0, other=0)  # no attempt after an interrupt
            return Retry.increment(retry, *args, **kwargs)
        return super().increment(*args, **kwargs)

    def sleep_for_retry(self, response: urllib3.BaseHTTPResponse) -> bool:
        wait = self.get_retry_after(response)
        if wait:
            _pause(wait)
            return True
        return False

    def _sleep_backoff(self) -> None:
        backoff = self.get_backoff_time()
        if backoff > 0:
            _pause(backoff)


def _pause(seconds: float) -> None:
    stop: threading.Event | None = getattr(_batch, "stop", None)
    if stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)


def _retry_policy(retries: int, backoff: float) -> Retry:
    """GET only; 429 and 5xx gateway statuses, connection errors and read timeouts; jittered backoff."""
    return _Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff,
        backoff_jitter=backoff,
        backoff_max=30.0,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer is mapped to a typed error by the client
    )


class _DiskCache:
    """Finished operations as JSON files, one per id, under a folder per API base URL.

    Files are written atomically (a temporary file, then a rename) and hold
    only the redacted operation. A file that cannot be read or does not hold
    a finished operation with the right id is ignored (and overwritten on the
    next fetch), never fatal.
    """

    def __init__(self, root: Any, base_url: str, api_key: str | None) -> None:
        if not isinstance(root, str | os.PathLike) or not str(root).strip():
            raise ConfigError(f"cache_dir must be a folder path, got {root!r:.60}")
        try:
            folder = Path(root).expanduser()
        except RuntimeError as exc:  # "~nosuchuser"
            raise ConfigError(f"cache_dir {str(root)!r:.60}: {exc}") from None
        # One folder per API and key: another key (maybe revoked, maybe another project's) must ask
        # the API itself. Only a hash of a hash of the key is used, which cannot be turned back.
        key_hash = hashlib.sha256((api_key or "").encode()).hexdigest()
        self.dir = folder / hashlib.sha256(f"{base_url}\n{key_hash}".encode()).hexdigest()[:16]
        self._warned = False

    def _path(self, operation_id: str) -> Path:
        return self.dir / f"{hashlib.sha256(operation_id.encode()).hexdigest()[:40]}.json"

    def get(self, operation_id: str) -> dict[str, Any] | None:
        path = self._path(operation_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            logger.info("ignoring unreadable cache file %s: %s", path.name, type(exc).__name__)
            return None
        op = data.get("operation") if isinstance(data, dict) else None
        if not isinstance(op, dict) or op.get("id") != operation_id or op.get("status") not in TERMINAL_STATUSES:
            logger.info("ignoring cache file %s: not a finished operation %r", path.name, operation_id)
            return None
        return op

    def put(self, operation_id: str, data: dict[str, Any]) -> None:
        path = self._path(operation_id)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp.write_text(json.dumps({"format": 1, "operation": data}), encoding="utf-8")
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if not self._warned:  # a cache that cannot be written must not stop the fetch
                self._warned = True
                warnings.warn(f"nb_ops could not write its cache in {self.dir}: {exc}", NbOpsWarning, stacklevel=4)


def _error_key(op_id: Any) -> Any:
    """The key of a refused id in Batch.errors: a string id itself, anything else its repr
    (so 1, True and 1.0 stay three entries)."""
    return op_id if isinstance(op_id, str) else repr(op_id)


def _bounded_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer from {low} to {high}, got {value!r:.60}")
    return value


def _interactive() -> bool:
    """True in Jupyter/IPython or a Python prompt, where a progress bar helps."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return True
    ipython = sys.modules.get("IPython")
    return ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None
