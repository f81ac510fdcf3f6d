"""Section 1 of docs/benchmarks.md, divergence detection: the suite, the detectors side by side,
the threshold study and its trade-off. Every number comes from the results file."""

from __future__ import annotations

import json
from typing import Any

from bench.curves import ONSET_MARGIN, ONSET_PERSIST
from bench.rendering import DETECTOR_ORDER, SHORT, fmt, md_table


def section(results: dict[str, Any], images: dict[str, str], prefix: str) -> str:
    det = results.get("detection")
    if not det:
        return "## 1. Divergence detection\n\nNot measured in this run."
    labels = det["labels"]
    groups: dict[str, list[int]] = {}
    for item in labels.values():
        key = item["family"] if item["source"] == "synthetic" else f"{item['family']}/{item['source']}"
        entry = groups.setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += bool(item["diverging"])
    suite_rows = [[key, count, diverging, count - diverging] for key, (count, diverging) in sorted(groups.items())]
    recording = results.get("recording", {})
    dropouts = ", ".join(f"{d:g}" for d in recording.get("dropouts", []))
    configs = sorted({f"{item['spec']['dataset']}/{item['spec']['network']}-{item['spec']['size']}"
                      for item in results.get("records", [])})
    header = ["Detector", "Precision", "Recall", "F1", "FPR (healthy)", "Healthy alarms", "Premature",
              "Median delay", "p90 delay"]

    def score_rows(subset: str) -> list[list[str]]:
        rows = []
        for name in DETECTOR_ORDER:
            s = det["scores"][name][subset]
            rows.append([det["scores"][name]["title"], fmt(s["precision"], 3), fmt(s["recall"], 3), fmt(s["f1"], 3),
                         fmt(s["fpr_healthy"], 3), f"{s['healthy_alarms']}/{s['healthy']}", s["premature"],
                         fmt(s["median_delay"], 1), fmt(s["p90_delay"], 1)])
        return rows

    families = sorted(groups)
    family_rows = []
    for family in families:
        row = [family, groups[family][0], groups[family][1]]
        for name in DETECTOR_ORDER:
            per = det["scores"][name]["all"]["per_family"].get(family, {"alarms": 0, "curves": 0})
            row.append(f"{per['alarms']}/{per['curves']}")
        family_rows.append(row)
    study = det["study"]
    top_rows = [[_config_text(row["config"]), fmt(row["tune"]["f1"], 3), f"{row['tune']['healthy_alarms']}",
                 row["tune"]["premature"], fmt(row["tune"]["median_delay"], 1), fmt(row["tune"]["p90_delay"], 1),
                 "yes" if row["meets"] else "no"] for row in study["top"][:8]]
    recommended = det["recommended"]
    changed = {key: value for key, value in recommended.items() if det["default"].get(key) != value}
    images_md = "\n\n".join(f"![{name}]({prefix}{file})" for name, file in images.items()
                            if name in ("synthetic", "recorded", "alarms"))
    return f"""## 1. Divergence detection

### The labelled curve suite

* **Recorded curves**: {recording.get('runs', 0)} local training runs with the repository's trainer
  (`training.trainer.loop.train`, Object2Vec's early-stopping rule and best-epoch model), each trained
  once for its full epoch budget with early stopping off; per-epoch `#quality_metric` lines parsed
  by `o2v_core.metric_series`. Each run enters the suite twice: its whole curve (`recorded`) and
  the curve a user sees with early stopping on (`recorded_es`: up to the epoch where the recipe's
  `early_stopping_patience` {_es_text(recording)} ends the job; training is seeded, so
  that run is the first epochs of the whole one, which tests/bench checks against a real run;
  {recording.get('ended_by_early_stopping', '?')} of the {recording.get('runs', 0)} runs end early). Configurations:
  {', '.join(f'`{c}`' for c in configs) or 'none'} (network-width: token embedding = encoder = MLP
  width), all with the recipe of `o2v demo`'s overfit-prone attempt 1 (tied token embeddings, one
  tanh MLP layer, Adam at learning rate 0.003, batch 32); dropout {dropouts} for the main
  configuration (seeds {', '.join(str(s) for s in recording.get('seeds', []))}, {recording.get('main_epochs', '?')}
  epochs), fewer dropout values and seeds for the others. STS-B is regression (validation
  `mean_squared_error`); SNLI (train on 90% of the 10k dev pairs, validate on the other 10%) is
  3-class (validation `cross_entropy`; each epoch's weights are also scored on SNLI's test split,
  for section 6's test accuracy).
* **Synthetic curves** ({det['synthetic']['per_family']} per family, seed {det['synthetic']['seed']},
  20-30 epochs, `bench/curves.py`): *healthy* (exponential decay to a floor plus a slow continued
  improvement, 0.5% noise), *noisy healthy* (same, 1.5-3% noise), *plateau* (fast convergence, then
  flat), *spike recovers* (a 1-2 epoch jump of 15-50%, then back on trend), *early divergence*
  (turn at epoch 3-6, then +2-8% of the floor per epoch), *late divergence* (turn at epoch 11+),
  *slow drift* (turn at epoch 5-9, +0.4-1% per epoch), *NaN* (NaN from epoch 4+, half of them after a
  one-epoch blow-up). Train loss keeps falling while validation turns up; the healthy train/validation
  gap is drawn from -5% to +25%.
* **Labelling rule** (the same for every curve, `bench.curves.label`; it sees the whole curve, as
  no detector can): non-finite values count as +infinity; the curve is smoothed by a centred running
  median of 3 epochs (2 at the ends), so one lucky or unlucky epoch neither sets the best value nor
  makes a rise; the best epoch is the first minimum of the smoothed curve and the threshold is that
  minimum x (1 + {ONSET_MARGIN:g}). A curve **diverges** when the smoothed curve *ends* with a tail of
  epochs that are all above the threshold, at least {ONSET_PERSIST} epochs long, or when it holds a
  NaN. The **onset** is the first epoch of that tail (for a NaN run, the earlier of the tail and the
  first NaN). Anything else is **healthy**, whatever family generated it.
* **Scoring**: an alarm on a diverging curve after its best epoch is a true positive, with delay
  max(0, alarm - onset); an alarm at or before the best epoch is *premature* (the run would be
  stopped before its best model existed) and counts as a false positive and a miss; any alarm on a
  healthy curve is a false positive. Percentiles are nearest-rank.
* **Split**: the threshold study tunes on half the suite (even seeds of recorded runs, every other
  synthetic curve per family) and the held-out half is reported separately.

{md_table(['Group', 'Curves', 'Diverging', 'Healthy'], suite_rows)}

{images_md}

### Results (whole suite)

{md_table(header, score_rows('all'))}

Held-out half only (not used to choose the thresholds):

{md_table(header, score_rows('eval'))}

Recorded (real) curves only, whole curves (early stopping off):

{md_table(header, score_rows('recorded'))}

The same recorded runs with Object2Vec's early stopping on, as users run them (each curve ends where
the recipe's early stopping ends the job; a detector that has not fired by then never fires):

{md_table(header, score_rows('recorded_es'))
 if 'recorded_es' in det['scores'][DETECTOR_ORDER[0]] else 'Not in this run.'}

Alarms per family (alarms / curves; a healthy family should read 0, a diverging one all):

{md_table(['Family', 'Curves', 'Diverging', *[SHORT[n] for n in DETECTOR_ORDER]], family_rows)}

Semantics of the alternatives (`bench/baselines.py`): **Object2Vec early stopping** with
`early_stopping_patience=3`, `early_stopping_tolerance=0.01`, the container's rule
(`o2v_core.early_stopping`, reference section 10c): an epoch is bad unless its validation loss
beats the minimum of the previous 3 epochs by at least 0.01; a good epoch resets the count; stop
when the bad count exceeds 3; a NaN fails the job at once. **SageMaker Debugger Overfit** with its
defaults (`ratio_threshold=0.1`,
`patience=1`, `start_step=0`; shared/reference/object2vec.md section 7), evaluated once per epoch:
fires when `(validation - train) / train` exceeds 0.1 for `patience` consecutive steps (Debugger does
not document support for Object2Vec, so this is its rule's semantics, not a run of the service).
**Keras `EarlyStopping(monitor="val_loss", patience=3)`** (`min_delta=0`). Early stopping is built to
stop a run that has stopped improving, so its alarms on converged healthy curves are by design;
the point of this comparison is that none of the alternatives can tell divergence from
convergence, which is what decides whether to relaunch with more dropout.

### Threshold study: how the defaults were chosen

{study['candidates']} `DetectorConfig` settings were swept on the tuning half (`bench.scoring.candidate_configs`:
patience 1-4, relative rise 2-12%, trailing-median smoothing 1/3/5, minimum epochs 3/5, the
generalization-gap rule off or on with four threshold pairs; and the *noise-aware* rule, a rise
judged against the curve's own epoch-to-epoch noise: `noise_multiplier` 2-6 times the robust
noise of the curve's second differences, over a relative floor of 0-3%); {study['meeting_constraints']} met every
constraint (no alarm on a healthy tuning curve, no premature alarm, median delay <= 2 epochs). The
choice takes the first non-empty tier of: settings meeting every constraint; settings with no
false alarm and no premature alarm; all settings. Within the tier: best F1, then lower median and
p90 delay, then the fewest changes from the current defaults. Chosen tier:
**{study.get('chosen_tier', 'n/a')}**. Top settings by F1 on the tuning half:

{md_table(['Settings (changes from defaults)', 'F1', 'Healthy alarms', 'Premature', 'Median delay', 'p90 delay',
         'Meets constraints'], top_rows)}

{_trade_off(study)}

**Recommended `DetectorConfig`** (measured; changes from the defaults at run time: {_config_text(changed) or 'none'}):

```json
{json.dumps(recommended, indent=2, sort_keys=True)}
```"""


def _es_text(recording: dict[str, Any]) -> str:
    pairs = recording.get("early_stopping") or []
    return ", ".join(f"{patience} (tolerance {tolerance:g})" for patience, tolerance in pairs) or "?"


def _trade_off(study: dict[str, Any]) -> str:
    found = study.get("within_delay_bound")
    if not found:
        return "No setting reached a median delay of 2 epochs or less without a premature alarm."
    whole = found["all"]
    return (f"The trade-off, measured: the setting with the fewest false alarms among those with a median delay of "
            f"2 epochs or less ({_config_text(found['config'])}) raises {found['tune']['healthy_alarms']} false "
            f"alarm(s) on healthy tuning curves; on the whole suite: F1 {whole['f1']:.3f}, "
            f"{whole['healthy_alarms']}/{whole['healthy']} healthy curves stopped, median delay "
            f"{fmt(whole['median_delay'], 1)} (p90 {fmt(whole['p90_delay'], 1)}).")


def _config_text(config: dict[str, Any]) -> str:
    from o2v_core.detector import DetectorConfig

    defaults = DetectorConfig().__dict__
    changed = {key: value for key, value in config.items() if defaults.get(key) != value}
    return ", ".join(f"{key}={value}" for key, value in sorted(changed.items())) or "defaults"
