"""Section 6 of docs/benchmarks.md (results["value"], written by bench/value.py) and its targets."""

from __future__ import annotations

import json
from typing import Any

from bench.rendering import fmt, md_table, verdict_of

RULE_ORDER = ("loop", "shipped", "study_pick", "o2v_early_stopping", "early_stopped_after_rise",
              "budget_after_early_best", "generalization_gap", "loop_with_budget_rule")
ALTERNATIVE_TITLES = {"grid": "dropout grid", "random_search": "AMT Random", "hyperband": "AMT Hyperband",
                      "median_rule": "AMT median rule"}


def _hyperband(results: dict[str, Any]) -> dict[str, Any] | None:
    found = results.get("cost", {}).get("early_stopping_on", {}).get("targets", {}).get("hyperband")
    return found if isinstance(found, dict) else None


def targets(results: dict[str, Any]) -> list[list[str]]:
    value = results.get("value")
    if not value:
        return []
    rows: list[list[str]] = []
    for suite, title in (("attempt_1", "attempt 1"), ("every_start", "every start")):
        loop = value["rules"]["loop"][suite]
        met = (loop["precision"] is not None and loop["precision"] >= 0.8 and loop["recall"] is not None
               and loop["recall"] >= 0.8 and loop["premature"] == 0)
        rows.append([f"6. The loop's retrain decisions: precision and recall >= 0.8 against the value label, no alarm "
                     f"at or before the best epoch ({title})",
                     f"precision {fmt(loop['precision'])}, recall {fmt(loop['recall'])} ({loop['tp']} right, "
                     f"{loop['fp']} wasted, {loop['fn']} missed of {loop['cases']}; {loop['worth']} worth it); "
                     f"{loop['premature']} premature", verdict_of(met)])
    test = served_on_test(value["rules"]["loop"]["attempt_1"]["rows"])
    tested, worse, untested = test["tested"], test["worse"], test["untested"]
    # A pair that serves attempt 1's own weights is not worse, measured or not; the others must be measured.
    unknown = sorted(set(untested) - set(test["untested_own"]))
    verdict = verdict_of(not worse) if tested else "n/a"
    if tested and not worse and unknown:
        verdict = "**met** where measured"
    metrics = ", ".join(f"{metric} on {count}" for metric, count in test["metrics"].items())
    own = (f" (it serves attempt 1's own model, so it is not worse: {', '.join(test['untested_own'])})"
           if test["untested_own"] else "")
    rows.append(["6. The served model is never worse than attempt 1 on the test split (every seed and configuration)",
                 f"worse on {len(worse)} of {len(tested)} measured (configuration, seed) pairs ({metrics or 'none'}"
                 f"; on {len(test['same'])} of them the served model is attempt 1's); not measured: "
                 f"{', '.join(untested) or 'none'}{own}", verdict])
    equal = value["equal_budgets"]
    best = equal.get("best_alternative")
    summary = equal.get("summary", {})
    others = sorted({row["config"] for row in value["rules"]["loop"]["attempt_1"]["rows"]} - {value["config"]})
    met = equal.get("met")
    rows.append(["6. Quality per epoch at least the best alternative's on every configuration",
                 f"`{value['config']}`: loop {fmt(_pct(summary.get('loop', {}).get('mean')), 3)}%/epoch vs best "
                 f"alternative ({ALTERNATIVE_TITLES.get(str(best), best)}) "
                 f"{fmt(_pct(summary.get(str(best), {}).get('mean')), 3)}%/epoch, seed by seed; not measured on "
                 f"{', '.join(others) or 'none'} (two or three dropouts recorded, too few for the alternatives)",
                 "**met** where measured" if met and others else verdict_of(met)])
    hyperband = _hyperband(results)
    if hyperband:
        ratio = hyperband.get("ratio_reached")
        rows.append(["6. At most half of Hyperband's epochs to a model within 2% of the grid's best (where any "
                     "strategy reaches one)",
                     f"{fmt(ratio, 3)} over the {hyperband.get('seeds_reached')}/{hyperband.get('seeds')} seeds where "
                     f"both reach one (section 2, early stopping on)",
                     verdict_of(ratio is not None and ratio <= 0.5)])
    return rows


def served_on_test(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rule's served model against attempt 1 on the test split, over one suite's rows: the (configuration,
    seed) pairs measured, those where the served model is worse, those where it is attempt 1's own model (the
    same weights: equal by construction, measured or not), the unmeasured pairs, and the measured pairs per
    test metric."""
    def own(row: dict[str, Any]) -> bool:
        return bool(row["served_dropout"] == row["dropout"] and row.get("served_epoch") == row["best_epoch"])

    tested = [row for row in rows if row["served_test"] is not None and row["first_test"] is not None]
    metrics: dict[str, int] = {}
    for row in tested:
        metric = str(row.get("test_metric", "STS-B Spearman"))  # rows of runs before SNLI accuracy: STS-B only
        metrics[metric] = metrics.get(metric, 0) + 1
    return {
        "tested": tested,
        "worse": [row for row in tested if row["served_test"] < row["first_test"]],
        "same": [row for row in tested if own(row)],
        "untested": sorted({f"{row['config']} seed {row['seed']}" for row in rows if row not in tested}),
        "untested_own": sorted({f"{row['config']} seed {row['seed']}" for row in rows
                                if row not in tested and own(row)}),
        "metrics": dict(sorted(metrics.items())),
    }


def _test_gain(item: dict[str, Any]) -> str:
    """Served minus attempt 1's test quality, mean per metric (their units differ), with the cases measured."""
    gains = item.get("test_gain") or {}
    return "; ".join(f"{metric} {fmt(entry['mean'], 2)} ({entry['cases']})" for metric, entry in gains.items()) or "n/a"


def _recheck(results: dict[str, Any]) -> str:
    """How well a second recording of the same seeded run reproduces the first (``value_recheck``)."""
    found = results.get("value_recheck")
    if not found:
        return ""
    parts = ", ".join(f"`{key}` {diff:.2g}" for key, diff in sorted(found.items()))
    return (" The value study's runs were recorded later than the suite, on the same trainer; recording some runs "
            "a second time (the SNLI and hcnn runs with `--rerecord`, which the results now hold, to keep their test "
            f"metrics) gives the largest per-epoch difference in validation value from the first recording: {parts}. "
            "Where it is large, the configuration's value label compares runs whose noise exceeds the gains "
            "measured.")


def _stops(seeds: list[dict[str, Any]]) -> str:
    return "; ".join(f"seed {row['seed']}: {row['note'] or 'the last attempt did not diverge'}" for row in seeds)


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def section(results: dict[str, Any]) -> str:
    value = results.get("value")
    if not value:
        return "## 6. Is a retrain worth it? The value label\n\nNot measured in this run."
    agree = value["agreement"]
    parts = [f"""## 6. Is a retrain worth it? The value label

Replayed on the recorded curves (`bench/value.py`; nothing trained in this section). An
*attempt-1 curve* is a recorded run whose next attempt, the one the retrain policy would start
(dropout + {value['policy']['dropout_step']}), is recorded too, same configuration and seed, both as
users run them (Object2Vec's early stopping on). The retrain is **worth it** when the next attempt's
best validation value beats attempt 1's by more than {100 * value['threshold']:g}% (relative):
the larger of cdk.json's `promotion_margin` ({value['promotion_margin']:g}, which would count any
gain at all) and 1%. *Attempt 1* = the lineages' real first attempt (dropout 0);
*every start* = a lineage starting at any recorded dropout.

Recorded curves missing for the label: {'; '.join(value['missing']) or 'none'}.{_recheck(results)}

### Shape label against value label

{md_table(['Suite', 'Curves', 'Diverging (shape) and worth it', 'Diverging, not worth it',
         'Healthy, worth it', 'Healthy, not worth it', 'Agreement'],
        [[name.replace('_', ' '), item['cases'], item['diverging_worth'], item['diverging_not_worth'],
          item['healthy_worth'], item['healthy_not_worth'], f"{item['agree']}/{item['cases']}"]
         for name, item in agree.items()])}

Attempt 1, curve by curve (gain = the next attempt's relative improvement of the best validation value):

{md_table(['Configuration', 'Seed', 'Shape label', 'Next dropout', 'Gain', 'Worth it'],
        [[row['config'], row['seed'], 'diverging' if row['shape_diverging'] else 'healthy',
          f"{row['next_dropout']:g}", f"{100 * row['gain']:+.1f}%", 'yes' if row['worth'] else 'no']
         for row in agree['attempt_1']['rows']])}

### Every decision rule against the value label

Precision and recall of "retrain"; *premature* = an in-flight alarm at or before the curve's best
epoch; epochs = attempt 1's paid epochs plus the next attempt's when the rule retrains; test gain =
the test-split quality of the model finally served (the better validation value of the two
attempts, at the epoch it holds) minus attempt 1's (its best epoch as users run it), mean per
metric over the cases with both measured (in brackets). SNLI: test accuracy x 100 of that epoch's
weights (every epoch scored on SNLI's test split while the run was recorded). STS-B: test Spearman
x 100 of the served embeddings' cosine (section 4's measure) of the run's saved model, the full
run's best epoch, so only where that is the epoch served.

{md_table(['Rule', 'Suite', 'Retrains', 'Precision', 'Recall', 'Premature', 'Mean epochs', 'Test gain (cases)',
         'Served worse on test'],
        [[value['rules'][name]['title'], suite.replace('_', ' '), item['retrain'], fmt(item['precision']),
          fmt(item['recall']), item['premature'], fmt(item['mean_epochs'], 1), _test_gain(item),
          f"{item['served_worse_on_test']} of {item['test_cases']}"]
         for name in RULE_ORDER if name in value['rules']
         for suite, item in value['rules'][name].items() if suite != 'title'])}

Per configuration and seed (attempt 1; the deployed loop):

{md_table(['Configuration', 'Seed', 'Worth it', 'Loop retrains', 'Epochs', 'Served', 'Test metric', 'Attempt 1 test',
          'Served test'],
        [[row['config'], row['seed'], 'yes' if row['worth'] else 'no', 'yes' if row['retrain'] else 'no',
          row['epochs'], f"dropout {row['served_dropout']:g}", row.get('test_metric', 'STS-B Spearman'),
          fmt(row['first_test'], 1), fmt(row['served_test'], 1)]
         for row in value['rules']['loop']['attempt_1']['rows']])}"""]
    policies = value["policies"]
    parts.append(f"""### What follows a relaunch that did not help

The loop (deployed detector, finished-job evaluator) on `{value['config']}`, per seed, with each
`on_no_improvement` choice (the weight-decay runs are recorded at the best attempt's dropout 0.1;
`smaller_step` uses the recorded dropout 0.15). Value per epoch = the served model's relative
validation gain over attempt 1, per GPU-epoch paid; mean (sd, min-max) over seeds.

{md_table(['Choice', 'Mean epochs', 'Gain over attempt 1', 'Value per epoch (%/epoch)', 'Attempts per seed',
         'Served per seed', 'Served test per seed'],
        [[name, f"{fmt(item['epochs']['mean'], 1)} ({fmt(item['epochs']['min'], 0)}-{fmt(item['epochs']['max'], 0)})",
          f"{fmt(_pct(item['gain']['mean']), 2)}% (sd {fmt(_pct(item['gain']['sd']), 2)})",
          f"{fmt(_pct(item['gain_per_epoch']['mean']), 3)} (sd {fmt(_pct(item['gain_per_epoch']['sd']), 3)})",
          ', '.join('>'.join(row['path']) for row in item['seeds']),
          ', '.join(row['served'] for row in item['seeds']),
          ', '.join(fmt(row['served_test'], 1) for row in item['seeds'])]
         for name, item in policies.items()])}

Chosen by the highest mean value per epoch: **{value['chosen_policy']}**; deployed (cdk.json):
**{value['deployed_policy']}** (policy `{json.dumps(value['policy'], sort_keys=True)}`). Why each
seed's lineage stopped (deployed choice): {_stops(policies[value['deployed_policy']]['seeds'])}.""")
    equal = value["equal_budgets"]
    names = ("loop", *ALTERNATIVE_TITLES)
    parts.append(f"""### The loop against what a user would run instead, at equal epoch budgets

Each alternative gets the epochs the deployed loop paid on that seed and holds the best validation
epoch among those it paid for (the grid in ascending dropout; the AMT rows: mean over
{results.get('cost', {}).get('early_stopping_on', {}).get('draws', '?')} tuning jobs with the 10th-90th
percentile). Quality per GPU-epoch = relative validation gain over attempt 1 per epoch.

{md_table(['Seed', 'Budget (epochs)', 'Loop', *ALTERNATIVE_TITLES.values(), 'Grid best (any budget)'],
        [[row['seed'], row['budget'], fmt(row['loop'], 4), fmt(row['grid'], 4),
          *[f"{fmt(row[n]['mean'], 4)} ({fmt(row[n]['p10'], 4)}-{fmt(row[n]['p90'], 4)})" for n in ALTERNATIVE_TITLES
            if n != 'grid'], fmt(row['grid_best'], 4)] for row in equal['rows']])}

{md_table(['Strategy', 'Quality per GPU-epoch, mean over seeds (%/epoch)', 'sd'],
        [[('loop' if n == 'loop' else ALTERNATIVE_TITLES[n]), fmt(_pct(equal['summary'][n]['mean']), 3),
          fmt(_pct(equal['summary'][n]['sd']), 3)] for n in names if n in equal['summary']])}""")
    parts.append(_why(results))
    return "\n\n".join(parts)


def _cases(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{row['config']} seed {row['seed']} ({100 * row['gain']:+.1f}%)" for row in rows) or "none"


def _why(results: dict[str, Any]) -> str:
    """Why each target of this section is met or not, from the numbers above."""
    value = results["value"]
    loop = value["rules"]["loop"]
    first = loop["attempt_1"]["rows"]
    wasted = [row for row in first if row["retrain"] and not row["worth"]]
    missed = [row for row in first if not row["retrain"] and row["worth"]]
    every = loop["every_start"]
    wasted_every = [row for row in every["rows"] if row["retrain"] and not row["worth"]]
    equal = value["equal_budgets"]
    ties = [row["seed"] for row in equal["rows"] if abs(row["per_epoch"]["loop"] - row["per_epoch"]["grid"]) < 1e-12]
    hyperband = _hyperband(results) or {}
    premature = sorted({row["dropout"] for row in every["rows"] if row["premature"]})
    where = f" (at dropout {', '.join(f'{d:g}' for d in premature)})" if premature else ""
    test = served_on_test(first)
    metrics = " and ".join(f"{metric} on {count}" for metric, count in test["metrics"].items())
    served = (f"where measured ({len(test['tested'])} pairs: {metrics or 'none'}) it never is" if not test["worse"]
              else f"it is on {_cases(test['worse'])}")
    same = (f" On {len(test['same'])} of them the loop serves attempt 1's own model (it did not retrain, or the "
            "next attempt was not better on validation), so the two are equal by construction; the comparison "
            "has teeth on the others." if test["same"] else "")
    untested = (f" Not measured: {', '.join(test['untested'])} (STS-B's Spearman is measured on the run's "
                "saved model, the full run's best epoch; with early stopping on as users run it, the epoch "
                "served is an earlier one" + (", and the loop serves attempt 1's own model there, so it is not "
                                                 "worse" if test["untested_own"] == test["untested"] else "")
                + ")." if test["untested"] else "")
    return f"""### Why the targets of this section are met or not

* **Retrain decisions.** On attempt 1 the loop retrains where it should except {_cases(missed)}
  (missed: neither an in-flight alarm nor the finished-job evaluator's `early_stopped_after_rise`
  verdict, yet the next attempt was better by more than the margin) and retrains {_cases(wasted)}
  for nothing (wasted). Starting a lineage at any recorded
  dropout, most alarms are right about the shape but wrong about the value: {len(wasted_every)}
  retrains whose next dropout step did not pay, {every['premature']} alarms at or before a best
  epoch{where}. The stop policy caps what such a retrain costs at one attempt.
* **Served model on the test split.** The served model is the better validation value of the
  attempts, so it can be worse on test only where validation and test disagree; {served}.{same}{untested}
* **Quality per epoch.** At the loop's own budget, the ascending grid pays exactly the loop's jobs
  on seeds {', '.join(map(str, ties)) or 'none'} (the loop's path is the grid's first steps), so
  the two tie; the AMT samplers spend the same epochs on random dropouts and hold worse models on
  average. Only `{value['config']}` has every dropout recorded; the other configurations have two or
  three dropouts each, too few for the alternatives.
* **Epochs to a good model against Hyperband.** {fmt(hyperband.get('ratio_reached'), 3)} of Hyperband's
  epochs on the seeds where both reach a model within 2% of the grid's best (section 2)."""
