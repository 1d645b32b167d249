"""Typed pandas DataFrames from operations: :func:`to_frame`, :func:`sources_frame`, :func:`destinations_frame`.

Records are flattened in plain Python (:mod:`nb_ops.records`), gathered column
by column (only the cells a record has), and each column is converted once to
its dtype: categoricals for ``type``/``status``, ``datetime64[ns, UTC]`` for
timestamps, nullable ``Int64``/``boolean`` for integers and flags, ``float64``
for numbers, pandas' string dtype for text. A value that cannot be used as its
field's type becomes a missing cell and one :class:`~nb_ops.DataWarning`; the
rest of the frame is untouched.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataWarning
from .records import dataset_rows, flatten
from .spec import STATUSES, TERMINAL_STATUSES, TYPES, FieldKind, field_kind

__all__ = [
    "to_frame",
    "sources_frame",
    "destinations_frame",
    "LEADING_COLUMNS",
    "DATASET_COLUMNS",
]

#: The first columns of :func:`to_frame`, always present, in this order.
LEADING_COLUMNS = (
    "id",
    "type",
    "status",
    "created_at",
    "in_progress_at",
    "finished_at",
    "queue_duration",
    "run_duration",
    "total_duration",
    "progress",
    "is_terminal",
    "ai_project_id",
)
#: The first columns of :func:`sources_frame` and :func:`destinations_frame`.
DATASET_COLUMNS = ("operation_id", "position", "role", "dataset_id", "version")

_DERIVED = ("queue_duration", "run_duration", "total_duration", "progress", "is_terminal")
_CATEGORIES: dict[str, tuple[str, ...]] = {"type": TYPES, "status": STATUSES}
# Bounds of datetime64[ns], in whole seconds.
_MIN_S = math.ceil(pd.Timestamp.min.value / 1e9)
_MAX_S = math.floor(pd.Timestamp.max.value / 1e9)
_NS = 1_000_000_000
_NAT = np.iinfo(np.int64).min
_INT64 = (np.iinfo(np.int64).min + 1, np.iinfo(np.int64).max)
_STR_DTYPE: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
_EXPECTED = {
    "unix": "unix seconds",
    "iso": "an ISO 8601 date-time",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "str": "a string",
    "category": "a string",
}

Records = Iterable[Mapping[str, Any]]


class _Column:
    """The cells one field has: row positions and values, in row order."""

    __slots__ = ("rows", "values")

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.values: list[Any] = []


class _Problems:
    """Bad cells met while converting, reported as one warning each at the end."""

    def __init__(self, ids: list[Any]) -> None:
        self.ids = ids
        self.items: list[tuple[int, str, Any, str, str | None]] = []

    def add(self, row: int, path: str, value: Any, expected: str, who: str | None = None) -> None:
        """Note a bad cell; ``row`` names the operation through ``ids`` unless ``who`` is given."""
        self.items.append((row, path, value, expected, who))

    def warn(self, stacklevel: int) -> None:
        for row, path, value, expected, who in self.items:
            shown = repr(value)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            if who is None:
                op = self.ids[row] if row < len(self.ids) else None
                who = f"operation {op!r}" if isinstance(op, str) else f"record {row}"
            warnings.warn(
                f"{who}: field {path!r} is {shown}, not {expected}; left missing",
                DataWarning,
                stacklevel=stacklevel + 1,
            )


def to_frame(records: Records) -> pd.DataFrame:
    """Flatten operations into one typed DataFrame, one row per operation, in input order.

    Parameters
    ----------
    records : iterable of Operation or Mapping
        Operations as returned by :meth:`Client.get_operation`, or plain
        decoded ``OperationResponse`` dicts.

    Returns
    -------
    pandas.DataFrame
        Default RangeIndex. Columns start with :data:`LEADING_COLUMNS`:
        ``id, type, status, created_at, in_progress_at, finished_at,
        queue_duration, run_duration, total_duration, progress, is_terminal,
        ai_project_id``; then every other field flattened with ``.``
        (``params.*``, then ``src.*`` and ``dst.*`` by position, then fields
        the spec does not know). Lists of objects expand by position
        (``src.0.id``); lists of scalars (``params.tags``) stay one cell.

        ``type`` and ``status`` are categorical (the spec's values plus any
        unseen value); timestamps (``created_at``, ``in_progress_at``,
        ``finished_at``, ``params.estimated_finish``,
        ``params.start_datetime``, ``params.end_datetime``) are
        ``datetime64[ns, UTC]``; integers are ``Int64``; durations are
        ``timedelta64[ns]`` (NaT where an end is missing); ``progress`` is
        ``trained_steps / total_steps``, 1.0 for a succeeded operation
        without step counts, else NaN. Write-only secrets read ``"***"``.

    Warns
    -----
    DataWarning
        Once per value that cannot be used as its field's type (an
        unparsable or out-of-range timestamp, a string where a number
        belongs); that cell is missing, nothing else is lost. Also once per
        record that is not a mapping (its row is all missing).

    Examples
    --------
    >>> df = to_frame([{"id": "op1", "type": "yql", "status": "succeeded",
    ...                 "created_at": 1700000000, "in_progress_at": 1700000060,
    ...                 "finished_at": 1700000300, "params": {"query": "SELECT 1"},
    ...                 "src": [], "dst": []}])
    >>> df.loc[0, "run_duration"]
    Timedelta('0 days 00:04:00')
    """
    columns: dict[str, _Column] = {}
    ids: list[Any] = []
    problems = _Problems(ids)
    for row, record in enumerate(_iter_records(records, problems)):
        flat = flatten(record) if record is not None else {}
        ids.append(flat.get("id"))
        for path, value in flat.items():
            col = columns.get(path)
            if col is None:
                col = columns[path] = _Column()
            col.rows.append(row)
            col.values.append(value)
    n = len(ids)

    lead = {
        path: _convert(path, columns.pop(path, None), n, field_kind(path), problems)
        for path in LEADING_COLUMNS
        if path not in _DERIVED
    }
    # Converting pops each gathered column, so only one column's raw cells and its typed copy coexist.
    rest = {path: _convert(path, columns.pop(path), n, field_kind(path), problems) for path in _order(columns)}

    status = lead["status"]
    lead["queue_duration"] = lead["in_progress_at"] - lead["created_at"]
    lead["run_duration"] = lead["finished_at"] - lead["in_progress_at"]
    lead["total_duration"] = lead["finished_at"] - lead["created_at"]
    lead["progress"] = _progress(rest.get("params.trained_steps"), rest.get("params.total_steps"), status, n)
    lead["is_terminal"] = status.isin(TERMINAL_STATUSES).astype(bool)
    data = {path: lead[path] for path in LEADING_COLUMNS}
    data.update(rest)
    frame = pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)
    problems.warn(stacklevel=2)
    return frame


def sources_frame(records: Records) -> pd.DataFrame:
    """One row per (operation, source dataset): a tidy long table of every ``src`` entry.

    Parameters
    ----------
    records : iterable of Operation or Mapping
        Operations or plain decoded responses.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DATASET_COLUMNS` (``operation_id, position, role,
        dataset_id, version``) then the flattened ``mapping.*`` and any other
        fields of the entries. ``role`` is ``train`` / ``validation`` for
        fine-tuning sources, else missing. A dataset-to-file source's nested
        ``dataset.id`` / ``dataset.version`` land in ``dataset_id`` /
        ``version``.

    Examples
    --------
    >>> sources_frame([{"id": "op1", "src": [{"id": "ds1", "version": "v1", "type": "train",
    ...                 "mapping": {"type": "text", "text": {"type": "column", "name": "t"}}}]}]
    ...               )[["operation_id", "role", "dataset_id", "mapping.text.name"]].values.tolist()
    [['op1', 'train', 'ds1', 't']]
    """
    frame, problems = _datasets_frame(records, "src")
    problems.warn(stacklevel=2)
    return frame


def destinations_frame(records: Records) -> pd.DataFrame:
    """One row per (operation, destination dataset): a tidy long table of every ``dst`` entry.

    Same columns as :func:`sources_frame`; ``role`` is always missing (the
    spec gives destinations no type), which keeps the two tables stackable
    with :func:`pandas.concat`.

    Examples
    --------
    >>> destinations_frame([{"id": "op1", "dst": [{"id": "ds9", "version": None}]}]
    ...                    )[["operation_id", "position", "dataset_id"]].values.tolist()
    [['op1', 0, 'ds9']]
    """
    frame, problems = _datasets_frame(records, "dst")
    problems.warn(stacklevel=2)
    return frame


def _datasets_frame(records: Records, side: str) -> tuple[pd.DataFrame, _Problems]:
    columns: dict[str, _Column] = {}
    ids: list[Any] = []
    problems = _Problems(ids)
    n = 0
    for i, record in enumerate(_iter_records(records, problems)):
        if record is None:
            continue
        items = record.get(side)
        who = f"operation {record.get('id')!r}"
        if items is not None and not isinstance(items, list):
            problems.add(i, side, items, "a list of datasets", who=who)
            continue
        for position, item in enumerate(items or ()):
            if not isinstance(item, Mapping):
                problems.add(i, f"{side}.{position}", item, "a dataset (a mapping)", who=who)
        for row in dataset_rows(record, side):
            ids.append(row["operation_id"])
            for path, value in row.items():
                col = columns.get(path)
                if col is None:
                    col = columns[path] = _Column()
                col.rows.append(n)
                col.values.append(value)
            n += 1
    data: dict[str, Any] = {}
    for path in DATASET_COLUMNS:
        data[path] = _convert(path, columns.pop(path, None), n, _dataset_kind(side, path), problems)
    for path in columns:
        data[path] = _convert(path, columns[path], n, _dataset_kind(side, path), problems)
    return pd.DataFrame(data, index=pd.RangeIndex(n), copy=False), problems


def _dataset_kind(side: str, path: str) -> FieldKind | None:
    if path == "operation_id":
        return "str"
    if path == "position":
        return "int"
    if path == "dataset_id":
        return "str"
    if path == "role":
        return "str"
    return field_kind(f"{side}.0.{path}")


def _iter_records(records: Records, problems: _Problems) -> Iterable[Mapping[str, Any] | None]:
    if isinstance(records, Mapping | str | bytes):
        raise TypeError(
            "expected an iterable of operations (Operation objects or dicts), "
            f"got a single {type(records).__name__}; wrap it in a list"
        )
    for i, record in enumerate(records):
        data = getattr(record, "_data", record)  # an Operation exposes its redacted dict
        if isinstance(data, Mapping):
            yield data
        else:
            problems.add(i, "<record>", record, "an operation (a mapping)", who=f"record {i}")
            yield None


def _order(columns: Mapping[str, _Column]) -> list[str]:
    """Order the non-leading columns: params, src, dst, then others; lists by position."""
    groups = {"params": 0, "src": 1, "dst": 2}

    def key(item: tuple[int, str]) -> tuple[int, int, int]:
        seen, path = item
        head, _, rest = path.partition(".")
        group = groups.get(head, 3)
        position = 0
        if group in (1, 2):
            pos = rest.partition(".")[0]
            position = int(pos) if pos.isdigit() else -1
        return group, position, seen

    return [path for _, path in sorted(enumerate(columns), key=key)]


def _convert(
    path: str, col: _Column | None, n: int, kind: FieldKind | None, problems: _Problems
) -> pd.Series:
    rows = col.rows if col is not None else []
    values = col.values if col is not None else []
    if kind is None:
        kind = _infer(values)
    converter = _CONVERTERS[kind]
    return converter(path, rows, values, n, problems)


def _infer(values: list[Any]) -> FieldKind | None:
    """Kind of a field the spec does not type, from its values; None keeps them as objects."""
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            return "object"  # type: ignore[return-value]
        if len(kinds) > 1 and not kinds <= {"int", "float"}:
            return "object"  # type: ignore[return-value]
    if not kinds:
        return "object"  # type: ignore[return-value]
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop()  # type: ignore[return-value]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _to_unix(path: str, rows: list[int], values: list[Any], n: int, problems: _Problems) -> pd.Series:
    ns = np.full(n, _NAT, dtype=np.int64)
    for row, v in zip(rows, values):
        if v is None:
            continue
        if _is_number(v) and _MIN_S <= v <= _MAX_S:  # NaN and inf fail the comparison
            ns[row] = v * _NS if isinstance(v, int) else round(v * 1e9)
        else:
            problems.add(row, path, v, _EXPECTED["unix"] + " in range")
    return pd.Series(ns.view("M8[ns]"), copy=False).dt.tz_localize("UTC")


def _to_iso(path: str, rows: list[int], values: list[Any], n: int, problems: _Problems) -> pd.Series:
    text = np.full(n, None, dtype=object)
    good_rows = []
    for row, v in zip(rows, values):
        if v is None:
            continue
        if isinstance(v, str):
            text[row] = v
            good_rows.append(row)
        else:
            problems.add(row, path, v, _EXPECTED["iso"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas may warn on out-of-bounds values that coerce to NaT
        parsed = pd.to_datetime(pd.Series(text, dtype=object), utc=True, format="ISO8601", errors="coerce")
    parsed = parsed.dt.as_unit("ns") if hasattr(parsed.dt, "as_unit") else parsed
    for row in good_rows:
        if parsed.iat[row] is pd.NaT:
            problems.add(row, path, text[row], _EXPECTED["iso"] + " in range")
    return parsed


def _to_int(path: str, rows: list[int], values: list[Any], n: int, problems: _Problems) -> pd.Series:
    data = np.zeros(n, dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    for row, v in zip(rows, values):
        if v is None:
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, int) and not isinstance(v, bool) and _INT64[0] <= v <= _INT64[1]:
            data[row] = v
            mask[row] = False
        else:
            problems.add(row, path, v, _EXPECTED["int"])
    return pd.Series(pd.arrays.IntegerArray(data, mask), copy=False)


def _to_float(path: str, rows: list[int], values: list[Any], n: int, problems: _Problems) -> pd.Series:
    data = np.full(n, np.nan)
    for row, v in zip(rows, values):
        if v is None:
            continue
        if _is_number(v):
            data[row] = v
        else:
            problems.add(row, path, v, _EXPECTED["float"])
    return pd.Series(data, copy=False)


def _to_bool(path: str, rows: list[int], values: list[Any], n: int, problems: _Problems) -> pd.Series:
    data = np.zeros(n, dtype=bool)
    mask = np.ones(n, dtype=bool)
    for row, v in zip(rows, values):
        if v is None:
            continue
        if isinstance(v, bool):
            data[row] = v
            mask[row] = False
        else:
            problems.add(row, path, v, _EXPECTED["bool"])
    return pd.Series(pd.arrays.BooleanArray(data, mask), copy=False)


def _to_str(path: str, rows: list[int], values: list[Any], n: int, problems: _Problems) -> pd.Series:
    data = np.full(n, None, dtype=object)
    for row, v in zip(rows, values):
        if v is None:
            continue
        if isinstance(v, str):
            data[row] = v
        else:
            problems.add(row, path, v, _EXPECTED["str"])
    return pd.Series(data, dtype=_STR_DTYPE)


def _to_category(path: str, rows: list[int], values: list[Any], n: int, problems: _Problems) -> pd.Series:
    known = _CATEGORIES.get(path, ())
    data = np.full(n, None, dtype=object)
    extra: dict[str, None] = {}
    for row, v in zip(rows, values):
        if v is None:
            continue
        if isinstance(v, str):
            data[row] = v
            if v not in known:
                extra[v] = None
        else:
            problems.add(row, path, v, _EXPECTED["category"])
    dtype = pd.CategoricalDtype([*known, *extra])
    return pd.Series(pd.Categorical(data, dtype=dtype), copy=False)


def _to_object(path: str, rows: list[int], values: list[Any], n: int, problems: _Problems) -> pd.Series:
    data = np.full(n, None, dtype=object)
    for row, v in zip(rows, values):
        data[row] = v
    return pd.Series(data, dtype=object, copy=False)


_CONVERTERS = {
    "unix": _to_unix,
    "iso": _to_iso,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
    "category": _to_category,
    "object": _to_object,
}


def _progress(trained: pd.Series | None, total: pd.Series | None, status: pd.Series, n: int) -> pd.Series:
    progress = np.full(n, np.nan)
    if trained is not None and total is not None:
        ok = (trained.notna() & total.notna() & (total > 0)).to_numpy(dtype=bool)
        progress[ok] = trained.to_numpy(dtype=float, na_value=np.nan)[ok] / total.to_numpy(
            dtype=float, na_value=np.nan
        )[ok]
    succeeded = (status == "succeeded").to_numpy(dtype=bool)
    progress[succeeded & np.isnan(progress)] = 1.0
    return pd.Series(progress, copy=False)
