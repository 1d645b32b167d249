"""Client: configuration, the HTTP session, and fetching operations from the API.

Configuration is resolved once, in :class:`Client`: an explicit argument wins,
then the environment (``NEBIUS_API_KEY``, ``NEBIUS_BASE_URL``), then the
defaults in :mod:`nb_ops.spec`. The API key is kept out of every repr, error
message and log record.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import time
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3

from .errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    InvalidOperationId,
    OperationNotFound,
    RateLimited,
    TransportError,
    ValidationError,
)
from .operation import Operation
from .spec import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, OPERATION_PATH

__all__ = ["Client"]

logger = logging.getLogger(__name__)

#: Longest wait for a TCP connection, whatever the read timeout.
MAX_CONNECT_TIMEOUT = 10.0
#: Longest timeout accepted (a day): beyond it a request would simply never end.
MAX_TIMEOUT = 86_400.0
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

    Raises
    ------
    ConfigError
        If ``base_url`` or ``timeout`` is unusable, or the key holds
        characters a header cannot carry.

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
        self._session = self._new_session()

    def _new_session(self) -> requests.Session:
        from . import __version__

        session = requests.Session()
        session.trust_env = self._trust_env
        session.headers["User-Agent"] = _USER_AGENT.format(version=__version__, requests=requests.__version__)
        session.headers["Accept"] = "application/json"
        if self._api_key:
            session.auth = _BearerAuth(self._api_key)
        return session

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        return f"Client(base_url={self.base_url!r}, api_key={key}, timeout={self.timeout!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections. The client can still be used; it reconnects."""
        self._session.close()

    def get_operation(self, operation_id: str) -> Operation:
        """Fetch one operation.

        Parameters
        ----------
        operation_id : str
            The operation's id. It is sent as one percent-encoded path
            segment, so it cannot reach another endpoint.

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
        if not self._api_key:
            raise ConfigError(f"No API key: set {API_KEY_ENV} or pass api_key= to nb_ops.Client")
        url = self.base_url + OPERATION_PATH.format(operation_id=quote(operation_id, safe=""))
        started = time.perf_counter()
        try:
            response = self._session.get(url, timeout=self.timeout)
        except requests.Timeout as exc:
            raise TransportError(
                f"Timed out fetching operation {operation_id!r} from {self.base_url} "
                f"(timeout {self.timeout[1]:g} s); retry later or pass a larger timeout=",
                operation_id=operation_id,
            ) from exc
        except requests.RequestException as exc:
            raise TransportError(
                f"Could not reach {self.base_url} for operation {operation_id!r}: {_reason(exc)}",
                operation_id=operation_id,
            ) from exc
        logger.debug(
            "GET operation %s -> %s in %.3f s", operation_id, response.status_code, time.perf_counter() - started
        )
        data = self._parse(response, operation_id)
        try:
            return Operation(data)
        except ValueError as exc:  # nested too deeply to be an operation
            raise APIError(
                f"Operation {operation_id!r}: {exc}", status_code=response.status_code, operation_id=operation_id
            ) from None

    def _parse(self, response: requests.Response, operation_id: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise self._error_for(response, operation_id)
        try:
            data = response.json()
        except (ValueError, RecursionError) as exc:
            raise APIError(
                f"Operation {operation_id!r}: the API answered HTTP {response.status_code} with a body that is not JSON",
                status_code=response.status_code,
                operation_id=operation_id,
                body_excerpt=self._excerpt(response),
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            what = "an object without an id" if isinstance(data, dict) else f"a JSON {type(data).__name__}"
            raise APIError(
                f"Operation {operation_id!r}: the API answered with {what}, not an operation",
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
            return OperationNotFound(f"Operation {operation_id!r} not found (HTTP 404)", **common)
        if status == 422:
            reason = self._scrub(" ".join(_first_msg(detail).split()))[:_EXCERPT]
            return ValidationError(
                f"The API refused operation id {operation_id!r} (HTTP 422){': ' + reason if reason else ''}",
                detail=self._scrub_obj(detail),
                **common,
            )
        if status == 429:
            return RateLimited(f"Rate limited by the API (HTTP 429) fetching operation {operation_id!r}", **common)
        reason = self._scrub(" ".join((response.reason or "").split()))[:_EXCERPT]
        return APIError(
            f"HTTP {status} {reason} fetching operation {operation_id!r}".replace("  ", " ")
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
        raise InvalidOperationId(f"operation id is empty or blank: {operation_id!r}", operation_id)
    if operation_id != operation_id.strip():
        raise InvalidOperationId(
            f"operation id {operation_id!r} has leading or trailing whitespace; strip it first", operation_id
        )
    if operation_id in (".", ".."):
        # Percent-encoding leaves dots alone and URL normalisation would climb out of /v1/operations/.
        raise InvalidOperationId(f"operation id {operation_id!r} is a relative path, not an id", operation_id)
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
    for known in ("Connection aborted", "RemoteDisconnected", "Connection reset", "IncompleteRead"):
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
