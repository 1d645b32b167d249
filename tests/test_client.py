"""Client against the running simulator over real HTTP: configuration, errors, secrets, logging."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading

import pandas as pd
import pytest

import nb_ops
from nb_ops import (
    APIError,
    AuthenticationError,
    Client,
    ConfigError,
    InvalidOperationId,
    NbOpsError,
    Operation,
    OperationNotFound,
    TransportError,
    ValidationError,
)
from nb_ops.spec import DEFAULT_BASE_URL, STATUSES, TYPES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_one_operation(sim):
    client = sim.client()
    op_id = sim.operation_ids[0]
    op = client.get_operation(op_id)
    assert isinstance(op, Operation)
    assert op.id == op_id and op.type in TYPES and op.status in STATUSES
    assert op.created_at is not None and op.created_at.tzinfo is not None


def test_every_type_flattens_from_the_simulator(start_sim):
    sim = start_sim(speed=0)  # statuses as at start: every type with every status
    ops = [sim.client().get_operation(i) for i in sim.operation_ids]
    df = nb_ops.to_frame(ops)
    assert set(df["type"]) == set(TYPES) and set(df["status"]) == set(STATUSES)
    assert df["id"].tolist() == sim.operation_ids
    assert df["created_at"].dtype == pd.DatetimeTZDtype("ns", "UTC")
    assert df["params.total_steps"].dtype == pd.Int64Dtype()
    assert df["params.start_datetime"].dtype == pd.DatetimeTZDtype("ns", "UTC")
    for op_type in TYPES:
        rows = df[df["type"] == op_type]
        assert rows["created_at"].notna().all(), op_type
    ft = df[df["type"] == "finetuning"]
    assert ft["params.model_name"].notna().all()
    assert (ft.loc[ft["status"] == "succeeded", "progress"] == 1.0).all()
    src = nb_ops.sources_frame(ops)
    assert src["dataset_id"].notna().all()  # nested dataset-to-file sources included
    assert {"train", "validation"} <= set(src["role"].dropna())


def test_configuration_from_environment(sim, monkeypatch):
    monkeypatch.setenv("NEBIUS_API_KEY", sim.api_key)
    monkeypatch.setenv("NEBIUS_BASE_URL", sim.base_url + "/")
    client = Client()
    assert client.base_url == sim.base_url
    assert client.get_operation(sim.operation_ids[1]).id == sim.operation_ids[1]
    # Explicit arguments beat the environment.
    with pytest.raises(AuthenticationError):
        Client(api_key="wrong-key").get_operation(sim.operation_ids[1])


def test_default_base_url():
    assert Client(api_key="k").base_url == DEFAULT_BASE_URL


def test_missing_key_is_raised_at_request_time_naming_the_variable(sim):
    client = Client(base_url=sim.base_url)  # constructing is fine
    assert "missing" in repr(client)
    with pytest.raises(ConfigError, match="NEBIUS_API_KEY"):
        client.get_operation(sim.operation_ids[0])


def test_key_never_in_repr(sim):
    client = sim.client()
    assert sim.api_key not in repr(client) and sim.api_key not in repr(client._session.auth)
    assert "api_key=set" in repr(client)


@pytest.mark.parametrize(
    ("make_client", "op_id", "error", "fragment"),
    [
        (lambda s: Client(api_key="not-the-key", base_url=s.base_url), None, AuthenticationError, "NEBIUS_API_KEY"),
        (lambda s: s.client(), "ffffffffffffffffffffffffffffffff", OperationNotFound, "not found"),
        (lambda s: s.client(), "bad id with spaces", ValidationError, "422"),
        (lambda s: s.client(), "../datasets", ValidationError, "422"),
    ],
)
def test_http_errors_are_typed_and_never_hold_the_key(sim, make_client, op_id, error, fragment, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(sim)
    op_id = op_id or sim.operation_ids[0]
    with pytest.raises(error) as info:
        client.get_operation(op_id)
    exc = info.value
    assert isinstance(exc, NbOpsError) and isinstance(exc, APIError)
    assert fragment in str(exc)
    assert exc.operation_id == op_id and exc.status_code in (401, 404, 422)
    everything = " ".join([str(exc), repr(exc), exc.body_excerpt, str(getattr(exc, "detail", "")),
                           str(exc.__cause__), caplog.text])
    assert sim.api_key not in everything
    if error is ValidationError:
        assert exc.detail[0]["loc"] == ["path", "operation_id"]


def test_percent_encoding_keeps_the_id_one_path_segment(sim):
    # Unencoded, "../x" would climb out of /v1/operations; encoded, the server sees one bad id (422).
    with pytest.raises(ValidationError):
        sim.client().get_operation("../../v1/operations/" + sim.operation_ids[0])
    with pytest.raises(ValidationError):
        sim.client().get_operation("a/b")


@pytest.mark.parametrize("bad", ["", "   ", None, 42, b"abc", " padded "])
def test_bad_ids_refused_before_any_request(bad):
    client = Client(api_key="k", base_url=f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    with pytest.raises(InvalidOperationId):
        client.get_operation(bad)


def test_connection_refused_is_a_transport_error():
    client = Client(api_key="secret-key-123", base_url=f"http://127.0.0.1:{_free_port()}", timeout=2,
                    max_retries=2, backoff_factor=0.01)
    with pytest.raises(TransportError) as info:
        client.get_operation("abc")
    assert "secret-key-123" not in str(info.value)
    assert isinstance(info.value, ConnectionError)
    assert str(info.value).endswith("Connection refused (gave up after 2 retries)")


@pytest.mark.parametrize(
    "url",
    ["http://api.example.com", "ftp://127.0.0.1", "127.0.0.1:8000", "https://user:pw@api.example.com", "http://"],
)
def test_unsafe_or_malformed_base_url_refused(url):
    with pytest.raises(ConfigError):
        Client(api_key="k", base_url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:8000", "https://x.example"])
def test_loopback_http_and_any_https_accepted(url):
    assert Client(api_key="k", base_url=url).base_url == url


def test_key_with_header_breaking_characters_is_refused_without_echo():
    with pytest.raises(ConfigError) as info:
        Client(api_key="abc\r\nX-Evil: 1")
    assert "X-Evil" not in str(info.value)


@pytest.mark.parametrize("timeout", [0, -1, "10", (1,), (1, "x")])
def test_bad_timeouts_refused(timeout):
    with pytest.raises(ConfigError):
        Client(api_key="k", timeout=timeout)


def test_timeout_pair_and_connect_cap():
    assert Client(api_key="k", timeout=30).timeout == (10.0, 30.0)
    assert Client(api_key="k", timeout=(2, 5)).timeout == (2.0, 5.0)


def test_logs_never_hold_the_key(sim, caplog):
    caplog.set_level(logging.DEBUG)
    client = sim.client()
    client.get_operation(sim.operation_ids[2])
    with pytest.raises(OperationNotFound):
        client.get_operation("0" * 32)
    assert caplog.records, "expected debug records from nb_ops and urllib3"
    assert sim.api_key not in caplog.text


def test_simulator_secrets_are_redacted_on_arrival(sim):
    client = sim.client()
    ops = [client.get_operation(i) for i in sim.operation_ids]
    raw_has_secret = [i for i in sim.operation_ids if "simsecret-" in str(sim.snapshot(i))]
    assert raw_has_secret, "the fleet should carry write-only secrets to redact"
    df = nb_ops.to_frame(ops)
    blob = df.to_csv() + "".join(repr(o) + o._repr_html_() + str(dict(o)) for o in ops)
    assert "simsecret-" not in blob
    secret_cols = [c for c in df.columns if c.rsplit(".", 1)[-1] in ("token", "api_key", "password", "api_token")]
    values = df[secret_cols].stack().dropna()
    assert len(values) > 0 and (values == "***").all()


class _Canned(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the status, type and body set on the server."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        status, ctype, body = self.server.canned
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def canned():
    """A loopback server that answers with whatever the test sets: for bodies the simulator never sends."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize(
    ("status", "ctype", "body", "error", "fragment"),
    [
        (200, "text/html", b"<html>maintenance</html>", APIError, "not JSON"),
        (200, "application/json", b'{"id": "x", "status": "runn', APIError, "not JSON"),
        (200, "application/json", b"[1, 2]", APIError, "not an operation"),
        (502, "text/html", b"<html>Bad gateway " + b"x" * 5000 + b"</html>", APIError, "HTTP 502"),
        (403, "application/json", b'{"detail": "Forbidden for key KEY-123"}', AuthenticationError, "403"),
        (422, "application/json", b'{"detail": [{"loc": ["path", "operation_id"], "msg": "bad KEY-123", "type": "x"}]}',
         ValidationError, "bad ***"),
    ],
)
def test_odd_responses_become_typed_errors(canned, status, ctype, body, error, fragment):
    canned.canned = (status, ctype, body)
    client = Client(api_key="KEY-123", base_url=f"http://127.0.0.1:{canned.server_port}", backoff_factor=0)
    with pytest.raises(error) as info:
        client.get_operation("abc")
    exc = info.value
    assert fragment in str(exc)
    assert exc.status_code == status
    assert len(exc.body_excerpt) <= 200 and len(str(exc)) < 400
    assert "KEY-123" not in str(exc) + exc.body_excerpt + str(getattr(exc, "detail", ""))


def test_client_context_manager_closes(sim):
    with sim.client() as client:
        assert client.get_operation(sim.operation_ids[0]).id == sim.operation_ids[0]
    # A closed client reconnects on demand.
    assert client.get_operation(sim.operation_ids[0]).id == sim.operation_ids[0]


@pytest.mark.parametrize("url", ["http://192.0.2.2\\.localhost", "http://[::1", "https://" + "a" * 70 + ".com",
                                 "http://a.localhost:8000", "http://127.0.0.1:99999", " http://x y"])
def test_tricky_base_urls_are_refused(url):
    with pytest.raises(ConfigError):
        Client(api_key="k", base_url=url)


def test_base_url_must_be_a_string():
    with pytest.raises(ConfigError, match="string"):
        Client(api_key="k", base_url=5)


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e300, 10**400, (1, float("inf"))])
def test_unbounded_timeouts_refused(timeout):
    with pytest.raises(ConfigError):
        Client(api_key="k", timeout=timeout)


@pytest.mark.parametrize("bad", [".", "..", "\ud800"])
def test_dot_segments_and_lone_surrogates_refused(bad):
    with pytest.raises(InvalidOperationId):
        Client(api_key="k").get_operation(bad)


def test_loopback_ignores_proxy_settings(sim, monkeypatch):
    # A proxy from the environment would receive the key in the clear over plain http.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_free_port()}")  # nothing listens: using it would fail
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert sim.client().get_operation(sim.operation_ids[0]).id == sim.operation_ids[0]


@pytest.mark.parametrize("prefix", [0, 185, 190, 199])
def test_echoed_key_is_scrubbed_even_across_the_cut(canned, prefix):
    canned.canned = (500, "text/plain", b"x" * prefix + b"KEY-123-LONGER-SECRET" + b"y" * 50)
    client = Client(api_key="KEY-123-LONGER-SECRET", base_url=f"http://127.0.0.1:{canned.server_port}", backoff_factor=0)
    with pytest.raises(APIError) as info:
        client.get_operation("abc")
    assert "KEY-123" not in str(info.value) + info.value.body_excerpt


def test_slash_key_escaped_in_json_is_scrubbed(canned):
    canned.canned = (500, "application/json", b'{"detail": "bad key abc\\/def"}')
    client = Client(api_key="abc/def", base_url=f"http://127.0.0.1:{canned.server_port}", backoff_factor=0)
    with pytest.raises(APIError) as info:
        client.get_operation("x")
    assert "abc\\/def" not in info.value.body_excerpt and "abc/def" not in str(info.value)


@pytest.mark.parametrize("body", [b"{}", b'{"detail": "ok"}', b"[" * 100_000 + b"]" * 100_000])
def test_bodies_that_are_not_operations(canned, body):
    canned.canned = (200, "application/json", body)
    client = Client(api_key="k", base_url=f"http://127.0.0.1:{canned.server_port}", backoff_factor=0)
    with pytest.raises(APIError):
        client.get_operation("x")


def test_unknown_fields_values_and_a_bad_timestamp_survive_the_whole_path(canned):
    """Over HTTP, through Operation and to_frame: a future API's extra field, status and type are
    kept, a bad timestamp costs only its cell, and a planted secret never comes out."""
    body = {
        "id": "op-future", "type": "distillation", "status": "paused", "created_at": "yesterday",
        "in_progress_at": 1_700_000_000, "finished_at": None, "params": {"teacher": "big", "password": "pw-SECRET"},
        "src": [], "dst": [], "priority": 7,
    }
    canned.canned = (200, "application/json", json.dumps(body).encode())
    op = Client(api_key="k", base_url=f"http://127.0.0.1:{canned.server_port}", backoff_factor=0).get_operation("op-future")
    with pytest.warns(nb_ops.DataWarning, match="created_at"):
        df = nb_ops.to_frame([op])
    row = df.iloc[0]
    assert (row["type"], row["status"], row["priority"], row["params.teacher"]) == ("distillation", "paused", 7, "big")
    assert pd.isna(row["created_at"]) and row["in_progress_at"] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert row["params.password"] == "***" and "pw-SECRET" not in df.to_csv() + repr(op) + op._repr_html_()
