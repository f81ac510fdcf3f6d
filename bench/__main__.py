"""``python -m bench`` (``make bench``): run the benchmarks, write results JSON and docs/benchmarks.md.

    python -m bench                       # everything (~20 minutes on 2 cores)
    python -m bench --smoke               # a tiny version of everything (tests/bench, under a minute)
    python -m bench --only detection,cost # some sections (merged into the existing results file)
    python -m bench --only cost --reuse-records  # replay the curves already recorded (training only the
                                                 # configured runs the results file lacks)
    python -m bench --only detection,cost,value --reuse-records --rerecord snli/,stsb/hcnn-64
                                          # train those recorded runs again (models kept for the test metrics)
    python -m bench.report                # rewrite docs/benchmarks.md from bench/results/results.json

Every run merges into the results file: it replaces what it measures and keeps the rest (the demo
seed study's ``demo_seeds``, written by ``python -m bench.demo_seeds --write``, and sections not run).

Sections: record, detection, cost, value, quality, throughput, synth, server, scale, bulk. Training runs are recorded
once per invocation (section record, implied by detection, cost, quality and throughput) and shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("record", "detection", "cost", "value", "quality", "throughput", "synth", "server", "scale", "bulk")
NEEDS_RECORDS = {"detection", "cost", "value", "quality", "throughput"}
REPLAY_ONLY = {"detection", "cost", "value"}  # need the recorded curves, not the trained models
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results" / "results.json"
DEFAULT_DOC = REPO_ROOT / "docs" / "benchmarks.md"
DEFAULT_IMG = REPO_ROOT / "docs" / "img"


def _log(message: str) -> None:
    print(f"bench [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny configuration, for the tests")
    parser.add_argument("--only", default="", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, help="results JSON (default: bench/results/results.json; "
                        "with --smoke: <work>/results.json)")
    parser.add_argument("--work", type=Path, help="scratch directory for data, models and runs "
                        "(default: runs/bench, or runs/bench-smoke)")
    parser.add_argument("--doc", type=Path, help="markdown to write (default: docs/benchmarks.md; with --smoke: "
                        "<work>/benchmarks.md)")
    parser.add_argument("--img", type=Path, help="plot directory (default: docs/img; with --smoke: <work>/img)")
    parser.add_argument("--no-doc", action="store_true", help="write the results JSON only")
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared" / "data",
                        help="shared data directory (default: ../shared/data beside the repo)")
    parser.add_argument("--reuse-records", action="store_true",
                        help="replay the recorded curves already in the results file instead of training them again "
                        "(only for sections that replay curves: detection, cost, value); configured runs the file "
                        "lacks are trained and added")
    parser.add_argument("--rerecord", default="",
                        help="with --reuse-records: train again the recorded runs whose key starts with one of these "
                        "comma-separated prefixes (e.g. snli/,stsb/hcnn-64), keeping their models in the work "
                        "directory for the test metrics")
    parser.add_argument("--workers", type=int, help="training processes for recorded runs (default: 2)")
    args = parser.parse_args(argv)
    chosen = [part.strip() for part in args.only.split(",") if part.strip()] or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    args.sections = [section for section in SECTIONS if section in chosen]
    work = args.work or REPO_ROOT / "runs" / ("bench-smoke" if args.smoke else "bench")
    args.work = work.resolve()
    args.out = args.out or (args.work / "results.json" if args.smoke else DEFAULT_RESULTS)
    args.doc = args.doc or (args.work / "benchmarks.md" if args.smoke else DEFAULT_DOC)
    args.img = args.img or (args.work / "img" if args.smoke else DEFAULT_IMG)
    return args


# What was measured on the recorded runs' saved models: stale once the runs are recorded again.
FROM_RECORDED_MODELS = ("value_test", "value_recheck")


def previous_results(path: Path, sections: Sequence[str]) -> dict[str, Any]:
    """The results file's contents, for this run to merge into: a run replaces what it measures and keeps what
    it does not produce (``demo_seeds``, sections not run). A run that records the curves again drops what was
    measured on the former runs' models."""
    if not path.is_file():
        return {}
    results: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if "record" in sections:
        for key in FROM_RECORDED_MODELS:
            results.pop(key, None)
    return results


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "gpu": torch.cuda.is_available(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_start": list(os.getloadavg()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.config import FULL, SMOKE

    cfg = SMOKE if args.smoke else FULL
    if args.workers:
        cfg = type(cfg)(**{**cfg.__dict__, "workers": args.workers})
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run_id = f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}-{uuid.uuid4().hex[:6]}"
    results = previous_results(args.out, args.sections)
    results.update({"run_id": run_id, "smoke": args.smoke, "machine": machine(),
                    "command": "python -m bench" + (" --smoke" if args.smoke else "")
                    + (f" --only {','.join(args.sections)}" if set(args.sections) != set(SECTIONS) else "")
                    + (" --reuse-records" if args.reuse_records else "")
                    + (f" --rerecord {args.rerecord}" if args.rerecord else "")})
    results.setdefault("sections", {})
    _log(f"run {run_id}: sections {', '.join(args.sections)} ({'smoke' if args.smoke else 'full'}); work {args.work}")

    from bench import sections

    context = sections.Context(cfg=cfg, repo=REPO_ROOT, shared=args.shared, work=args.work, results=results, log=_log)
    chosen = list(args.sections)
    if args.reuse_records:
        if "record" in chosen or not set(chosen) <= REPLAY_ONLY or not results.get("records"):
            raise SystemExit(f"--reuse-records: needs recorded runs in {args.out} and only sections "
                             f"{', '.join(sorted(REPLAY_ONLY))}")
        from bench.record import RunRecord

        context.records = [RunRecord.from_json(item) for item in results["records"]]
        _log(f"replaying {len(context.records)} recorded runs from {args.out}")
        prefixes = tuple(part.strip() for part in args.rerecord.split(",") if part.strip())
        if prefixes:
            sections.rerecord(context, prefixes)
        else:
            sections.record_missing(context)
    elif args.rerecord:
        raise SystemExit("--rerecord: needs --reuse-records")
    elif NEEDS_RECORDS & set(chosen) and "record" not in chosen:
        chosen.insert(0, "record")  # the recorded curves the other sections replay
    for name in chosen:
        tick = time.monotonic()
        _log(f"section {name}")
        getattr(sections, name)(context)
        results["sections"][name] = {"run_id": run_id, "seconds": round(time.monotonic() - tick, 1)}
    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["total_seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    _log(f"results: {args.out}")
    if not args.no_doc:
        from bench.report import write_report

        write_report(results, args.doc, args.img, results_path=args.out)
        _log(f"report: {args.doc}")
    _log(f"done in {results['total_seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
