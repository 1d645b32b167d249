"""Injected latency and faults over real HTTP on 127.0.0.1: each kind, rates, determinism, configure, stop, the log."""

from __future__ import annotations

import collections
import email.utils
import json
import random
import re
import socket
import threading
import time

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from nb_ops import simulator
from nb_ops.simulator import FAULT_KINDS, Faults, RequestRecord
from nb_ops.simulator.faults import fault_draw

PATH = "/v1/operations/"
T0 = 1_750_000_000.0
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
MIXED = {"error_rate": 0.1, "rate_limit_rate": 0.1, "drop_rate": 0.05, "stall_rate": 0.05, "corrupt_rate": 0.1}


def get(session, sim, segment, *, timeout=5.0, key=None, **kwargs):
    """GET ``/v1/operations/<segment>`` with the simulator's key."""
    headers = kwargs.pop("headers", {"Authorization": f"Bearer {key or sim.api_key}"})
    return session.get(sim.base_url + PATH + segment, headers=headers, timeout=timeout, **kwargs)


def outcome(session, sim, segment, **kwargs):
    """What a client sees: a status, "corrupt" for a 200 that is not JSON, or the transport error's kind."""
    try:
        r = get(session, sim, segment, **kwargs)
    except requests.ReadTimeout:
        return "timeout"
    except requests.ConnectionError:
        return "drop"
    if r.status_code == 200:
        try:
            r.json()
        except requests.JSONDecodeError:
            return "corrupt"
    return r.status_code


def expected_outcome(fault):
    """The outcome a client sees for each fault (stalls here are 0 s, so answered normally)."""
    return {"error": "5xx", "rate_limit": 429, "drop": "drop", "stall": 200, "corrupt": "corrupt", None: 200}[fault]


def run_threads(n, target, timeout=30):
    errors = []

    def wrapped(k):
        try:
            target(k)
        except Exception as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


def bulk_session():
    """A Session for many requests: loopback needs no proxy lookups from the environment (~0.5 ms a request)."""
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


# -- each kind ----------------------------------------------------------------------------


def test_errors_are_5xx_with_json_or_html_bodies(start_sim, session):
    s = start_sim(size=20, speed=0, faults={"error_rate": 1.0})
    seen = collections.Counter()
    for k in range(80):
        r = get(session, s, s.operation_ids[k % 20])
        assert r.status_code in (500, 502, 503)
        assert int(r.headers["Content-Length"]) == len(r.content) < 512
        kind = r.headers["Content-Type"]
        if kind == "application/json":
            assert set(r.json()) == {"detail"} and isinstance(r.json()["detail"], str)
        else:
            assert kind == "text/html"
            assert r.text.startswith("<html>") and str(r.status_code) in r.text
        seen[r.status_code, kind] += 1
    assert {status for status, _ in seen} == {500, 502, 503}
    assert {kind for _, kind in seen} == {"application/json", "text/html"}
    assert {r.fault for r in s.requests} == {"error"}
    assert [r.status for r in s.requests] == [r.status for r in s.requests if r.status in (500, 502, 503)]


@pytest.mark.parametrize(("retry_after", "header"), [(None, "1"), (3, "3"), (0, "0"), (1.5, "2")])
def test_rate_limit_with_retry_after_seconds(start_sim, session, retry_after, header):
    faults = {"rate_limit_rate": 1.0}
    if retry_after is not None:
        faults["retry_after"] = retry_after
    s = start_sim(size=3, faults=faults)
    r = get(session, s, s.operation_ids[0])
    assert r.status_code == 429
    assert r.json() == {"detail": "Rate limit exceeded"}
    assert r.headers["Retry-After"] == header
    assert s.requests_for(s.operation_ids[0])[-1].fault == "rate_limit"


@pytest.mark.parametrize("retry_after", [0, 2, 2.5])
def test_rate_limit_with_retry_after_http_date_rounds_up(start_sim, session, retry_after):
    s = start_sim(size=3, faults={"rate_limit_rate": 1.0, "retry_after": retry_after, "retry_after_format": "http-date"})
    r = get(session, s, s.operation_ids[1])
    received = time.time()
    assert r.status_code == 429
    value = r.headers["Retry-After"]
    assert IMF_FIXDATE.match(value), value
    date = email.utils.parsedate_to_datetime(value).timestamp()
    # Never sooner than retry_after (the client's own parse agrees), at most ~1 s later.
    assert retry_after < date - received <= retry_after + 1.2
    assert retry_after <= Retry().parse_retry_after(value) <= retry_after + 1.2


def test_drop_closes_the_connection_without_a_response(start_sim, session):
    s = start_sim(size=3, faults={"drop_rate": 1.0})
    with pytest.raises(requests.ConnectionError) as info:
        get(session, s, s.operation_ids[0])
    assert isinstance(info.value.args[0], urllib3.exceptions.ProtocolError)
    assert "Remote end closed connection without response" in str(info.value)
    # http.client sees the same thing.
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
        raw.sendall(f"GET {PATH}{s.operation_ids[0]} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert raw.recv(1024) == b""  # EOF, not a byte of a response
    assert [(r.fault, r.status, r.attempt) for r in s.requests] == [("drop", None, 1), ("drop", None, 2)]
    s.configure(faults={})
    assert get(session, s, s.operation_ids[0]).status_code == 200


def test_stall_times_a_short_read_timeout_out_and_blocks_no_one_else(start_sim):
    s = start_sim(size=32, faults={"stall_rate": 1.0, "stall_seconds": 30, "only_ids": [f"{'0' * 31}{k}" for k in range(4)]})
    with requests.Session() as stalled:
        began = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            get(stalled, s, "0" * 32, timeout=(5, 0.3))
        assert 0.3 <= time.monotonic() - began < 10  # the stall itself lasts 30 s
    holders = []
    for k in range(1, 4):
        raw = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        raw.sendall(f"GET {PATH}{'0' * 31}{k} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        holders.append(raw)
    deadline = time.monotonic() + 5
    while len(s.requests) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)  # until all four are in their stall (requests are logged on arrival)
    assert [(r.fault, r.status) for r in s.requests] == [("stall", None)] * 4
    # 32 concurrent clients are served at once while the stalls hold their connections.
    began = time.monotonic()

    def worker(k):
        with requests.Session() as session:
            for j in range(2):
                assert get(session, s, s.operation_ids[(k + j) % 32]).status_code == 200

    run_threads(32, worker)
    assert time.monotonic() - began < 15  # not held up by the 30 s stalls
    began = time.monotonic()
    s.stop()
    assert time.monotonic() - began < 10  # four requests were still stalled for ~30 s
    for raw in holders:
        assert raw.recv(1024) == b""  # dropped without a response
        raw.close()
    assert [r.fault for r in s.requests if r.fault] == ["stall"] * 4


def test_a_short_stall_then_answers_normally_and_is_logged_while_it_stalls(start_sim, session):
    s = start_sim(size=3, speed=0, start_time=T0, faults={"stall_rate": 1.0, "stall_seconds": 2.0})
    replies = []
    began = time.monotonic()
    sender = threading.Thread(target=lambda: replies.append(get(session, s, s.operation_ids[0])))
    sender.start()
    while not s.requests and time.monotonic() - began < 1.5:
        time.sleep(0.01)
    assert [r[-2:] for r in s.requests] == [("stall", None)]  # logged on arrival, status pending
    sender.join(10)
    assert time.monotonic() - began >= 2.0
    assert replies[0].status_code == 200 and replies[0].json() == s.snapshot(s.operation_ids[0])
    assert [r[-2:] for r in s.requests] == [("stall", 200)]


def test_corrupt_bodies_are_200_with_exact_length_and_not_json(start_sim, session):
    s = start_sim(size=10, speed=0, start_time=T0, faults={"corrupt_rate": 1.0})
    kinds = collections.Counter()
    for k in range(40):
        op_id = s.operation_ids[k % 10]
        r = get(session, s, op_id)
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == len(r.content) > 0
        with pytest.raises(ValueError):
            json.loads(r.content)
        with pytest.raises(requests.JSONDecodeError):
            r.json()
        kind = r.headers["Content-Type"]
        if kind == "application/json":  # the first half of the real answer
            full = json.dumps(s.snapshot(op_id), separators=(",", ":")).encode()
            assert full.startswith(r.content) and len(r.content) == len(full) // 2
        else:
            assert kind.startswith("text/plain")
        kinds[kind] += 1
    assert set(kinds) == {"application/json", "text/plain; charset=utf-8"}
    assert {(r.fault, r.status) for r in s.requests} == {("corrupt", 200)}


def test_only_ids_limits_faults(start_sim, session):
    s = start_sim(size=4, faults={"error_rate": 1.0, "only_ids": iter(["x", "not-in-fleet"])})
    s.configure(faults={"error_rate": 1.0, "only_ids": {s.operation_ids[0]}})
    assert s.faults.only_ids == frozenset({s.operation_ids[0]})
    for _ in range(3):
        assert get(session, s, s.operation_ids[0]).status_code in (500, 502, 503)
        assert get(session, s, s.operation_ids[1]).status_code == 200
    assert [r.fault for r in s.requests_for(s.operation_ids[1])] == [None] * 3
    assert [r.fault for r in s.requests_for(s.operation_ids[0])] == ["error"] * 3


def test_faults_come_before_auth_and_id_checks_and_only_on_the_operations_path(start_sim, session):
    s = start_sim(size=2, faults={"rate_limit_rate": 1.0})
    assert get(session, s, s.operation_ids[0], headers={}).status_code == 429  # no key
    assert get(session, s, "a%20b").status_code == 429  # an invalid id
    assert get(session, s, "0" * 32).status_code == 429  # an unknown id
    r = session.get(s.base_url + "/v1/other", timeout=5)
    assert r.status_code == 404
    assert s.requests[-1] == s.requests[-1]._replace(path="/v1/other", operation_id=None, attempt=None, fault=None, status=404)
    assert s.requests_for("a b")[0].path == PATH + "a%20b"  # ids are logged percent-decoded


# -- rates and determinism ---------------------------------------------------------------------


def test_the_rule_walks_cumulative_rates_in_a_fixed_order():
    faults = Faults.from_mapping(MIXED)
    draws = {"error": (0, 0.1), "rate_limit": (0.1, 0.2), "drop": (0.2, 0.25), "stall": (0.25, 0.3), "corrupt": (0.3, 0.4)}
    counts = collections.Counter()
    for attempt in range(1, 20_001):
        u, variant = fault_draw(7, "op", attempt)
        kind = faults.choose(7, "op", attempt)
        lo, hi = draws.get(kind, (0.4, 1.0))
        assert lo <= u < hi and 0 <= variant < 256
        counts[kind] += 1
    for kind, rate in [*((k, MIXED[f"{k}_rate"]) for k in FAULT_KINDS), (None, 0.6)]:
        assert abs(counts[kind] / 20_000 - rate) < 0.015, (kind, counts[kind])
    assert fault_draw(7, "op", 1) == fault_draw(7, "op", 1) != fault_draw(8, "op", 1)
    assert Faults().choose(7, "op", 1) is None and not Faults().active


def test_rates_are_roughly_respected_and_each_request_gets_its_rule(start_sim):
    faults = dict(MIXED, stall_seconds=0)
    s = start_sim(size=200, speed=0, seed=4, faults=faults)
    seen = collections.Counter()
    lock = threading.Lock()

    def worker(k):
        # Each thread owns 50 ids, so it knows their attempt numbers.
        mine = s.operation_ids[k * 50 : (k + 1) * 50]
        attempts = collections.Counter()
        with bulk_session() as session:
            for j in range(500):
                op_id = mine[j % 50]
                attempts[op_id] += 1
                got = outcome(session, s, op_id)
                got = "5xx" if got in (500, 502, 503) else got
                assert got == expected_outcome(s.faults.choose(s.seed, op_id, attempts[op_id]))
                with lock:
                    seen[got] += 1

    run_threads(4, worker)
    records = s.requests
    assert len(records) == 2_000 == sum(seen.values())
    by_fault = collections.Counter(r.fault for r in records)
    for kind in FAULT_KINDS:
        assert abs(by_fault[kind] - 2_000 * faults[f"{kind}_rate"]) < 60, by_fault
    assert by_fault[None] + by_fault["stall"] == seen[200]
    assert all(r.fault == s.faults.choose(4, r.operation_id, r.attempt) for r in records)


def test_same_seed_same_faults_from_one_thread_or_sixteen(start_sim):
    """Each id gets 8 requests; who sends them, and in what order, does not change which faults they get."""
    faults = dict(MIXED, stall_seconds=0)
    one = start_sim(size=32, speed=0, seed=3, start_time=T0, faults=faults)
    many = start_sim(size=32, speed=0, seed=3, start_time=T0, faults=faults)
    plan = [op_id for op_id in one.operation_ids for _ in range(8)]

    with bulk_session() as session:
        for op_id in plan:
            outcome(session, one, op_id)

    shuffled = plan[:]
    random.Random(1).shuffle(shuffled)

    def worker(k):
        with bulk_session() as session:
            for op_id in shuffled[k::16]:
                outcome(session, many, op_id)

    run_threads(16, worker)

    def faults_of(sim):
        return sorted((r.operation_id, r.attempt, r.fault or "", r.status or 0) for r in sim.requests)

    assert len(one.requests) == len(many.requests) == 256
    assert faults_of(one) == faults_of(many)
    assert sum(r.fault is not None for r in one.requests) > 60
    # Another seed would have given the same requests other faults.
    seed_4 = Faults.from_mapping(faults)
    assert [r.fault for r in one.requests] != [seed_4.choose(4, r.operation_id, r.attempt) for r in one.requests]
    # And again after clear_requests(): attempt numbers restart, the same faults come back.
    before = faults_of(one)
    one.clear_requests()
    assert one.requests == []
    with bulk_session() as session:
        for op_id in reversed(plan):
            outcome(session, one, op_id)
    assert faults_of(one) == before


def test_urllib3_retry_gets_through_errors_rate_limits_and_drops(start_sim):
    """What a client with urllib3's Retry sees: every GET ends in a 200 after a few attempts."""
    s = start_sim(size=20, faults={"error_rate": 0.3, "rate_limit_rate": 0.2, "drop_rate": 0.1, "retry_after": 0})
    retry = Retry(total=20, backoff_factor=0, status_forcelist=(429, 500, 502, 503), allowed_methods={"GET"})
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(max_retries=retry))
        for op_id in s.operation_ids:
            r = get(session, s, op_id)
            assert r.status_code == 200 and r.json()["id"] == op_id
    for op_id in s.operation_ids:
        log = s.requests_for(op_id)
        assert [r.attempt for r in log] == list(range(1, len(log) + 1))
        assert log[-1].fault is None and all(r.fault for r in log[:-1])
    assert {r.fault for r in s.requests} == {None, "error", "rate_limit", "drop"}


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "named"),
    [
        ({"bogus": 1}, "bogus"),
        ({"error_rate": 0.1, "errors_rate": 0.1}, "errors_rate"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"drop_rate": -0.1}, "drop_rate"),
        ({"stall_rate": "0.1"}, "stall_rate"),
        ({"corrupt_rate": True}, "corrupt_rate"),
        ({"rate_limit_rate": float("nan")}, "rate_limit_rate"),
        ({"error_rate": 0.6, "drop_rate": 0.5}, "drop_rate"),
        ({"retry_after": -1}, "retry_after"),
        ({"retry_after": float("inf")}, "retry_after"),
        ({"stall_seconds": 1e300}, "stall_seconds"),
        ({"retry_after": "1"}, "retry_after"),
        ({"retry_after_format": "minutes"}, "retry_after_format"),
        ({"stall_seconds": -0.5}, "stall_seconds"),
        ({"only_ids": "abc"}, "only_ids"),
        ({"only_ids": [1, 2]}, "only_ids"),
        ({"only_ids": 5}, "only_ids"),
        ([("error_rate", 0.5)], "faults"),
    ],
)
def test_bad_faults_are_refused_naming_the_key(start_sim, faults, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        simulator.start(size=1, faults=faults)
    s = start_sim(size=1, faults={"error_rate": 0.5})
    with pytest.raises(ValueError, match=re.escape(named)):
        s.configure(latency=0.5, faults=faults)
    assert s.faults == Faults(error_rate=0.5) and s.latency == 0  # nothing changed


@pytest.mark.parametrize("latency", [-0.1, float("nan"), float("inf"), 1e12, "1", True])
def test_bad_latency_is_refused(latency):
    with pytest.raises(ValueError, match="latency"):
        simulator.start(size=1, latency=latency)


def test_rates_may_add_up_to_exactly_one():
    faults = Faults.from_mapping({"error_rate": 0.1, "rate_limit_rate": 0.2, "corrupt_rate": 0.7, "only_ids": None})
    assert faults.active and faults.only_ids is None
    assert {faults.choose(0, "x", n) for n in range(1, 200)} == {"error", "rate_limit", "corrupt"}
    assert Faults.from_mapping({}) == Faults.from_mapping(None) == Faults()


# -- latency, configure, stop ------------------------------------------------------------------


def test_latency_delays_every_response_and_can_change(start_sim, session):
    s = start_sim(size=2, latency=0.5)
    for segment in (s.operation_ids[0], "a%20b"):
        began = time.monotonic()
        get(session, s, segment)
        assert time.monotonic() - began >= 0.5
    s.configure(latency=0)
    began = time.monotonic()
    assert get(session, s, s.operation_ids[0]).status_code == 200
    assert time.monotonic() - began < 0.45  # no longer the old latency
    assert s.latency == 0.0 and "latency" not in repr(s)
    s.configure(latency=0.1)
    assert "latency=0.1" in repr(s)


def test_latency_is_paid_in_parallel(start_sim):
    s = start_sim(size=32, latency=0.05)

    def worker(k):
        with requests.Session() as session:
            for j in range(20):
                assert get(session, s, s.operation_ids[(k + j) % 32]).status_code == 200

    began = time.monotonic()
    run_threads(16, worker)
    elapsed = time.monotonic() - began
    assert len(s.requests) == 320
    assert elapsed < 8, elapsed  # ~1 s in parallel; one at a time would take 16 s


def test_configure_changes_and_clears_faults_at_run_time(start_sim, session):
    s = start_sim(size=2)
    op_id = s.operation_ids[0]
    assert get(session, s, op_id).status_code == 200 and s.faults == Faults()
    s.configure(faults={"rate_limit_rate": 1.0, "retry_after": 7})
    assert "faults=on" in repr(s)
    assert get(session, s, op_id).headers["Retry-After"] == "7"
    s.configure(latency=0.01)  # faults=None leaves them
    assert get(session, s, op_id).status_code == 429
    s.configure(faults={"error_rate": 1.0})  # replaces, does not merge
    assert s.faults.rate_limit_rate == 0 and get(session, s, op_id).status_code in (500, 502, 503)
    s.configure(faults={})
    assert get(session, s, op_id).status_code == 200 and not s.faults.active and s.latency == 0.01
    assert [r.fault for r in s.requests] == [None, "rate_limit", "rate_limit", "error", None]


def test_stop_is_prompt_while_requests_wait_for_latency(start_sim):
    s = start_sim(size=2, latency=30)
    failures = []

    def waiter(k):
        with requests.Session() as session:
            try:
                get(session, s, s.operation_ids[k % 2], timeout=10)
            except requests.ConnectionError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=waiter, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(s._server._connections) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    began = time.monotonic()
    s.stop()
    assert time.monotonic() - began < 10  # the latency is 30 s
    for t in threads:
        t.join(5)
    assert len(failures) == 4  # dropped, not answered late


# -- the request log ---------------------------------------------------------------------------------


def test_the_request_log_records_attempts_faults_and_statuses(start_sim, session):
    s = start_sim(size=3, faults={"drop_rate": 0.5, "only_ids": ["0" * 32]})
    a, b = s.operation_ids[:2]
    began = time.monotonic()
    for op_id in (a, b, a, a):
        get(session, s, op_id)
    session.head(s.base_url + PATH + b, headers={"Authorization": f"Bearer {s.api_key}"}, timeout=5)
    get(session, s, b, key="wrong")
    for _ in range(6):
        outcome(session, s, "0" * 32)
    log = s.requests
    assert all(isinstance(r, RequestRecord) for r in log)
    assert [r.attempt for r in s.requests_for(a)] == [1, 2, 3]
    assert [(r.method, r.attempt, r.status) for r in s.requests_for(b)] == [("GET", 1, 200), ("HEAD", 2, 200), ("GET", 3, 401)]
    assert all(r.path == PATH + r.operation_id and r.fault is None for r in log[:6])
    unknown = s.requests_for("0" * 32)
    assert [r.fault for r in unknown] == [s.faults.choose(s.seed, "0" * 32, n) for n in range(1, 7)]
    assert {r.fault for r in unknown} == {"drop", None}
    assert all((r.status is None) == (r.fault == "drop") for r in unknown)
    assert {r.status for r in unknown if r.fault is None} == {404}
    times = [r.time for r in log]
    assert began <= times[0] and times == sorted(times) and times[-1] <= time.monotonic()
    log.clear()  # a copy
    assert len(s.requests) == 12
    s.clear_requests()
    assert s.requests == [] and s.requests_for(a) == []
    get(session, s, a)
    assert s.requests_for(a)[0].attempt == 1


def test_faults_keep_the_log_quiet(start_sim, caplog, capfd):
    s = start_sim(size=4, faults={**MIXED, "stall_seconds": 0.2})
    with caplog.at_level("DEBUG", logger="nb_ops.simulator"):
        with requests.Session() as session:
            for k in range(60):
                outcome(session, s, s.operation_ids[k % 4], timeout=(5, 0.05))  # stalls time out: client gone
        time.sleep(0.4)  # let stalled handlers write to their closed sockets
        s.stop()
    louder = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelname != "DEBUG"]
    assert louder == [("INFO", f"simulator on {s.base_url} stopped")]
    assert any("injecting drop" in r.getMessage() for r in caplog.records)
    assert capfd.readouterr().err == ""
