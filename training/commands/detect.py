"""``o2v detect``: why was (or wasn't) this job retrained? Runs the control plane's own detector.

Exit status: 0 healthy or no decision yet, 3 diverged, 2 unreadable input (the message names
the file and line).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from o2v_core.config_check import ConfigFieldError
from o2v_core.detector import Decision, DetectorConfig
from o2v_core.metric_series import MetricInputError, MetricSeries, decide_series, read_metrics_file

from training.commands import Subparsers, add_parser

EXIT_OK = 0
EXIT_UNREADABLE = 2
EXIT_DIVERGED = 3

DESCRIPTION = """\
Run the divergence detector (the same code as the in-flight monitor and the finished-job
evaluator) on one job's per-epoch losses and print its decision and the reason.

--metrics FILE is one of:
  a SageMaker training log   the '#quality_metric: host=algo-1, epoch=3, validation
                             mean_squared_error <loss>=0.091' lines (CloudWatch Logs export or
                             the SDK's printed log); train lines of the same metric are used too
  CSV                        epoch,validation[,train] (header optional)
  JSON                       [{"epoch": 0, "validation": 0.5, "train": 0.4}, ...]

Exit status: 0 healthy or no decision yet, 3 diverged, 2 unreadable input.

Examples:
  o2v detect --metrics training-job.log
  o2v detect --metrics curve.csv --json
  o2v detect --metrics training-job.log --config '{"patience": 4}'
"""


def register(subparsers: Subparsers) -> None:
    parser = add_parser(subparsers, "detect", "explain the divergence detector's decision for a job's curve",
                        DESCRIPTION)
    parser.add_argument("--metrics", type=Path, required=True, metavar="FILE",
                        help="SageMaker training log, or CSV/JSON of epoch,validation[,train]")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    parser.add_argument("--metric", metavar="NAME",
                        help="validation metric to read from a log, e.g. cross_entropy or "
                             "validation:mean_squared_error (default: the one the log has)")
    parser.add_argument("--config", metavar="JSON|FILE",
                        help="detector thresholds as JSON, or a JSON file (default: the built-in defaults; "
                             "see docs/detector.md)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = _config(args.config)
        series = read_metrics_file(args.metrics, metric=args.metric)
        decision = decide_series(series, config)
    except (MetricInputError, ConfigFieldError, ValueError) as error:
        print(f"o2v detect: error: {error}", file=sys.stderr)
        return EXIT_UNREADABLE
    for skipped in series.skipped:  # garbled metric lines: left out of the curve, never silently
        print(f"o2v detect: warning: skipped {skipped}", file=sys.stderr)
    if args.json:
        print(json.dumps({"source": str(args.metrics), **decision.to_dict()}, indent=2, allow_nan=False))
    else:
        print(_render(args.metrics, series, decision))
    return EXIT_DIVERGED if decision.diverged else EXIT_OK


def _config(raw: str | None) -> DetectorConfig:
    if raw is None:
        return DetectorConfig()
    text = raw
    if not raw.lstrip().startswith("{"):
        try:
            text = Path(raw).read_text(encoding="utf-8")
        except OSError as error:
            raise MetricInputError(f"--config {raw}: cannot read ({error})") from None
    return DetectorConfig.from_json(text)


def _render(source: Path, series: MetricSeries, decision: Decision) -> str:
    verdict = {
        "diverged": f"DIVERGED ({decision.reason}) at epoch {decision.detected_at_epoch}: retrain with more dropout",
        "healthy": "healthy: no retrain",
        "undecided": "no decision yet: no retrain",
    }[decision.status]
    train = f"train loss for {len(series.train)} epochs" if series.train else "no train loss"
    lines = [
        f"source:   {source}",
        f"metric:   {series.metric} ({len(series.validation)} epochs; {train})",
        f"decision: {verdict}",
    ]
    if decision.best_epoch is not None and decision.best_value is not None:
        lines.append(f"best:     {_value(decision.best_value)} at epoch {decision.best_epoch}")
    if decision.last_epoch is not None and decision.last_value is not None:
        lines.append(f"latest:   {_value(decision.last_value)} at epoch {decision.last_epoch}")
    lines.append(f"why:      {decision.explanation}")
    return "\n".join(lines)


def _value(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.commands.detect --metrics FILE``: the command without the dispatcher."""
    parser = argparse.ArgumentParser(prog="o2v")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["detect", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
