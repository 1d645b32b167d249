"""Pure dict work on operation records, no pandas: redaction and flattening.

A *record* is one ``OperationResponse`` as a plain ``dict`` (decoded JSON).
These functions never touch the network and never mutate their input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .spec import OBJECT_LIST_FIELDS, REDACTED, SECRET_KEYS

__all__ = ["redact", "flatten", "dataset_rows", "SEP"]

#: Separator between the parts of a flattened field path.
SEP = "."


def redact(value: Any) -> Any:
    """Return a deep copy of ``value`` with every write-only secret replaced by ``"***"``.

    A secret is the value of any key named in :data:`nb_ops.spec.SECRET_KEYS`
    (``token``, ``api_key``, ``api_token``, ``password`` …), at any depth.
    ``None`` stays ``None``: knowing that no secret was set reveals nothing.

    Parameters
    ----------
    value : Any
        Decoded JSON: dicts, lists and scalars.

    Returns
    -------
    Any
        A new structure of plain dicts and lists; scalars are shared.

    Examples
    --------
    >>> redact({"params": {"from_checkpoint": {"repo": "a/b", "token": "hf_x"}}})
    {'params': {'from_checkpoint': {'repo': 'a/b', 'token': '***'}}}
    """
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if k in SECRET_KEYS and v is not None else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten one record to ``{dotted.path: value}``, redacting secrets on the way.

    Nested objects become dotted paths (``params.method.supervised.hyperparameters.lora``);
    lists whose items are all objects expand by position (``src.0.id``,
    ``params.integrations.1.mlflow.run_name``); any other list (``params.tags``)
    stays one value. Empty objects and empty lists are kept as values, so no
    field is ever dropped, except an empty ``src``, ``dst`` or
    ``params.integrations``: lists of objects that have no position to expand.
    Key order follows the record.

    Parameters
    ----------
    record : Mapping
        One decoded operation response.

    Returns
    -------
    dict
        A new flat dict; list values are copies.

    Examples
    --------
    >>> flatten({"id": "a", "src": [{"id": "d", "version": None}], "params": {"tags": ["x"]}})
    {'id': 'a', 'src.0.id': 'd', 'src.0.version': None, 'params.tags': ['x']}
    """
    out: dict[str, Any] = {}
    _flatten_into(out, "", record)
    return out


def _flatten_into(out: dict[str, Any], prefix: str, obj: Mapping[str, Any]) -> None:
    # The hot path of to_frame: exact type checks first (decoded JSON is dicts and
    # lists), the Mapping ABC only as a fallback.
    for key, value in obj.items():
        path = prefix + key
        kind = type(value)
        if kind is str or kind is int or kind is float or kind is bool or value is None:
            out[path] = REDACTED if value is not None and key in SECRET_KEYS else value
        elif key in SECRET_KEYS:
            out[path] = REDACTED
        elif kind is dict or isinstance(value, Mapping):
            if value:
                _flatten_into(out, path + SEP, value)
            else:
                out[path] = {}
        elif kind is list:
            if value and all(type(item) is dict or isinstance(item, Mapping) for item in value):
                for i, item in enumerate(value):
                    if item:
                        _flatten_into(out, f"{path}{SEP}{i}{SEP}", item)
                    else:
                        out[f"{path}{SEP}{i}"] = {}
            elif not value and path in OBJECT_LIST_FIELDS:
                pass  # an empty src, dst or integrations list: no positions to expand
            else:
                out[path] = redact(value)
        else:
            out[path] = value


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
        row.update(flat)
        rows.append(row)
    return rows
