"""to_frame / sources_frame / destinations_frame on plain dicts: columns, dtypes, bad values, secrets."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import nb_ops
from nb_ops import DataWarning, Operation, destinations_frame, sources_frame, to_frame
from nb_ops.frame import DATASET_COLUMNS, LEADING_COLUMNS
from nb_ops.spec import STATUSES, TYPES

from . import samples
from .samples import T0

UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


def ts(seconds: int) -> pd.Timestamp:
    return pd.Timestamp(seconds, unit="s", tz="UTC")


@pytest.mark.parametrize("record", samples.ALL, ids=lambda r: r["type"])
def test_samples_are_valid_responses(record, operation_schema_validator):
    operation_schema_validator(record)


def test_leading_columns_order_and_dtypes():
    df = to_frame(samples.all_samples())
    assert list(df.columns[: len(LEADING_COLUMNS)]) == list(LEADING_COLUMNS)
    assert isinstance(df.index, pd.RangeIndex) and list(df.index) == list(range(6))
    assert df["id"].tolist() == [r["id"] for r in samples.ALL]  # input order
    assert isinstance(df["type"].dtype, pd.CategoricalDtype)
    assert list(df["type"].cat.categories) == list(TYPES)
    assert list(df["status"].cat.categories) == list(STATUSES)
    for col in ("created_at", "in_progress_at", "finished_at", "params.estimated_finish",
                "params.start_datetime", "params.end_datetime"):
        assert df[col].dtype == UTC_NS, col
    for col in ("queue_duration", "run_duration", "total_duration"):
        assert df[col].dtype == np.dtype("m8[ns]"), col
    assert df["progress"].dtype == np.float64
    assert df["is_terminal"].dtype == np.bool_
    assert pd.api.types.is_string_dtype(df["id"]) and pd.api.types.is_string_dtype(df["ai_project_id"])


def test_nested_fields_flatten_with_dots_and_integer_dtypes():
    df = to_frame(samples.all_samples())
    ft = df.iloc[3]
    hp = "params.method.supervised.hyperparameters."
    assert ft[hp + "learning_rate"] == pytest.approx(2e-05)
    assert ft[hp + "batch_size"] == 16
    for col in (hp + "batch_size", hp + "n_epochs", hp + "context_length", hp + "lora_r", hp + "lora_alpha",
                "params.seed", "params.trained_steps", "params.total_steps", "params.trained_tokens"):
        assert df[col].dtype == pd.Int64Dtype(), col
    assert df[hp + "lora"].dtype == pd.BooleanDtype()
    assert df[hp + "lora_dropout"].dtype == np.float64
    assert ft["params.integrations.0.wandb.project"] == "ft-runs"
    assert ft["params.integrations.1.mlflow.tags.team"] == "nlp"
    assert ft["src.1.mapping.prompt.name"] == "prompt"
    assert df.loc[2, "src.0.mapping.messages.name"] == "chat_messages"
    assert df.loc[0, "src.1.id"] == "d5000000000000000000000000000002"
    assert df.loc[0, "dst.0.version"] == "e7000000000000000000000000000003"
    assert df.loc[5, "src.0.dataset.id"] == "d5000000000000000000000000000010"
    # Lists of scalars stay one cell.
    assert ft["params.tags"] == ["support", "v2"]
    assert ft["params.integrations.0.wandb.tags"] == ["a", "b"]
    # Missing integers are <NA>, not float NaN.
    assert df["params.trained_steps"].isna().sum() == 5
    # Empty src/dst lists add no column of their own, nor does a parent that is null here, an object there.
    assert "src" not in df.columns and "dst" not in df.columns
    assert "src.0.mapping" not in df.columns and "src.0.mapping.messages.name" in df.columns
    assert df["params.hyperparameters"].isna().all()  # null everywhere, no children: kept


def test_column_groups_are_ordered_params_src_dst_then_unknown():
    records = samples.all_samples()
    records[0]["zz_new_top_level"] = 1
    df = to_frame(records)
    rest = list(df.columns[len(LEADING_COLUMNS):])
    heads = [c.split(".")[0] for c in rest]
    assert heads == sorted(heads, key=["params", "src", "dst", "zz_new_top_level"].index)
    src_positions = [int(c.split(".")[1]) for c in rest if c.startswith("src.")]
    assert src_positions == sorted(src_positions)


def test_times_and_durations():
    df = to_frame(samples.all_samples())
    yql = df.iloc[0]
    assert yql["created_at"] == ts(T0)
    assert yql["queue_duration"] == pd.Timedelta(seconds=30)
    assert yql["run_duration"] == pd.Timedelta(seconds=120)
    assert yql["total_duration"] == pd.Timedelta(seconds=150)
    running = df.iloc[2]
    assert running["queue_duration"] == pd.Timedelta(seconds=5)
    assert pd.isna(running["run_duration"]) and pd.isna(running["total_duration"])
    queued = df.iloc[4]
    assert pd.isna(queued["queue_duration"]) and pd.isna(queued["in_progress_at"])
    cancelled_never_started = df.iloc[5]
    assert pd.isna(cancelled_never_started["run_duration"])
    assert cancelled_never_started["total_duration"] == pd.Timedelta(seconds=40)
    mat = df.iloc[1]
    assert mat["params.start_datetime"] == pd.Timestamp("2025-11-01T10:00:00Z")
    assert mat["params.end_datetime"] == pd.Timestamp("2025-11-20T15:30:00Z")
    assert df.loc[3, "params.estimated_finish"] == ts(T0 + 5000)


def test_progress_and_is_terminal():
    df = to_frame(samples.all_samples())
    assert df["progress"].iloc[3] == pytest.approx(120 / 480)
    assert df["progress"].iloc[0] == 1.0  # succeeded, no step counts
    assert df["progress"].iloc[[1, 2, 4, 5]].isna().all()
    assert df["is_terminal"].tolist() == [True, True, False, False, False, True]


@pytest.mark.parametrize(
    ("trained", "total", "status", "expected"),
    [(0, 0, "running", np.nan), (5, 0, "succeeded", 1.0), (None, 100, "running", np.nan),
     (100, 100, "succeeded", 1.0), (30, 100, "failed", 0.3)],
)
def test_progress_edge_cases(trained, total, status, expected):
    record = {**samples.FINETUNING, "status": status}
    record["params"] = {**record["params"], "trained_steps": trained, "total_steps": total}
    got = to_frame([record])["progress"].iloc[0]
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)


def test_empty_input_keeps_leading_columns_and_dtypes():
    empty = to_frame([])
    full = to_frame(samples.all_samples())
    assert list(empty.columns) == list(LEADING_COLUMNS)
    assert len(empty) == 0
    assert (empty.dtypes == full[list(LEADING_COLUMNS)].dtypes).all()
    for fn in (sources_frame, destinations_frame):
        frame = fn([])
        assert list(frame.columns) == list(DATASET_COLUMNS) and len(frame) == 0
        assert frame["position"].dtype == pd.Int64Dtype()


def test_accepts_generators_and_operations():
    from_gen = to_frame(r for r in samples.all_samples())
    from_ops = to_frame([Operation(r) for r in samples.all_samples()])
    pd.testing.assert_frame_equal(from_gen, from_ops)


def test_single_mapping_is_refused_with_a_hint():
    with pytest.raises(TypeError, match="wrap it in a list"):
        to_frame(samples.YQL)


def test_unknown_fields_and_values_are_kept():
    record = samples.all_samples()[0]
    record["status"] = "paused"
    record["type"] = "distillation"
    record["new_field"] = {"nested": [1, 2], "flag": False}
    record["params"]["priority"] = 3
    record["src"][0]["extra"] = "x"
    df = to_frame([record, samples.all_samples()[1]])
    assert df.loc[0, "status"] == "paused" and df.loc[0, "type"] == "distillation"
    assert "paused" in df["status"].cat.categories and "queued" in df["status"].cat.categories
    assert df.loc[0, "new_field.nested"] == [1, 2]
    assert df["new_field.flag"].dtype == pd.BooleanDtype()
    assert df["params.priority"].dtype == pd.Int64Dtype() and df.loc[0, "params.priority"] == 3
    assert df.loc[0, "src.0.extra"] == "x"
    assert not df.loc[0, "is_terminal"]


def test_mixed_unknown_field_stays_object_without_warning():
    a, b = samples.all_samples()[:2]
    a["misc"], b["misc"] = 1, "one"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = to_frame([a, b])
    assert df["misc"].dtype == object and df["misc"].tolist() == [1, "one"]


@pytest.mark.parametrize(
    ("field", "bad"),
    [("created_at", "yesterday"), ("created_at", 10**30), ("finished_at", -10**15), ("in_progress_at", True),
     ("finished_at", float("nan")), ("created_at", [1, 2])],
)
def test_bad_timestamp_loses_only_its_cell(field, bad):
    records = samples.all_samples()
    records[0][field] = bad
    with pytest.warns(DataWarning) as caught:
        df = to_frame(records)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert samples.YQL["id"] in messages[0] and field in messages[0]
    assert pd.isna(df.loc[0, field])
    clean = to_frame(samples.all_samples())
    others = [c for c in clean.columns if c != field and not c.endswith("duration")]
    pd.testing.assert_frame_equal(df.loc[1:, others], clean.loc[1:, others])
    assert df.loc[0, "params.query"] == samples.YQL["params"]["query"]


@pytest.mark.parametrize(
    ("path", "bad"),
    [(("params", "trained_steps"), "120"), (("params", "total_steps"), 12.5), (("params", "estimated_finish"), "soon"),
     (("params", "method", "supervised", "hyperparameters", "learning_rate"), "fast"),
     (("params", "method", "supervised", "hyperparameters", "lora"), "yes"),
     (("params", "seed"), 2**70), (("params", "model_name"), 7), (("status",), 3)],
)
def test_bad_values_in_typed_fields_warn_and_go_missing(path, bad):
    records = samples.all_samples()
    target = records[3]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.warns(DataWarning, match=samples.FINETUNING["id"]):
        df = to_frame(records)
    column = ".".join(path)
    assert pd.isna(df.loc[3, column])
    assert len(df) == 6 and df.loc[3, "id"] == samples.FINETUNING["id"]


def test_integral_float_is_accepted_as_integer():
    record = samples.all_samples()[3]
    record["params"]["total_steps"] = 480.0
    df = to_frame([record])
    assert df.loc[0, "params.total_steps"] == 480 and df["params.total_steps"].dtype == pd.Int64Dtype()


def test_bad_iso_datetime_warns():
    records = samples.all_samples()
    records[1]["params"]["end_datetime"] = "2025-13-45T99:00:00Z"
    with pytest.warns(DataWarning, match="params.end_datetime"):
        df = to_frame(records)
    assert pd.isna(df.loc[1, "params.end_datetime"])
    assert df.loc[1, "params.start_datetime"] == pd.Timestamp("2025-11-01T10:00:00Z")


def test_non_mapping_record_becomes_an_empty_row_with_a_warning():
    records = [samples.YQL, None, "oops", samples.BATCH]
    with pytest.warns(DataWarning) as caught:
        df = to_frame(records)
    assert sorted(str(w.message).split(":")[0] for w in caught) == ["record 1", "record 2"]
    assert len(df) == 4
    assert df["id"].tolist()[0] == samples.YQL["id"] and df["id"].tolist()[3] == samples.BATCH["id"]
    assert df.loc[[1, 2], "id"].isna().all()


def test_secrets_are_redacted_in_frames_and_reprs():
    df = to_frame(samples.all_samples())
    text = df.to_csv() + df.to_json(date_format="iso") + repr(df.to_dict()) + pickle.dumps(df).hex()
    ops_text = "".join(repr(Operation(r)) + Operation(r)._repr_html_() + repr(dict(Operation(r)))
                       for r in samples.ALL)
    for secret in samples.SECRETS:
        assert secret not in text and secret not in ops_text
        assert secret.encode().hex() not in text
    ft = df.iloc[3]
    assert ft["params.from_checkpoint.token"] == "***"
    assert ft["params.integrations.0.wandb.api_key"] == "***"
    assert ft["params.integrations.1.mlflow.password"] == "***"
    assert ft["params.integrations.2.hf.api_token"] == "***"
    assert ft["params.from_checkpoint.repo"] == "acme/llama-base"  # non-secret neighbours intact


def test_secret_under_an_unforeseen_parent_and_none_secret():
    record = samples.all_samples()[0]
    record["params"]["connector"] = {"password": {"value": "deep-SECRET"}, "api_key": None}
    df = to_frame([record])
    assert df.loc[0, "params.connector.password"] == "***"
    assert pd.isna(df.loc[0, "params.connector.api_key"])
    assert "deep-SECRET" not in df.to_csv()


def test_sources_frame_is_tidy_with_roles_and_nested_datasets():
    src = sources_frame(samples.all_samples())
    assert list(src.columns[:5]) == list(DATASET_COLUMNS)
    assert len(src) == 2 + 0 + 1 + 2 + 0 + 1
    assert src["position"].dtype == pd.Int64Dtype()
    ft = src[src["operation_id"] == samples.FINETUNING["id"]]
    assert ft["role"].tolist() == ["train", "validation"]
    assert ft["mapping.messages.name"].iloc[0] == "messages"
    assert ft["mapping.prompt.name"].iloc[1] == "prompt"
    d2f = src[src["operation_id"] == samples.DATASET_TO_FILE["id"]].iloc[0]
    assert d2f["dataset_id"] == "d5000000000000000000000000000010"
    assert d2f["version"] == "e7000000000000000000000000000010"
    assert not any(c.startswith("dataset.") for c in src.columns)
    yql = src[src["operation_id"] == samples.YQL["id"]]
    assert yql["position"].tolist() == [0, 1] and yql["role"].isna().all()
    assert pd.isna(yql["version"].iloc[1])
    batch = src[src["operation_id"] == samples.BATCH["id"]].iloc[0]
    assert batch["mapping.max_tokens.value"] == "512" and batch["mapping.custom_id.name"] == "row_id"


def test_destinations_frame_and_concat_with_sources():
    dst = destinations_frame(samples.all_samples())
    assert list(dst.columns) == list(DATASET_COLUMNS)
    assert dst["operation_id"].tolist() == [samples.YQL["id"], samples.MATERIALIZE["id"], samples.BATCH["id"],
                                            samples.FILE_TO_DATASET["id"]]
    assert dst["role"].isna().all()
    both = pd.concat([sources_frame(samples.ALL), dst], ignore_index=True)
    assert len(both) == 6 + 4


def test_bad_src_shapes_warn_and_keep_the_rest():
    records = samples.all_samples()
    records[0]["src"] = "not-a-list"
    records[2]["src"].append(7)
    with pytest.warns(DataWarning) as caught:
        src = sources_frame(records)
    text = " ".join(str(w.message) for w in caught)
    assert samples.YQL["id"] in text and samples.BATCH["id"] in text
    assert samples.YQL["id"] not in set(src["operation_id"])
    assert (src["operation_id"] == samples.BATCH["id"]).sum() == 1
    assert (src["operation_id"] == samples.FINETUNING["id"]).sum() == 2


def test_frame_round_trips_through_parquet(tmp_path):
    df = to_frame(samples.all_samples())
    path = tmp_path / "ops.parquet"
    from nb_ops.cli import write_frame

    write_frame(df, path, "parquet")
    back = pd.read_parquet(path)
    assert back["created_at"].dtype == UTC_NS
    assert back["params.trained_steps"].dtype == pd.Int64Dtype()
    assert back["id"].tolist() == df["id"].tolist()


def test_public_surface():
    assert nb_ops.__all__ == [
        "__version__", "Client", "Batch", "Operation", "to_frame", "sources_frame", "destinations_frame",
        "Monitor", "watch", "plot_timeline", "plot_durations", "plot_training",
        "NbOpsError", "ConfigError", "InvalidOperationId", "FrameError", "APIError", "AuthenticationError",
        "OperationNotFound", "ValidationError", "RateLimited", "TransportError", "NbOpsWarning", "DataWarning",
    ]
    for name in nb_ops.__all__:
        assert hasattr(nb_ops, name)


# --- bad input found by trying to break it: each costs one cell (or one record), never the frame ---

OK = {"id": "b", "type": "yql", "status": "running", "created_at": 1_700_000_000}


@pytest.mark.parametrize(
    ("record", "column"),
    [
        ({"id": "a", "params": {"start_datetime": "9999-12-31T23:59:59Z"}}, "params.start_datetime"),
        ({"id": "a", "params": {"start_datetime": "1500-01-01T00:00:00Z"}}, "params.start_datetime"),
        ({"id": "a", "params": {"end_datetime": "now"}}, "params.end_datetime"),
        ({"id": "a", "params": {"end_datetime": "today"}}, "params.end_datetime"),
        ({"id": "a", "params": {"hyperparameters": {"learning_rate": 10**400}}}, "params.hyperparameters.learning_rate"),
        ({"id": "a", "status": {"x": 1}}, "status"),
        ({"id": "a", "created_at": {"seconds": 5}}, "created_at"),
    ],
)
def test_one_bad_value_one_missing_cell_one_warning(record, column):
    with pytest.warns(DataWarning) as caught:
        df = to_frame([record, OK])
    assert len(caught) == 1 and "'a'" in str(caught[0].message) and column in str(caught[0].message)
    assert pd.isna(df.loc[0, column]) and df.loc[1, "id"] == "b"
    assert df.loc[1, "created_at"] == ts(1_700_000_000)


def test_a_span_too_long_for_timedelta_is_missing_not_an_overflow():
    record = {"id": "a", "created_at": -6_000_000_000, "finished_at": 4_000_000_000}
    with pytest.warns(DataWarning, match="total_duration"):
        df = to_frame([record, OK])
    assert df.loc[0, "created_at"] == ts(-6_000_000_000) and pd.isna(df.loc[0, "total_duration"])


def test_unknown_field_mixing_huge_int_and_float_warns():
    with pytest.warns(DataWarning, match="misc"):
        df = to_frame([{"id": "a", "misc": 10**400}, {"id": "c", "misc": 1.5}])
    assert pd.isna(df.loc[0, "misc"]) and df.loc[1, "misc"] == 1.5


def test_non_string_keys_and_odd_digits_do_not_break_flattening():
    df = to_frame([{"id": "a", 1: "x", "src": {"²": "y"}, "dst.①": "z"}, OK])
    assert df.loc[0, "1"] == "x" and df.loc[0, "src.²"] == "y" and df.loc[0, "dst.①"] == "z"


def test_deeply_nested_record_is_one_bad_row():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.warns(DataWarning, match="nested too deeply"):
        df = to_frame([{"id": "a", "x": deep}, OK])
    assert len(df) == 2 and df.loc[1, "id"] == "b"


def test_fields_named_like_derived_or_flattened_columns_are_kept_beside_them():
    record = {**OK, "progress": "n/a", "is_terminal": "maybe", "src": [{"id": "real"}], "src.0.id": "fake"}
    df = to_frame([record])
    assert df["progress"].dtype == np.float64 and df["is_terminal"].dtype == np.bool_
    assert df.loc[0, "progress_"] == "n/a" and df.loc[0, "is_terminal_"] == "maybe"
    assert df.loc[0, "src.0.id"] == "real" and df.loc[0, "src.0.id_"] == "fake"


def test_dataset_items_cannot_overwrite_the_leading_columns():
    src = sources_frame([{"id": "op1", "src": [{"id": "d", "operation_id": "op2", "position": 7}]}])
    assert src.loc[0, "operation_id"] == "op1" and src.loc[0, "position"] == 0
    assert src.loc[0, "operation_id_"] == "op2" and src.loc[0, "position_"] == 7


def test_secrets_never_reach_warning_text():
    with pytest.warns(DataWarning) as caught:
        sources_frame([{"id": "a", "src": {"token": "S2-SECRET"}}])
        to_frame([[{"token": "S1-SECRET"}], OK])
    assert caught and all("SECRET" not in str(w.message) for w in caught)


def test_secrets_in_tuples_sets_and_variant_names_are_redacted():
    from collections import UserList

    record = {
        "id": "a",
        "params": {
            "integrations": ({"wandb": {"api_key": "T1-SECRET"}},),
            "other": UserList([{"token": "T2-SECRET"}]),
            "Refresh_Token": "T3-SECRET",
            "max_tokens": 512,
        },
    }
    df = to_frame([record])
    text = df.to_csv() + repr(Operation(record)) + repr(dict(Operation(record)))
    assert "SECRET" not in text
    assert df.loc[0, "params.max_tokens"] == 512  # "tokens" is not a secret name


def test_numpy_scalars_are_accepted():
    df = to_frame([{"id": "a", "created_at": np.int64(1_700_000_000), "params": {"seed": np.int32(3)}}])
    assert df.loc[0, "created_at"] == ts(1_700_000_000) and df.loc[0, "params.seed"] == 3
