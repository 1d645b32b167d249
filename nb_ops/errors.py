"""Errors raised by nb_ops: one base class, :class:`NbOpsError`, and a subclass per failure.

Messages say what happened and what to do. None of them ever holds the API
key, a token, or a whole response body (only a short excerpt).
"""

from __future__ import annotations

from typing import Any

__all__ = [
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

_EXCERPT = 200


class NbOpsError(Exception):
    """Base class of every error nb_ops raises."""


class ConfigError(NbOpsError, ValueError):
    """The client is not configured well enough to make a request (for example no API key)."""


class InvalidOperationId(NbOpsError, ValueError):
    """An operation id was refused before any request: empty, blank or not a string."""

    def __init__(self, message: str, operation_id: Any = None) -> None:
        super().__init__(message)
        self.operation_id = operation_id


class FrameError(NbOpsError, ValueError):
    """A frame handed to a chart lacks a column it needs, or a column holds the wrong kind of values."""


class APIError(NbOpsError):
    """The API answered with an error status, or with a body that is not an operation.

    Attributes
    ----------
    status_code : int or None
        HTTP status of the response.
    operation_id : str or None
        The id that was asked for.
    body_excerpt : str
        At most the first 200 characters of the response body.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        operation_id: str | None = None,
        body_excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.operation_id = operation_id
        self.body_excerpt = body_excerpt[:_EXCERPT]


class AuthenticationError(APIError):
    """401 or 403: the API key is missing, wrong or not allowed here."""


class OperationNotFound(APIError, LookupError):
    """404: no operation has this id (or it is not visible to this key)."""


class ValidationError(APIError, ValueError):
    """422: the server refused the request; ``detail`` holds its ``HTTPValidationError`` items."""

    def __init__(self, message: str, *, detail: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.detail = detail


class RateLimited(APIError):
    """429 after every retry was spent."""


class TransportError(NbOpsError, ConnectionError):
    """No usable HTTP response: connection refused or dropped, or a timeout."""

    def __init__(self, message: str, *, operation_id: str | None = None) -> None:
        super().__init__(message)
        self.operation_id = operation_id


class NbOpsWarning(UserWarning):
    """Base class of the warnings nb_ops emits."""


class DataWarning(NbOpsWarning):
    """A value in a record could not be used as its field's type and became a missing cell."""
