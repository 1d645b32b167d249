"""Pure dict work on operation records, no pandas: redaction and flattening.

A *record* is one ``OperationResponse`` as a plain ``dict`` (decoded JSON).
These functions never touch the network and never mutate their input.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence, Set
from typing import Any

from .spec import OBJECT_LIST_FIELDS, REDACTED, is_secret_key

__all__ = ["redact", "flatten", "dataset_rows", "SEP"]

#: Separator between the parts of a flattened field path.
SEP = "."


def redact(value: Any) -> Any:
    """Return a deep copy of ``value`` with every write-only secret replaced by ``"***"``.

    A secret is the value of any key that :func:`nb_ops.spec.is_secret_key`
    names (``token``, ``api_key``, ``api_token``, ``password`` …), at any
    depth. ``None`` stays ``None``: knowing that no secret was set reveals
    nothing. The copy is plain JSON-like data: mappings become dicts, other
    collections (tuples, sets …) lists, so nothing in it is shared with
    ``value`` or can change later.

    Parameters
    ----------
    value : Any
        Decoded JSON: dicts, lists and scalars.

    Returns
    -------
    Any
        A new structure of plain dicts and lists; scalars are shared.

    Raises
    ------
    RecursionError
        If ``value`` is nested deeper than the interpreter's recursion limit.

    Examples
    --------
    >>> redact({"params": {"from_checkpoint": {"repo": "a/b", "token": "hf_x"}}})
    {'params': {'from_checkpoint': {'repo': 'a/b', 'token': '***'}}}
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: (REDACTED if v is not None and is_secret_key(k) else redact(v)) for k, v in value.items()}
    if _is_collection(value):
        return [redact(v) for v in value]
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _is_collection(value: Any) -> bool:
    """A list, tuple, set or other sized iterable that is not text or bytes."""
    return isinstance(value, list | tuple | Set) or (
        isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)
    )


def flatten(record: Mapping[str, Any], reserved: Collection[str] = ()) -> dict[str, Any]:
    """Flatten one record to ``{dotted.path: value}``, redacting secrets on the way.

    Nested objects become dotted paths (``params.method.supervised.hyperparameters.lora``);
    lists whose items are all objects expand by position (``src.0.id``,
    ``params.integrations.1.mlflow.run_name``); any other list (``params.tags``)
    stays one value. Empty objects and empty lists are kept as values, so no
    field is ever dropped, except an empty ``src``, ``dst`` or
    ``params.integrations``: lists of objects that have no position to expand.
    Key order follows the record.

    A path that is already taken (a literal key ``"src.0.id"`` beside a
    ``src`` list) or is in ``reserved`` gets a trailing ``_``, so no value
    overwrites another. Keys that are not strings are written with ``str()``.

    Parameters
    ----------
    record : Mapping
        One decoded operation response.
    reserved : collection of str, optional
        Paths the caller uses for columns of its own.

    Returns
    -------
    dict
        A new flat dict; list values are copies.

    Raises
    ------
    RecursionError
        If ``record`` is nested deeper than the interpreter's recursion limit.

    Examples
    --------
    >>> flatten({"id": "a", "src": [{"id": "d", "version": None}], "params": {"tags": ["x"]}})
    {'id': 'a', 'src.0.id': 'd', 'src.0.version': None, 'params.tags': ['x']}
    """
    out: dict[str, Any] = {}
    try:
        _flatten_into(out, "", record, False)
    except _OddKey:  # a dotted or non-string key somewhere: walk again, checking every path
        out = {}
        _flatten_into(out, "", record, True)
    if reserved and not out.keys().isdisjoint(reserved):
        for path in [p for p in reserved if p in out]:
            free = _free(out, path)
            out[free] = out.pop(path)
    return out


class _OddKey(Exception):
    """Raised by the fast walk on a key that could make two paths collide."""


_SECRET, _ODD = 1, 2
# key -> flags (_SECRET: its value is redacted; _ODD: not a str, or holds the separator,
# so its path may collide with another). Field names are few: this stays small.
_KEY_FLAGS: dict[Any, int] = {}


def _key_flags(key: Any) -> int:
    flags = (_SECRET if is_secret_key(key) else 0) | (_ODD if type(key) is not str or SEP in key else 0)
    if len(_KEY_FLAGS) < 100_000:
        _KEY_FLAGS[key] = flags
    return flags


def _flatten_into(out: dict[str, Any], prefix: str, obj: Mapping[Any, Any], careful: bool) -> None:
    # The hot path of to_frame, tuned: one cached flags lookup per key, exact type
    # checks first (decoded JSON is dicts, lists and scalars), the ABCs only as a
    # fallback. Paths can only collide through an odd key (see _KEY_FLAGS), so
    # only a careful walk, after one was met, checks for collisions.
    flags_of = _KEY_FLAGS.get
    for key, value in obj.items():
        flags = flags_of(key)
        if flags is None:
            flags = _key_flags(key)
        if flags & _ODD:
            if not careful:
                raise _OddKey
            path = prefix + str(key)
        else:
            path = prefix + key
        if careful and path in out:
            path = _free(out, path)
        if value is None:
            out[path] = None
            continue
        if flags & _SECRET:
            out[path] = REDACTED
            continue
        kind = type(value)
        if kind is str or kind is int or kind is float or kind is bool:
            out[path] = value
        elif kind is dict or isinstance(value, Mapping):
            if value:
                _flatten_into(out, path + SEP, value, careful)
            else:
                out[path] = {}
        elif kind is list or _is_collection(value):
            if value and (set(map(type, value)) == _DICT or all(isinstance(item, Mapping) for item in value)):
                for i, item in enumerate(value):
                    if item:
                        _flatten_into(out, f"{path}{SEP}{i}{SEP}", item, careful)
                    else:
                        out[f"{path}{SEP}{i}"] = {}
            elif not value and path in OBJECT_LIST_FIELDS:
                pass  # an empty src, dst or integrations list: no positions to expand
            else:
                out[path] = redact(value)
        else:
            out[path] = redact(value)


_DICT = {dict}


def _free(out: dict[str, Any], path: str) -> str:
    while path in out:
        path += "_"
    return path


def dataset_rows(record: Mapping[str, Any], side: str) -> list[dict[str, Any]]:
    """Return one flat dict per dataset in ``record[side]`` (``"src"`` or ``"dst"``).

    Each dict starts with ``operation_id, position, role, dataset_id, version``,
    then the item's other fields flattened (``mapping.messages.name`` …). A
    dataset-to-file source nests its dataset under ``dataset``: its ``id`` and
    ``version`` still land in ``dataset_id`` and ``version``. ``role`` is the
    item's ``type`` (``train`` / ``validation``) where it has one.

    Items that are not objects are skipped; a ``side`` that is not a list gives
    no rows. Both are the caller's to report.
    """
    items = record.get(side)
    if not isinstance(items, list):
        return []
    rows = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        flat = flatten(item)
        dataset = item.get("dataset")
        if isinstance(dataset, Mapping):
            dataset_id = flat.pop("dataset.id", None)
            version = flat.pop("dataset.version", None)
        else:
            dataset_id = flat.pop("id", None)
            version = flat.pop("version", None)
        row = {
            "operation_id": record.get("id"),
            "position": position,
            "role": flat.pop("type", None),
            "dataset_id": dataset_id,
            "version": version,
        }
        for path, value in flat.items():
            row[_free(row, path)] = value  # an item's own "operation_id" must not overwrite ours
        rows.append(row)
    return rows
