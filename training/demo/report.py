"""The run report of ``o2v demo``: ``report.md``, ``validation_loss.png`` and ``run.json``.

Everything in it was read back from the local services after the run (DescribeTrainingJob, the
``#quality_metric`` lines in local CloudWatch Logs, the events the rules delivered, the local
SageMaker API's call log), not from the demo's own bookkeeping.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PLOT_FILE = "validation_loss.png"
REPORT_FILE = "report.md"
RUN_FILE = "run.json"

# Keys of the monitor's and the reconciler's reports that list actions (MonitorReport, ReconcileReport).
SCHEDULED_ACTION_KEYS = ("diverged", "stopped_again", "epochs_saved", "left_to_finish", "errors", "judged",
                         "continued", "decided", "deferred_decided", "republished")
QUIET_RECORD_STATES = ("unchanged", "no_endpoint", "endpoint_busy")


@dataclass
class Attempt:
    name: str
    attempt: int
    parent: str | None
    hyperparameters: dict[str, str]
    status: str
    secondary_status: str
    failure_reason: str | None
    metric: str
    validation: list[tuple[int, float]]
    train: list[tuple[int, float]]
    best_epoch: int | None
    best_value: float | None
    diverged: bool
    divergence_reason: str | None
    detected_at_epoch: int | None
    stopped_by_monitor: bool
    launched_by: str
    seconds: float | None
    model_artifact: str | None
    # Epochs not paid because the monitor stopped it (at least: the fewest its own early stopping
    # would still have run); 0 when it was left to finish (o2v_core.early_stopping.choose_stop).
    epochs_saved: int = 0

    @property
    def dropout(self) -> str:
        return self.hyperparameters.get("dropout", "0.0")


@dataclass
class RunSummary:
    run_dir: str
    started_at: str
    wall_seconds: float
    environment: str
    deployment: str
    data: str
    endpoint_name: str
    attempts: list[Attempt]
    promoted_job: str | None
    promoted_value: float | None
    endpoint_status: str | None
    enc_dim: int | None
    embedding_dim: int | None
    spearman: float | None
    test_pairs: int
    deliveries: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    notifications: list[str]
    outcome: str  # "ok" or why not
    services: dict[str, str] = field(default_factory=dict)
    process_groups: list[int] = field(default_factory=list)

    def to_json(self) -> str:
        """Strict JSON (a NaN or infinite loss is written as a string)."""
        return json.dumps(_strip_nan(asdict(self)), indent=2, default=str, allow_nan=False)


def _strip_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _strip_nan(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strip_nan(item) for item in value]
    return value


def write_plot(summary: RunSummary, path: Path) -> None:
    """Validation loss per attempt; an ``x`` marks the epoch at which divergence was detected."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
    for attempt in summary.attempts:
        if not attempt.validation:
            continue
        epochs = [epoch for epoch, _ in attempt.validation]
        values = [value for _, value in attempt.validation]
        promoted = " (promoted)" if attempt.name == summary.promoted_job else ""
        (line,) = axes.plot(epochs, values, marker=".", linewidth=2.2 if promoted else 1.4,
                            label=f"attempt {attempt.attempt}, dropout {attempt.dropout}{promoted}")
        if attempt.detected_at_epoch is not None:
            value = dict(attempt.validation).get(attempt.detected_at_epoch)
            if value is not None:
                axes.plot([attempt.detected_at_epoch], [value], marker="x", markersize=12, markeredgewidth=2.5,
                          color=line.get_color(), linestyle="none")
                axes.annotate(f"diverged\n(epoch {attempt.detected_at_epoch})", (attempt.detected_at_epoch, value),
                              textcoords="offset points", xytext=(6, 8), fontsize=8, color=line.get_color())
        if attempt.best_epoch is not None and attempt.best_value is not None:
            axes.plot([attempt.best_epoch], [attempt.best_value], marker="o", markersize=7, fillstyle="none",
                      color=line.get_color(), linestyle="none")
    metric = next((attempt.metric for attempt in summary.attempts if attempt.metric), "validation loss")
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    axes.set_title("Validation loss per attempt (x: divergence detected, o: best epoch)")
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_markdown(summary: RunSummary) -> str:
    lines = [
        "# o2v demo run report",
        "",
        f"- Run directory: `{summary.run_dir}`",
        f"- Started: {summary.started_at}; wall time {summary.wall_seconds:.0f} s",
        f"- Settings: cdk.json environment `{summary.environment}` (deployment `{summary.deployment}`)",
        f"- Data: {summary.data}",
        f"- Outcome: **{summary.outcome}**",
        "",
        "## Result",
        "",
    ]
    if summary.promoted_job:
        lines += [
            f"- Promoted: `{summary.promoted_job}` ({_fmt(summary.promoted_value)} best validation loss), "
            f"served by endpoint `{summary.endpoint_name}` ({summary.endpoint_status})",
            f"- Embedding size: {summary.embedding_dim} (enc_dim {summary.enc_dim})",
            f"- STS-B test Spearman correlation of the served embeddings: **{_fmt(summary.spearman, 3)}** "
            f"({summary.test_pairs} pairs; cosine of the `in0` embeddings of sentence 1 and sentence 2)",
        ]
    else:
        lines.append("- No model was promoted.")
    lines += [
        "",
        "## Attempts",
        "",
        f"![validation loss per attempt]({PLOT_FILE})",
        "",
        "| Attempt | Job | Dropout | Launched by | Status | Epochs | Best validation loss | Divergence | "
        "Epochs saved |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for attempt in summary.attempts:
        best = (f"{_fmt(attempt.best_value)} (epoch {attempt.best_epoch})"
                if attempt.best_value is not None else "n/a")
        if attempt.diverged:
            how = "stopped by the monitor" if attempt.stopped_by_monitor else "left to finish on its own"
            divergence = f"{attempt.divergence_reason} at epoch {attempt.detected_at_epoch} ({how})"
        else:
            divergence = "none"
        status = attempt.status + (f" ({attempt.secondary_status})" if attempt.secondary_status != attempt.status
                                   else "")
        lines.append(
            f"| {attempt.attempt} | `{attempt.name}` | {attempt.dropout} | {attempt.launched_by} | {status} | "
            f"{len(attempt.validation)} | {best} | {divergence} | {attempt.epochs_saved} |"
        )
    saved = sum(attempt.epochs_saved for attempt in summary.attempts)
    lines += ["", f"Epochs saved by stopping diverged attempts: at least **{saved}** (each stop saves at least "
                  "the epochs the job's own early stopping would still have run). A diverged attempt is stopped "
                  "only when that is more than `finish_diverged_within_epochs` (cdk.json); otherwise it finishes "
                  "with its best epoch in its artifact and is a promotion candidate."]
    first = summary.attempts[0] if summary.attempts else None
    if first is not None:
        lines += ["", "### Hyperparameters", "", f"Attempt 1 (`{first.name}`):", "", "```json",
                  json.dumps(first.hyperparameters, indent=2, sort_keys=True), "```", ""]
        for attempt in summary.attempts[1:]:
            changed = {key: f"{first.hyperparameters.get(key)} -> {value}"
                       for key, value in attempt.hyperparameters.items() if first.hyperparameters.get(key) != value}
            missing = sorted(set(first.hyperparameters) - set(attempt.hyperparameters))
            lines.append(f"- Attempt {attempt.attempt} changes: "
                         + (", ".join(f"`{key}` {text}" for key, text in changed.items()) or "nothing")
                         + (f"; drops {missing}" if missing else ""))
    lines += ["", "## Event deliveries", "",
              "Every event the rules matched (from `o2v_core.events.rules`), and what the handler answered. "
              "Scheduled runs (monitor, reconciler) are counted, and listed only when they acted.", "",
              "| Time (s) | Rule | Target | Event | Result |", "| --- | --- | --- | --- | --- |"]
    quiet_schedules = 0
    for item in summary.deliveries:
        result = item.get("result")
        acted = not (item["ruleId"] == "Schedule" and item.get("ok") and isinstance(result, dict)
                     and not any(result.get(key) for key in SCHEDULED_ACTION_KEYS)
                     and result.get("record", "unchanged") in QUIET_RECORD_STATES)
        if not acted:
            quiet_schedules += 1
            continue
        text = item.get("error") or json.dumps(result, default=str)
        lines.append(f"| {item['offset']:.1f} | {item['ruleId']} | {item['target']} | {item.get('detailType')} | "
                     f"{'ok' if item.get('ok') else 'FAILED'}: {text[:160]} |")
    lines += ["", f"Quiet scheduled runs (monitor or reconciler, nothing to do): {quiet_schedules}.", ""]
    if summary.dead_letters:
        lines += ["## Dead letters", ""] + [f"- {item}" for item in summary.dead_letters] + [""]
    if summary.notifications:
        lines += ["## Operator notifications (SNS)", ""] + [f"- {item}" for item in summary.notifications] + [""]
    lines += ["## Files", "",
              "- `run.json`: this report as data",
              "- `events.jsonl`: every delivery of the event pump",
              "- `services/sagemaker/api-calls.jsonl`: every call to the local SageMaker API (who called, when)",
              "- `services/sagemaker/jobs/<job>/trainer.log`: each training job's output",
              "- `logs/`: the local services' and the Lambda functions' output", ""]
    return "\n".join(lines)


def write_report(summary: RunSummary, run_dir: Path) -> dict[str, Path]:
    paths = {"report": run_dir / REPORT_FILE, "plot": run_dir / PLOT_FILE, "run": run_dir / RUN_FILE}
    write_plot(summary, paths["plot"])
    paths["report"].write_text(render_markdown(summary), encoding="utf-8")
    paths["run"].write_text(summary.to_json() + "\n", encoding="utf-8")
    return paths
