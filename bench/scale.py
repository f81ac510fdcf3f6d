"""Scale section: the polling monitor and the subscription design, side by side, at 10/100/500 jobs.

Simulated jobs each log one epoch per simulated minute (job ``i`` of ``n`` at second ``60 i / n``
of the minute); one job in ten diverges (decisive validation line at epoch 7, as
``tests/support/cloud.py``'s DIVERGING curve), the rest keep improving. Our real handler
logic runs against moto in-process for every service but SageMaker, whose stand-in is the tests'
one SageMaker fake (``tests/support/sagemaker_fake.py``: the local SageMaker API, scripted, over HTTP on
loopback), on a virtual clock:

* each AWS call of our code takes the wall time moto took, and a call of an API with a documented
  per-second quota (``o2v_core.aws_quotas``) waits for its slot under that quota, shared by every
  invocation of the account, in arrival order (what adaptive retries turn throttling into);
* calls are counted per API in the simulated minute they were *asked for*, so the counts are the
  demand put on AWS, next to the quota;
* a line is in CloudWatch Logs from its own second on (the log is written as the clock passes);
* **polling** (the design before this change): the monitor runs every minute over every job,
  killed at its 60 s timeout;
* **subscription**: each job's epoch lines reach the metric-line judge at the line's second
  (CloudWatch Logs' delivery latency is not published and is not added; the local Logs' own is
  about 0.25 s), judged one invocation after another in arrival order on the curve store
  (DynamoDB, no CloudWatch Logs call), plus the safety-net monitor (rate(10 minutes), 120 s
  timeout, Logs calls paced to ``o2v_core.aws_quotas.SAFETY_NET_LOGS_SHARE``) once in the window;
* **safety net alone** (every delivery lost): one run of the paced safety net over jobs the judge
  never heard from, to show its pace and how many jobs one run covers.

Delay: from the decisive validation line to the end of the run that reported the divergence.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from o2v_core import aws_quotas
from o2v_core.detector import DetectorConfig
from o2v_core.functions import DIVERGENCE_MONITOR, METRIC_LINE_JUDGE
from o2v_core.log_subscription import DATA_MESSAGE, LogBatch, LogEvent
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP, event_bus_name

if TYPE_CHECKING:
    from local_aws.sagemaker.scripted import ScriptedSageMaker

JOB_COUNTS = (10, 100, 500)
MINUTES = 10  # epochs 0..9: the decisive epoch 7 and the safety net's run fall inside
DIVERGE_EVERY = 10  # one job in ten diverges
DECISIVE_EPOCH = 7
POLLING_TIMEOUT_S = 60.0  # the monitor's timeout before this change (every minute, 60 s)
SAFETY_NET_AT_S = 5 * 60 + 30.0  # where the safety net's one run in the window starts
ROOM = 0.5  # "room to spare": at most half of a documented quota
DELAY_TARGET_S = 30.0
NEAR_TIMEOUT = 0.5  # "near its timeout": more than half of it
DEPLOYMENT = "bench"
BUS = event_bus_name(DEPLOYMENT)


class _Killed(BaseException):
    """The function's timeout: Lambda ends the run wherever it is (not an Exception: nothing catches it)."""


def curve(diverging: bool) -> list[tuple[float, float]]:
    """(validation, train) per epoch: DIVERGING's shape (decisive at epoch 7), or a steady decline."""
    if diverging:
        validation = [0.2, 0.15, 0.12, 0.1, 0.095, 0.106, 0.112, 0.121, 0.132, 0.145]
    else:
        validation = [0.2 * 0.93 ** epoch for epoch in range(MINUTES)]
    return [(value, value * 0.9 ** epoch) for epoch, value in enumerate(validation)]


def epoch_lines(epoch: int, validation: float, train: float) -> list[str]:
    stamp = f"[11/26/2026 09:{epoch:02d}:07 INFO 139921880303424]"
    return [
        f"{stamp} Epoch: {epoch}, batches: 90, num_examples: 5749, 2512.4 samples/sec",
        f"{stamp} #quality_metric: host=algo-1, epoch={epoch}, train mean_squared_error <loss>={train}",
        f"{stamp} #quality_metric: host=algo-1, epoch={epoch}, validation mean_squared_error <loss>={validation}",
    ]


@dataclass
class Line:
    at: float  # simulated seconds
    job: str
    epoch: int
    messages: list[str]


@dataclass
class Clock:
    """The virtual timeline: one run at a time, quota slots shared by all runs."""

    now: float = 0.0
    next_slot: dict[str, float] = field(default_factory=dict)
    asked: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    deadline: float = math.inf
    stopped: dict[str, float] = field(default_factory=dict)  # job -> when our code asked to stop it
    _started: float = 0.0
    on_time: Callable[[float], None] | None = None

    def before(self, api: str) -> None:
        self.asked[int(self.now // 60)][api] += 1
        quota = aws_quotas.quota_for(api)
        if quota is not None and quota.per_second:
            slot = max(self.now, self.next_slot.get(api, 0.0))
            self.next_slot[api] = slot + 1.0 / quota.per_second
            self.now = slot
        if self.now > self.deadline:
            raise _Killed
        if self.on_time is not None:
            self.on_time(self.now)
        self._started = time.perf_counter()

    def after(self) -> None:
        self.now += time.perf_counter() - self._started


@contextmanager
def counted(clock: Clock) -> Iterator[None]:
    """Hook our shared clients (control_plane.aws.clients) so each call goes through ``clock``."""
    from control_plane.aws import clients

    made = [clients.sagemaker(), clients.logs(), clients.events(), clients.dynamodb()]

    def before(model: Any, **_: Any) -> None:
        clock.before(model.name)

    def after(**_: Any) -> None:
        clock.after()

    def stopping(params: dict[str, Any], **_: Any) -> None:
        clock.stopped.setdefault(str(params["TrainingJobName"]), clock.now)  # right after its PutEvents

    stop_event = "before-parameter-build.sagemaker.StopTrainingJob"
    for client in made:
        client.meta.events.register("before-call", before)
        client.meta.events.register("after-call", after)
    made[0].meta.events.register(stop_event, stopping)
    try:
        yield
    finally:
        for client in made:
            client.meta.events.unregister("before-call", before)
            client.meta.events.unregister("after-call", after)
        made[0].meta.events.unregister(stop_event, stopping)


class World:
    """n simulated jobs in moto, their epoch lines written as the virtual clock passes them."""

    def __init__(self, jobs: int, clock: Clock, sagemaker: ScriptedSageMaker) -> None:
        from local_aws.deployment import wire_control_plane
        from local_aws.sagemaker.job_requests import PATIENT, job_request

        self.sm = boto3.client("sagemaker")
        self.logs = boto3.client("logs")  # the bench's own clients: not counted
        # The curve store and the bus as local mode's deployment makes them; no rule: the bench invokes
        # the handlers itself, on its clock.
        wire_control_plane(boto3.client("events"), boto3.client("sqs"), boto3.client("dynamodb"), DEPLOYMENT, BUS,
                           targets=())
        self.logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
        self.names: list[str] = []
        self.lines: list[Line] = []
        self.diverging: set[str] = set()
        for index in range(jobs):
            request = job_request(f"scale-{index:03d}", deployment=DEPLOYMENT, hyperparameters=PATIENT)
            name = str(request["TrainingJobName"])
            self.sm.create_training_job(**request)
            sagemaker.set_status(name, "InProgress")  # SageMaker decides when a job moves on; here, the bench
            self.logs.create_log_stream(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=self.stream(name))
            self.names.append(name)
            diverging = index % DIVERGE_EVERY == 0
            if diverging:
                self.diverging.add(name)
            offset = 60.0 * index / jobs
            for epoch, (validation, train) in enumerate(curve(diverging)):
                self.lines.append(Line(epoch * 60 + offset, name, epoch, epoch_lines(epoch, validation, train)))
        self.lines.sort(key=lambda line: line.at)
        self._written = 0
        self.clock = clock
        # Timestamps end in the past: CloudWatch Logs refuses events more than 2 hours ahead.
        self.base_ms = int(time.time() * 1000) - (MINUTES + 1) * 60_000
        clock.on_time = self.write_until

    def stopped(self, name: str) -> bool:
        return name in self.clock.stopped

    @staticmethod
    def stream(name: str) -> str:
        return f"{name}/algo-1-1764150000"

    def decisive(self, name: str) -> float:
        return next(line.at for line in self.lines if line.job == name and line.epoch == DECISIVE_EPOCH)

    def write_until(self, now: float) -> None:
        """Put every line whose second has come (a stopped job logs no more)."""
        while self._written < len(self.lines) and self.lines[self._written].at <= now:
            line = self.lines[self._written]
            self._written += 1
            if self.stopped(line.job):
                continue
            stamp = self.base_ms + int(line.at * 1000)
            self.logs.put_log_events(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=self.stream(line.job),
                                     logEvents=[{"timestamp": stamp, "message": m} for m in line.messages])


@dataclass
class DesignResult:
    calls: dict[int, Counter[str]]
    longest_run_s: float
    timeout_s: float
    runs_killed: int
    delays: list[float]
    missed: int  # diverging jobs not reported within the window
    extra: dict[str, Any] = field(default_factory=dict)  # the subscription design's safety-net run

    def as_json(self) -> dict[str, Any]:
        minutes = range(max(self.calls, default=0) + 1)  # the last polling run starts at minute MINUTES
        per_minute = {api: [self.calls.get(minute, Counter())[api] for minute in minutes]
                      for api in sorted({api for counts in self.calls.values() for api in counts})}
        return {
            "calls_per_minute": per_minute,
            "longest_run_s": round(self.longest_run_s, 2),
            "timeout_s": self.timeout_s,
            "runs_killed": self.runs_killed,
            "delay_p50_s": _percentile(self.delays, 50, self.missed),
            "delay_p99_s": _percentile(self.delays, 99, self.missed),
            "detected": len(self.delays),
            "missed": self.missed,
            **self.extra,
        }


def _percentile(values: list[float], pct: float, missed: int) -> float | None:
    """Nearest-rank percentile, a missed detection counting as infinitely late (None: beyond the window)."""
    ranked = sorted(values) + [math.inf] * missed
    if not ranked:
        return None
    value = ranked[max(0, math.ceil(pct / 100 * len(ranked)) - 1)]
    return None if math.isinf(value) else round(value, 2)


def _judge(world: World, *, paced: bool = False) -> Any:
    from control_plane.aws.curve_store import CurveStore
    from control_plane.aws.event_bus import EventBus
    from control_plane.aws.training_jobs import TrainingJobs
    from control_plane.aws.training_logs import Pacer, TrainingLogs
    from control_plane.logic.monitor import Judge
    from o2v_core.resource_names import job_curve_table_name

    clock = world.clock

    def sleep(seconds: float) -> None:  # the pacer waits on the virtual clock
        clock.now += seconds

    pacer = Pacer(aws_quotas.safety_net_logs_per_second(), clock=lambda: clock.now, sleep=sleep) if paced else None
    return Judge(deployment=DEPLOYMENT, jobs=TrainingJobs(), logs=TrainingLogs(pacer=pacer), bus=EventBus(BUS),
                 store=CurveStore(job_curve_table_name(DEPLOYMENT), clock=lambda: world.base_ms / 1000 + clock.now),
                 detector=DetectorConfig(), stop_on_divergence=True,
                 # Stop at detection (the jobs' patience 5 leaves epochs to save): the stop call
                 # marks when the divergence was acted on (Clock.stopped).
                 finish_within_epochs=0)


def _monitor_run(world: World, start: float, timeout: float, *, bounded: bool) -> tuple[float, dict[str, Any]]:
    """One monitor run from ``start``; ``bounded``: the safety net (it watches its remaining time
    and paces its Logs calls). Returns how long it took and its report (empty when killed)."""
    from control_plane.logic.monitor import MonitorError, run_monitor

    clock = world.clock
    clock.now, clock.deadline = start, start + timeout
    remaining = (lambda: int((clock.deadline - clock.now) * 1000)) if bounded else None
    report: dict[str, Any] = {}
    try:
        report = run_monitor(_judge(world, paced=bounded), remaining_ms=remaining,
                             now=lambda: world.base_ms / 1000 + clock.now).as_dict()
    except (MonitorError, _Killed):
        pass  # a job's error, or the timeout: what it stopped before is in clock.stopped
    finally:
        clock.deadline = math.inf
    return clock.now - start, report


def polling(jobs: int, sagemaker: ScriptedSageMaker) -> DesignResult:
    clock = Clock()
    world = World(jobs, clock, sagemaker)
    longest, killed = 0.0, 0
    with counted(clock):
        for minute in range(1, MINUTES + 1):
            took, _ = _monitor_run(world, minute * 60.0, POLLING_TIMEOUT_S, bounded=False)
            killed += took >= POLLING_TIMEOUT_S
            longest = max(longest, min(took, POLLING_TIMEOUT_S))
    return _result(world, longest, POLLING_TIMEOUT_S, killed)


def subscription(jobs: int, sagemaker: ScriptedSageMaker) -> DesignResult:
    from control_plane.logic.metric_line_judge import judge_batch

    clock = Clock()
    world = World(jobs, clock, sagemaker)
    longest, killed, net_done, net_took = 0.0, 0, False, 0.0
    timeout = float(METRIC_LINE_JUDGE.timeout_seconds)
    net_timeout = float(DIVERGENCE_MONITOR.timeout_seconds)
    with counted(clock):
        for line in list(world.lines):
            if not net_done and line.at >= SAFETY_NET_AT_S:
                net_done = True
                net_took, _ = _monitor_run(world, SAFETY_NET_AT_S, net_timeout, bounded=True)
                killed += net_took >= net_timeout
            if world.stopped(line.job):
                continue  # a stopped job logs no more
            world.write_until(line.at)
            clock.now, clock.deadline = line.at, line.at + timeout
            stamp = world.base_ms + int(line.at * 1000)
            batch = LogBatch("123456789012", TRAINING_JOB_LOG_GROUP, world.stream(line.job), ("bench",),
                             DATA_MESSAGE, tuple(LogEvent(f"{line.job}-{line.epoch}-{i}", stamp, m)
                                                 for i, m in enumerate(line.messages) if "#quality_metric" in m))
            try:
                judge_batch(_judge(world), batch)
            except _Killed:
                killed += 1
            finally:
                clock.deadline = math.inf
            longest = max(longest, min(clock.now - line.at, timeout))
    result = _result(world, longest, timeout, killed)
    result.extra = {"safety_net_run_s": round(net_took, 2), "safety_net_timeout_s": net_timeout}
    return result


def safety_net_alone(jobs: int, sagemaker: ScriptedSageMaker) -> dict[str, Any]:
    """Every delivery lost: one paced safety-net run over jobs the judge never heard from."""
    clock = Clock()
    world = World(jobs, clock, sagemaker)
    timeout = float(DIVERGENCE_MONITOR.timeout_seconds)
    with counted(clock):
        world.write_until(SAFETY_NET_AT_S)
        took, report = _monitor_run(world, SAFETY_NET_AT_S, timeout, bounded=True)
    swept = len(report.get("checked", [])) + len(report.get("skipped", [])) + len(report.get("stopped_again", []))
    minute = int(SAFETY_NET_AT_S // 60)
    per_minute = {api: counts for api, counts in clock.asked.get(minute, Counter()).items()}
    # The run spills into the next minute when it is long: its busiest minute is what a quota sees.
    for api, count in clock.asked.get(minute + 1, Counter()).items():
        per_minute[api] = max(per_minute.get(api, 0), count)
    runs = math.ceil(jobs / swept) if swept else None
    return {"run_s": round(took, 2), "timeout_s": timeout, "swept": swept, "deferred": len(report.get("deferred", [])),
            "peak_calls_per_minute": per_minute, "runs_to_cover_all": runs,
            "minutes_to_cover_all": None if runs is None else runs * 10}


def _result(world: World, longest: float, timeout: float, killed: int) -> DesignResult:
    found = world.clock.stopped
    delays = [found[name] - world.decisive(name) for name in world.diverging if name in found]
    return DesignResult(dict(world.clock.asked), longest, timeout, killed, delays, len(world.diverging) - len(delays))


@contextmanager
def _aws(state: Path) -> Iterator[ScriptedSageMaker]:
    """A fresh account: moto in-process, and the SageMaker fake over loopback HTTP (mock_aws lets it through)."""
    from moto import mock_aws

    from local_aws.sagemaker.scripted import ScriptedSageMaker, moto_clients, serving

    with mock_aws():
        fake = ScriptedSageMaker(moto_clients(None), state)
        with serving(fake) as url:
            os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = url
            _reset_clients()
            yield fake


def run_scale(job_counts: tuple[int, ...] = JOB_COUNTS, log: Callable[[str], None] = print) -> dict[str, Any]:
    from local_aws.sagemaker.scripted import REGION

    results: dict[str, Any] = {
        "job_counts": list(job_counts), "minutes": MINUTES, "diverge_every": DIVERGE_EVERY, "room": ROOM,
        "delay_target_s": DELAY_TARGET_S, "near_timeout": NEAR_TIMEOUT,
        "quotas": {q.api: {"per_minute": q.per_minute, "source": q.source} for q in aws_quotas.QUOTAS},
        "designs": {},
    }
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
           "POWERTOOLS_LOG_LEVEL": "WARNING"}
    with _environment(env), tempfile.TemporaryDirectory(prefix="o2v-scale-") as state:
        try:
            for design, simulate in (("polling", polling), ("subscription", subscription)):
                for jobs in job_counts:
                    tick = time.monotonic()
                    with _aws(Path(state)) as sagemaker:
                        measured = simulate(jobs, sagemaker).as_json()
                    measured["wall_s"] = round(time.monotonic() - tick, 1)
                    results["designs"].setdefault(design, {})[str(jobs)] = measured
                    log(f"scale: {design} at {jobs} jobs: p99 {measured['delay_p99_s']} s, longest run "
                        f"{measured['longest_run_s']} s ({measured['wall_s']} s wall)")
            for jobs in job_counts:
                with _aws(Path(state)) as sagemaker:
                    results.setdefault("safety_net_alone", {})[str(jobs)] = net = safety_net_alone(jobs, sagemaker)
                log(f"scale: safety net alone at {jobs} jobs: swept {net['swept']} in {net['run_s']} s")
        finally:
            _reset_clients()
    results["targets"] = score(results)
    return results


def _reset_clients() -> None:
    from control_plane.aws import clients

    with clients._lock:
        clients._cache.clear()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    cleared = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_PROFILE")
    saved = {key: os.environ.get(key) for key in [*values, *cleared]}
    os.environ.update(values)
    for key in cleared:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def score(results: dict[str, Any]) -> dict[str, Any]:
    """Per design at the largest job count: quotas with room, no run near its timeout, p99 delay."""
    largest = str(max(results["job_counts"]))
    scored: dict[str, Any] = {}
    for design, by_jobs in results["designs"].items():
        measured = by_jobs[largest]
        worst = {}
        for api, counts in measured["calls_per_minute"].items():
            quota = results["quotas"].get(api, {}).get("per_minute")
            if quota:
                worst[api] = {"peak": max(counts), "quota": quota, "share": round(max(counts) / quota, 3)}
        scored[design] = {
            "jobs": int(largest),
            "quotas_with_room": all(item["share"] <= ROOM for item in worst.values()),
            "quota_peaks": worst,
            "no_run_near_timeout": measured["longest_run_s"] <= NEAR_TIMEOUT * measured["timeout_s"]
            and measured.get("safety_net_run_s", 0.0) <= NEAR_TIMEOUT * measured.get("safety_net_timeout_s", 1.0)
            and measured["runs_killed"] == 0,
            "p99_under_target": measured["delay_p99_s"] is not None and measured["delay_p99_s"] < DELAY_TARGET_S,
        }
    return scored

