"""The simulator over real HTTP on 127.0.0.1: contract, determinism, time model, concurrency, lifecycle."""

from __future__ import annotations

import collections
import http.client
import itertools
import json
import re
import threading
import time

import pytest
import requests

from nb_ops import simulator
from nb_ops.simulator import fleet as fleet_module
from nb_ops.spec import SECRET_KEYS, STATUSES, TERMINAL_STATUSES, TYPES, field_kind

PATH = "/v1/operations/"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
T0 = 1_750_000_000.0  # a pinned simulated start time, for exact comparisons
LATER = 6 * 3_600  # simulated seconds after which everything queued/running at start is terminal


def fetch(session, sim, segment, *, key=None, method="GET", **kwargs):
    """Request ``/v1/operations/<segment>`` (segment sent as given, already percent-encoded)."""
    headers = kwargs.pop("headers", {"Authorization": f"Bearer {key or sim.api_key}"})
    return session.request(method, sim.base_url + PATH + segment, headers=headers, timeout=10, **kwargs)


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


def flatten(value, prefix=""):
    """Yield (dotted.path, leaf) pairs of a JSON value; lists use their index."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, f"{prefix}{k}.")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from flatten(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], value


def assert_real_ints(body):
    """jsonschema accepts 3.0 as an integer; the contract's integer fields must be real ints."""
    for path, value in flatten(body):
        if field_kind(path) in ("int", "unix") and value is not None:
            assert type(value) is int, (path, value)


# -- start, repr, arguments ---------------------------------------------------------


def test_start_gives_a_running_server_with_a_fleet(sim, session):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.base_url)
    assert sim.base_url.endswith(f":{sim.port}")
    assert sim.api_key.startswith("sim-") and len(sim.api_key) > 20
    assert len(sim.operation_ids) == 60 and len(set(sim.operation_ids)) == 60
    assert all(HEX32.match(i) for i in sim.operation_ids)
    r = fetch(session, sim, sim.operation_ids[0])
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.raw.version == 11  # HTTP/1.1
    assert r.json()["id"] == sim.operation_ids[0]


def test_keys_are_random_per_instance_unless_given(start_sim):
    a, b = start_sim(size=1), start_sim(size=1)
    assert a.api_key != b.api_key
    assert start_sim(size=1, api_key="my-key").api_key == "my-key"


def test_repr_hides_the_key_and_shows_the_state(start_sim):
    s = start_sim(api_key="sim-do-not-show-me", size=5)
    assert "sim-do-not-show-me" not in repr(s) and "sim-do-not-show-me" not in str(s)
    assert s.base_url in repr(s) and "running" in repr(s)
    s.stop()
    assert "stopped" in repr(s)


def test_client_is_an_nb_ops_client_for_this_server(sim):
    import nb_ops

    client = sim.client(timeout=5.0)
    assert isinstance(client, nb_ops.Client)
    assert client.get_operation(sim.operation_ids[3]).id == sim.operation_ids[3]
    client.close()


@pytest.mark.parametrize(
    "kwargs", [{"size": -1}, {"size": 2.5}, {"speed": -1}, {"speed": float("nan")}, {"port": 70000}]
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        simulator.start(**kwargs)


# -- determinism and coverage ---------------------------------------------------------


def test_same_seed_same_fleet_different_seed_different(start_sim):
    a = start_sim(seed=7, speed=0, start_time=T0)
    b = start_sim(seed=7, speed=0, start_time=T0)
    c = start_sim(seed=8, speed=0, start_time=T0)
    assert a.operation_ids == b.operation_ids
    assert not set(a.operation_ids) & set(c.operation_ids)
    with requests.Session() as s:
        for op_id in a.operation_ids:
            assert fetch(s, a, op_id).json() == fetch(s, b, op_id).json()
    assert [a.snapshot(i)["params"] for i in a.operation_ids] != [c.snapshot(i)["params"] for i in c.operation_ids]


def test_unpinned_start_same_content_relative_to_start(start_sim):
    """Without start_time, timestamps move with the real start but everything else is the same."""
    a = start_sim(seed=2, speed=0)
    b = start_sim(seed=2, speed=0, start_time=a.now() + 1234)
    for op_id in a.operation_ids:
        x, y = a.snapshot(op_id), b.snapshot(op_id)
        if x["type"] == "materialize_history":  # its window is derived from created_at
            del x["params"]["start_datetime"], x["params"]["end_datetime"]
            del y["params"]["start_datetime"], y["params"]["end_datetime"]
        if x["params"].get("estimated_finish"):
            x["params"]["estimated_finish"] = y["params"]["estimated_finish"] = None
        for snap, base in ((x, int(a.now())), (y, int(b.now()))):
            snap["created_at"] -= base
            for f in ("in_progress_at", "finished_at"):
                snap[f] = None if snap[f] is None else snap[f] - base
        assert x == y


def test_smaller_fleet_ids_are_a_prefix(start_sim):
    assert start_sim(seed=1, size=60).operation_ids == start_sim(seed=1, size=500).operation_ids[:60]


def test_every_type_with_every_status_at_start(start_sim):
    s = start_sim(speed=0, size=60)
    seen = collections.Counter((s.snapshot(i)["type"], s.snapshot(i)["status"]) for i in s.operation_ids)
    assert set(seen) == {(t, st) for t in TYPES for st in STATUSES}
    # ... and the first 36 alone are the grid.
    grid = {(s.snapshot(i)["type"], s.snapshot(i)["status"]) for i in s.operation_ids[:36]}
    assert len(grid) == 36


def test_large_fleet_mostly_terminal_with_realistic_mix(start_sim):
    s = start_sim(speed=0, size=3_000, seed=5)
    statuses = collections.Counter(s.fleet.statuses(s.now()).values())
    assert statuses["succeeded"] > sum(statuses.values()) / 2
    assert all(statuses[st] > 0 for st in STATUSES)
    types = collections.Counter(s.fleet.plan(i).type for i in s.operation_ids)
    assert types.most_common(2)[0][0] in ("finetuning", "batch_inference")
    assert {t for t, _ in types.most_common(2)} == {"finetuning", "batch_inference"}


def test_size_100k_starts_and_serves(start_sim, session):
    began = time.perf_counter()
    s = start_sim(size=100_000, seed=11)
    elapsed = time.perf_counter() - began
    assert len(s.operation_ids) == 100_000 == len(set(s.operation_ids))
    assert elapsed < 30  # generous: the fleet is planned, not built; see the startup note in fleet.py
    for op_id in (s.operation_ids[0], s.operation_ids[-1], s.operation_ids[50_000]):
        assert fetch(session, s, op_id).json()["id"] == op_id


# -- HTTP contract --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": "Basic {key}"},
        {"Authorization": "Token {key}"},
        {"Authorization": "{key}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer {key}x"},
    ],
    ids=["none", "wrong-key", "basic", "token", "no-scheme", "empty", "longer-key"],
)
@pytest.mark.parametrize("segment", ["known", "f" * 32, "a%20b"], ids=["known", "unknown", "invalid"])
def test_auth_is_checked_first_and_never_echoes_the_key(sim, session, headers, segment):
    headers = {k: v.format(key=sim.api_key) for k, v in headers.items()}
    segment = sim.operation_ids[0] if segment == "known" else segment
    r = fetch(session, sim, segment, headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    body = r.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert sim.api_key not in r.text and sim.operation_ids[0] not in r.text


def test_bearer_scheme_is_case_insensitive(sim, session):
    r = fetch(session, sim, sim.operation_ids[0], headers={"Authorization": f"bearer {sim.api_key}"})
    assert r.status_code == 200


def test_unknown_well_formed_id_is_404(sim, session):
    r = fetch(session, sim, "0" * 32)
    assert r.status_code == 404
    assert r.json() == {"detail": "Operation not found"}


@pytest.mark.parametrize("path", ["/", "/v1/operations", "/v1/other/x", "/v1/operations/a/b", "/v2/operations/a"])
def test_other_paths_are_404(sim, session, path):
    r = session.get(sim.base_url + path, headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=10)
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("segment", "error_type"),
    [
        ("a%20b", "string_pattern_mismatch"),
        ("..%2Fx", "string_pattern_mismatch"),
        ("a.b", "string_pattern_mismatch"),
        ("%C3%A9t%C3%A9", "string_pattern_mismatch"),  # unicode letters
        ("abc%0A", "string_pattern_mismatch"),  # a trailing newline is not "end of string"
        ("%FF", "string_pattern_mismatch"),  # not UTF-8
        ("x" * 200, "string_too_long"),
        ("", "string_too_short"),
    ],
)
def test_invalid_ids_are_422_with_the_spec_body(sim, session, operation_schema_validator, segment, error_type):
    r = fetch(session, sim, segment)
    assert r.status_code == 422
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert list(body) == ["detail"] and len(body["detail"]) == 1
    item = body["detail"][0]
    assert set(item) == {"loc", "msg", "type"}
    assert item["loc"] == ["path", "operation_id"]
    assert item["type"] == error_type and isinstance(item["msg"], str) and item["msg"]
    operation_schema_validator(body, "HTTPValidationError")


@pytest.mark.parametrize("segment", ["a", "A-b_9", "x" * 128, "3a3fd2317bbe4b3bb9842bc1b5275eb9"])
def test_valid_but_unknown_ids_are_404_not_422(sim, session, segment):
    assert fetch(session, sim, segment).status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_405_and_keep_the_connection_usable(sim, session, method):
    r = fetch(session, sim, sim.operation_ids[0], method=method, data=b'{"some": "body"}')
    assert r.status_code == 405
    assert "GET" in [m.strip() for m in r.headers["Allow"].split(",")]
    assert r.json() == {"detail": "Method Not Allowed"}
    assert fetch(session, sim, sim.operation_ids[0]).status_code == 200


def test_head_is_get_without_a_body(start_sim, session):
    s = start_sim(speed=0)
    get = fetch(session, s, s.operation_ids[0])
    head = fetch(session, s, s.operation_ids[0], method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == str(len(get.content))


def test_keep_alive_reuses_one_connection(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        sockets = set()
        for op_id in sim.operation_ids[:5] + ["bad id".replace(" ", "%20"), "0" * 32]:
            conn.request("GET", PATH + op_id, headers={"Authorization": f"Bearer {sim.api_key}"})
            response = conn.getresponse()
            body = response.read()
            assert int(response.getheader("Content-Length")) == len(body)
            assert response.getheader("Connection") != "close"
            sockets.add(id(conn.sock))
        assert len(sockets) == 1
    finally:
        conn.close()


def test_query_string_is_ignored(sim, session):
    r = fetch(session, sim, sim.operation_ids[1] + "?expand=all")
    assert r.status_code == 200 and r.json()["id"] == sim.operation_ids[1]


def test_requests_are_logged_without_headers_and_not_to_stderr(sim, session, caplog, capfd):
    with caplog.at_level("DEBUG", logger="nb_ops.simulator"):
        fetch(session, sim, sim.operation_ids[0])
        fetch(session, sim, sim.operation_ids[0], key="wrong")
        time.sleep(0.05)  # the record is written after the response
    assert PATH + sim.operation_ids[0] in caplog.text
    assert sim.api_key not in caplog.text and "Authorization" not in caplog.text
    assert capfd.readouterr().err == ""


# -- content ------------------------------------------------------------------------


def test_snapshot_matches_the_http_answer(start_sim, session):
    s = start_sim(speed=0, seed=4)
    for op_id in s.operation_ids:
        assert fetch(session, s, op_id).json() == s.snapshot(op_id)
    with pytest.raises(KeyError):
        s.snapshot("0" * 32)


def test_secrets_are_fake_recognisable_and_only_under_secret_keys(start_sim):
    s = start_sim(speed=0)
    found = collections.Counter()
    for op_id in s.operation_ids:
        for path, value in flatten(s.snapshot(op_id)):
            key = path.rsplit(".", 1)[-1]
            if isinstance(value, str) and value.startswith(simulator.SECRET_PREFIX):
                assert key in SECRET_KEYS, path
                found[key] += 1
            elif key in SECRET_KEYS:
                pytest.fail(f"{path} holds a value that is not a fake secret")
    assert set(found) == {"token", "api_key", "api_token", "password"}


def test_params_are_realistic_per_type(start_sim):
    s = start_sim(speed=0, size=600, seed=9)
    by_type = collections.defaultdict(list)
    for op_id in s.operation_ids:
        snap = s.snapshot(op_id)
        by_type[snap["type"]].append(snap)
    for op in by_type["yql"]:
        assert "{src_0}" in op["params"]["query"] and 1 <= len(op["src"]) <= 2 and len(op["dst"]) == 1
        assert all(src["mapping"] is None for src in op["src"])
    for op in by_type["materialize_history"]:
        assert op["src"] == [] and len(op["dst"]) == 1
    ends = {op["params"]["start_datetime"][-1] for op in by_type["materialize_history"]}
    assert ends == {"Z", "0"}  # both "Z" and "+02:00"
    for op in by_type["batch_inference"]:
        assert op["params"]["completion_window"] in ("12h", "24h")
        assert op["src"][0]["mapping"]["type"] == "text_messages"
    for op in by_type["finetuning"]:
        assert op["src"][0]["type"] == "train" and all(x["type"] == "validation" for x in op["src"][1:])
        p = op["params"]
        assert (p["hyperparameters"] is None) != (p["method"] is None)
        assert isinstance(p["total_steps"], int) and p["total_steps"] > 0
    methods = {(op["params"]["method"] or {"type": "legacy"})["type"] for op in by_type["finetuning"]}
    assert methods == {"legacy", "supervised", "spec-draft"}
    for op in by_type["file_to_dataset"]:
        assert re.fullmatch(r"file-[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", op["params"]["file_id"])
    for op in by_type["dataset_to_file"]:
        assert op["dst"] == [] and len(op["src"]) == 1 and isinstance(op["src"][0]["dataset"]["version"], str)
        if op["params"]["purpose"] == "inference":
            assert op["params"]["model"]


# -- time ------------------------------------------------------------------------------


def test_now_and_advance(start_sim):
    s = start_sim(speed=0, start_time=T0)
    assert s.now() == T0
    assert s.advance(90) == T0 + 90 == s.now()
    with pytest.raises(ValueError):
        s.advance(-1)
    fast = start_sim(speed=1000, size=1)
    before = fast.now()
    time.sleep(0.05)
    assert fast.now() - before >= 40


def check_history(history):
    """Check the snapshots of one operation taken at increasing simulated times."""
    order = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2, "unknown": 2}
    first = history[0]
    for prev, snap in itertools.pairwise(history):
        assert order[prev["status"]] <= order[snap["status"]], (prev["status"], snap["status"])
        if prev["status"] in TERMINAL_STATUSES or prev["status"] == "unknown":
            assert snap == prev  # terminal content is frozen
        for f in ("id", "type", "src", "created_at", "ai_project_id"):
            assert snap[f] == first[f]
    for snap in history:
        status, started, finished = snap["status"], snap["in_progress_at"], snap["finished_at"]
        if status == "queued":
            assert started is None
        if status == "running":
            assert started is not None
        assert (finished is not None) == (status in TERMINAL_STATUSES)
        if started is not None:
            assert snap["created_at"] <= started
        if started is not None and finished is not None:
            assert started <= finished
        if snap["type"] == "finetuning":
            p = snap["params"]
            assert (p["estimated_finish"] is not None) == (status == "running")
            assert (p["trained_tokens"] is not None) == (status == "succeeded")
            if status == "succeeded":
                assert p["trained_steps"] == p["total_steps"]
            if status == "queued":
                assert p["trained_steps"] is None
            if p["trained_steps"] is not None:
                assert 0 <= p["trained_steps"] <= p["total_steps"]
    steps = [s["params"]["trained_steps"] for s in history if s["type"] == "finetuning"]
    steps = [x for x in steps if x is not None]
    assert steps == sorted(steps)


def test_time_model_deterministically_with_advance(start_sim):
    """Step a frozen clock through the next simulated hour: every operation moves forward only."""
    s = start_sim(speed=0, size=600, seed=3, start_time=T0)
    moving = [i for i in s.operation_ids if s.snapshot(i)["status"] in ("queued", "running")]
    assert len(moving) > 20
    history = {i: [s.snapshot(i)] for i in moving}
    while s.now() < T0 + 2_700:
        s.advance(20)
        for i in moving:
            history[i].append(s.snapshot(i))
    for i in moving:
        check_history(history[i])
        assert history[i][-1]["status"] in TERMINAL_STATUSES
    seen = collections.Counter(tuple(dict.fromkeys(x["status"] for x in h)) for h in history.values())
    assert ("queued", "running", "succeeded") in seen and ("running", "succeeded") in seen
    assert any(path[-1] == "failed" for path in seen)
    eta = [h for h in history.values() if h[0]["type"] == "finetuning" and h[0]["status"] == "running"]
    assert any(len({x["params"]["estimated_finish"] for x in h if x["status"] == "running"}) > 1 for h in eta)
    assert s.fleet.plan(moving[0]).finish <= T0 + fleet_module.QUEUED_START_AFTER[1] + fleet_module.QUEUED_RUN_FOR[1]


def test_time_advances_over_http(start_sim, session):
    """At 1500x, queued and running operations progress in real time and are all terminal within ~2 s."""
    s = start_sim(speed=1500, size=60, seed=0)
    moving = [i for i in s.operation_ids if s.snapshot(i)["status"] in ("queued", "running")]
    history = {i: [] for i in moving}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for i in moving:
            history[i].append(fetch(session, s, i).json())
        if all(h[-1]["status"] in TERMINAL_STATUSES for h in history.values()):
            break
        time.sleep(0.02)
    for h in history.values():
        check_history(h)
        assert h[-1]["status"] in TERMINAL_STATUSES
    paths = {tuple(dict.fromkeys(x["status"] for x in h)) for h in history.values()}
    assert any(p[:2] == ("queued", "running") for p in paths)
    ft = [h for h in history.values() if h[0]["type"] == "finetuning" and h[-1]["status"] == "succeeded"]
    assert ft and all(h[-1]["params"]["trained_steps"] == h[-1]["params"]["total_steps"] for h in ft)


def test_unknown_stays_unknown(start_sim):
    s = start_sim(speed=0, start_time=T0)
    unknown = [i for i in s.operation_ids if s.snapshot(i)["status"] == "unknown"]
    before = [s.snapshot(i) for i in unknown]
    s.advance(30 * 86_400)
    assert [s.snapshot(i) for i in unknown] == before
    assert all(x["finished_at"] is None for x in before)


# -- the contract, checked against the OpenAPI file ----------------------------------------


def test_validator_resolves_refs_checks_formats_and_can_fail(operation_schema_validator, sim):
    import jsonschema

    good = sim.snapshot(sim.operation_ids[0])
    operation_schema_validator(good)
    assert operation_schema_validator.errors({"id": "x"})  # required fields missing
    bad_status = dict(good, status="done")
    with pytest.raises(jsonschema.ValidationError):
        operation_schema_validator(bad_status)
    with pytest.raises(jsonschema.ValidationError):
        operation_schema_validator(dict(good, created_at="yesterday"))
    history = {
        "type": "materialize_history",
        "params": {"start_datetime": "2024-08-10T12:00:00Z", "end_datetime": "2024-08-19T14:30:00+02:00", "dataset_name": "d"},
    }
    op = dict(good, **history)
    operation_schema_validator(op)
    op["params"] = dict(op["params"], start_datetime="10/08/2024 12:00")  # not RFC 3339
    with pytest.raises(jsonschema.ValidationError, match="date-time"):
        operation_schema_validator(op["params"], "MaterializeHistoryParams")
    assert operation_schema_validator.errors(op)  # and so the whole operation fails
    hp = {"batch_size": 65}
    assert operation_schema_validator.errors(hp, "SupervisedHParameters")
    assert operation_schema_validator.errors({"detail": [{"loc": ["path"], "msg": "m"}]}, "HTTPValidationError")


def test_every_response_matches_the_spec(start_sim, session, operation_schema_validator):
    """All 60 operations over HTTP at start (queued/running among them) and once all are terminal; and 422s."""
    s = start_sim(speed=0, size=60, start_time=T0)
    statuses = {}
    for moment in ("start", "later"):
        if moment == "later":
            s.advance(LATER)
        for op_id in s.operation_ids:
            r = fetch(session, s, op_id)
            assert r.status_code == 200
            body = json.loads(r.content)
            operation_schema_validator(body)
            assert_real_ints(body)
            assert list(body) == [
                "id", "type", "params", "src", "dst", "status",
                "created_at", "in_progress_at", "finished_at", "ai_project_id",
            ]
            statuses.setdefault(moment, set()).add(body["status"])
    assert statuses["start"] == set(STATUSES)
    assert statuses["later"] == set(STATUSES) - {"queued", "running"}
    for segment in ("a%20b", "", "x" * 129):
        operation_schema_validator(fetch(session, s, segment).json(), "HTTPValidationError")


# -- concurrency and lifecycle ----------------------------------------------------------


def test_32_concurrent_sessions(sim):
    n = 32
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker(k):
        try:
            with requests.Session() as s:
                barrier.wait(timeout=10)
                for j in range(4):
                    op_id = sim.operation_ids[(k + j) % len(sim.operation_ids)]
                    r = fetch(s, sim, op_id)
                    results.append((r.status_code, r.json()["id"] == op_id))
        except Exception as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert results == [(200, True)] * (n * 4)


def test_32_connections_held_open_at_once(sim):
    """Each keep-alive connection has its own server thread: one idle client blocks no other."""
    conns = [http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5) for _ in range(32)]
    try:
        for _ in range(2):
            for k, conn in enumerate(conns):
                conn.request("GET", PATH + sim.operation_ids[k], headers={"Authorization": f"Bearer {sim.api_key}"})
                response = conn.getresponse()
                assert response.status == 200 and json.loads(response.read())["id"] == sim.operation_ids[k]
    finally:
        for conn in conns:
            conn.close()


def test_stop_frees_the_port_closes_connections_and_is_idempotent(session):
    s = simulator.start(size=5)
    port, op_id = s.port, s.operation_ids[0]
    assert fetch(session, s, op_id).status_code == 200  # leaves a keep-alive connection open
    began = time.monotonic()
    s.stop()
    assert time.monotonic() - began < 30  # not the 120 s idle timeout of a keep-alive connection
    assert not s.running
    s.stop()  # again: nothing happens
    with pytest.raises(requests.ConnectionError):
        fetch(session, s, op_id)
    with simulator.start(size=5, port=port) as again:  # the port is free again
        assert again.port == port
        assert fetch(session, again, op_id, key=again.api_key).status_code == 200
    assert not again.running


def test_context_manager_stops_on_error():
    with pytest.raises(RuntimeError, match="boom"), simulator.start(size=1) as s:
        raise RuntimeError("boom")
    assert not s.running


def test_unreadable_request_target_is_400_and_the_server_goes_on(sim, session):
    import socket

    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as raw:
        raw.sendall(b"GET http://[bad/v1/operations/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := raw.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 ") or reply.startswith(b"HTTP/1.0 400 "), reply[:40]
    ok = session.get(f"{sim.base_url}/v1/operations/{sim.operation_ids[0]}",
                     headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=10)
    assert ok.status_code == 200


@pytest.mark.parametrize("kwargs", [{"size": 10**12}, {"seed": "abc"}, {"seed": 1.5}])
def test_absurd_sizes_and_non_int_seeds_are_refused(kwargs):
    with pytest.raises(ValueError):
        simulator.start(**kwargs)


def test_speed_can_change_while_running_and_keeps_the_time_so_far(start_sim):
    s = start_sim(speed=0, size=10, start_time=T0)
    assert s.speed == 0 and s.now() == T0
    s.configure(speed=3600)  # an hour a second
    time.sleep(0.2)
    moved = s.now() - T0
    assert 0.15 * 3600 <= moved <= 5 * 3600
    s.configure(speed=0)
    frozen = s.now()
    time.sleep(0.1)
    assert s.now() == frozen and frozen >= T0 + moved  # no jump back, then frozen
    with pytest.raises(ValueError, match="speed"):
        s.configure(speed=-1, latency=1.0)
    assert s.speed == 0 and s.now() == frozen
    assert "speed=0" in repr(s)
