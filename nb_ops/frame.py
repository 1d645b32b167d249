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
import numbers
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import DataWarning
from .records import SEP, dataset_rows, flatten, redact
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
# pandas 3's default string dtype ("str", missing = NaN), stored as the Python
# strings the records already hold: no copy, and twice as fast to build as Arrow
# storage. pandas 2 keeps strings as objects.
_STR_DTYPE: Any = (
    pd.StringDtype("python", na_value=np.nan) if int(pd.__version__.split(".")[0]) >= 3 else object
)
_EXPECTED = {
    "unix": "unix seconds in range",
    "iso": "an ISO 8601 date-time in range",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "str": "a string",
    "category": "a string",
}

Records = Iterable[Mapping[str, Any]]


class _Gatherer:
    """Collects flat records into columns: for each field, the rows that have it and their values.

    Records with the same fields in the same order (most records of one type)
    form a group; each group is transposed at C speed with ``zip(*...)``
    rather than cell by cell. Column order is the order fields are first seen.
    """

    def __init__(self) -> None:
        self.n = 0
        self._groups: dict[tuple[str, ...], tuple[list[int], list[tuple[Any, ...]]]] = {}

    def add(self, flat: dict[str, Any]) -> None:
        key = tuple(flat)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = ([], [])
        group[0].append(self.n)
        group[1].append(tuple(flat.values()))
        self.n += 1

    def columns(self) -> dict[str, tuple[list[int], list[Any]]]:
        """``{path: (rows, values)}``; consumes the gathered groups."""
        columns: dict[str, tuple[list[int], list[Any]]] = {}
        while self._groups:
            paths, (rows, records) = _pop_first(self._groups)  # frees each group once spread
            for path, values in zip(paths, zip(*records)):
                col = columns.get(path)
                if col is None:
                    columns[path] = (list(rows), list(values))
                else:
                    col[0].extend(rows)
                    col[1].extend(values)
        # A field that is null in some records and an object in others (``params.method``,
        # ``src.0.mapping``) lives on in its children's columns; an all-null parent column
        # beside them says nothing more.
        parents = {path[:i] for path in columns for i, ch in enumerate(path) if ch == SEP}
        for path in parents & columns.keys():
            if all(v is None for v in columns[path][1]):
                del columns[path]
        return columns


def _pop_first(groups: dict[Any, Any]) -> tuple[Any, Any]:
    key = next(iter(groups))
    return key, groups.pop(key)


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
            shown = value if isinstance(value, _Text) else repr(redact(value))  # a bad value may hold a secret
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
    gatherer = _Gatherer()
    ids: list[Any] = []
    problems = _Problems(ids)
    for row, record in enumerate(_iter_records(records, problems)):
        flat = _flatten_or_report(row, record, problems)
        ids.append(flat.get("id"))
        gatherer.add(flat)
    n = gatherer.n
    columns = gatherer.columns()
    _report_objects_in_typed_fields(columns, problems)

    lead = {
        path: _convert(path, columns.pop(path, None), n, field_kind(path), problems)
        for path in LEADING_COLUMNS
        if path not in _DERIVED
    }
    # Converting pops each gathered column, so only one column's raw cells and its typed copy coexist.
    rest = {path: _convert(path, columns.pop(path), n, field_kind(path), problems) for path in _order(columns)}

    status = lead["status"]
    lead["queue_duration"] = _duration("queue_duration", lead["in_progress_at"], lead["created_at"], problems)
    lead["run_duration"] = _duration("run_duration", lead["finished_at"], lead["in_progress_at"], problems)
    lead["total_duration"] = _duration("total_duration", lead["finished_at"], lead["created_at"], problems)
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
    gatherer = _Gatherer()
    ids: list[Any] = []
    problems = _Problems(ids)
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
        try:
            rows = dataset_rows(record, side)
        except RecursionError:
            problems.add(i, side, _Text("nested too deeply"), "a list of datasets", who=who)
            continue
        for row in rows:
            ids.append(row["operation_id"])
            gatherer.add(row)
    n = gatherer.n
    columns = gatherer.columns()
    data: dict[str, Any] = {}
    for path in DATASET_COLUMNS:
        data[path] = _convert(path, columns.pop(path, None), n, _dataset_kind(side, path), problems)
    for path in list(columns):
        data[path] = _convert(path, columns.pop(path), n, _dataset_kind(side, path), problems)
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


def _flatten_or_report(row: int, record: Mapping[str, Any] | None, problems: _Problems) -> dict[str, Any]:
    if record is None:
        return {}
    try:
        return flatten(record, reserved=_DERIVED)
    except RecursionError:
        problems.add(row, "<record>", _Text("nested too deeply"), "an operation", who=f"record {row}")
        return {}


class _Text(str):
    """A description to show in a warning as it is, instead of a value's repr."""


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


def _order(columns: Mapping[str, Any]) -> list[str]:
    """Order the non-leading columns: params, src, dst, then others; lists by position."""
    groups = {"params": 0, "src": 1, "dst": 2}

    def key(item: tuple[int, str]) -> tuple[int, int, int]:
        seen, path = item
        head, _, rest = path.partition(".")
        group = groups.get(head, 3)
        position = 0
        if group in (1, 2):
            pos = rest.partition(".")[0]
            position = int(pos) if pos.isascii() and pos.isdigit() else -1
        return group, position, seen

    return [path for _, path in sorted(enumerate(columns), key=key)]


def _convert(
    path: str, col: tuple[list[int], list[Any]] | None, n: int, kind: FieldKind | None, problems: _Problems
) -> pd.Series:
    """Turn one gathered column into a typed Series of length ``n``.

    Values of the expected Python type take a vectorised path; a column holding
    anything else goes through :data:`_CHECKS` value by value, and each value
    that fails becomes a missing cell and one problem.
    """
    rows_list, values_list = col if col is not None else ([], [])
    types = set(map(type, values_list))
    rows = np.asarray(rows_list, dtype=np.intp)
    values = np.fromiter(values_list, dtype=object, count=len(values_list))
    if _NoneType in types:  # missing cells are missing already: drop them
        types.discard(_NoneType)
        present = np.not_equal(values, None)
        rows, values = rows[present], values[present]
    if kind is None:
        kind = _infer(types)
    if kind == "unix" and types <= {int}:
        rows, values = _seconds_to_ns(path, rows, values, problems)
    elif kind != "object" and not types <= _FAST[kind]:
        rows, values = _checked(path, kind, rows, values, problems)
    return _BUILD[kind](path, rows, values, n, problems)


def _infer(types: set[type]) -> FieldKind | Literal["object"]:
    """Kind of a field the spec does not type, from the Python types of its values."""
    if types == {bool}:
        return "bool"
    if types == {int}:
        return "int"
    if types and types <= {int, float}:
        return "float"
    if types == {str}:
        return "str"
    return "object"


def _checked(
    path: str, kind: str, rows: np.ndarray, values: np.ndarray, problems: _Problems
) -> tuple[np.ndarray, np.ndarray]:
    """The slow path: coerce value by value, report and drop the ones that do not fit."""
    check = _CHECKS[kind]
    keep_rows, keep_values = [], []
    for row, value in zip(rows.tolist(), values):
        converted = check(value)
        if converted is _BAD:
            problems.add(row, path, value, _EXPECTED[kind])
        else:
            keep_rows.append(row)
            keep_values.append(converted)
    return np.asarray(keep_rows, dtype=np.intp), np.fromiter(keep_values, dtype=object, count=len(keep_values))


_BAD = object()


def _check_int(v: Any) -> Any:
    if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral):
        v = int(v) if math.isfinite(v) and float(v).is_integer() else _BAD
    if isinstance(v, numbers.Integral) and not isinstance(v, bool) and _INT64[0] <= v <= _INT64[1]:
        return int(v)
    return _BAD


def _check_float(v: Any) -> Any:
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:  # an int beyond float's range
            return _BAD
    return _BAD


def _check_unix(v: Any) -> Any:
    # Returns nanoseconds; NaN and inf fail the range comparison.
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and _MIN_S <= v <= _MAX_S:
        return int(v) * _NS if isinstance(v, numbers.Integral) else round(float(v) * 1e9)
    return _BAD


def _check_iso(v: Any) -> Any:
    # pandas would also read "now" and "today"; a date-time starts with its year.
    return v if isinstance(v, str) and _ISO_START.match(v) else _BAD


_ISO_START = re.compile(r"\s*[+-]?\d{4}")


_CHECKS: dict[str, Any] = {
    "unix": _check_unix,
    "iso": _check_iso,
    "int": _check_int,
    "float": _check_float,
    "bool": lambda v: v if isinstance(v, bool) else _BAD,
    "str": lambda v: v if isinstance(v, str) else _BAD,
    "category": lambda v: v if isinstance(v, str) else _BAD,
    "object": lambda v: v,
}
# Python types each kind takes without a per-value check. Unix times take a
# vectorised path of their own when all are ints (see _seconds_to_ns); the slow
# path turns each into nanoseconds.
_FAST: dict[str, set[type]] = {
    "unix": set(),
    "iso": set(),  # always checked: see _check_iso
    "int": {int},
    "float": {int, float},
    "bool": {bool},
    "str": {str},
    "category": {str},
}
_NoneType = type(None)


def _seconds_to_ns(
    path: str, rows: np.ndarray, values: np.ndarray, problems: _Problems
) -> tuple[np.ndarray, np.ndarray]:
    """Whole unix seconds (Python ints) to int64 nanoseconds, reporting those out of range."""
    try:
        seconds = values.astype(np.int64)
    except OverflowError:
        return _checked(path, "unix", rows, values, problems)
    ok = (seconds >= _MIN_S) & (seconds <= _MAX_S)
    if not ok.all():
        for row, value in zip(rows[~ok].tolist(), values[~ok]):
            problems.add(row, path, value, _EXPECTED["unix"])
    return rows[ok], seconds[ok] * _NS


def _build_unix(path: str, rows: np.ndarray, values: np.ndarray, n: int, problems: _Problems) -> pd.Series:
    ns = np.full(n, _NAT, dtype=np.int64)
    ns[rows] = values.astype(np.int64)
    return pd.Series(ns.view("M8[ns]"), copy=False).dt.tz_localize("UTC")


def _build_iso(path: str, rows: np.ndarray, values: np.ndarray, n: int, problems: _Problems) -> pd.Series:
    text = np.full(n, None, dtype=object)
    text[rows] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas may warn on values it coerces to NaT
        parsed = pd.to_datetime(pd.Series(text, dtype=object), utc=True, format="ISO8601", errors="coerce")
    # pandas 3 parses at the resolution the text needs, so a year like 9999 parses;
    # datetime64[ns] ends in 2262: such values are out of range here.
    in_range = parsed.isna() | ((parsed >= _MIN_TS) & (parsed <= _MAX_TS))
    parsed = parsed.where(in_range).dt.as_unit("ns")
    failed = rows[parsed.isna().to_numpy()[rows]]
    for row in failed.tolist():
        problems.add(row, path, text[row], _EXPECTED["iso"])
    return parsed


_MIN_TS = pd.Timestamp.min.tz_localize("UTC")
_MAX_TS = pd.Timestamp.max.tz_localize("UTC")


def _duration(name: str, end: pd.Series, start: pd.Series, problems: _Problems) -> pd.Series:
    """``end - start`` as timedelta64[ns]; NaT where either is missing or the span overflows (> 292 years)."""
    e, b = end.to_numpy(dtype="M8[ns]").view(np.int64), start.to_numpy(dtype="M8[ns]").view(np.int64)
    known = (e != _NAT) & (b != _NAT)
    with np.errstate(over="ignore"):
        diff = e - b
    # Subtraction overflowed where the float estimate leaves int64's range.
    overflow = known & (np.abs(e.astype(np.float64) - b.astype(np.float64)) >= 2.0**63 - 1024)
    for row in np.flatnonzero(overflow).tolist():
        problems.add(row, name, _Text(f"{start.iat[row]} to {end.iat[row]}"), "a span within 292 years")
    diff[~known | overflow] = _NAT
    return pd.Series(diff.view("m8[ns]"), copy=False)


def _report_objects_in_typed_fields(columns: Mapping[str, tuple[list[int], list[Any]]], problems: _Problems) -> None:
    """An object where the spec has a scalar (``"status": {...}``) flattens to child columns,
    which are kept; the operation still gets a warning for the field it lacks."""
    seen: set[tuple[int, str]] = set()
    for path, (rows, _) in columns.items():
        head = path
        while SEP in head:
            head = head.rsplit(SEP, 1)[0]
            if field_kind(head) is not None:
                for row in rows:
                    if (row, head) not in seen:
                        seen.add((row, head))
                        problems.add(row, head, _Text("an object or list"), _EXPECTED[field_kind(head)])  # type: ignore[index]
                break


def _build_int(path: str, rows: np.ndarray, values: np.ndarray, n: int, problems: _Problems) -> pd.Series:
    try:
        ints = values.astype(np.int64)
    except OverflowError:  # a Python int beyond int64
        rows, values = _checked(path, "int", rows, values, problems)
        ints = values.astype(np.int64)
    data = np.zeros(n, dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    data[rows] = ints
    mask[rows] = False
    return pd.Series(pd.arrays.IntegerArray(data, mask), copy=False)


def _build_float(path: str, rows: np.ndarray, values: np.ndarray, n: int, problems: _Problems) -> pd.Series:
    data = np.full(n, np.nan)
    try:
        data[rows] = values.astype(np.float64)
    except OverflowError:  # an int too large for a float
        rows, values = _checked(path, "float", rows, values, problems)
        data[rows] = values.astype(np.float64)
    return pd.Series(data, copy=False)


def _build_bool(path: str, rows: np.ndarray, values: np.ndarray, n: int, problems: _Problems) -> pd.Series:
    data = np.zeros(n, dtype=bool)
    mask = np.ones(n, dtype=bool)
    data[rows] = values.astype(bool)
    mask[rows] = False
    return pd.Series(pd.arrays.BooleanArray(data, mask), copy=False)


def _build_str(path: str, rows: np.ndarray, values: np.ndarray, n: int, problems: _Problems) -> pd.Series:
    if _STR_DTYPE is object:
        data = np.full(n, None, dtype=object)
        data[rows] = values
        return pd.Series(data, dtype=object, copy=False)
    # Every value is a str by now: build the array directly (it still checks), 3x faster than pd.array.
    data = np.full(n, np.nan, dtype=object)
    data[rows] = values
    return pd.Series(pd.arrays.StringArray(data, dtype=_STR_DTYPE), copy=False)


def _build_category(path: str, rows: np.ndarray, values: np.ndarray, n: int, problems: _Problems) -> pd.Series:
    known = _CATEGORIES.get(path, ())
    unseen = [v for v in dict.fromkeys(values.tolist()) if v not in known]
    codes = np.full(n, -1, dtype=np.int64)
    categories = [*known, *unseen]
    lookup = {c: i for i, c in enumerate(categories)}
    codes[rows] = [lookup[v] for v in values.tolist()]
    return pd.Series(pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories)), copy=False)


def _build_object(path: str, rows: np.ndarray, values: np.ndarray, n: int, problems: _Problems) -> pd.Series:
    data = np.full(n, None, dtype=object)
    data[rows] = values
    return pd.Series(data, dtype=object, copy=False)


_BUILD = {
    "unix": _build_unix,
    "iso": _build_iso,
    "int": _build_int,
    "float": _build_float,
    "bool": _build_bool,
    "str": _build_str,
    "category": _build_category,
    "object": _build_object,
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
