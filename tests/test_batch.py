"""Client.get_operations and Batch over real HTTP: concurrency, retries, typed errors, caches."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest

import nb_ops
from nb_ops import (
    APIError,
    AuthenticationError,
    Batch,
    Client,
    ConfigError,
    InvalidOperationId,
    NbOpsWarning,
    Operation,
    OperationNotFound,
    RateLimited,
    TransportError,
)
from nb_ops.spec import TERMINAL_STATUSES

FAST = {"backoff_factor": 0.01}  # retries without the production waits


def _op_requests(sim) -> list:
    return [r for r in sim.requests if r.operation_id is not None]


def test_batch_in_input_order_with_duplicates_fetched_once(start_sim):
    sim = start_sim(size=80)
    ids = sim.operation_ids[::-1]
    ids = ids[:10] + ids[:3] + ids[10:]  # three duplicates
    batch = sim.client(**FAST).get_operations(ids)
    assert isinstance(batch, Batch) and len(batch) == 80 and not batch.errors
    assert batch.ids == sim.operation_ids[::-1]
    assert all(isinstance(op, Operation) for op in batch) and batch[0].id == ids[0]
    assert [op.id for op in batch[2:4]] == ids[2:4]
    counts = {}
    for record in _op_requests(sim):
        counts[record.operation_id] = counts.get(record.operation_id, 0) + 1
    assert set(counts.values()) == {1} and len(counts) == 80
    assert repr(batch) == "Batch(80 operations, 0 errors)"


def test_batch_frames_match_the_functions(sim):
    batch = sim.client().get_operations(sim.operation_ids)
    import pandas as pd

    pd.testing.assert_frame_equal(batch.frame(), nb_ops.to_frame(list(batch)))
    pd.testing.assert_frame_equal(batch.sources(), nb_ops.sources_frame(list(batch)))
    pd.testing.assert_frame_equal(batch.destinations(), nb_ops.destinations_frame(list(batch)))
    assert "operations" in batch._repr_html_()


def test_failed_ids_land_in_errors_and_cost_nothing_else(sim):
    good = sim.operation_ids[:30]
    bad = ["f" * 32, "", "bad id", 42, "e" * 32]
    with pytest.warns(NbOpsWarning) as caught:
        batch = sim.client().get_operations(good[:10] + bad + good[10:])
    assert batch.ids == good
    assert isinstance(batch.errors["f" * 32], OperationNotFound)
    assert isinstance(batch.errors["e" * 32], OperationNotFound)
    assert isinstance(batch.errors[""], InvalidOperationId) and isinstance(batch.errors["42"], InvalidOperationId)
    assert isinstance(batch.errors["bad id"], nb_ops.ValidationError)
    message = str(caught[0].message)
    assert len(caught) == 1 and "5 of 35 operations could not be fetched" in message
    assert "OperationNotFound" in message and "InvalidOperationId" in message
    assert "5 errors" in repr(batch) and "failed" in batch._repr_html_()


def test_no_key_and_a_single_string_are_refused_before_any_request(sim):
    with pytest.raises(ConfigError, match="NEBIUS_API_KEY"):
        Client(base_url=sim.base_url).get_operations(sim.operation_ids)
    with pytest.raises(TypeError, match="get_operation"):
        sim.client().get_operations(sim.operation_ids[0])


def test_a_refused_key_stops_the_batch_early(start_sim):
    sim = start_sim(size=200)
    client = Client(api_key="wrong", base_url=sim.base_url, max_workers=4)
    with pytest.warns(NbOpsWarning, match="200 of 200"):
        batch = client.get_operations(sim.operation_ids)
    assert len(batch) == 0 and all(isinstance(e, AuthenticationError) for e in batch.errors.values())
    assert len(sim.requests) < 50  # not one request per id


def test_terminal_operations_are_cached_and_refresh_bypasses(start_sim):
    sim = start_sim(size=60, speed=0)  # time stands still: statuses do not change
    client = sim.client()
    first = client.get_operations(sim.operation_ids)
    terminal = [op.id for op in first if op.status in TERMINAL_STATUSES]
    active = [op.id for op in first if op.status not in TERMINAL_STATUSES]
    assert terminal and active
    sim.clear_requests()
    again = client.get_operations(sim.operation_ids)
    assert again.ids == first.ids
    assert sorted(r.operation_id for r in _op_requests(sim)) == sorted(active)  # only the unfinished
    sim.clear_requests()
    client.get_operation(terminal[0])
    assert not sim.requests
    client.get_operations(terminal, refresh=True)
    assert sorted(r.operation_id for r in _op_requests(sim)) == sorted(terminal)


def test_disk_cache_survives_a_restart_and_a_corrupt_file(start_sim, tmp_path):
    sim = start_sim(size=120, speed=0)
    cache = tmp_path / "cache"
    first = sim.client(cache_dir=cache).get_operations(sim.operation_ids)
    terminal = [op.id for op in first if op.is_terminal]
    files = sorted(cache.rglob("*.json"))
    assert len(files) == len(terminal) > 50
    for f in files:  # only the redacted operation is kept: no key, no secret
        text = f.read_text()
        assert sim.api_key not in text and "simsecret-" not in text
        assert oct(f.stat().st_mode & 0o777) == "0o600"
    # A new client (a re-run notebook) fetches the finished ones with zero requests.
    sim.clear_requests()
    second = sim.client(cache_dir=cache).get_operations(terminal)
    assert second.ids == terminal and not sim.requests
    assert [dict(op) for op in second] == [dict(op) for op in first if op.is_terminal]
    # Corrupt files are ignored and rewritten, never fatal.
    files[0].write_text('{"format": 1, "operation": {"id": "trunc')
    files[1].write_bytes(b"\x00\xff garbage")
    files[2].write_text(json.dumps({"format": 1, "operation": {"id": "someone-else", "status": "succeeded"}}))
    sim.clear_requests()
    third = sim.client(cache_dir=cache).get_operations(terminal)
    assert third.ids == terminal and len(_op_requests(sim)) == 3
    fourth_requests_before = len(sim.requests)
    sim.client(cache_dir=cache).get_operations(terminal)
    assert len(sim.requests) == fourth_requests_before  # rewritten: all from disk again


def test_an_unwritable_cache_warns_once_and_fetches_anyway(sim, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.warns(NbOpsWarning, match="could not write its cache") as caught:
        batch = sim.client(cache_dir=blocker).get_operations(sim.operation_ids)
    assert len(batch) == 60 and len(caught) == 1


def test_no_pool_full_warnings_and_one_session_per_worker(start_sim, caplog):
    sim = start_sim(size=320, latency=0.05)
    caplog.set_level(logging.WARNING, logger="urllib3")
    client = sim.client(max_workers=16)
    batch = client.get_operations(sim.operation_ids)
    assert len(batch) == 320
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    assert len(client._sessions) <= 16
    peak = max_concurrency(sim.requests, 0.05)
    assert peak >= 12  # about 16 requests in flight at once
    client.close()
    assert client.get_operation(sim.operation_ids[0]).id == sim.operation_ids[0]  # usable after close


def max_concurrency(records, latency: float) -> int:
    """Most requests that arrived within one latency window of each other."""
    times = sorted(r.time for r in records)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] < t - latency:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_progress_bar_on_request(sim, capsys):
    sim.client().get_operations(sim.operation_ids, progress=True, refresh=True)
    err = capsys.readouterr().err
    assert "operations" in err and "60/60" in err
    sim.client().get_operations(sim.operation_ids)  # not interactive: no bar by default
    assert capsys.readouterr().err == ""


# --- a flaky API: the fault-injecting simulator ---------------------------------------------------


def test_twenty_percent_faults_lose_nothing(start_sim, caplog):
    caplog.set_level(logging.DEBUG)
    faults = {"error_rate": 0.08, "rate_limit_rate": 0.04, "retry_after": 0, "drop_rate": 0.08}
    sim = start_sim(size=500, seed=3, faults=faults)
    client = sim.client(**FAST)
    batch = client.get_operations(sim.operation_ids)
    assert len(batch) == 500 and not batch.errors and batch.ids == sim.operation_ids
    seen = {r.fault for r in sim.requests}
    assert {"error", "rate_limit", "drop"} <= seen
    injected = sum(r.fault is not None for r in sim.requests)
    assert 0.12 < injected / len(sim.requests) < 0.28
    assert sim.api_key not in caplog.text


@pytest.mark.parametrize("fmt", ["seconds", "http-date"])
def test_retry_after_is_honoured(start_sim, fmt):
    victim = None
    sim = start_sim(size=10, faults={"rate_limit_rate": 1.0, "retry_after": 1, "retry_after_format": fmt})
    victim = sim.operation_ids[0]
    sim.configure(faults={"rate_limit_rate": 1.0, "retry_after": 1, "retry_after_format": fmt, "only_ids": [victim]})
    client = sim.client(max_retries=2, backoff_factor=0)
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        client.get_operation(victim)
    took = time.monotonic() - started
    times = [r.time for r in sim.requests_for(victim)]
    assert len(times) == 3  # the first try and two retries
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(gap >= 0.9 for gap in gaps), gaps  # each wait as long as the server asked
    assert took >= 1.8 and info.value.status_code == 429
    assert client.get_operation(sim.operation_ids[1]).id == sim.operation_ids[1]  # others unaffected


def test_a_stalled_response_is_retried_after_the_read_timeout(start_sim):
    sim = start_sim(size=10)
    victim = sim.operation_ids[0]
    sim.configure(faults={"stall_rate": 1.0, "stall_seconds": 30, "only_ids": [victim]})
    client = sim.client(timeout=(2, 0.5), max_retries=1, **FAST)
    started = time.monotonic()
    with pytest.raises(TransportError, match="Read timed out") as info:
        client.get_operation(victim)
    assert 0.9 < time.monotonic() - started < 10
    assert len(sim.requests_for(victim)) == 2  # retried once after the first read timeout
    assert sim.api_key not in str(info.value) and sim.api_key not in repr(info.value.__cause__)


def test_a_stall_on_the_first_try_only_is_recovered_by_the_retry(start_sim):
    import threading

    sim = start_sim(size=10)
    victim = sim.operation_ids[0]
    sim.configure(faults={"stall_rate": 1.0, "stall_seconds": 30, "only_ids": [victim]})

    def heal_after_first_try():
        deadline = time.monotonic() + 10
        while not sim.requests_for(victim) and time.monotonic() < deadline:
            time.sleep(0.01)
        sim.configure(faults={})

    healer = threading.Thread(target=heal_after_first_try)
    healer.start()
    op = sim.client(timeout=(2, 0.5), max_retries=2, **FAST).get_operation(victim)
    healer.join()
    assert op.id == victim
    assert [r.fault for r in sim.requests_for(victim)] == ["stall", None]


def test_corrupt_bodies_become_api_errors_in_the_batch(start_sim):
    sim = start_sim(size=40)
    victims = sim.operation_ids[:6]
    sim.configure(faults={"corrupt_rate": 1.0, "only_ids": victims})
    with pytest.warns(NbOpsWarning, match="6 of 40"):
        batch = sim.client(**FAST).get_operations(sim.operation_ids)
    assert len(batch) == 34 and set(batch.errors) == set(victims)
    assert all(type(e) is APIError and e.status_code == 200 for e in batch.errors.values())
    assert all("not JSON" in str(e) for e in batch.errors.values())


def test_errors_warnings_and_logs_never_hold_the_key(start_sim, caplog):
    caplog.set_level(logging.DEBUG)
    sim = start_sim(size=50, faults={"error_rate": 0.5, "drop_rate": 0.2, "only_ids": None})
    sim.configure(faults={"error_rate": 0.6, "drop_rate": 0.3})
    client = sim.client(max_retries=1, **FAST)
    with pytest.warns(NbOpsWarning) as caught:
        batch = client.get_operations(sim.operation_ids + ["f" * 32, "x y"])
    assert batch.errors
    blob = " ".join(
        [str(w.message) for w in caught]
        + [f"{e!s} {e!r} {e.__cause__!r} {getattr(e, 'body_excerpt', '')}" for e in batch.errors.values()]
        + [caplog.text, repr(client), repr(batch), batch._repr_html_()]
    )
    assert sim.api_key not in blob
    kinds = {type(e) for e in batch.errors.values()}
    assert kinds <= {APIError, TransportError, OperationNotFound, nb_ops.ValidationError}


def test_bad_client_options(sim):
    for kwargs in ({"max_workers": 0}, {"max_workers": 1.5}, {"max_retries": -1}, {"backoff_factor": -1},
                   {"max_workers": True}):
        with pytest.raises(ConfigError):
            sim.client(**kwargs)


def test_env_cache_dir_is_not_guessed(sim, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sim.client().get_operations(sim.operation_ids)
    assert not os.listdir(tmp_path)  # no cache unless asked


def test_retry_after_is_capped_and_the_policy_retries_only_gets():
    import urllib3

    from nb_ops.client import MAX_RETRY_AFTER, RETRY_STATUSES, _retry_policy

    policy = _retry_policy(5, 0.5)
    slow = urllib3.HTTPResponse(body=b"", headers={"Retry-After": "100000"}, status=429)
    assert policy.get_retry_after(slow) == MAX_RETRY_AFTER
    fair = urllib3.HTTPResponse(body=b"", headers={"Retry-After": "3"}, status=429)
    assert policy.get_retry_after(fair) == 3
    assert policy.allowed_methods == frozenset({"GET"}) and set(policy.status_forcelist) == set(RETRY_STATUSES)
    assert policy.total == 5 and policy.respect_retry_after_header and not policy.raise_on_status


def test_errors_are_in_input_order_and_long_ids_are_cut_in_messages(sim):
    ids = ["e" * 32, sim.operation_ids[0], "", "d" * 32, "x" * 5000, "c" * 32]
    with pytest.warns(NbOpsWarning, match="5 of 6"):
        batch = sim.client().get_operations(ids)
    assert list(batch.errors) == [i for i in ids if i != sim.operation_ids[0]]
    assert all(len(str(e)) < 400 for e in batch.errors.values())


# --- found by trying to break it ------------------------------------------------------------------


def test_close_during_a_batch_returns_it_with_typed_errors(start_sim):
    import threading

    sim = start_sim(size=200, latency=0.2)
    client = sim.client(max_workers=2)
    result = {}

    def run():
        with pytest.warns(NbOpsWarning):
            result["batch"] = client.get_operations(sim.operation_ids)

    runner = threading.Thread(target=run)
    runner.start()
    time.sleep(0.5)
    client.close()
    runner.join(30)
    assert not runner.is_alive(), "get_operations hung after close()"
    batch = result["batch"]
    assert len(batch) + len(batch.errors) == 200 and len(batch.errors) > 100
    assert all(isinstance(e, TransportError) and "closed" in str(e) for e in batch.errors.values())


def test_close_between_starting_the_pool_and_submitting_loses_nothing(sim):
    client = sim.client()
    client._pool().shutdown()  # what close() in another thread does at the worst moment
    with pytest.warns(NbOpsWarning, match="3 of 3"):
        batch = client.get_operations(sim.operation_ids[:3])
    assert list(batch.errors) == sim.operation_ids[:3]
    assert all(isinstance(e, TransportError) and "closed" in str(e) for e in batch.errors.values())


def test_a_401_stops_the_batch_with_one_error_per_id_but_a_403_does_not(canned_api):
    server, answers = canned_api
    answers.update({"a": 401, "b": 401, "c": 401})
    client = Client(api_key="k", base_url=server, max_workers=1, **FAST)
    with pytest.warns(NbOpsWarning):
        batch = client.get_operations(["a", "b", "c"])
    errors = list(batch.errors.values())
    assert len({id(e) for e in errors}) == 3 and [e.operation_id for e in errors] == ["a", "b", "c"]
    answers.clear()
    answers.update({"x": 403})
    with pytest.warns(NbOpsWarning, match="1 of 3"):
        batch = client.get_operations(["x", "y", "z"])
    assert batch.ids == ["y", "z"] and isinstance(batch.errors["x"], AuthenticationError)


def test_a_malformed_retry_after_falls_back_to_backoff(canned_api):
    server, answers = canned_api
    answers["m"] = (429, {"Retry-After": "soon"})
    client = Client(api_key="k", base_url=server, max_retries=2, **FAST)
    with pytest.raises(RateLimited):
        client.get_operation("m")


def test_a_body_that_breaks_off_is_retried(canned_api):
    server, answers = canned_api
    answers["t"] = "truncate-once"
    assert Client(api_key="k", base_url=server, **FAST).get_operation("t").id == "t"
    assert answers["t-seen"] == 2


def test_a_cache_file_too_deep_to_use_is_a_miss(start_sim, tmp_path):
    sim = start_sim(size=60, speed=0)
    cache = tmp_path / "c"
    first = sim.client(cache_dir=cache).get_operations(sim.operation_ids)
    victim = next(op.id for op in first if op.is_terminal)
    path = next(p for p in cache.rglob("*.json") if victim in p.read_text())
    text = path.read_text()
    assert text.endswith("}}")
    for depth in (700, 3000):  # too deep for redaction, and too deep for the JSON decoder
        path.write_text(text[:-2] + ', "x": ' + "[" * depth + "]" * depth + "}}")
        assert sim.client(cache_dir=cache).get_operation(victim).id == victim


def test_the_disk_cache_is_per_key(start_sim, tmp_path):
    sim = start_sim(size=60, speed=0)
    cache = tmp_path / "c"
    sim.client(cache_dir=cache).get_operations(sim.operation_ids)
    other = Client(api_key="revoked", base_url=sim.base_url, cache_dir=cache, max_workers=2)
    with pytest.warns(NbOpsWarning, match="60 of 60"):
        batch = other.get_operations(sim.operation_ids)
    assert all(isinstance(e, AuthenticationError) for e in batch.errors.values())


@pytest.mark.parametrize("bad", [5, b"x", "", "~nosuchuser-nb-ops/x"])
def test_bad_cache_dirs_are_config_errors(sim, bad):
    with pytest.raises(ConfigError):
        sim.client(cache_dir=bad)


@pytest.fixture
def canned_api():
    """A loopback server answering per id: a status, (status, headers), or "truncate-once"."""
    import http.server
    import threading

    answers: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            op_id = self.path.rsplit("/", 1)[-1]
            spec = answers.get(op_id, 200)
            status, headers = spec if isinstance(spec, tuple) else (spec, {})
            body = json.dumps({"id": op_id, "status": "running"} if status == 200 or spec == "truncate-once"
                              else {"detail": "no"}).encode()
            if spec == "truncate-once":
                answers["t-seen"] = answers.get("t-seen", 0) + 1
                status = 200
                if answers["t-seen"] == 1:  # promise more than is sent, then hang up
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body) + 50))
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", answers
    server.shutdown()
    server.server_close()
    thread.join()
