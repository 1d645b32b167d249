"""The simulator's HTTP server: ``GET /v1/operations/{operation_id}`` over real sockets.

Layers, from the wire inwards:

- :class:`SimulatorHTTPServer` (a :class:`http.server.ThreadingHTTPServer`)
  accepts connections, one daemon thread each, HTTP/1.1 keep-alive, and
  remembers open connections so :meth:`Simulator.stop` can end them.
- ``_RequestHandler`` turns the bytes of a request into a :class:`Request`,
  asks the server's ``respond`` chain for a :class:`Response` and writes it
  (``_RequestHandler._send`` is the only place that writes bytes).
- ``respond`` is the application (:class:`OperationsAPI`, pure: no sockets)
  wrapped in a chain of *middleware*, callables
  ``(request, call_next) -> Response``. :class:`Simulator` puts one there,
  :class:`nb_ops.simulator.faults.FaultInjector`: it keeps the request log
  (:attr:`Simulator.requests`), adds ``latency`` and injects ``faults``
  (5xx, 429 with ``Retry-After``, dropped connections, stalls, corrupt
  bodies; see :mod:`nb_ops.simulator.faults` for each kind and for which
  request gets which). A dropped connection is :attr:`Response.drop`, which
  ``_send`` honours by shutting the socket down without writing a byte.

Faults come first: they model infrastructure in front of the API, so they hit
requests on the operations path before any of the answers below are decided.

Answers, in the order they are decided:

1. A path other than ``/v1/operations/{operation_id}`` -> 404 ``{"detail": "Not Found"}``.
2. A method other than GET or HEAD -> 405 with ``Allow: GET, HEAD``.
   (HEAD is answered like GET, without the body.)
3. No ``Authorization: Bearer <key>`` header, another scheme or a wrong key ->
   401 ``{"detail": ...}`` with ``WWW-Authenticate: Bearer``. This comes before
   any look at the id, so unauthenticated callers learn nothing about ids.
4. An invalid id -> 422 with the spec's ``HTTPValidationError`` body,
   ``{"detail": [{"loc": ["path", "operation_id"], "msg": ..., "type": ...}]}``.
   **Rule:** the path segment after ``/v1/operations/`` is percent-decoded
   (UTF-8); the id is valid if and only if the result fully matches
   :data:`OPERATION_ID_PATTERN`, ``^[A-Za-z0-9_-]{1,128}$``. So an empty
   segment, spaces, dots, slashes (``%2F``), other punctuation, non-ASCII
   letters, control characters (even a trailing newline) and ids longer than
   128 characters are all 422. (The spec itself only says "string"; this rule
   is the simulator's.)
5. A valid id that is not in the fleet -> 404 ``{"detail": "Operation not found"}``.
6. Otherwise 200 with the ``OperationResponse`` body as of the current
   simulated time.

The query string is ignored. Every body is JSON (``application/json``) with
a ``Content-Length``, except the bodies of injected faults. Request lines are
logged at DEBUG level on ``logging.getLogger(__name__)``; headers (and so the
key) never are.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re
import secrets
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import unquote, urlsplit

from ..spec import OPERATION_PATH
from .fleet import Fleet, SimClock

if TYPE_CHECKING:
    from ..client import Client
    from .faults import Faults, RequestRecord

__all__ = [
    "start",
    "Simulator",
    "OperationsAPI",
    "Request",
    "Response",
    "Middleware",
    "SimulatorHTTPServer",
    "OPERATION_ID_PATTERN",
]

logger = logging.getLogger(__name__)

#: What the simulator accepts as an operation id, after percent-decoding.
OPERATION_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,128}$"
_ID_RE: Final = re.compile(OPERATION_ID_PATTERN)
_ID_MAX: Final = 128
_PREFIX: Final = OPERATION_PATH.split("{", 1)[0]  # "/v1/operations/"
_ALLOW: Final = "GET, HEAD"
_MAX_DISCARD: Final = 1 << 20  # request bodies up to this size are read and dropped


@dataclass(frozen=True)
class Request:
    """One HTTP request as the application sees it.

    Attributes
    ----------
    method : str
        ``GET``, ``HEAD``, ``POST`` ...
    target : str
        The request target as sent (path and query, still percent-encoded).
    headers : email.message.Message
        Request headers (case-insensitive ``get``).
    """

    method: str
    target: str
    headers: Message

    @property
    def path(self) -> str:
        """The target's path, still percent-encoded, without the query."""
        return urlsplit(self.target).path


@dataclass
class Response:
    """One HTTP response before it is written.

    Attributes
    ----------
    status : int
        HTTP status code.
    body : bytes
        The body; ``Content-Length`` is set from it.
    headers : list of (str, str)
        Extra headers (``Content-Length`` and ``Connection`` are added on sending).
    close : bool
        Close the connection after this response.
    drop : bool
        Send nothing: shut the connection down instead (an injected fault,
        or a wait cut short by :meth:`Simulator.stop`). ``status`` is ignored.
    """

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False
    drop: bool = False

    @classmethod
    def json(cls, status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> Response:
        """Build a JSON response."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, body, [("Content-Type", "application/json"), *headers])


App = Callable[[Request], Response]
#: ``(request, call_next) -> Response``: may answer itself, call ``call_next`` and change its answer, or wait.
Middleware = Callable[[Request, App], Response]


def _validation_error(msg: str, kind: str) -> Response:
    return Response.json(422, {"detail": [{"loc": ["path", "operation_id"], "msg": msg, "type": kind}]})


def _check_id(operation_id: str) -> Response | None:
    """Return the 422 response for an invalid id, None for a valid one."""
    if not operation_id:
        return _validation_error("String should have at least 1 character", "string_too_short")
    if len(operation_id) > _ID_MAX:
        return _validation_error(f"String should have at most {_ID_MAX} characters", "string_too_long")
    if not _ID_RE.fullmatch(operation_id):
        return _validation_error(f"String should match pattern '{OPERATION_ID_PATTERN}'", "string_pattern_mismatch")
    return None


class OperationsAPI:
    """The application: routes a :class:`Request` and answers from the fleet. No sockets.

    Parameters
    ----------
    fleet : Fleet
        Operations to serve.
    clock : SimClock
        Simulated time of every answer.
    api_key : str
        The one bearer key accepted.
    """

    def __init__(self, fleet: Fleet, clock: SimClock, api_key: str) -> None:
        self.fleet = fleet
        self.clock = clock
        self._key = api_key.encode("utf-8")

    def __call__(self, request: Request) -> Response:
        try:
            path = request.path
        except ValueError:  # a request target urlsplit cannot read, e.g. "http://[bad/..."
            return Response.json(400, {"detail": "Bad Request"})
        raw_id = path[len(_PREFIX) :]
        if not path.startswith(_PREFIX) or "/" in raw_id:
            return Response.json(404, {"detail": "Not Found"})
        if request.method not in ("GET", "HEAD"):
            return Response.json(405, {"detail": "Method Not Allowed"}, [("Allow", _ALLOW)])
        denied = self._authenticate(request.headers.get("Authorization"))
        if denied is not None:
            return denied
        operation_id = unquote(raw_id, errors="replace")
        invalid = _check_id(operation_id)
        if invalid is not None:
            return invalid
        if operation_id not in self.fleet:
            return Response.json(404, {"detail": "Operation not found"})
        return Response.json(200, self.fleet.snapshot(operation_id, self.clock.now()))

    def _authenticate(self, header: str | None) -> Response | None:
        """Return a 401 response unless ``header`` is ``Bearer <the key>``."""
        scheme, _, credentials = (header or "").strip().partition(" ")
        credentials = credentials.strip()
        if not header or scheme.lower() != "bearer" or not credentials:
            detail = "Not authenticated"
        elif hmac.compare_digest(credentials.encode("utf-8", "surrogateescape"), self._key):
            return None
        else:
            detail = "Invalid API key"
        return Response.json(401, {"detail": detail}, [("WWW-Authenticate", "Bearer")])


class _RequestHandler(BaseHTTPRequestHandler):
    """Reads requests off one connection and writes the responses of ``server.respond``."""

    protocol_version = "HTTP/1.1"
    server_version = "nb-ops-simulator/1"
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 120
    # Headers and body go out in two writes; without TCP_NODELAY the second waits
    # for the client's delayed ACK (~40 ms a request on Linux).
    disable_nagle_algorithm = True
    server: SimulatorHTTPServer

    def _handle(self) -> None:
        keep_alive = self._discard_body()
        request = Request(self.command, self.path, self.headers)
        try:
            response = self.server.respond(request)
        except Exception:
            logger.exception("simulator failed to answer %s %s", self.command, self.path)
            response = Response.json(500, {"detail": "Internal Server Error"})
        if not keep_alive:
            response.close = True
        self._send(response, with_body=self.command != "HEAD")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def _discard_body(self) -> bool:
        """Read and drop a request body so the connection stays usable; False if it cannot."""
        if self.headers.get("Transfer-Encoding"):
            return False
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return False
        if length < 0 or length > _MAX_DISCARD:
            return False
        if length:
            self.rfile.read(length)
        return True

    def _send(self, response: Response, *, with_body: bool = True) -> None:
        if response.drop:
            self.log_message('"%s" dropped without a response', self.requestline)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # the client already left
                pass
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if response.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if with_body and response.body:
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol errors (bad request line, unknown method ...) with JSON too."""
        self.log_error("code %d, message %s", code, message)
        short = self.responses.get(code, ("Error",))[0]
        response = Response.json(code, {"detail": message or short})
        response.close = True
        self._send(response, with_body=self.command != "HEAD" and code >= 200 and code not in (204, 304))

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        # The request line and status only; headers are never logged.
        logger.debug("%s %s", self.address_string(), format % args)


class SimulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that can end its open keep-alive connections.

    Parameters
    ----------
    address : tuple
        ``(host, port)`` to bind; port 0 picks a free one.
    app : callable
        ``(Request) -> Response``.
    middleware : sequence of Middleware
        Wrapped around ``app``; the first one sees the request first.
    """

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, middleware: Sequence[Middleware] = ()) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        handler: App = app
        for mw in reversed(tuple(middleware)):
            handler = functools.partial(_call_middleware, mw, call_next=handler)
        self.respond: App = handler
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Like ThreadingMixIn's, but remembers the connection and its thread.
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"nb-ops-simulator-{client_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-response are normal; keep stderr quiet.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self, timeout: float = 2.0) -> None:
        """End every open connection and wait for their threads."""
        with self._lock:
            open_now = list(self._connections.items())
        for sock, _ in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in open_now:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout)


def _call_middleware(mw: Middleware, request: Request, *, call_next: App) -> Response:
    return mw(request, call_next)


class Simulator:
    """A running local API server over a simulated fleet; see :func:`start`.

    Attributes
    ----------
    base_url : str
        ``http://HOST:PORT``.
    api_key : str
        The bearer key the server accepts (not shown by ``repr``).
    operation_ids : list of str
        Ids of the fleet, in fleet order.
    seed, size, speed, host, port
        As started.
    fleet : Fleet
        The simulated operations.
    latency : float
        Seconds added to every response (see :meth:`configure`).
    faults : nb_ops.simulator.faults.Faults
        The faults being injected (see :meth:`configure`).
    requests : list of RequestRecord
        The request log (see :attr:`requests`).
    """

    def __init__(
        self,
        seed: int = 0,
        speed: float = 60.0,
        port: int = 0,
        size: int = 60,
        *,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        start_time: float | None = None,
        latency: float = 0.0,
        faults: Mapping[str, Any] | None = None,
    ) -> None:
        from .faults import FaultInjector, Faults, check_latency  # faults builds on this module

        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, not {port!r}")
        latency = check_latency(latency)
        fault_config = Faults.from_mapping(faults)
        self.seed = seed
        self.size = size
        self.host = host
        self.api_key = api_key if api_key is not None else f"sim-{secrets.token_urlsafe(24)}"
        self._clock = SimClock(speed, start_time)
        self.fleet = Fleet(seed, size, epoch=int(self._clock.t0))
        self.operation_ids: list[str] = self.fleet.ids
        # Set first thing in stop(): latency and stalls wait on it, so they end at once.
        self._stopping = threading.Event()
        self._injector = FaultInjector(seed, self._stopping, latency, fault_config)
        self._server = SimulatorHTTPServer(
            (host, port), OperationsAPI(self.fleet, self._clock, self.api_key), [self._injector]
        )
        self.port: int = self._server.server_address[1]
        netloc = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{netloc}:{self.port}"
        self._stop_lock = threading.Lock()
        self._stopped = False
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name=f"nb-ops-simulator:{self.port}", daemon=True
        )
        self._thread.start()
        ready.wait()
        logger.info("simulator serving %d operations on %s (seed=%s, speed=%s)", size, self.base_url, seed, self.speed)

    def _serve(self, ready: threading.Event) -> None:
        ready.set()  # the socket already listens: connections queue until served
        self._server.serve_forever(poll_interval=0.05)

    # -- public API -------------------------------------------------------

    def now(self) -> float:
        """Return the current simulated unix time (seconds)."""
        return self._clock.now()

    def advance(self, seconds: float) -> float:
        """Jump simulated time forward by ``seconds`` and return the new simulated time.

        With ``speed=0`` this makes time move only when a test or demo says so.

        Raises
        ------
        ValueError
            If ``seconds`` is negative: time never goes back.
        """
        return self._clock.advance(seconds)

    def snapshot(self, operation_id: str) -> dict[str, Any]:
        """Return the body the server would answer for ``operation_id`` right now.

        Raises
        ------
        KeyError
            If the fleet has no such operation.
        """
        return self.fleet.snapshot(operation_id, self._clock.now())

    def client(self, **kwargs: Any) -> Client:
        """Return an :class:`nb_ops.Client` for this server (``kwargs`` go to ``Client``).

        Example
        -------
        >>> with start() as sim:  # doctest: +SKIP
        ...     op = sim.client().get_operation(sim.operation_ids[0])
        """
        from ..client import Client

        return Client(api_key=self.api_key, base_url=self.base_url, **kwargs)

    @property
    def latency(self) -> float:
        """Seconds added to every response."""
        return self._injector.latency

    @property
    def faults(self) -> Faults:
        """The checked fault configuration in force (``Faults()`` when none)."""
        return self._injector.faults

    @property
    def speed(self) -> float:
        """Simulated seconds per real second (change it with :meth:`configure`)."""
        return self._clock.speed

    def configure(
        self, *, latency: float | None = None, faults: Mapping[str, Any] | None = None, speed: float | None = None
    ) -> None:
        """Change the latency, the faults and/or the clock's speed while the server runs.

        Requests that already arrived keep the settings they arrived with.

        Parameters
        ----------
        speed : float, optional
            Simulated seconds per real second from now on (0 freezes the
            clock; the time so far is kept); None leaves it as it is.
        latency : float, optional
            New latency in seconds (0 to a year); None leaves it as it is.
        faults : dict, optional
            New faults, replacing the old ones whole (keys as for :func:`start`);
            ``{}`` turns faults off; None leaves them as they are.

        Raises
        ------
        ValueError
            For a bad value, naming it; nothing is changed then.

        Example
        -------
        >>> sim.configure(faults={"rate_limit_rate": 1.0, "retry_after": 0})  # doctest: +SKIP
        >>> sim.configure(latency=0.2, faults={})  # doctest: +SKIP
        >>> sim.configure(speed=1200)  # 20 simulated minutes a second, e.g. while a demo watches  # doctest: +SKIP
        """
        if speed is not None:
            SimClock(speed, 0.0)  # a bad speed fails here, before anything is changed
        self._injector.configure(latency=latency, faults=faults)
        if speed is not None:
            self._clock.set_speed(speed)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first: one :class:`~nb_ops.simulator.faults.RequestRecord` a request.

        A request is logged when it arrives, in arrival order (so a stalled
        request is in the log while it stalls); its ``status`` is None until
        the answer is decided, just before it is sent, and stays None for a
        dropped connection. The log keeps the last million requests.
        Requests the HTTP layer refuses before routing (a malformed request
        line) are not in it.
        """
        return self._injector.records()

    def requests_for(self, operation_id: str) -> list[RequestRecord]:
        """Return the records of requests for ``operation_id`` (the percent-decoded path segment)."""
        return self._injector.records(operation_id)

    def clear_requests(self) -> None:
        """Empty the request log and restart every id's attempt count at 1.

        So after ``clear_requests()`` the same requests meet the same faults again.
        """
        self._injector.clear()

    @property
    def running(self) -> bool:
        """True until :meth:`stop`."""
        return not self._stopped

    def stop(self) -> None:
        """Stop serving, close open connections and free the port. Safe to call twice."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()
        logger.info("simulator on %s stopped", self.base_url)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        extra = f" latency={self.latency:g}" if self.latency else ""
        extra += " faults=on" if self.faults.active else ""
        return (
            f"<Simulator {self.base_url} seed={self.seed!r} size={self.size} "
            f"speed={self.speed:g}{extra} {state}>"
        )


def start(
    seed: int = 0,
    speed: float = 60.0,
    port: int = 0,
    size: int = 60,
    *,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    start_time: float | None = None,
    latency: float = 0.0,
    faults: Mapping[str, Any] | None = None,
) -> Simulator:
    """Start a local simulator of the operations API in a background thread.

    Returns once the server accepts connections.

    Parameters
    ----------
    seed : int
        Seed of the fleet: the same seed and size give the same ids and content.
    speed : float
        Simulated seconds per real second (60: a simulated minute per second;
        0 freezes time).
    port : int
        Port to listen on; 0 (default) picks a free one.
    size : int
        Number of operations.
    host : str
        Interface to bind.
    api_key : str, optional
        The bearer key to accept; a random ``sim-...`` key by default.
    start_time : float, optional
        Simulated unix time at start; the real time by default. Pin it for
        timestamps that are the same on every run.
    latency : float
        Seconds (0 to a year) to wait before every response. Connections wait in
        parallel, so 16 clients still get about ``16 / latency`` answers a second.
    faults : dict, optional
        Faults to inject on ``/v1/operations/{id}``, before authentication;
        none by default. All keys are optional (details in
        :mod:`nb_ops.simulator.faults`):

        - ``error_rate``: 500, 502 or 503 with a JSON or HTML body.
        - ``rate_limit_rate``: 429 with ``Retry-After``; ``retry_after``
          seconds (default 1) as ``retry_after_format`` ``"seconds"``
          (default) or ``"http-date"`` (rounded up).
        - ``drop_rate``: close the connection without a response.
        - ``stall_rate``: wait ``stall_seconds`` (default 5.0), then answer.
        - ``corrupt_rate``: 200 with a truncated JSON or a plain-text body.
        - ``only_ids``: only requests for these ids get faults.

        Rates are probabilities adding up to at most 1; each request gets at
        most one fault. Which one depends only on ``seed``, the id and how
        many requests for that id came before, so runs repeat exactly, even
        from many threads. :meth:`Simulator.configure` changes latency and
        faults later; :attr:`Simulator.requests` logs what each request got.

    Returns
    -------
    Simulator
        Use it as a context manager, or call :meth:`Simulator.stop`.

    Raises
    ------
    ValueError
        For a bad ``size``, ``speed``, ``port`` or ``latency``, or a bad
        ``faults`` dict (the message names the key).
    OSError
        If the address cannot be bound.

    Example
    -------
    >>> from nb_ops import simulator
    >>> with simulator.start(seed=1, size=10) as sim:  # doctest: +SKIP
    ...     client = sim.client()
    ...     first = client.get_operation(sim.operation_ids[0])

    A flaky server, for a client's retries:

    >>> with simulator.start(faults={"error_rate": 0.2, "rate_limit_rate": 0.1}) as sim:  # doctest: +SKIP
    ...     client = sim.client()
    ...     ops = [client.get_operation(i) for i in sim.operation_ids]
    ...     faults = [r.fault for r in sim.requests]
    """
    return Simulator(
        seed, speed, port, size, host=host, api_key=api_key, start_time=start_time, latency=latency, faults=faults
    )
