"""Section 2 of docs/benchmarks.md (results["cost"], written by bench/cost.py), its targets and its plot."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.rendering import fmt, md_table, verdict_of

STRATEGY_TITLES = {
    "ours": "Our loop (detector + retrain policy)",
    "grid": "Exhaustive dropout grid 0.0-0.7",
    "random_search": "AMT Random search over dropout",
    "hyperband": "AMT Hyperband (MinResource 1, MaxResource = epochs)",
    "median_rule": "AMT Random + TrainingJobEarlyStoppingType=AUTO (median rule)",
    "no_remediation": "No remediation (dropout 0, one job)",
}
REPLAYS = (("early_stopping_on", "Object2Vec early stopping on, as users run it"),
           ("early_stopping_off", "early stopping off, the whole budget"))
SHORT_REPLAY = {"early_stopping_on": "early stopping on", "early_stopping_off": "early stopping off"}
TARGET_NAMES = {"grid": ("the grid's", "35%"), "hyperband": ("Hyperband's", "50%"),
                "random_search": ("random search's (information)", "50%")}
SHORT_NAMES = {"grid": "grid", "hyperband": "Hyperband", "random_search": "random search"}


def targets(results: dict[str, Any]) -> list[list[str]]:
    cost = results.get("cost")
    if not cost or "early_stopping_on" not in cost:
        return []
    rows: list[list[str]] = []
    for key, _ in REPLAYS:
        title = SHORT_REPLAY[key]
        replay = cost[key]
        found = replay["targets"]
        every = found["every_seed_good"]
        reachable = (f" (any strategy reaches one on {every['reachable']}/{every['seeds']})"
                     if "reachable" in every else "")
        rows.append([f"2. Our loop reaches a good model on every seed ({title})",
                     f"{every['reached']}/{every['seeds']} seeds{reachable}", verdict_of(every["met"])])
        for other, (name, bound) in TARGET_NAMES.items():
            entry = found[other]
            rows.append([f"2. Our loop <= {bound} of {name} epochs to a good model ({title})",
                         f"{fmt(entry['ratio'], 3)} over all seeds; {fmt(entry.get('ratio_reached'), 3)} over the "
                         f"{entry.get('seeds_reached', '?')}/{entry.get('seeds', '?')} seeds where ours reached one",
                         verdict_of(entry["met"])])
    return rows


def _summary_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, title in STRATEGY_TITLES.items():
        s = summary.get(name)
        if not s:
            continue
        to_good = (fmt(s["mean_epochs_to_good"], 1) if s["mean_epochs_to_good"] is not None else
                   f"not reached on {s['seeds'] - s['reached']} seed(s)")
        rows.append([title, to_good, f"{s['reached']}/{s['seeds']}", fmt(s["mean_epochs_total"], 1),
                     fmt(s["mean_wasted"], 1)])
    return rows


def _per_seed_rows(replay: dict[str, Any]) -> list[list[Any]]:
    by_seed: dict[int, dict[str, Any]] = {}
    for run in replay["runs"]:
        by_seed.setdefault(int(run["seed"]), {})[run["strategy"]] = run
    rows = []
    for seed, runs in sorted(by_seed.items()):
        ours = runs["ours"]
        attempts = "; ".join(f"dropout {item['dropout']:.1f}: {item['paid']} ep ({item['stopped_by']})"
                             for item in ours["runs"])
        rows.append([seed, attempts, *[fmt(runs[name]["epochs_to_good"], 1) if name in runs else "n/a"
                                       for name in STRATEGY_TITLES if name != "no_remediation"],
                     fmt(ours["held_value"], 4), fmt(replay["reference"][str(seed)], 4)])
    return rows


def _ratio_line(found: dict[str, Any]) -> str:
    parts = []
    for other, (_name, bound) in TARGET_NAMES.items():
        entry = found[other]
        parts.append(f"{SHORT_NAMES[other]} {fmt(entry['ratio'], 3)} (target <= {bound}: {verdict_of(entry['met'])}; "
                     f"on epochs paid in all {fmt(entry['ratio_total'], 3)})")
    return "; ".join(parts)


def section(results: dict[str, Any], images: dict[str, str], prefix: str) -> str:
    cost = results.get("cost")
    if not cost:
        return "## 2. Cost of reaching a good model\n\nNot measured in this run."
    if "early_stopping_on" not in cost:
        return "## 2. Cost of reaching a good model\n\nThis results file predates the current cost section."
    hyperband = cost.get("hyperband", {})
    finish = cost.get("finish_diverged_within_epochs")
    parts = [f"""## 2. Cost of reaching a good model

Configuration `{cost['config']}`, each (dropout, seed) run recorded once (the same recorded runs as
section 1), then replayed (`bench/cost.py`, `bench/tuners.py`) twice: with Object2Vec's own early
stopping on, as users run it (each job ends where the recipe's `early_stopping_patience` ends it),
and off (every job may run its whole budget). *Good* = validation loss within 2% of the lowest
validation loss anywhere in that seed's exhaustive full-budget grid (dropout 0.0-0.7, step 0.1,
every epoch), in both replays. A strategy *holds* the best-validation epoch among the epochs it
paid for. "Epochs to a good model" counts paid epochs, in the strategy's own order, up to the first
epoch at which the held model is good; "in all" is what it pays until it stops by its own rule
(the samplers have none: their total is their epochs to a good model); "wasted" is epochs paid at
or after a run's divergence onset (section 1's rule).

* **Our loop**: as deployed, the detector settings and the retrain policy from cdk.json
  (detector `{json.dumps(cost['detector'], sort_keys=True)}`, policy
  `{json.dumps(cost['policy'], sort_keys=True)}`): attempt 1 at dropout 0; at the detector's alarm the
  policy picks the next dropout and the diverged job is stopped, or left to finish when its own
  early stopping or budget ends it within `finish_diverged_within_epochs` = {finish} epochs
  (`o2v_core.early_stopping.choose_stop`, the control plane's rule). A job that Object2Vec's own
  early stopping ended before any alarm is judged as the finished-job evaluator judges it (the
  detector's `early_stopped_after_rise` rule: the median of the epochs after its best lies above
  the rise bar); if it fires, the loop retrains too. The first run with neither ends the loop.
* **Grid**: dropout 0.0 to 0.7 in ascending order, every job until its curve ends.
* **AMT Random**: a tuning job drawing dropout uniformly from the recorded values, one job at a time,
  mean over {cost['early_stopping_on'].get('draws', '?')} tuning jobs (the same draws for the three AMT rows).
* **AMT Hyperband**: `MinResource` {hyperband.get('min_resource', '?')}, `MaxResource`
  {hyperband.get('max_resource', '?')} epochs. AWS documents that a job is not stopped before
  `MinResource`, is stopped at `MaxResource`, and that Hyperband stops under-performing jobs from
  their intermediate results using asynchronous successive halving (API_HyperbandStrategyConfig;
  the AWS ML blog post introducing Hyperband in AMT). **Not documented, chosen here**: reduction
  factor eta = {hyperband.get('eta', '?')}, rungs at MinResource x eta^k, one bracket per first rung (jobs assigned in
  turn), and a job continues past a rung only if its loss there is in the best 1/eta of the losses
  recorded at that rung (Ray Tune's ASHA rule); a stopped job keeps its best epoch (favourable to
  Hyperband: whether a stopped Object2Vec job saves a model is unconfirmed, reference 10d).
* **AMT median rule** (`TrainingJobEarlyStoppingType=AUTO`, as
  https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-early-stopping.html
  documents it): after each epoch, a job whose loss is worse than the median of the previous jobs'
  running averages up to the same epoch is stopped. **Not documented, chosen here**: it applies
  from the first epoch once one previous job reached that epoch."""]
    for key, title in REPLAYS:
        replay = cost[key]
        parts.append(f"""### {title[0].upper()}{title[1:]}

{md_table(['Strategy', 'Mean epochs to a good model', 'Seeds reaching good', 'Mean epochs paid in all',
         'Mean epochs wasted after onset'], _summary_rows(replay['summary']))}

Per seed (epochs to a good model; our loop's attempts with the epochs each paid and why it ended):

{md_table(['Seed', 'Our attempts',
           *[STRATEGY_TITLES[n].split(' (')[0] for n in STRATEGY_TITLES if n != 'no_remediation'],
         'Our held val. loss', 'Grid best val. loss'], _per_seed_rows(replay))}

Our epochs to a good model over theirs (mean over seeds; n/a when our loop missed a seed):
{_ratio_line(replay['targets'])}.""")
    other_summary = cost.get("recommended_detector", {})
    if other_summary:
        mine = other_summary["ours"]
        parts.append(f"With the threshold study's recommended settings (section 1) instead of the deployed ones "
                     f"(early stopping on), our loop holds a good model on {mine['reached']}/{mine['seeds']} "
                     f"seeds (after "
                     f"{fmt(mine['mean_epochs_to_good_reached_only'], 1)} epochs on those) and pays "
                     f"{fmt(mine['mean_epochs_total'], 1)} epochs in all.")
    if "cost" in images:
        parts.append(f"![cost]({prefix}{images['cost']})")
    return "\n\n".join(parts)


def plot(results: dict[str, Any], img: Path, plt: Any, save: Callable[[Any, Path], str]) -> dict[str, str]:
    cost = results.get("cost")
    if not cost or "early_stopping_on" not in cost:
        return {}
    summary = cost["early_stopping_on"]["summary"]
    names = [name for name in STRATEGY_TITLES if name in summary]
    fig, axis = plt.subplots(figsize=(11, 4.2))
    bars = (
        ("epochs until a good model is held (seeds that reach one)", "mean_epochs_to_good_reached_only"),
        ("epochs paid in all", "mean_epochs_total"),
        ("epochs paid after divergence onset", "mean_wasted"),
    )
    for index, (title, key) in enumerate(bars):
        values = [summary[name][key] or 0 for name in names]
        axis.bar([x + (index - 1) * 0.27 for x in range(len(names))], values, 0.27, label=title)
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels([f"{name.replace('_', ' ')}\n(good on {summary[name]['reached']}/"
                          f"{summary[name]['seeds']} seeds)" for name in names], fontsize=8)
    axis.set_ylabel("epochs (mean over seeds)")
    axis.legend(fontsize=8)
    axis.set_title("Cost of reaching a model within 2% of the grid's best (Object2Vec early stopping on)")
    fig.tight_layout()
    written = {"cost": save(fig, img / "cost_epochs.png")}
    plt.close(fig)
    return written
