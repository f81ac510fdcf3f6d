"""Renders section ``server`` (bench/server_load.py) for docs/benchmarks.md: its targets and its tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

Table = Callable[[Sequence[str], Iterable[Sequence[Any]]], str]
Verdict = Callable[[bool | None], str]

NEW = "waitress"
OLD = "stdlib"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def targets(results: dict[str, Any], verdict: Verdict) -> list[list[str]]:
    server = results.get("server")
    if not server or NEW not in server.get("servers", {}):
        return []
    new = server["servers"][NEW]
    old = server["servers"].get(OLD, {})
    bad, churn, idle = new["bad_summary"], new["new_connection"], new["idle"]
    rows = [
        ["5. Zero 5xx and zero hangs on the bad-request set",
         f"{bad['5xx']} 5xx, {bad['hangs']} hangs of {len(new['bad_requests'])} (former server: "
         f"{old.get('bad_summary', {}).get('5xx', '?')} 5xx, {old.get('bad_summary', {}).get('hangs', '?')} hangs)",
         verdict(bad["5xx"] == 0 and bad["hangs"] == 0)],
        [f"5. p99 under 100 ms at {server['clients']} clients with a new connection per request",
         f"p99 {_ms(churn['p99_ms'])} ms, max {_ms(churn['max_ms'])} ms, {churn['5xx']} 5xx, {churn['failed']} failed "
         f"(former server: p99 {_ms(old.get('new_connection', {}).get('p99_ms'))} ms)",
         verdict(churn["p99_ms"] < 100 and churn["5xx"] == 0 and churn["failed"] == 0)],
        [f"5. /ping answers within 1 s throughout {server['idle_connections']} idle connections opened and dropped",
         f"max {_ms(idle['max_ping_ms'])} ms, {idle['unanswered']} of {idle['probes']} probes unanswered "
         f"(former server: max {_ms(old.get('idle', {}).get('max_ping_ms'))} ms, "
         f"{old.get('idle', {}).get('unanswered', '?')} unanswered)",
         verdict(idle["unanswered"] == 0 and idle["max_ping_ms"] is not None and idle["max_ping_ms"] < 1000)],
    ]
    if "x_minilm" in new["batch1"]:
        rows.append(["5. Batch-1 sentences/s over HTTP >= 20x MiniLM's (same run)",
                     f"{new['batch1']['x_minilm']:.1f}x ({new['batch1']['sentences_per_second']:.0f} vs "
                     f"{server['minilm_batch1']['sentences_per_second']:.0f} sentences/s)",
                     verdict(new["batch1"]["x_minilm"] >= 20)])
    return rows


def section(results: dict[str, Any], table: Table) -> str:
    server = results.get("server")
    title = "## 5. Inference server under load and bad input"
    if not server:
        return f"{title}\n\nNot measured in this run."
    names = [name for name in (OLD, NEW) if name in server["servers"]]
    titles = server["titles"]
    load_rows = []
    for name in names:
        for mode, label in (("keepalive", "keep-alive"), ("new_connection", "new connection per request")):
            row = server["servers"][name][mode]
            load_rows.append([titles[name], label, row["requests"], f"{row['requests_per_second']:.0f}",
                              _ms(row["p50_ms"]), _ms(row["p99_ms"]), _ms(row["max_ms"]), row["5xx"], row["failed"]])
    cases = list(server["servers"][names[-1]]["bad_requests"])
    bad_rows = []
    for case in cases:
        cells = []
        for name in names:
            item = server["servers"][name]["bad_requests"][case]
            shown = str(item["status"]) if item["status"] is not None else item["outcome"]
            if item["outcome"] == "hang":
                shown = f"no answer in {server['hang_after_s']:.0f} s (hang)"
            cells.append(f"{shown} ({item['seconds']:.1f} s)")
        bad_rows.append([case, *cells])
    idle_rows = []
    for name in names:
        idle = server["servers"][name]["idle"]
        phases = idle["phases"]
        idle_rows.append([titles[name], f"{idle['established']}/{idle['connections']}",
                          *(f"{_ms(phases[p]['max_ms'])} ms, {phases[p]['unanswered']}/{phases[p]['probes']} "
                            "unanswered" for p in ("opening", "holding", "after closing"))])
    speed_rows = [[titles[name], f"{server['servers'][name]['batch1']['sentences_per_second']:.0f}",
                   _ms(server["servers"][name]["batch1"]["p50_ms"]), _ms(server["servers"][name]["batch1"]["p99_ms"]),
                   f"{server['servers'][name]['batch1'].get('x_minilm', float('nan')):.1f}x"] for name in names]
    if server.get("minilm_batch1"):
        minilm = server["minilm_batch1"]
        speed_rows.append(["all-MiniLM-L6-v2 (in process, no HTTP)", f"{minilm['sentences_per_second']:.0f}",
                           _ms(minilm["p50_ms"]), _ms(minilm["p99_ms"]), "1.0x"])
    needed = server["clients"] / 0.1
    capacity = max(server["servers"][name]["keepalive"]["requests_per_second"] for name in names)
    note = (f"With {server['clients']} clients each waiting for its answer, p99 under 100 ms needs the server to "
            f"complete at least {needed:.0f} requests/s (Little's law: {server['clients']} in flight / 0.1 s); "
            f"the fastest server here completed {capacity:.0f}/s on {server['cores']} shared cores, so on this "
            "machine the latency target is out of reach for any server and the difference between them is in "
            "the tail (max) and in failures, which the listen backlog and the connection handling decide.")
    return f"""{title}

`bench/server_load.py`: the former server (`bench/stdlib_server.py`: `http.server`'s
`ThreadingHTTPServer`, one thread per connection, listen backlog 5, reads without a timeout, the
Predictor's JSON parsing without limits) and `o2v serve` as shipped (waitress: one `poll()` I/O
thread, {4} request threads, backlog 2048, at most 4096 connections, 408 after
{server['read_timeout_s']} s for a request that stops arriving), each a subprocess with 2 torch
threads serving the same model (the app's default sizes), measured one after the other in this run.
The load clients are threads of the bench process on the same {server['cores']} cores, so client
overhead is inside every latency.

### {server['clients']} clients, batch-1 `/invocations`, {server['requests_per_client']} requests each

{table(['Server', 'Connections', 'Requests', 'Requests/s', 'p50 ms', 'p99 ms', 'max ms', '5xx', 'Failed'],
       load_rows)}

{note if capacity < needed else ""}

### The bad-request set

Each request on its own connection, read until the server answers or {server['hang_after_s']:.0f} s pass.

{table(['Request', *(titles[name] for name in names)], bad_rows)}

### {server['idle_connections']} idle connections opened, held 3 s, then closed at once

`GET /ping` on a new connection every 100 ms throughout (each probe waits at most
{server['servers'][names[-1]]['idle']['probe_timeout_s']:.0f} s); slowest answer and unanswered probes per phase.

{table(['Server', 'Established', 'While opening', 'While held', 'After closing (10 s)'], idle_rows)}

### Batch-1 sentences/s over HTTP vs all-MiniLM-L6-v2

One keep-alive connection, {server['batch1_requests']} requests of one STS-B test sentence each; the
client tokenizes inside the timed request. MiniLM encodes the same sentences one at a time in process.
The ratio moves with the machine's load: MiniLM's matrix products suffer most from other processes
on the same cores (see the load average in the header; a lightly loaded smoke run measured about
4x), so read it together with section 3's batch-1 numbers.

{table(['Embedder', 'Sentences/s', 'p50 ms', 'p99 ms', 'vs MiniLM'], speed_rows)}"""
