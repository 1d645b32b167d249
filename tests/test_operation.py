"""Operation: read-only mapping, typed properties, repr and the HTML status card."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from nb_ops import DataWarning, Operation
from nb_ops.operation import STATUS_COLORS, format_duration

from . import samples
from .samples import T0


def test_mapping_interface():
    op = Operation(samples.YQL)
    assert op["status"] == "succeeded"
    assert dict(op).keys() == samples.YQL.keys()
    assert len(op) == len(samples.YQL) and "params" in op
    assert json.loads(json.dumps(dict(op))) == samples.YQL  # no secrets here, so equal to the input
    assert op == Operation(copy.deepcopy(samples.YQL))


def test_read_only_and_independent_of_input():
    data = copy.deepcopy(samples.FINETUNING)
    op = Operation(data)
    data["status"] = "failed"
    data["params"]["trained_steps"] = 0
    assert op.status == "running" and op.trained_steps == 120
    op["params"]["trained_steps"] = 1  # a copy: the operation does not change
    assert op.trained_steps == 120
    with pytest.raises(TypeError):
        op["status"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        op.status = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        op._data = {}


def test_properties():
    op = Operation(samples.FINETUNING)
    assert (op.id, op.type, op.status, op.is_terminal) == (samples.FINETUNING["id"], "finetuning", "running", False)
    assert op.created_at == datetime.fromtimestamp(T0 + 30, tz=UTC)
    assert op.created_at.tzinfo is UTC
    assert op.in_progress_at == datetime.fromtimestamp(T0 + 600, tz=UTC)
    assert op.finished_at is None
    assert op.queue_duration == timedelta(seconds=570)
    assert op.run_duration is None and op.total_duration is None
    assert op.estimated_finish == datetime.fromtimestamp(T0 + 5000, tz=UTC)
    assert op.progress == pytest.approx(0.25)
    assert Operation(samples.YQL).progress == 1.0
    assert Operation(samples.BATCH).progress is None
    assert Operation(samples.DATASET_TO_FILE).is_terminal
    assert not Operation({**samples.BATCH, "status": "unknown"}).is_terminal


def test_bad_timestamp_property_is_none_with_warning():
    op = Operation({**samples.YQL, "finished_at": "later"})
    with pytest.warns(DataWarning, match="finished_at"):
        assert op.finished_at is None
    assert op.created_at is not None


def test_secrets_redacted_everywhere():
    op = Operation(samples.FINETUNING)
    blobs = [repr(op), op._repr_html_(), json.dumps(dict(op)), str(op.params), pickle.dumps(op).hex(),
             repr(op["params"])]
    for blob in blobs:
        for secret in samples.SECRETS:
            assert secret not in blob
    assert op.params["from_checkpoint"]["token"] == "***"
    assert op["params"]["integrations"][2]["hf"]["api_token"] == "***"
    assert pickle.loads(pickle.dumps(op)) == op


def test_repr():
    assert repr(Operation(samples.FINETUNING)) == (
        f"Operation(id={samples.FINETUNING['id']!r}, type='finetuning', status='running', progress=25%)"
    )
    assert "progress" not in repr(Operation(samples.YQL))


def test_html_card_shows_status_colour_times_and_progress():
    html = Operation(samples.FINETUNING)._repr_html_()
    assert STATUS_COLORS["running"] in html
    assert samples.FINETUNING["id"] in html
    assert "finetuning" in html and "120 / 480 steps" in html and "25%" in html
    assert "Queued for" in html and "9 min 30 s" in html
    assert "meta-llama/Llama-3.1-8B" in html
    failed = Operation(samples.MATERIALIZE)._repr_html_()
    assert STATUS_COLORS["failed"] in failed and "Ran for" in failed


def test_html_card_escapes_text():
    op = Operation({**samples.YQL, "id": "<script>alert(1)</script>", "params": {"query": "SELECT '<b>'"}})
    html = op._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html


def test_card_survives_a_sparse_record():
    op = Operation({"id": "x"})
    assert op.status is None and op.type is None and op.params == {} and op.progress is None
    assert "x" in op._repr_html_()
    assert repr(op) == "Operation(id='x', type=None, status=None)"


def test_not_a_mapping():
    with pytest.raises(TypeError, match="mapping"):
        Operation(["id", "x"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (45, "45 s"), (725, "12 min 05 s"), (3725, "1 h 02 min"), (2 * 86400 + 4 * 3600, "2 d 04 h"),
     (-90, "-1 min 30 s")],
)
def test_format_duration(seconds, text):
    assert format_duration(timedelta(seconds=seconds)) == text


def test_display_never_raises_or_warns_on_bad_fields():
    op = Operation({"id": "a", "status": "running", "created_at": "bad", "in_progress_at": 1_700_000_000,
                    "finished_at": 1_700_000_100, "params": {"trained_steps": 10**400, "total_steps": 1}})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repr(op) == "Operation(id='a', type=None, status='running')"
        html = op._repr_html_()
    assert "Ran for" in html and "Created" not in html
    assert op.progress is None


def test_sets_and_bytearrays_are_copied_not_shared():
    tags = {"a"}
    op = Operation({"id": "a", "tags": tags, "blob": bytearray(b"x")})
    tags.add("changed")
    assert op["tags"] == ["a"] and op["blob"] == b"x"
    with pytest.raises(AttributeError):
        del op._data


def test_deeply_nested_record_is_a_value_error():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        Operation({"id": "a", "x": deep})
