"""The scale section of docs/benchmarks.md (results["scale"], written by bench/scale.py)."""

from __future__ import annotations

from typing import Any

from bench.rendering import fmt, md_table, verdict_of

DESIGN_NAMES = {
    "polling": "polling monitor (every minute over every job, 60 s timeout; the design before the subscription)",
    "subscription": "subscription + curve store: judge per line on DynamoDB, paced 10-minute safety net (now)",
}
APIS = ("FilterLogEvents", "DescribeLogStreams", "DescribeTrainingJob", "ListTags", "ListTrainingJobs",
        "UpdateItem", "BatchGetItem")


def _peak(measured: dict[str, Any], api: str) -> int:
    return int(max(measured["calls_per_minute"].get(api, [0])))


def _quota_cell(scale: dict[str, Any], api: str) -> str:
    per_minute = scale["quotas"].get(api, {}).get("per_minute")
    return "not published" if per_minute is None else f"{per_minute:.0f}/min"


def section_scale(results: dict[str, Any]) -> str:
    scale = results.get("scale")
    if not scale:
        return ""
    counts = [str(count) for count in scale["job_counts"]]
    header = ["Design", "Jobs", *[f"{api} peak/min (quota)" for api in APIS], "Longest run / timeout",
              "Runs killed", "Delay p50 / p99", "Diverging jobs caught"]
    rows = []
    for design, by_jobs in scale["designs"].items():
        for jobs in counts:
            measured = by_jobs[jobs]
            calls = [f"{_peak(measured, api)} ({_quota_cell(scale, api)})" for api in APIS]
            p99 = fmt(measured["delay_p99_s"], 1, " s") if measured["delay_p99_s"] is not None else "never (missed)"
            runs = f"{fmt(measured['longest_run_s'], 1, ' s')} / {measured['timeout_s']:.0f} s"
            if "safety_net_run_s" in measured:
                runs += (f"; safety net {fmt(measured['safety_net_run_s'], 1, ' s')} / "
                         f"{measured['safety_net_timeout_s']:.0f} s")
            rows.append([
                DESIGN_NAMES.get(design, design), jobs, *calls, runs, measured["runs_killed"],
                f"{fmt(measured['delay_p50_s'], 1, ' s')} / {p99}",
                f"{measured['detected']} of {measured['detected'] + measured['missed']}",
            ])
    net_rows = []
    for jobs, net in (scale.get("safety_net_alone") or {}).items():
        peaks = ", ".join(f"{api} {net['peak_calls_per_minute'].get(api, 0)}" for api in APIS[:4])
        cover = (f"{net['runs_to_cover_all']} runs ({net['minutes_to_cover_all']} min)"
                 if net["runs_to_cover_all"] else "never")
        net_rows.append([jobs, net["swept"], net["deferred"],
                         f"{fmt(net['run_s'], 1, ' s')} / {net['timeout_s']:.0f} s", peaks, cover])
    net_table = md_table(["Jobs", "Swept in one run", "Deferred", "Run / timeout", "Peak calls/min", "To cover all"],
                       net_rows) if net_rows else "(not measured)"
    room = f"{scale['room']:.0%}"
    target_rows = []
    for design, scored in scale["targets"].items():
        peaks = ", ".join(f"{api} {item['peak']}/{item['quota']:.0f} ({item['share']:.0%})"
                          for api, item in scored["quota_peaks"].items())
        target_rows.append([DESIGN_NAMES.get(design, design), scored["jobs"],
                            f"{verdict_of(scored['quotas_with_room'])} ({peaks})",
                            verdict_of(scored["no_run_near_timeout"]), verdict_of(scored["p99_under_target"])])
    return f"""## Scale: hundreds of concurrent training jobs (`python -m bench --only scale`)

Simulated jobs each log one epoch per simulated minute, {scale['minutes']} minutes; one job in
{scale['diverge_every']} diverges (decisive validation line at epoch 7). The control plane's real
handler logic runs against moto in-process on a virtual clock: each AWS call takes the time moto
took, a call of an API with a documented quota waits for its slot under that quota (account-wide,
shared by every invocation), and calls are counted in the minute they were asked for, so the
counts are the demand on AWS next to the quota (`o2v_core/aws_quotas.py` cites each). Delay is
from the decisive line to the StopTrainingJob that follows the divergence event. CloudWatch Logs'
own subscription delivery latency is not published and is not included. Method and limits:
`bench/scale.py`; the design: `docs/scale.md`.

{md_table(header, rows)}

Targets at {max(scale['job_counts'])} concurrent jobs (every quota used at most {room} in its
busiest minute; no run above {scale['near_timeout']:.0%} of its timeout and none killed;
p99 delay under {scale['delay_target_s']:.0f} s):

{md_table(["Design", "Jobs", "Under every documented quota with room", "No run near its timeout",
         "p99 delay < 30 s"], target_rows)}

The safety net alone, when every delivery is lost (the judge never heard from any job): one run,
its CloudWatch Logs calls paced to 1/s per API (20% of each 5/s quota), taking new jobs for 40% of
its timeout, least recently seen first:

{net_table}

DynamoDB's quotas are per table (the deployment's own), sized here for the worst case of an item
at the 400 KB limit (`o2v_core/aws_quotas.py`). SageMaker publishes no rate for DescribeTrainingJob,
ListTags or ListTrainingJobs, so those columns are counts without a quota to score against. A run
killed at its timeout asks for nothing more, so where runs were killed the counts understate the
demand: the 500-job polling monitor wanted one call of each per job, 500 a minute, and reached
about 300 before its timeout."""
