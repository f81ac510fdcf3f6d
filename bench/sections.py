"""The sections of one bench run; each writes its part of the results dictionary."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from o2v_core.detector import DetectorConfig
from o2v_core.settings import Settings, settings_from_cdk_json

from bench.baselines import alternatives, ours
from bench.config import BenchConfig
from bench.cost import OwnStop, reference_best, replay
from bench.curves import Curve, assign_splits, synthetic_suite
from bench.record import RunRecord, prepare_datasets, record_runs
from bench.scoring import StudyRow, candidate_configs, choose, evaluate, study, tier_of
from bench.serving import MiniLM

SYNTHETIC_SEED = 0


@dataclass
class Context:
    cfg: BenchConfig
    repo: Path
    shared: Path
    work: Path
    results: dict[str, Any]
    log: Callable[[str], None]
    datasets: dict[str, Path] = field(default_factory=dict)
    records: list[RunRecord] = field(default_factory=list)
    _minilm: MiniLM | None = None

    def minilm(self) -> MiniLM:
        if self._minilm is None:
            self.log("loading all-MiniLM-L6-v2 (offline)")
            self._minilm = MiniLM()
        return self._minilm

    def record_for(self, config: str, dropout: float, seed: int) -> RunRecord:
        for item in self.records:
            if (item.spec.config_name == config and abs(item.spec.dropout - dropout) < 1e-9 and item.spec.seed == seed
                    and not item.spec.weight_decay):
                return item
        raise KeyError(f"no recorded run {config} dropout {dropout} seed {seed}")


def _app_settings(repo: Path) -> Settings:
    """The app's settings: cdk.json's default environment, read and validated as ``cdk synth`` does."""
    return settings_from_cdk_json(repo / "cdk.json")


def record(ctx: Context) -> None:
    ctx.log("preparing datasets (o2v prepare)")
    ctx.datasets = prepare_datasets(ctx.shared, ctx.work, snli=ctx.cfg.snli, smoke=ctx.cfg.smoke)
    specs = ctx.cfg.all_runs()
    ctx.log(f"recording {len(specs)} training runs with {ctx.cfg.workers} workers")
    ctx.records = record_runs(specs, ctx.datasets, ctx.work, workers=ctx.cfg.workers, progress=ctx.log)
    _recording_summary(ctx)


def record_missing(ctx: Context) -> None:
    """``--reuse-records``: train only the configured runs the results file does not hold yet."""
    have = {item.spec.key for item in ctx.records}
    missing = [spec for spec in ctx.cfg.all_runs() if spec.key not in have]
    if not missing:
        return
    ctx.log(f"recording the {len(missing)} configured run(s) missing from the results: "
            + ", ".join(spec.key for spec in missing))
    ctx.datasets = prepare_datasets(ctx.shared, ctx.work, snli=ctx.cfg.snli, smoke=ctx.cfg.smoke)
    ctx.records += record_runs(missing, ctx.datasets, ctx.work, workers=ctx.cfg.workers, progress=ctx.log)
    _recording_summary(ctx)


def rerecord(ctx: Context, prefixes: tuple[str, ...]) -> None:
    """``--rerecord``: train again the recorded runs whose key starts with one of ``prefixes`` (their models
    stay in the work directory, for the test metrics the value section reads), each in its former place in
    the records (the detection suite's tune/eval split follows that order). What was measured on the former
    models goes; the largest per-epoch difference of validation value from the former curve is kept in
    ``value_recheck`` (how well a seeded run reproduces)."""
    former = {item.spec.key: item for item in ctx.records if item.spec.key.startswith(prefixes)}
    unconfigured = sorted(set(former) - {spec.key for spec in ctx.cfg.all_runs()})
    if not former or unconfigured:
        raise SystemExit(f"--rerecord {','.join(prefixes)}: " + (
            f"not configured in bench/config.py, so it could not be recorded again: {', '.join(unconfigured)}"
            if former else "no recorded run's key starts with it"))
    order = {item.spec.key: index for index, item in enumerate(ctx.records)}
    measured = ctx.results.get("value_test", {})
    for key in former:
        measured.pop(key, None)
    ctx.records = [item for item in ctx.records if item.spec.key not in former]
    record_missing(ctx)
    ctx.records.sort(key=lambda item: order.get(item.spec.key, len(order)))
    _recording_summary(ctx)
    recheck = ctx.results.setdefault("value_recheck", {})
    for item in ctx.records:
        if item.spec.key in former:
            recheck[item.spec.key] = max(abs(new - old) for new, old in
                                         zip(item.validation, former[item.spec.key].validation, strict=True))


def _recording_summary(ctx: Context) -> None:
    ctx.results["records"] = [item.to_json() for item in ctx.records]
    suite = _suite_records(ctx)
    ctx.results["recording"] = {
        "runs": len(suite),
        "value_runs": len(ctx.records) - len(suite),
        "training_seconds": round(sum(item.seconds for item in suite), 1),
        "datasets": sorted(ctx.datasets),
        "main_config": ctx.cfg.main_config,
        "seeds": list(ctx.cfg.seeds),
        "dropouts": list(ctx.cfg.dropouts),
        "main_epochs": ctx.cfg.main_epochs,
        "early_stopping": sorted({(item.early_stopping_patience, item.early_stopping_tolerance)
                                  for item in suite}),
        "ended_by_early_stopping": sum(item.early_stopping_epoch is not None for item in suite),
    }


# -- 1. detection ------------------------------------------------------------------------------------


def _suite_records(ctx: Context) -> list[RunRecord]:
    """The recorded runs of the curve suite (the value study's extra runs stay out of sections 1 and 2)."""
    keys = {spec.key for spec in ctx.cfg.suite_runs()}
    return [item for item in ctx.records if item.spec.key in keys]


def _suite(ctx: Context) -> list[Curve]:
    """Synthetic curves, every recorded run's whole curve, and the same runs with early stopping on."""
    synthetic = synthetic_suite(ctx.cfg.synthetic_per_family, seed=SYNTHETIC_SEED)
    records = _suite_records(ctx)
    return (synthetic + [item.curve() for item in records]
            + [item.curve_with_early_stopping() for item in records])


def detection(ctx: Context) -> None:
    suite = _suite(ctx)
    splits = assign_splits(suite)
    tune = [curve for curve in suite if splits[curve.name] == "tune"]
    held_out = [curve for curve in suite if splits[curve.name] == "eval"]
    default = DetectorConfig()
    configs = candidate_configs(ctx.cfg.smoke)
    ctx.log(f"threshold study: {len(configs)} detector settings on {len(tune)} tuning curves")
    rows = study(configs, tune)
    chosen = choose(rows, default)
    recommended = DetectorConfig.from_mapping(chosen.config)
    app_config = _app_settings(ctx.repo).detector
    detectors: list[tuple[str, str, Any]] = [
        ("ours_recommended", "Ours, recommended settings (this study)", ours(recommended)),
        ("ours_default", "Ours, DetectorConfig() defaults at run time", ours(default)),
    ]
    detectors += [(item.name, item.title, item.first_alarm) for item in alternatives()]
    scores: dict[str, Any] = {}
    outcomes: dict[str, Any] = {}
    for name, title, first_alarm in detectors:
        entry: dict[str, Any] = {"title": title}
        for subset_name, subset in (("all", suite), ("eval", held_out), ("tune", tune),
                                    ("recorded", [c for c in suite if c.family == "recorded"]),
                                    ("recorded_es", [c for c in suite if c.family == "recorded_es"]),
                                    ("synthetic", [c for c in suite if c.source == "synthetic"])):
            score, found = evaluate(first_alarm, subset)
            entry[subset_name] = score.to_json()
            if subset_name == "all":  # the errors only (the rest follows from the labels and the scores)
                outcomes[name] = [{"curve": item.curve, "alarm": item.alarm, "kind": item.kind}
                                  for item in found if item.kind in ("fp", "premature", "fn")]
        scores[name] = entry
    def rank(row: StudyRow) -> tuple[float, float]:
        return (-row.tune.f1, 99.0 if row.tune.median_delay is None else row.tune.median_delay)

    ranked = sorted(rows, key=rank)
    # The trade-off: the setting that meets the delay bound with the fewest false alarms.
    fast = [row for row in rows if row.tune.median_delay is not None and row.tune.median_delay <= 2.0
            and row.tune.premature == 0]
    fastest = min(fast, key=lambda row: (row.tune.healthy_alarms, -row.tune.f1)) if fast else None
    fastest_all = evaluate(ours(DetectorConfig.from_mapping(fastest.config)), suite)[0] if fastest else None
    ctx.results["detection"] = {
        "synthetic": {"per_family": ctx.cfg.synthetic_per_family, "seed": SYNTHETIC_SEED},
        "labels": {curve.name: {**asdict(curve.label), "family": curve.family, "source": curve.source,
                                "split": splits[curve.name]} for curve in suite},
        "study": {
            "candidates": len(rows),
            "meeting_constraints": sum(row.meets_constraints for row in rows),
            "chosen": chosen.config,
            "chosen_tier": tier_of(chosen),
            "chosen_tune": chosen.tune.to_json(),
            "top": [{"config": row.config, "tune": row.tune.to_json(), "meets": row.meets_constraints}
                    for row in ranked[:10]],
            "within_delay_bound": None if fastest is None or fastest_all is None else {
                "config": fastest.config, "tune": fastest.tune.to_json(), "all": fastest_all.to_json()},
        },
        "recommended": asdict(recommended),
        "default": asdict(default),
        "app_config": asdict(app_config),
        "scores": scores,
        "outcomes": outcomes,
    }


def _recommended(ctx: Context) -> DetectorConfig:
    found = ctx.results.get("detection", {}).get("recommended")
    return DetectorConfig.from_mapping(found) if found else DetectorConfig()


# -- 2. cost -----------------------------------------------------------------------------------------


def _by_seed(ctx: Context, *, early_stopping: bool) -> dict[int, dict[float, Curve]]:
    result: dict[int, dict[float, Curve]] = {}
    for item in _suite_records(ctx):
        if item.spec.config_name == ctx.cfg.main_config:
            curve = item.curve_with_early_stopping() if early_stopping else item.curve()
            result.setdefault(item.spec.seed, {})[item.spec.dropout] = curve
    return result


def cost(ctx: Context) -> None:
    from bench.tuners import HYPERBAND_ETA, HYPERBAND_MIN_RESOURCE

    full = _by_seed(ctx, early_stopping=False)
    stopped = _by_seed(ctx, early_stopping=True)
    references = {seed: reference_best(curves) for seed, curves in full.items()}  # the exhaustive grid's best
    settings = _app_settings(ctx.repo)
    policy = settings.retrain_policy
    finish = settings.finish_diverged_within_epochs if settings.stop_on_divergence else None
    recommended = _recommended(ctx)
    deployed = settings.detector  # our loop as users deploy it (cdk.json)
    main = [item for item in _suite_records(ctx) if item.spec.config_name == ctx.cfg.main_config]
    patience = main[0].early_stopping_patience if main else 3
    tolerance = main[0].early_stopping_tolerance if main else 0.01
    own_on = OwnStop(True, patience, tolerance, finish)
    own_off = OwnStop(False, ctx.cfg.main_epochs + 1, tolerance, finish)
    ctx.results["cost"] = {
        "config": ctx.cfg.main_config,
        "policy": json.loads(policy.to_json()),
        "detector": asdict(deployed),
        "finish_diverged_within_epochs": finish,
        "hyperband": {"min_resource": HYPERBAND_MIN_RESOURCE, "max_resource": ctx.cfg.main_epochs,
                      "eta": HYPERBAND_ETA},
        "early_stopping_on": replay(stopped, deployed, policy, own_stop=own_on, references=references,
                                    draws=ctx.cfg.random_draws),
        "early_stopping_off": replay(full, deployed, policy, own_stop=own_off, references=references,
                                     draws=ctx.cfg.random_draws),
        "recommended_detector": replay(stopped, recommended, policy, own_stop=own_on, references=references,
                                   strategies=("ours",))["summary"],
    }


# -- 5. value ---------------------------------------------------------------------------------------


def _test_quality(ctx: Context) -> Callable[[RunRecord, int], float | None]:
    """The test-split quality of a recorded run's weights at an epoch (:data:`bench.value.TEST_METRICS`).
    SNLI: test accuracy x 100 of that epoch's weights, recorded with the run (``RunRecord.test_per_epoch``).
    STS-B: test Spearman (cosine, x 100) of the saved model, so only at its epoch (the full run's best): from
    the quality section's measurements, else measured now where the model is in the work directory (cached in
    the results). None where neither (recorded before the bench kept the test metrics, or the model is not in
    the work directory: ``--rerecord`` trains it again)."""
    measured = ctx.results.setdefault("value_test", {})
    for entry in ctx.results.get("quality", {}).get("models", {}).values():
        for item in ctx.records:
            if item.model == entry.get("model") and item.spec.key not in measured:
                measured[item.spec.key] = entry["spearman_cosine"]
    pairs: list[Any] = []

    def test(item: RunRecord, epoch: int) -> float | None:
        key = item.spec.key
        if item.test_per_epoch is not None:
            return item.test_per_epoch[epoch] if epoch < len(item.test_per_epoch) else None
        if item.spec.dataset != "stsb" or epoch != item.saved_best_epoch:
            return None  # the saved model is another epoch's weights
        if key in measured:
            return float(measured[key]) if measured[key] is not None else None
        model = ctx.work / item.model
        if not model.is_dir():
            return None  # the model is not kept (a later run may measure it)
        from bench.quality import served_spearman, test_pairs

        if not pairs:
            pairs.extend(test_pairs(ctx.shared, ctx.cfg.quality_pairs))
        ctx.log(f"value: STS-B test Spearman of {item.spec.key}")
        measured[key] = served_spearman(model, pairs)["spearman_cosine"]
        return float(measured[key])

    return test


def value(ctx: Context) -> None:
    from bench import value as study

    settings = _app_settings(ctx.repo)
    policy = settings.retrain_policy
    detector = settings.detector
    picked = _recommended(ctx)
    threshold = max(settings.promotion_margin, study.VALUE_MARGIN)
    main = [item for item in _suite_records(ctx) if item.spec.config_name == ctx.cfg.main_config]
    patience = main[0].early_stopping_patience if main else 3
    tolerance = main[0].early_stopping_tolerance if main else 0.01
    finish = settings.finish_diverged_within_epochs if settings.stop_on_divergence else None
    own = OwnStop(True, patience, tolerance, finish)
    test = _test_quality(ctx)
    every = study.cases(ctx.records, policy)
    first = [case for case in every if case.dropout == 0]
    rule_scores: dict[str, Any] = {}
    for name, (title, rule) in study.rules(detector, picked, own).items():
        rule_scores[name] = {"title": title, "attempt_1": study.score_rule(rule, first, threshold, own, test),
                             "every_start": study.score_rule(rule, every, threshold, own, test)}
    by_seed = _by_seed(ctx, early_stopping=True)
    extra: dict[int, dict[tuple[float, float], Curve]] = {}
    for item in ctx.records:
        if item.spec.config_name == ctx.cfg.main_config and item.spec.key not in {r.spec.key for r in main}:
            extra.setdefault(item.spec.seed, {})[item.spec.knobs] = item.curve_with_early_stopping()
    by_knobs = {(item.spec.seed, *item.spec.knobs): item for item in ctx.records
                if item.spec.config_name == ctx.cfg.main_config}

    def test_of(dropout: float, weight_decay: float, seed: int, epoch: int) -> float | None:
        found = by_knobs.get((seed, round(dropout, 6), round(weight_decay, 6)))
        return test(found, epoch) if found is not None else None

    from bench.config import VALUE_WEIGHT_DECAYS

    variants = study.policy_variants(policy, VALUE_WEIGHT_DECAYS)
    replayed = study.replay_policies(by_seed, extra, detector, variants, own, test_of)
    chosen = study.choose_policy(replayed)
    deployed_name = next((name for name, item in variants.items() if item == policy), policy.on_no_improvement)
    loop = replayed.get(deployed_name) or replayed[chosen]
    ctx.results["value"] = {
        "config": ctx.cfg.main_config,
        "threshold": threshold,
        "promotion_margin": settings.promotion_margin,
        "policy": json.loads(policy.to_json()),
        "missing": study.missing_next(ctx.records, policy),
        "agreement": {"attempt_1": study.agreement(first, threshold), "every_start": study.agreement(every, threshold)},
        "rules": rule_scores,
        "policies": replayed,
        "chosen_policy": chosen,
        "deployed_policy": deployed_name,
        "equal_budgets": study.equal_budgets(_by_seed(ctx, early_stopping=True), loop, ctx.cfg.random_draws),
    }


# -- 4. quality --------------------------------------------------------------------------------------


def _loop_models(ctx: Context) -> dict[int, dict[str, Any]]:
    """Per seed: the run the loop promotes (lowest held validation loss) and attempt 1."""
    found = ctx.results.get("cost", {}).get("early_stopping_on", {}).get("runs", [])
    result: dict[int, dict[str, Any]] = {}
    for run in found:
        if run["strategy"] != "ours":
            continue
        seed = int(run["seed"])
        paid_runs = run["runs"]
        promoted = min(paid_runs, key=lambda item: item["best_value"])
        entry: dict[str, Any] = {}
        for role, paid in (("promoted", promoted), ("attempt_1", paid_runs[0])):
            record_item = ctx.record_for(ctx.cfg.main_config, float(paid["dropout"]), seed)
            note = ""
            if record_item.saved_best_epoch != paid["best_epoch"]:
                note = (f"the saved model is the full run's best epoch {record_item.saved_best_epoch}; the loop held "
                        f"epoch {paid['best_epoch']} of the {paid['paid']} it paid for")
            entry[role] = {"dropout": paid["dropout"], "paid_epochs": paid["paid"], "best_epoch": paid["best_epoch"],
                           "validation_loss": paid["best_value"], "model": record_item.model, "note": note}
        result[seed] = entry
    return result


def quality(ctx: Context) -> None:
    from bench.quality import ANCHORS, minilm_spearman, served_spearman, test_pairs

    pairs = test_pairs(ctx.shared, ctx.cfg.quality_pairs)
    models = _loop_models(ctx)
    measured: dict[str, Any] = {}
    for seed, entry in sorted(models.items()):
        for role in ("promoted", "attempt_1"):
            info = entry[role]
            ctx.log(f"quality: seed {seed} {role} (dropout {info['dropout']})")
            measured[f"seed-{seed}/{role}"] = {**info, "seed": seed, "role": role,
                                               **served_spearman(ctx.work / info["model"], pairs)}
    demo: dict[str, Any] = {"skipped": "not run in the smoke configuration (about a minute)"}
    if ctx.cfg.run_demo:
        from bench.demo_run import run_demo

        ctx.log("quality: o2v demo --size quick (the live local loop)")
        demo, demo_model = run_demo(ctx.work)
        if demo_model is not None:
            demo.update(served_spearman(demo_model, pairs))
    ctx.log("quality: all-MiniLM-L6-v2")
    ctx.results["quality"] = {
        "pairs": len(pairs),
        "split": "test",
        "models": measured,
        "demo": demo,
        "minilm": minilm_spearman(ctx.minilm(), pairs),
        "anchors": ANCHORS,
    }


# -- 3. throughput -----------------------------------------------------------------------------------


def throughput(ctx: Context) -> None:
    from bench.quality import test_pairs
    from bench.throughput import server_throughput, trainer_throughput

    ctx.log("throughput: trainer per network (app default sizes)")
    trainer = trainer_throughput(ctx.repo, ctx.datasets["stsb"], ctx.work, pairs=ctx.cfg.trainer_pairs)
    sentences: list[str] = []
    for left, right, _ in test_pairs(ctx.shared):
        sentences += [left, right]
    served: dict[str, Path] = {}
    loop = _loop_models(ctx)
    if loop:
        first = loop[min(loop)]["promoted"]
        served[f"promoted ({ctx.cfg.main_config}, dropout {first['dropout']:g})"] = ctx.work / first["model"]
    else:
        served[ctx.cfg.main_config] = ctx.work / ctx.records[0].model
    if ctx.cfg.serve_default_models:
        for network, row in trainer["networks"].items():
            served[f"{network} (app default sizes)"] = ctx.work / row["model"]
    ctx.log(f"throughput: inference server for {len(served)} model(s) and MiniLM")
    ctx.results["throughput"] = {
        "trainer": trainer,
        "server": server_throughput(served, sentences, requests=ctx.cfg.server_requests, minilm=ctx.minilm(),
                                    in_process=list(served)[:1]),
    }


# -- synth -------------------------------------------------------------------------------------------


def synth(ctx: Context) -> None:
    from bench.synth_ratio import ONE_BUCKET_APP, measure

    ctx.log(f"cdk synth: whole app vs one bucket, {ctx.cfg.synth_repeats} repeat(s)")
    # The smoke run times the one-bucket app against itself: the same code path, a third of the time.
    ctx.results["synth"] = measure(ctx.cfg.synth_repeats, whole_app=ONE_BUCKET_APP if ctx.cfg.smoke else None)


# -- server ------------------------------------------------------------------------------------------


def server(ctx: Context) -> None:
    from bench.quality import test_pairs
    from bench.record import prepare_datasets
    from bench.server_load import measure, train_model

    if "stsb" not in ctx.datasets:
        ctx.datasets = prepare_datasets(ctx.shared, ctx.work, snli=False, smoke=ctx.cfg.smoke)
    ctx.log("server: training a model at the app's default sizes (one epoch)")
    model = train_model(ctx.repo, ctx.datasets["stsb"], ctx.work, ctx.cfg.server_train_pairs)
    sentences = [sentence for left, right, _ in test_pairs(ctx.shared) for sentence in (left, right)]
    load = ctx.cfg.server_load
    ctx.results["server"] = measure(model, sentences, minilm=ctx.minilm(), log=ctx.log, **load)


# -- scale -------------------------------------------------------------------------------------------


def scale(ctx: Context) -> None:
    from bench.scale import JOB_COUNTS, run_scale

    counts = (2,) if ctx.cfg.smoke else JOB_COUNTS
    ctx.log(f"scale: polling monitor vs subscription judge at {', '.join(map(str, counts))} simulated jobs")
    ctx.results["scale"] = run_scale(counts, log=ctx.log)


def bulk(ctx: Context) -> None:
    from bench.bulk_embedding import run_bulk
    from bench.record import prepare_datasets

    if "stsb" not in ctx.datasets:
        ctx.datasets = prepare_datasets(ctx.shared, ctx.work, snli=False, smoke=ctx.cfg.smoke)
    ctx.results["bulk"] = run_bulk(ctx.repo, ctx.shared, ctx.work, ctx.datasets["stsb"], sizes=ctx.cfg.bulk_sizes,
                                   minilm_sample=ctx.cfg.bulk_minilm_sample, minilm=ctx.minilm(),
                                   dims=ctx.cfg.bulk_dims, epochs=ctx.cfg.bulk_epochs, log=ctx.log)
