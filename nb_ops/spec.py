"""Facts of the operations API contract, in one place.

Everything here is read off ``GET /v1/operations/{operation_id}`` in the
OpenAPI document (a copy lives in ``tests/data/operations-openapi.yaml``): the
enumerations, which fields are timestamps, which are integers, floats or
booleans, and which ``params`` fields are write-only secrets. The rest of the
library asks this module instead of repeating the facts.

Field paths are dotted, as in :func:`nb_ops.to_frame` columns, with ``*``
standing for a list position (``src.*.id`` matches ``src.0.id``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, Literal

DEFAULT_BASE_URL: Final = "https://api.tokenfactory.nebius.com"
API_KEY_ENV: Final = "NEBIUS_API_KEY"
BASE_URL_ENV: Final = "NEBIUS_BASE_URL"
OPERATION_PATH: Final = "/v1/operations/{operation_id}"

#: ``OperationStatus`` enum, in the order the spec lists it.
STATUSES: Final = ("queued", "running", "succeeded", "failed", "cancelled", "unknown")
#: Statuses an operation never leaves. ``unknown`` is not one of them.
TERMINAL_STATUSES: Final = frozenset({"succeeded", "failed", "cancelled"})
#: Colour of each status in cards, widgets and charts (matplotlib's tab10 hues).
STATUS_COLORS: Final = {
    "queued": "#9467bd",
    "running": "#1f77b4",
    "succeeded": "#2ca02c",
    "failed": "#d62728",
    "cancelled": "#7f7f7f",
    "unknown": "#ff7f0e",
}
#: Colour of a status value the spec does not list.
UNSEEN_STATUS_COLOR: Final = "#8c564b"
assert set(STATUS_COLORS) == set(STATUSES)
#: ``OperationType`` enum, in the order the spec lists it.
TYPES: Final = (
    "yql",
    "materialize_history",
    "batch_inference",
    "finetuning",
    "file_to_dataset",
    "dataset_to_file",
)
#: Fields the spec marks as required in every ``OperationResponse``.
REQUIRED_FIELDS: Final = ("id", "type", "params", "src", "dst", "status", "created_at")

#: Fields whose value is a list of objects. Flattened, they expand by position
#: (``src.0.id``); when empty they add no column, as there is nothing to expand.
OBJECT_LIST_FIELDS: Final = frozenset({"src", "dst", "params.integrations"})

#: Replacement written where a secret was.
REDACTED: Final = "***"
#: Keys whose values are write-only secrets in the spec (``from_checkpoint.token``,
#: the integrations' ``api_key`` / ``password`` / ``api_token``), plus common
#: names of the same kind. :func:`is_secret_key` also catches variants.
SECRET_KEYS: Final = frozenset(
    {"token", "api_key", "api_token", "password", "access_token", "secret", "client_secret", "authorization"}
)
# Name endings that mark a secret whatever comes before (refresh_token, hf_api_key, db_password).
_SECRET_ENDINGS: Final = ("token", "password", "secret", "api_key", "apikey", "private_key", "credentials")
_SECRET_CACHE: dict[object, bool] = {}  # key -> is_secret_key(key); records.py keeps its own per-key flags


def is_secret_key(key: object) -> bool:
    """True if values under this key are redacted: a name in :data:`SECRET_KEYS`, or one that
    ends like a secret (``refresh_token``, ``DB_PASSWORD``), case-insensitively.

    ``max_tokens`` and ``trained_tokens`` are not secrets (they end in *tokens*).

    >>> is_secret_key("api_token"), is_secret_key("Refresh_Token"), is_secret_key("max_tokens")
    (True, True, False)
    """
    known = _SECRET_CACHE.get(key)
    if known is None:
        name = key.lower() if isinstance(key, str) else ""
        known = name in SECRET_KEYS or name.endswith(_SECRET_ENDINGS)
        if len(_SECRET_CACHE) < 100_000:  # field names are few; never grow without bound
            _SECRET_CACHE[key] = known
    return known


FieldKind = Literal["unix", "iso", "int", "float", "bool", "str", "category"]

#: Hyper-parameter blocks: the legacy one and one per method.
_HP_PARENTS = (
    "params.hyperparameters",
    "params.method.supervised.hyperparameters",
    "params.method.spec_draft.hyperparameters",
)
_HP_INT = ("batch_size", "n_epochs", "context_length", "lora_r", "lora_alpha", "num_decoding_heads")
_HP_FLOAT = ("learning_rate", "warmup_ratio", "weight_decay", "max_grad_norm", "lora_dropout")
_HP_BOOL = ("packing", "lora")
_HP_STR = ("architecture", "loss.type")

_MAPPING_RECORDS = ("messages", "max_tokens", "custom_id", "text", "prompt", "completion")
_MAPPING_PARENTS = ("src.*.mapping",)

_KINDS: dict[str, FieldKind] = {
    "id": "str",
    "type": "category",
    "status": "category",
    "created_at": "unix",
    "in_progress_at": "unix",
    "finished_at": "unix",
    "ai_project_id": "str",
    # YQLParams
    "params.query": "str",
    # MaterializeHistoryParams
    "params.start_datetime": "iso",
    "params.end_datetime": "iso",
    "params.dataset_name": "str",
    "params.model_name": "str",
    # BatchInferenceParams / DatasetToFileParams
    "params.model": "str",
    "params.completion_window": "str",
    "params.purpose": "str",
    # FileToDatasetParams
    "params.file_id": "str",
    # FineTuningParams
    "params.method.type": "str",
    "params.from_checkpoint.type": "str",
    "params.from_checkpoint.repo": "str",
    "params.from_checkpoint.revision": "str",
    "params.integrations.*.type": "str",
    "params.integrations.*.wandb.project": "str",
    "params.integrations.*.wandb.name": "str",
    "params.integrations.*.wandb.entity": "str",
    "params.integrations.*.mlflow.tracking_uri": "str",
    "params.integrations.*.mlflow.experiment_name": "str",
    "params.integrations.*.mlflow.run_name": "str",
    "params.integrations.*.hf.output_repo_name": "str",
    "params.seed": "int",
    "params.suffix": "str",
    "params.trained_steps": "int",
    "params.total_steps": "int",
    "params.trained_tokens": "int",
    "params.estimated_finish": "unix",
    # src / dst datasets
    "src.*.id": "str",
    "src.*.version": "str",
    "src.*.type": "str",
    "src.*.dataset.id": "str",
    "src.*.dataset.version": "str",
    "src.*.mapping.type": "str",
    "dst.*.id": "str",
    "dst.*.version": "str",
}
for _parent in _HP_PARENTS:
    _KINDS.update({f"{_parent}.{k}": "int" for k in _HP_INT})
    _KINDS.update({f"{_parent}.{k}": "float" for k in _HP_FLOAT})
    _KINDS.update({f"{_parent}.{k}": "bool" for k in _HP_BOOL})
    _KINDS.update({f"{_parent}.{k}": "str" for k in _HP_STR})
for _parent in _MAPPING_PARENTS:
    for _rec in _MAPPING_RECORDS:
        _KINDS.update({f"{_parent}.{_rec}.type": "str", f"{_parent}.{_rec}.name": "str", f"{_parent}.{_rec}.value": "str"})
del _parent, _rec

#: Every field path the library knows a type for, with its kind.
FIELD_KINDS: Final = dict(_KINDS)
#: Unix-seconds timestamp fields.
UNIX_TIME_FIELDS: Final = tuple(k for k, v in FIELD_KINDS.items() if v == "unix")
#: ISO 8601 date-time fields.
ISO_TIME_FIELDS: Final = tuple(k for k, v in FIELD_KINDS.items() if v == "iso")

_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)")


@lru_cache(maxsize=4096)
def field_kind(path: str) -> FieldKind | None:
    """Return the kind of a flattened field path, or None for a field the spec does not type.

    >>> field_kind("src.3.id"), field_kind("params.tags"), field_kind("created_at")
    ('str', None, 'unix')
    """
    return FIELD_KINDS.get(_INDEX.sub("*", path))
