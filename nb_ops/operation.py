"""Operation: one ``OperationResponse``, read-only, with typed properties and a notebook status card."""

from __future__ import annotations

import copy
import html
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import DataWarning
from .records import redact
from .spec import STATUS_COLORS, STATUSES, TERMINAL_STATUSES
from .spec import UNSEEN_STATUS_COLOR as _UNSEEN_COLOR

__all__ = ["Operation", "STATUS_COLORS", "format_duration"]

# datetime's own range, in unix seconds (years 1..9999).
_MIN_S = -62135596800
_MAX_S = 253402300799


class Operation(Mapping[str, Any]):
    """One operation as the API returned it: a read-only mapping with typed properties.

    Write-only secrets in ``params`` (checkpoint tokens, integration keys and
    passwords) are replaced by ``"***"`` when the operation is built, so no
    repr, card, frame or file made from it can hold one.

    Parameters
    ----------
    data : Mapping
        One decoded ``OperationResponse`` (or another ``Operation``).

    Raises
    ------
    TypeError
        If ``data`` is not a mapping.

    Examples
    --------
    >>> op = Operation({"id": "op1", "type": "yql", "status": "succeeded",
    ...                 "created_at": 1700000000, "finished_at": 1700000090,
    ...                 "params": {"query": "SELECT 1"}, "src": [], "dst": []})
    >>> op["status"], op.is_terminal, op.total_duration
    ('succeeded', True, datetime.timedelta(seconds=90))
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        if isinstance(data, Operation):
            self._data: dict[str, Any] = data._data
        elif isinstance(data, Mapping):
            try:
                self._data = redact(data)
            except RecursionError:
                raise ValueError("Operation: the record is nested too deeply to be an operation") from None
        else:
            raise TypeError(f"Operation expects a mapping (one decoded response), got {type(data).__name__}")

    # Mapping: values are copies, so the operation cannot be changed through them.
    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return copy.deepcopy(value) if isinstance(value, dict | list) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_data" or hasattr(self, "_data"):
            raise AttributeError("Operation is read-only")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Operation is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Operation, (self._data,))

    # Identity and state
    @property
    def id(self) -> str | None:
        """Operation id."""
        return _str(self._data.get("id"))

    @property
    def type(self) -> str | None:
        """Operation type: ``yql``, ``materialize_history``, ``batch_inference``, ``finetuning``, …"""
        return _str(self._data.get("type"))

    @property
    def status(self) -> str | None:
        """Current status: ``queued``, ``running``, ``succeeded``, ``failed``, ``cancelled`` or ``unknown``."""
        return _str(self._data.get("status"))

    @property
    def is_terminal(self) -> bool:
        """True once the operation can no longer change: succeeded, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    @property
    def params(self) -> dict[str, Any]:
        """A copy of the type-specific parameters (secrets already redacted)."""
        params = self._data.get("params")
        return copy.deepcopy(params) if isinstance(params, dict) else {}

    # Times
    @property
    def created_at(self) -> datetime | None:
        """When the operation was created (UTC), or None."""
        return self._time("created_at", self._data.get("created_at"))

    @property
    def in_progress_at(self) -> datetime | None:
        """When the operation started processing (UTC), or None if it has not."""
        return self._time("in_progress_at", self._data.get("in_progress_at"))

    @property
    def finished_at(self) -> datetime | None:
        """When the operation finished (UTC), or None if it has not."""
        return self._time("finished_at", self._data.get("finished_at"))

    @property
    def estimated_finish(self) -> datetime | None:
        """The server's estimate of when a running fine-tuning job finishes (UTC), or None."""
        return self._time("params.estimated_finish", self.params.get("estimated_finish"))

    @property
    def queue_duration(self) -> timedelta | None:
        """Time from creation to start, or None if it has not started."""
        return _minus(self.in_progress_at, self.created_at)

    @property
    def run_duration(self) -> timedelta | None:
        """Time from start to finish, or None if either is missing."""
        return _minus(self.finished_at, self.in_progress_at)

    @property
    def total_duration(self) -> timedelta | None:
        """Time from creation to finish, or None if it has not finished."""
        return _minus(self.finished_at, self.created_at)

    # Progress
    @property
    def trained_steps(self) -> int | None:
        """Fine-tuning steps done so far, or None."""
        return _int(self.params.get("trained_steps"))

    @property
    def total_steps(self) -> int | None:
        """Fine-tuning steps planned, or None."""
        return _int(self.params.get("total_steps"))

    @property
    def progress(self) -> float | None:
        """``trained_steps / total_steps``; 1.0 if succeeded without step counts; else None."""
        trained, total = self.trained_steps, self.total_steps
        if trained is not None and total is not None and total > 0:
            try:
                return trained / total
            except OverflowError:  # absurd step counts: no meaningful fraction
                return None
        return 1.0 if self.status == "succeeded" else None

    def _time(self, field: str, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and _MIN_S <= value <= _MAX_S:
            try:
                return datetime.fromtimestamp(value, tz=UTC)
            except (OverflowError, OSError, ValueError):  # the platform's range can be narrower
                pass
        warnings.warn(
            f"operation {self.id!r}: field {field!r} is {redact(value)!r:.60}, not unix seconds in range; read as None",
            DataWarning,
            stacklevel=3,
        )
        return None

    # Display: never warns (a bad field shows as missing); the properties do, when asked.
    def __repr__(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            return self._repr()

    def _repr_html_(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            return self._html()

    def _repr(self) -> str:
        parts = [f"id={self.id!r}", f"type={self.type!r}", f"status={self.status!r}"]
        progress = self.progress
        if progress is not None and self.status != "succeeded":
            parts.append(f"progress={progress:.0%}")
        return f"Operation({', '.join(parts)})"

    def _html(self) -> str:
        status = self.status or "?"
        color = STATUS_COLORS.get(status, _UNSEEN_COLOR)
        esc = html.escape
        rows = [("Type", esc(self.type or "?"))]
        for label, value in (
            ("Created", self.created_at),
            ("Started", self.in_progress_at),
            ("Finished", self.finished_at),
            ("Estimated finish", self.estimated_finish),
        ):
            if value is not None:
                rows.append((label, value.strftime("%Y-%m-%d %H:%M:%S UTC")))
        for label, td in (
            ("Queued for", self.queue_duration),
            ("Ran for", self.run_duration),
            ("Total", self.total_duration),
        ):
            if td is not None:
                rows.append((label, format_duration(td)))
        rows.extend((label, esc(text)) for label, text in self._summary())
        progress = self.progress
        if progress is not None:
            steps = ""
            if self.trained_steps is not None and self.total_steps is not None:
                steps = f" ({self.trained_steps:,} / {self.total_steps:,} steps)"
            pct = max(0.0, min(progress, 1.0)) * 100
            bar = (
                f'<div style="background:#e6e6e6;border-radius:3px;width:14em;height:0.8em;display:inline-block;'
                f'vertical-align:middle"><div style="background:{color};width:{pct:.1f}%;height:100%;'
                f'border-radius:3px"></div></div>'
            )
            rows.append(("Progress", f"{bar} {progress:.0%}{steps}"))
        body = "".join(
            f'<tr><th style="text-align:left;padding:1px 12px 1px 0;font-weight:normal;color:#666">{label}</th>'
            f'<td style="text-align:left;padding:1px 0">{value}</td></tr>'
            for label, value in rows
        )
        return (
            f'<div class="nb-ops-operation" style="border:1px solid #ddd;border-left:4px solid {color};'
            f'padding:6px 10px;border-radius:4px;display:inline-block;font-size:0.9em">'
            f'<div style="margin-bottom:4px"><code>{esc(self.id or "?")}</code> '
            f'<span style="background:{color};color:white;padding:1px 7px;border-radius:8px;'
            f'font-size:0.85em">{esc(status)}</span></div>'
            f"<table>{body}</table></div>"
        )

    def _summary(self) -> list[tuple[str, str]]:
        """A few type-specific facts worth seeing at a glance."""
        p = self.params
        out = []
        for label, key in (("Model", "model_name"), ("Model", "model"), ("Dataset", "dataset_name"), ("File", "file_id")):
            if isinstance(p.get(key), str) and not any(lbl == label for lbl, _ in out):
                out.append((label, p[key]))
        if isinstance(p.get("query"), str):
            q = " ".join(p["query"].split())
            out.append(("Query", q if len(q) <= 80 else q[:77] + "..."))
        src, dst = self._data.get("src"), self._data.get("dst")
        if isinstance(src, list) and isinstance(dst, list):
            out.append(("Datasets", f"{len(src)} in, {len(dst)} out"))
        if isinstance(self._data.get("ai_project_id"), str):
            out.append(("Project", self._data["ai_project_id"]))
        return out


def format_duration(td: timedelta) -> str:
    """Format a duration for people: ``45 s``, ``12 min 05 s``, ``3 h 07 min``, ``2 d 04 h``.

    >>> format_duration(timedelta(seconds=3725))
    '1 h 02 min'
    """
    seconds = td.total_seconds()
    sign = "-" if seconds < 0 else ""
    s = int(round(abs(seconds)))
    if s < 60:
        return f"{sign}{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{sign}{m} min {s:02d} s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{sign}{h} h {m:02d} min"
    d, h = divmod(h, 24)
    return f"{sign}{d} d {h:02d} h"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _minus(end: datetime | None, start: datetime | None) -> timedelta | None:
    return end - start if end is not None and start is not None else None


