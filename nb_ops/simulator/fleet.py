"""The simulated fleet: a deterministic set of operations that evolve with simulated time.

A :class:`Fleet` is built from a ``seed`` and a ``size``. It stores only a
compact *plan* per operation (id, type, final status and a few planned times,
in flat arrays) and builds each ``OperationResponse`` dict on demand, so a
100 000-operation fleet starts in well under a second and takes a few MB.

What is deterministic
    The same ``seed`` and ``size`` give the same ids, in the same order, and the
    same content. Planned times are stored as offsets from the fleet's
    ``epoch`` (the simulated unix time at start), so two fleets with the same
    seed and epoch answer identically at the same simulated time. Ids of a
    smaller fleet are a prefix of the ids of a larger one with the same seed.

Coverage
    The first 36 operations (or all of them, in a smaller fleet) are a shuffled
    grid of every ``type`` x every status *at the start*; the rest are drawn
    with realistic weights (mostly ``succeeded``; ``finetuning`` and
    ``batch_inference`` most common). The grid's succeeded ``finetuning``
    operation always carries write-only secrets (see below).

Time model (all times in simulated seconds, relative to the epoch ``t0``)
    - Terminal and ``unknown`` operations were created within the previous
      :data:`HISTORY_SECONDS` (7 days) and have fixed times.
    - ``running`` operations started :data:`RUNNING_STARTED_BEFORE` before
      ``t0`` and finish :data:`RUNNING_FINISH_AFTER` after it (3-40 minutes).
    - ``queued`` operations start :data:`QUEUED_START_AFTER` after ``t0``
      (0.5-10 minutes), then run for :data:`QUEUED_RUN_FOR` (2-30 minutes).
    - Both then end with their planned final status (mostly ``succeeded``,
      some ``failed``, a few ``cancelled``). ``unknown`` stays ``unknown``.
    - The status is derived from the plan and the simulated time ``now``:
      ``queued`` -> (``in_progress_at`` set) ``running`` -> (``finished_at``
      set) terminal. A cancelled operation may never have started.

    So at ``speed=60`` (one simulated minute per second) everything queued or
    running at start is terminal within about 40 s of wall time.

Fine-tuning progress
    ``total_steps`` is fixed per job. ``trained_steps`` is null while queued,
    then grows linearly from 0 (``floor``) while running, and ``estimated_finish`` is the planned finish plus
    noise that changes every simulated minute; ``trained_tokens`` is null.
    Succeeded jobs have ``trained_steps == total_steps`` and ``trained_tokens``;
    failed or cancelled ones keep their partial ``trained_steps`` (null if they
    never started). ``estimated_finish`` is only set while running.

Secrets
    A few fine-tuning operations (always at least one in a fleet of 36 or more)
    use the *request* variants of integrations and checkpoints, so they carry
    write-only secrets: ``wandb.api_key``, ``mlflow.password``, ``hf.api_token``
    and ``from_checkpoint.token``. Their values are fake and recognisable: they
    start with :data:`SECRET_PREFIX` (``"simsecret-"``), so tests can search a
    rendered output for that prefix.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import threading
import time
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, NamedTuple

from ..spec import STATUSES, TYPES

__all__ = [
    "Fleet",
    "Plan",
    "SimClock",
    "SECRET_PREFIX",
    "HISTORY_SECONDS",
    "RUNNING_STARTED_BEFORE",
    "RUNNING_FINISH_AFTER",
    "QUEUED_START_AFTER",
    "QUEUED_RUN_FOR",
]

#: Every fake secret value starts with this.
SECRET_PREFIX: Final = "simsecret-"
#: Historical operations were created within this many seconds before ``t0``.
HISTORY_SECONDS: Final = 7 * 86_400
#: (min, max) simulated seconds before ``t0`` that a running-at-start operation started.
RUNNING_STARTED_BEFORE: Final = (60, 3_600)
#: (min, max) simulated seconds after ``t0`` that a running-at-start operation finishes.
RUNNING_FINISH_AFTER: Final = (180, 2_400)
#: (min, max) simulated seconds after ``t0`` that a queued-at-start operation starts.
QUEUED_START_AFTER: Final = (30, 600)
#: (min, max) simulated seconds a queued-at-start operation then runs.
QUEUED_RUN_FOR: Final = (120, 1_800)

#: Largest fleet: ten million plans take about 2 GB and a minute to draw.
MAX_SIZE: Final = 10_000_000
#: Size of the type x status grid that opens every fleet.
GRID_SIZE: Final = len(TYPES) * len(STATUSES)

_NONE: Final = -(2**63)  # "null" in the int64 plan arrays

# Weights of the operations after the grid, by status *at start* and by type.
_STATUS_WEIGHTS: Final = {
    "queued": 3,
    "running": 5,
    "succeeded": 70,
    "failed": 12,
    "cancelled": 8,
    "unknown": 2,
}
_TYPE_WEIGHTS: Final = {
    "yql": 12,
    "materialize_history": 8,
    "batch_inference": 30,
    "finetuning": 30,
    "file_to_dataset": 10,
    "dataset_to_file": 10,
}
# How an operation that is queued or running at start ends.
_FINAL_WEIGHTS: Final = {"succeeded": 80, "failed": 14, "cancelled": 6}
# Share of fine-tuning operations (after the grid) that carry secrets.
_SECRET_SHARE: Final = 0.03
# (min, max) run time in simulated seconds of historical operations, by type.
_DURATIONS: Final = {
    "yql": (5, 900),
    "materialize_history": (60, 1_800),
    "batch_inference": (600, 86_400),
    "finetuning": (900, 6 * 3_600),
    "file_to_dataset": (5, 300),
    "dataset_to_file": (5, 300),
}
_QUEUE_WAIT: Final = (2, 900)

_TYPE_CODE: Final = {t: i for i, t in enumerate(TYPES)}
_STATUS_CODE: Final = {s: i for i, s in enumerate(STATUSES)}


class Plan(NamedTuple):
    """The stored plan of one operation; times are absolute simulated unix seconds.

    ``start`` and ``finish`` are None when the operation never starts or never
    finishes. ``progress`` is the share of the work done when it finishes
    (1.0 for success), used for fine-tuning steps.
    """

    position: int
    id: str
    type: str
    final_status: str
    created: int
    start: int | None
    finish: int | None
    progress: float
    secrets: bool


class SimClock:
    """Simulated time: ``t0 + (monotonic() - m0) * speed``, plus any :meth:`advance`.

    Parameters
    ----------
    speed : float
        Simulated seconds per real second; 0 freezes the clock at ``t0``.
    t0 : float, optional
        Simulated unix time at creation; the real wall-clock time by default.
    """

    def __init__(self, speed: float = 60.0, t0: float | None = None) -> None:
        speed = float(speed)
        if not math.isfinite(speed) or speed < 0:
            raise ValueError(f"speed must be a finite number >= 0, not {speed!r}")
        self.speed = speed
        self.t0 = time.time() if t0 is None else float(t0)
        self._m0 = time.monotonic()
        self._skipped = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Return the current simulated unix time."""
        with self._lock:
            return self.t0 + self._skipped + (time.monotonic() - self._m0) * self.speed

    def set_speed(self, speed: float) -> float:
        """Run at ``speed`` simulated seconds per real second from now on (time so far is kept); return now."""
        speed = float(speed)
        if not math.isfinite(speed) or speed < 0:
            raise ValueError(f"speed must be a finite number >= 0, not {speed!r}")
        with self._lock:
            moment = time.monotonic()
            self._skipped += (moment - self._m0) * self.speed
            self._m0, self.speed = moment, speed
            return self.t0 + self._skipped

    def advance(self, seconds: float) -> float:
        """Jump simulated time forward by ``seconds`` (>= 0) and return the new time."""
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"simulated time only moves forward; seconds must be >= 0, not {seconds!r}")
        with self._lock:
            self._skipped += seconds
        return self.now()

    def __repr__(self) -> str:
        return f"SimClock(speed={self.speed!r}, t0={self.t0!r})"


def _hex(rng: random.Random, bits: int = 128) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _log_uniform(rng: random.Random, low: float, high: float) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def _id_stream(rng: random.Random, chunk: int = 1024) -> Iterator[str]:
    """Yield 32-hex-digit ids; drawn in fixed chunks, so a smaller fleet's ids are a prefix."""
    while True:
        block = rng.randbytes(16 * chunk).hex()
        for i in range(0, len(block), 32):
            yield block[i : i + 32]


class _Draw:
    """Fast draws from one ``random.Random``, built on ``random()`` only (planning 100k ops is hot)."""

    def __init__(self, rng: random.Random) -> None:
        self.random = rng.random

    def integer(self, low: int, high: int) -> int:
        """Uniform int in [low, high]."""
        return low + int(self.random() * (high - low + 1))

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def log_uniform(self, low: float, high: float) -> int:
        return int(low * (high / low) ** self.random())

    def weighted(self, table: tuple[tuple[str, ...], list[int]]) -> str:
        keys, cumulative = table
        return keys[bisect.bisect(cumulative, self.random() * cumulative[-1])]


def _table(weights: dict[str, int]) -> tuple[tuple[str, ...], list[int]]:
    return tuple(weights), list(itertools.accumulate(weights.values()))


_FINALS: Final = _table(_FINAL_WEIGHTS)


class Fleet:
    """A deterministic fleet of simulated operations.

    Parameters
    ----------
    seed : int
        Seed of every random choice.
    size : int
        Number of operations (>= 0).
    epoch : int
        Simulated unix time (seconds) that planned times are relative to;
        normally ``int(clock.t0)``.

    Example
    -------
    >>> fleet = Fleet(seed=0, size=60, epoch=1_750_000_000)
    >>> fleet.snapshot(fleet.ids[0], now=1_750_000_000)["id"] == fleet.ids[0]
    True
    """

    def __init__(self, seed: int = 0, size: int = 60, *, epoch: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
            raise ValueError(f"size must be an int from 0 to {MAX_SIZE:,}, not {size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, not {seed!r}")
        self.seed = seed
        self.size = size
        self.epoch = int(epoch)
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        # Compact, column-wise plans (times are offsets from epoch), filled by _plan_all.
        self._type = self._final = self._secrets = bytearray()
        self._created = self._start = self._finish = array("q")
        self._progress = array("d")
        self._plan_all(random.Random(f"nb_ops-fleet:{seed}"))
        self._datasets = self._dataset_pool(random.Random(f"nb_ops-datasets:{seed}"))

    # -- planning ---------------------------------------------------------

    def _plan_all(self, rng: random.Random) -> None:
        grid = [(t, s) for t in TYPES for s in STATUSES]
        rng.shuffle(grid)
        draw = _Draw(rng)
        statuses, types = _table(_STATUS_WEIGHTS), _table(_TYPE_WEIGHTS)
        new_ids = _id_stream(random.Random(f"nb_ops-ids:{self.seed}"))
        index, plan_times = self._index, self._plan_times
        ids, kinds, finals, flags = self._ids, [], [], []
        created_at, starts, finishes, progresses = [], [], [], []
        for i in range(self.size):
            if i < GRID_SIZE:
                op_type, status = grid[i]
                secrets = op_type == "finetuning" and status == "succeeded"
            else:
                status = draw.weighted(statuses)
                op_type = draw.weighted(types)
                secrets = op_type == "finetuning" and draw.random() < _SECRET_SHARE
            op_id = next(new_ids)
            while op_id in index:  # pragma: no cover - 2**-128 odds
                op_id = next(new_ids)
            created, start, finish, final, progress = plan_times(draw, op_type, status)
            index[op_id] = i
            ids.append(op_id)
            kinds.append(_TYPE_CODE[op_type])
            finals.append(_STATUS_CODE[final])
            flags.append(secrets)
            created_at.append(created)
            starts.append(_NONE if start is None else start)
            finishes.append(_NONE if finish is None else finish)
            progresses.append(progress)
        self._type = bytearray(kinds)
        self._final = bytearray(finals)
        self._secrets = bytearray(flags)
        self._created = array("q", created_at)
        self._start = array("q", starts)
        self._finish = array("q", finishes)
        self._progress = array("d", progresses)

    @staticmethod
    def _plan_times(draw: _Draw, op_type: str, status: str) -> tuple[int, int | None, int | None, str, float]:
        """Return (created, start, finish, final_status, progress), offsets from epoch."""
        wait = draw.integer(*_QUEUE_WAIT)
        if status == "running":
            start = -draw.integer(*RUNNING_STARTED_BEFORE)
            finish = draw.integer(*RUNNING_FINISH_AFTER)
            final = draw.weighted(_FINALS)
            progress = 1.0 if final == "succeeded" else draw.uniform(0.3, 0.95)
            return start - wait, start, finish, final, progress
        if status == "queued":
            created = -draw.integer(5, 600)
            start = draw.integer(*QUEUED_START_AFTER)
            finish = start + draw.integer(*QUEUED_RUN_FOR)
            final = draw.weighted(_FINALS)
            progress = 1.0 if final == "succeeded" else draw.uniform(0.05, 0.95)
            if final == "cancelled" and draw.random() < 0.5:
                # Cancelled while still waiting: never starts.
                return created, None, start, final, 0.0
            return created, start, finish, final, progress
        if status == "cancelled" and draw.random() < 0.3:
            # Cancelled before it ever started.
            finished_after = draw.integer(10, 3_600)
            created = -draw.integer(finished_after + 60, HISTORY_SECONDS)
            return created, None, created + finished_after, status, 0.0
        duration = draw.log_uniform(*_DURATIONS[op_type])
        progress = 1.0 if status == "succeeded" else draw.uniform(0.05, 0.95)
        ran_for = max(1, int(duration * progress))
        created = -draw.integer(wait + ran_for + 60, HISTORY_SECONDS)
        start = created + wait
        if status == "unknown":
            if draw.random() < 0.3:
                return created, None, None, status, 0.0
            return created, start, None, status, progress
        return created, start, start + ran_for, status, progress

    @staticmethod
    def _dataset_pool(rng: random.Random) -> list[str]:
        # Operations share source datasets, as real users' do.
        return [_hex(rng) for _ in range(48)]

    # -- reading ----------------------------------------------------------

    @property
    def ids(self) -> list[str]:
        """Operation ids in fleet order (a copy)."""
        return list(self._ids)

    def __len__(self) -> int:
        return self.size

    def __contains__(self, operation_id: object) -> bool:
        return operation_id in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def plan(self, operation_id: str) -> Plan:
        """Return the plan of one operation, with absolute times.

        Raises
        ------
        KeyError
            If no operation has this id.
        """
        i = self._index[operation_id]
        e = self.epoch
        start, finish = self._start[i], self._finish[i]
        return Plan(
            position=i,
            id=operation_id,
            type=TYPES[self._type[i]],
            final_status=STATUSES[self._final[i]],
            created=e + self._created[i],
            start=None if start == _NONE else e + start,
            finish=None if finish == _NONE else e + finish,
            progress=self._progress[i],
            secrets=bool(self._secrets[i]),
        )

    def snapshot(self, operation_id: str, now: float) -> dict[str, Any]:
        """Build the ``OperationResponse`` dict of one operation at simulated time ``now``.

        Each call returns a new dict that the caller may modify.

        Parameters
        ----------
        operation_id : str
            Id of an operation of this fleet.
        now : float
            Simulated unix time.

        Returns
        -------
        dict
            The JSON-ready response body.

        Raises
        ------
        KeyError
            If no operation has this id.
        """
        plan = self.plan(operation_id)
        status, in_progress_at, finished_at = _state(plan, now)
        rng = random.Random(f"nb_ops-op:{self.seed}:{plan.id}")
        params, src, dst, extra = _BUILDERS[plan.type](self, rng, plan)
        ai_project_id = rng.choice(_PROJECTS)
        if plan.type == "finetuning":
            params.update(_finetuning_progress(self.seed, plan, status, now, extra))
        if status != "succeeded":
            # Output datasets get their version when the operation succeeds.
            for d in dst:
                d["version"] = None
        return {
            "id": plan.id,
            "type": plan.type,
            "params": params,
            "src": src,
            "dst": dst,
            "status": status,
            "created_at": plan.created,
            "in_progress_at": in_progress_at,
            "finished_at": finished_at,
            "ai_project_id": ai_project_id,
        }

    def statuses(self, now: float) -> dict[str, str]:
        """Return ``{id: status}`` of every operation at simulated time ``now`` (cheap)."""
        return {op_id: _state(self.plan(op_id), now)[0] for op_id in self._ids}

    def __repr__(self) -> str:
        return f"Fleet(seed={self.seed!r}, size={self.size!r}, epoch={self.epoch!r})"


def _state(plan: Plan, now: float) -> tuple[str, int | None, int | None]:
    """Return (status, in_progress_at, finished_at) of a plan at simulated time ``now``."""
    if plan.final_status == "unknown":
        return "unknown", plan.start, None
    if plan.finish is not None and now >= plan.finish:
        return plan.final_status, plan.start, plan.finish
    if plan.start is not None and now >= plan.start:
        return "running", plan.start, None
    return "queued", None, None


def _finetuning_progress(
    seed: int, plan: Plan, status: str, now: float, extra: dict[str, int]
) -> dict[str, int | None]:
    total = extra["total_steps"]
    out: dict[str, int | None] = {
        "trained_steps": None,
        "total_steps": total,
        "trained_tokens": None,
        "estimated_finish": None,
    }
    if status == "queued" or plan.start is None:
        pass  # not started yet, or never (cancelled in the queue, unknown)
    elif status == "running":
        assert plan.finish is not None
        # Planned run time if the job were to complete all its steps.
        full = (plan.finish - plan.start) / max(plan.progress, 1e-9)
        share = min(max((now - plan.start) / full, 0.0), 1.0)
        out["trained_steps"] = min(int(total * share), total)
        # The estimate wobbles every simulated minute, less as the end nears.
        wobble = random.Random(f"nb_ops-eta:{seed}:{plan.id}:{int(now // 60)}")
        remaining = max(plan.start + full - now, 0.0)
        eta = plan.start + full + remaining * wobble.uniform(-0.2, 0.3) + wobble.uniform(-30, 60)
        out["estimated_finish"] = max(int(eta), int(now) + 1)
    elif status == "succeeded":
        out["trained_steps"] = total
        out["trained_tokens"] = extra["trained_tokens"]
    else:  # failed, cancelled, unknown after starting
        out["trained_steps"] = int(total * plan.progress)
    return out


# -- params, src and dst per type ---------------------------------------------------

_PROJECTS: Final = (
    "project-e00k3d9m2x7q4p8r1a",
    "project-e00h6t2w9c5n1b7f3z",
    "project-e00p4s8v1j6g2y9d5m",
    "project-e00r7a3k5q9x2c6w8t",
    None,
    None,
)
_CHAT_MODELS: Final = (
    "meta-llama/Meta-Llama-3.1-70B-Instruct",
    "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "openai/gpt-oss-120b",
    "openai/gpt-oss-20b",
    "deepseek-ai/DeepSeek-V3.1",
    "deepseek-ai/DeepSeek-V3.1-Thinking",
    "Qwen/Qwen3-235B-A22B-Instruct-2507",
)
_FT_MODELS: Final = (
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.1-8B",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen2.5-7B-Instruct",
    "openai/gpt-oss-20b",
)
_QUERIES: Final = (
    "SELECT user_id, COUNT(*) AS n FROM {src_0} GROUP BY user_id",
    "SELECT * FROM {src_0} WHERE created_at >= '2025-01-01'",
    "SELECT messages FROM {src_0} WHERE ListLength(messages) > 2 LIMIT 100000",
    "SELECT model, AVG(latency_ms) AS mean_latency_ms FROM {src_0} GROUP BY model",
    "SELECT a.id, a.text, b.label FROM {src_0} AS a JOIN {src_1} AS b ON a.id = b.id",
    "SELECT * FROM {src_0} UNION ALL SELECT * FROM {src_1}",
)
_WORDS: Final = ("support", "sales", "legal", "chat", "code", "medical", "search", "summaries")
_TAGS: Final = ("prod", "experiment", "baseline", "v2", "nightly", "ablation", "team-nlp")
_TZ_PLUS2: Final = timezone(timedelta(hours=2))


def _dataset(rng: random.Random, ds_id: str, *, nullable_version: bool = True) -> dict[str, Any]:
    version = None if nullable_version and rng.random() < 0.1 else _hex(rng)
    return {"id": ds_id, "version": version}


def _source(fleet: Fleet, rng: random.Random) -> dict[str, Any]:
    return _dataset(rng, rng.choice(fleet._datasets))


def _column(name: str) -> dict[str, str]:
    return {"type": "column", "name": name}


def _ft_mapping(rng: random.Random, kind: str) -> dict[str, Any]:
    if kind == "text":
        return {"type": "text", "text": _column("text")}
    if kind == "messages":
        return {"type": "messages", "messages": _column("messages")}
    return {"type": "prompts", "prompt": _column("prompt"), "completion": _column("completion")}


_Built = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]


def _yql(fleet: Fleet, rng: random.Random, plan: Plan) -> _Built:
    query = rng.choice(_QUERIES)
    n_src = 2 if "{src_1}" in query else 1
    src = [dict(_source(fleet, rng), mapping=None) for _ in range(n_src)]
    return {"query": query}, src, [_dataset(rng, _hex(rng))], {}


def _iso(ts: int, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return datetime.fromtimestamp(ts, _TZ_PLUS2).isoformat()


def _materialize_history(fleet: Fleet, rng: random.Random, plan: Plan) -> _Built:
    end = (plan.created - rng.randint(0, 2 * 86_400)) // 3_600 * 3_600
    start = end - rng.randint(1, 30) * 86_400
    month = datetime.fromtimestamp(end, UTC).strftime("%B_%Y").lower()
    params = {
        "start_datetime": _iso(start, rng),
        "end_datetime": _iso(end, rng),
        "dataset_name": f"{rng.choice(_WORDS)}_history_{month}",
        "model_name": rng.choice(_CHAT_MODELS) if rng.random() < 0.6 else None,
    }
    return params, [], [_dataset(rng, _hex(rng))], {}


def _batch_inference(fleet: Fleet, rng: random.Random, plan: Plan) -> _Built:
    r = rng.random()
    max_tokens = _column("max_tokens") if r < 0.4 else (
        {"type": "text", "value": str(rng.choice((256, 1024, 4096)))} if r < 0.7 else None
    )
    mapping = {
        "type": "text_messages",
        "messages": _column("messages"),
        "max_tokens": max_tokens,
        "custom_id": _column("custom_id") if rng.random() < 0.6 else None,
    }
    params = {"model": rng.choice(_CHAT_MODELS), "completion_window": rng.choice(("12h", "24h"))}
    return params, [dict(_source(fleet, rng), mapping=mapping)], [_dataset(rng, _hex(rng))], {}


def _secret(rng: random.Random, what: str) -> str:
    return f"{SECRET_PREFIX}{what}-{_hex(rng, 64)}"


def _supervised_hp(rng: random.Random) -> dict[str, Any]:
    lora = rng.random() < 0.4
    return {
        "batch_size": rng.choice((8, 16, 32, 64)),
        "learning_rate": rng.choice((1e-5, 2e-5, 5e-5, 1e-4, 2e-4)),
        "n_epochs": rng.randint(1, 5),
        "warmup_ratio": rng.choice((0.0, 0.03, 0.1)),
        "weight_decay": rng.choice((0.0, 0.01, 0.1)),
        "packing": rng.random() < 0.7,
        "max_grad_norm": rng.choice((1.0, 0.5)),
        "context_length": rng.choice((8192, 16384, 32768, 65536, 131072)),
        "lora": lora,
        "lora_r": rng.choice((8, 16, 32, 64, 128)) if lora else 8,
        "lora_alpha": rng.choice((16, 32, 64, 128)) if lora else 8,
        "lora_dropout": rng.choice((0.0, 0.05, 0.1)) if lora else 0.0,
    }


def _spec_draft_hp(rng: random.Random) -> dict[str, Any]:
    return {
        "batch_size": rng.choice((4, 8, 16)),
        "learning_rate": rng.choice((0.0075, 0.003, 0.001)),
        "n_epochs": rng.randint(1, 3),
        "warmup_ratio": rng.choice((0.0, 0.05)),
        "weight_decay": 0.0,
        "packing": True,
        "max_grad_norm": 1.0,
        "context_length": rng.choice((8192, 16384)),
        "architecture": rng.choice(("eagle3_original", "eagle3")),
        "num_decoding_heads": rng.randint(1, 5),
        "loss": {"type": rng.choice(("kl", "lk_alpha", "lk_hybrid"))},
    }


def _integrations(rng: random.Random, model_name: str, secrets: bool) -> list[dict[str, Any]] | None:
    if not secrets and rng.random() < 0.3:
        return None
    short = model_name.rsplit("/", 1)[-1].lower()
    kinds = ["wandb", "mlflow", "hf"] if secrets else [k for k in ("wandb", "mlflow", "hf") if rng.random() < 0.4]
    out: list[dict[str, Any]] = []
    for kind in kinds:
        if kind == "wandb":
            cfg: dict[str, Any] = {
                "project": f"{rng.choice(_WORDS)}-ft",
                "name": f"{short}-run-{rng.randint(1, 99)}" if rng.random() < 0.7 else None,
                "entity": "acme-ml" if rng.random() < 0.5 else None,
                "tags": rng.sample(_TAGS, rng.randint(0, 2)),
            }
            if secrets:
                cfg["api_key"] = _secret(rng, "wandb")
        elif kind == "mlflow":
            cfg = {
                "tracking_uri": "https://mlflow.acme.example",
                "experiment_name": f"{rng.choice(_WORDS)}-{short}",
                "run_name": f"run-{rng.randint(1, 999)}" if rng.random() < 0.7 else None,
                "tags": {"team": rng.choice(("nlp", "search", "platform"))},
            }
            if secrets:
                cfg.update(
                    certificate_file="-----BEGIN CERTIFICATE-----\nMIIBsimulated\n-----END CERTIFICATE-----\n",
                    certificate_file_id=None,
                    username="sim-user",
                    password=_secret(rng, "mlflow"),
                )
        else:
            cfg = {"output_repo_name": f"acme/{short}-{rng.choice(_WORDS)}"}
            if secrets:
                cfg["api_token"] = _secret(rng, "hf")
        out.append({"type": kind, kind: cfg})
    return out


def _from_checkpoint(rng: random.Random, secrets: bool) -> dict[str, Any] | None:
    if secrets:
        return {"type": "hf", "repo": "acme/llama-3.1-8b-sft", "revision": "main", "token": _secret(rng, "hf-ckpt")}
    r = rng.random()
    if r < 0.6:
        return None
    if r < 0.8:
        revision = rng.choice(("main", None, _hex(rng, 160)))
        return {"type": "hf", "repo": f"acme/{rng.choice(_WORDS)}-base", "revision": revision}
    return {"type": "ft"}


def _finetuning(fleet: Fleet, rng: random.Random, plan: Plan) -> _Built:
    model_name = rng.choice(_FT_MODELS)
    style = rng.random()
    if style < 0.4:
        hp = _supervised_hp(rng)
        hyperparameters, method = hp, None
    elif style < 0.85:
        hp = _supervised_hp(rng)
        hyperparameters, method = None, {"type": "supervised", "supervised": {"hyperparameters": hp}}
    else:
        hp = _spec_draft_hp(rng)
        hyperparameters, method = None, {"type": "spec-draft", "spec_draft": {"hyperparameters": hp}}
    examples = _log_uniform(rng, 200, 50_000)
    total_steps = hp["n_epochs"] * -(-examples // hp["batch_size"])
    tokens_per_example = rng.randint(200, min(4_000, hp["context_length"]))
    params: dict[str, Any] = {
        "model_name": model_name,
        "hyperparameters": hyperparameters,
        "method": method,
        "from_checkpoint": _from_checkpoint(rng, plan.secrets),
        "integrations": _integrations(rng, model_name, plan.secrets),
        "seed": rng.randint(0, 2**31 - 1) if rng.random() < 0.6 else None,
        "suffix": f"{rng.choice(_WORDS)}-v{rng.randint(1, 9)}" if rng.random() < 0.7 else None,
        "tags": rng.sample(_TAGS, rng.randint(1, 3)) if rng.random() < 0.7 else None,
    }
    kind = rng.choice(("text", "messages", "prompts"))
    src = [dict(_source(fleet, rng), mapping=_ft_mapping(rng, kind), type="train")]
    if rng.random() < 0.4:
        src.append(dict(_source(fleet, rng), mapping=_ft_mapping(rng, kind), type="validation"))
    dst = [_dataset(rng, _hex(rng))] if rng.random() < 0.5 else []
    extra = {"total_steps": total_steps, "trained_tokens": examples * hp["n_epochs"] * tokens_per_example}
    return params, src, dst, extra


def _file_id(rng: random.Random) -> str:
    h = _hex(rng)
    return f"file-{h[:8]}-{h[8:12]}-7{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def _file_to_dataset(fleet: Fleet, rng: random.Random, plan: Plan) -> _Built:
    name = f"{rng.choice(_WORDS)}_upload_{rng.randint(1, 500)}" if rng.random() < 0.7 else None
    return {"file_id": _file_id(rng), "dataset_name": name}, [], [_dataset(rng, _hex(rng))], {}


def _dataset_to_file(fleet: Fleet, rng: random.Random, plan: Plan) -> _Built:
    dataset = _dataset(rng, rng.choice(fleet._datasets), nullable_version=False)
    if rng.random() < 0.5:
        params = {"purpose": "fine_tuning", "model": rng.choice(_FT_MODELS) if rng.random() < 0.2 else None}
        mapping = _ft_mapping(rng, rng.choice(("text", "messages", "prompts")))
    else:
        params = {"purpose": "inference", "model": rng.choice(_CHAT_MODELS)}
        mapping = {
            "type": "text_messages",
            "messages": _column("messages"),
            "max_tokens": _column("max_tokens") if rng.random() < 0.5 else None,
            "custom_id": _column("custom_id") if rng.random() < 0.5 else None,
        }
    return params, [{"dataset": dataset, "mapping": mapping}], [], {}


_BUILDERS: Final = {
    "yql": _yql,
    "materialize_history": _materialize_history,
    "batch_inference": _batch_inference,
    "finetuning": _finetuning,
    "file_to_dataset": _file_to_dataset,
    "dataset_to_file": _dataset_to_file,
}

