"""The demo recipe's seed study: does the loop's relaunch with more dropout serve a better model?

``python -m bench.demo_seeds --seeds 0-4`` prepares STS-B as ``o2v demo`` does (its size's training
sample), trains the demo's attempt-1 recipe (:mod:`training.demo.recipe`) at each
dropout the retrain policy would try, for the whole epoch budget with Object2Vec's early stopping
off, and records per epoch the validation loss and the STS-B test Spearman of that epoch's
weights (cosine of the two sentences' ``in0`` embeddings, as the demo scores the served model).

The loop is then replayed on each seed's curves with the control plane's own rules, from
``cdk.json``: the divergence detector on every prefix (the in-flight judge) and on the finished
curve, Object2Vec's early stopping, the retrain policy's dropout steps and attempt limit; an
attempt keeps its best epoch so far; the served model is the attempt with the lowest best
validation loss (the promoter's comparison). Printed: per seed, the attempts and whether the
relaunch served a better model than attempt 1's best epoch, and by how much test Spearman.

Training is seeded (the demo's jobs use ``$O2V_SEED``, default 0), so seed 0 here is what
``make demo`` shows. Runs go to two worker processes with one torch thread each.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from o2v_core.detector import detect
from o2v_core.early_stopping import stopping_epoch

from bench.rendering import md_table
from training.demo.options import SHARED_STSB, SIZES

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Curves:
    seed: int
    dropout: float
    validation: list[float]
    spearman: list[float]  # test Spearman of each epoch's weights


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def record(recipe: dict[str, Any], data: Path, dropout: float, seed: int) -> Curves:
    """One full-budget run of the demo recipe at ``dropout``; validation and test Spearman per epoch."""
    import torch

    from training.evaluation.sts import cosine_rows, spearman
    from training.model.config import resolve
    from training.trainer import loop
    from training.trainer.data import eval_batches, load_channel

    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    hps = recipe_hyperparameters(recipe, manifest["hyperparameters"], dropout)
    hps["early_stopping_patience"] = int(hps["epochs"]) + 1
    channels = loop.Channels.from_directory(data)
    assert channels.test is not None, f"{data} has no test split"
    test = load_channel(channels.test, resolve(hps))
    scores: list[float] = []

    def score(model: Any, epoch: int) -> None:
        """The test Spearman of this epoch's weights (the trainer's after_epoch hook, after validation)."""
        model.eval()
        left, right, gold = [], [], []  # type: list[torch.Tensor], list[torch.Tensor], list[float]
        with torch.inference_mode():
            for batch in eval_batches(test, 256):
                left.append(model.encode(0, batch.in0, batch.len0))
                right.append(model.encode(0, batch.in1, batch.len1))
                gold.extend(float(label) for label in batch.labels)
        scores.append(spearman(cosine_rows(torch.cat(left).numpy(), torch.cat(right).numpy()), gold))

    stream = io.StringIO()
    with tempfile.TemporaryDirectory() as model_dir, open(os.devnull, "w", encoding="utf-8") as devnull:
        result = loop.train(hps, channels, model_dir=Path(model_dir), archive=None, seed=seed,
                            metric_streams=[stream], log=devnull, quiet=True, after_epoch=score)
    validation = [item.validation.get("mean_squared_error", item.validation.get("cross_entropy", math.nan))
                  for item in result.epochs if item.validation]
    return Curves(seed, dropout, validation, scores)


@dataclass
class Attempt:
    dropout: float
    epochs_run: int
    best_epoch: int
    best_value: float
    spearman: float
    diverged: bool
    in_flight: bool = False  # the judge saw the divergence on a prefix, before the job ended


class NotRecorded(LookupError):
    """The replay needs the curve of this dropout, which is not recorded yet."""

    def __init__(self, dropout: float) -> None:
        super().__init__(f"dropout {dropout}")
        self.dropout = dropout


def recipe_hyperparameters(recipe: dict[str, Any], manifest_hps: dict[str, Any], dropout: float) -> dict[str, Any]:
    """The demo's attempt-1 hyperparameters (as the demo's launcher merges them) at ``dropout``."""
    from o2v_core.hyperparameters import with_defaults

    from training.demo.recipe import overfit_prone_recipe

    return with_defaults({**manifest_hps, "optimizer": "adam", "tied_token_embedding_weight": True,
                          **overfit_prone_recipe(int(recipe["dims"]), int(recipe["epochs"]), dropout=dropout),
                          **recipe["overrides"]}, where="the demo recipe")


def replay(curves: dict[float, Curves], hps: dict[str, Any]) -> list[Attempt]:
    """The loop on recorded curves, with cdk.json's detector, early stopping and retrain policy.

    Raises :class:`NotRecorded` for the first dropout the loop reaches without a recorded curve."""
    from o2v_core.retrain_policy import Exhausted, LineageBest

    from training.demo.stack_outputs import load_settings

    settings = load_settings("dev")
    policy, cfg = settings.retrain_policy, settings.detector
    finish_within = settings.finish_diverged_within_epochs
    epochs = int(hps["epochs"])
    patience, tolerance = int(hps["early_stopping_patience"]), float(hps["early_stopping_tolerance"])
    attempts: list[Attempt] = []
    hps = {key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in hps.items()}
    for attempt in range(1, policy.max_attempts + 1):
        dropout = round(float(hps["dropout"]), 1)
        if dropout not in curves:
            raise NotRecorded(dropout)
        curve = curves[dropout]
        own_stop = stopping_epoch(curve.validation, patience, tolerance)
        last = own_stop if own_stop is not None else epochs - 1
        detected = None
        for end in range(1, last + 2):  # the judge, on every epoch's line
            if detect(list(enumerate(curve.validation[:end])), config=cfg).status == "diverged":
                detected = end - 1
                break
        # In flight: the judge fired on an epoch before the job's last one (on the last epoch's line
        # the job is ending; whether the judge or the finished-job evaluator reports it is a race).
        in_flight = detected is not None and detected < last
        if detected is not None and last - detected > finish_within:
            last = detected  # stopped in flight
        elif detected is None:  # the finished-job evaluator
            finished = detect(list(enumerate(curve.validation[:last + 1])), config=cfg,
                              ended_by_early_stopping=own_stop is not None)
            detected = last if finished.status == "diverged" else None
        run = curve.validation[:last + 1]
        best = min(range(len(run)), key=run.__getitem__)
        attempts.append(Attempt(dropout, last + 1, best, run[best], curve.spearman[best], detected is not None,
                                in_flight))
        if detected is None:
            break
        # What the launcher knows of the lineage (cdk.json's on_no_improvement acts on it).
        before = [item.best_value for item in attempts[:-1]]
        lineage = LineageBest(parent_best=attempts[-1].best_value, best_before=min(before) if before else None)
        following = policy.next_hyperparameters(hps, attempt + 1, lineage)
        if isinstance(following, Exhausted):
            break
        hps = following
    return attempts


def _cached(work: Path, recipe: dict[str, Any], seed: int, dropout: float) -> Path:
    overrides = "".join(f"-{key}={value}" for key, value in sorted(recipe["overrides"].items()))
    return work / "curves" / f"{recipe['dims']}d-{recipe['epochs']}e{overrides}-seed{seed}-dropout{dropout:.1f}.json"


def study(recipe: dict[str, Any], data: Path, seeds: list[int], work: Path) -> dict[str, Any]:
    """Record the runs each seed's loop reaches (two workers, cached under ``work``), then replay."""
    recorded: dict[int, dict[float, Curves]] = {seed: {} for seed in seeds}
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    hps = recipe_hyperparameters(recipe, manifest["hyperparameters"], 0.0)
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        while True:
            needed: list[tuple[int, float]] = []
            for seed in seeds:
                try:
                    replay(recorded[seed], hps)
                except NotRecorded as missing:
                    needed.append((seed, missing.dropout))
            if not needed:
                break
            futures = {}
            for seed, dropout in needed:
                cache = _cached(work, recipe, seed, dropout)
                if cache.is_file():
                    recorded[seed][dropout] = Curves(**json.loads(cache.read_text(encoding="utf-8")))
                else:
                    futures[pool.submit(record, recipe, data, dropout, seed)] = (seed, dropout)
            for future in as_completed(futures):
                seed, dropout = futures[future]
                recorded[seed][dropout] = curves = future.result()
                cache = _cached(work, recipe, seed, dropout)
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps(vars(curves)), encoding="utf-8")
                print(f"recorded seed {seed}, dropout {dropout:.1f}", file=sys.stderr, flush=True)
    rows = []
    for seed in seeds:
        attempts = replay(recorded[seed], hps)
        served = min(attempts, key=lambda item: item.best_value)
        rows.append({"seed": seed, "attempts": [vars(item) for item in attempts], "served_dropout": served.dropout,
                     "spearman_first": attempts[0].spearman, "spearman_served": served.spearman,
                     "spearman_gain": served.spearman - attempts[0].spearman, "relaunched": len(attempts) > 1,
                     "improved": served is not attempts[0]})
    return {"recipe": recipe, "seeds": seeds, "rows": rows}


def diverged_text(attempt: dict[str, Any]) -> str:
    """How an attempt's divergence was found: by the judge in flight, or when the job ended."""
    if not attempt["diverged"]:
        return ""
    return ", diverged (found in flight)" if attempt.get("in_flight") else ", diverged (found when it ended)"


def summary_line(result: dict[str, Any]) -> str:
    rows = result["rows"]
    in_flight = sum(bool(row["attempts"][0].get("in_flight")) for row in rows)
    gains = [row["spearman_gain"] for row in rows]
    improved = [row["spearman_gain"] for row in rows if row["improved"]]
    return (f"relaunched on {sum(row['relaunched'] for row in rows)} of {len(rows)} seeds (attempt 1's divergence "
            f"found in flight on {in_flight}); a higher-dropout "
            f"attempt was served on {len(improved)} of {len(rows)}; STS-B test Spearman of the served model "
            f"minus attempt 1's best epoch: mean {100 * statistics.mean(gains):+.1f} points "
            f"(min {100 * min(gains):+.1f}, max {100 * max(gains):+.1f})")


def section(results: dict[str, Any]) -> str:
    """The seed study's section of docs/benchmarks.md (results["demo_seeds"])."""
    result = results.get("demo_seeds")
    if not result:
        return ""
    recipe = result["recipe"]
    rows = []
    for row in result["rows"]:
        attempts = "; ".join(
            f"{item['dropout']:.1f}: best {item['best_value']:.4f} @ {item['best_epoch']}, "
            f"{item['epochs_run']} epochs{diverged_text(item)}" for item in row["attempts"])
        rows.append([str(row["seed"]), attempts, f"{row['served_dropout']:.1f}",
                     f"{100 * row['spearman_first']:.1f}", f"{100 * row['spearman_served']:.1f}",
                     f"{100 * row['spearman_gain']:+.1f}"])
    quiet_seeds = [str(row["seed"]) for row in result["rows"] if not row["relaunched"]]
    quiet = (f" On seed(s) {', '.join(quiet_seeds)} attempt 1's rise stayed within the detector's bar, so the "
             "loop did not fire and attempt 1 was served as it was." if quiet_seeds else "")
    table = md_table(["Seed", "Attempts (dropout: best validation MSE @ epoch, epochs run)", "Served dropout",
                    "Test Spearman, attempt 1's best", "Served", "Gain"], rows)
    return f"""## The demo's recipe across seeds (`python -m bench.demo_seeds`)

Does `make demo` (no arguments: `--size {result['size']}`, {recipe['dims']}-d, {recipe['epochs']} epochs,
{result['train_rows']} training pairs) tell the loop's story on other seeds than its own (the trainer
is deterministic per seed; the demo's jobs use seed 0)? Each seed's run of the demo's attempt-1
recipe was recorded at every dropout the retrain policy tries, for the whole budget, with the STS-B
test Spearman of each epoch's weights; the loop was then replayed with the control plane's own
rules from `cdk.json` (detector on every prefix and on the finished curve, Object2Vec's early
stopping, the retrain policy, the promoter's lowest-validation choice). Seed 0 is what the demo
shows. Recorded on {result['recorded_at']} (load average {result['load_average'][0]} on the shared
machine; timings are not reported here); not part of `make bench`: rerun with
`python -m bench.demo_seeds --seeds {result['seeds'][0]}-{result['seeds'][-1]} --write`, which merges its results
into the results file and regenerates this page.

{table}

Result: {summary_line(result)}.{quiet}{screen_text(results)}"""


def screen_text(results: dict[str, Any]) -> str:
    """The recipes screened for a rise sharp enough for the in-flight judge (results["demo_recipe_screen"])."""
    screen = results.get("demo_recipe_screen")
    if not screen:
        return ""
    table = md_table(["Task (validation metric)", "Change to the recipe", "Seeds", "Caught in flight at dropout 0?",
                      "Dropout 0.1's best validation loss vs dropout 0's", "Verdict"], screen["rows"])
    return f"""

### Why the demo's divergence is found when attempt 1 ends, not in flight

On the demo's own seed the shipped recipe's rise stays near the in-flight judge's 5% bar for
three epochs, so the finished-job evaluator reports it (`early_stopped_after_rise`) when
Object2Vec's early stopping ends the job. These recipes were screened ({screen['recorded_at']})
for a sharper rise: each run trained the whole budget with early stopping off, and the dev
detector of `cdk.json` was replayed on every prefix (`bench.demo_seeds.record`; a regression row
is reproduced with `python -m bench.demo_seeds --hp KEY=VALUE`). Every recipe whose rise the judge
catches in flight on seed 0 has a higher-dropout attempt that is worse on most screened seeds, so
its relaunch would serve attempt 1 again; the shipped recipe is the one on which more dropout
wins. Lowering the detector's bar for the demo was not considered: the demo runs the detector
that `cdk.json` deploys.

{table}"""


def merge_results(result: dict[str, Any], results_path: Path, doc: Path, img: Path) -> None:
    from bench.report import write_report

    results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.is_file() else {}
    results["demo_seeds"] = result
    results_path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    write_report(results, doc, img, results_path=results_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.demo_seeds", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="standard", choices=sorted(SIZES))
    parser.add_argument("--seeds", default="0-5", help="e.g. 0-5 or 0,3,7")
    parser.add_argument("--dims", type=int, help="override the size's width (candidate recipes)")
    parser.add_argument("--epochs", type=int, help="override the size's epoch budget")
    parser.add_argument("--train-rows", type=int, help="override the size's training sample (0: all)")
    parser.add_argument("--hp", nargs="*", default=[], help="recipe overrides KEY=VALUE (candidate recipes)")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "runs" / "demo-seeds")
    parser.add_argument("--write", action="store_true", help="merge into bench/results/results.json and "
                        "regenerate docs/benchmarks.md")
    args = parser.parse_args(argv)
    if "-" in args.seeds:
        low, high = (int(part) for part in args.seeds.split("-"))
        seeds = list(range(low, high + 1))
    else:
        seeds = [int(part) for part in args.seeds.split(",")]
    size = SIZES[args.size]
    from training.demo.data import prepare_data

    train_rows = size.train_rows if args.train_rows is None else (args.train_rows or None)
    recipe = {"dims": args.dims or size.dims, "epochs": args.epochs or size.epochs,
              "overrides": dict(item.split("=", 1) for item in args.hp)}
    data = args.work / f"data-{train_rows or 'all'}"
    if not (data / "manifest.json").is_file():
        prepare_data(SHARED_STSB, data, train_rows)
    result = study(recipe, data, seeds, args.work)
    result["size"] = args.size
    result["recorded_at"] = time.strftime("%Y-%m-%d", time.gmtime())
    result["load_average"] = [round(value, 1) for value in os.getloadavg()]
    result["train_rows"] = train_rows or json.loads((data / "manifest.json").read_text())["splits"]["train"]["records"]
    for row in result["rows"]:
        text = "  ".join(f"d{item['dropout']:.1f}: best {item['best_value']:.4f}@{item['best_epoch']} "
                         f"rho {item['spearman']:.3f}{diverged_text(item).upper()}"
                         for item in row["attempts"])
        print(f"seed {row['seed']}: {text}  -> served d{row['served_dropout']:.1f}, "
              f"gain {row['spearman_gain']:+.3f}", flush=True)
    print(f"{recipe}, train rows {result['train_rows']}: {summary_line(result)}")
    if args.write:
        merge_results(result, REPO_ROOT / "bench" / "results" / "results.json", REPO_ROOT / "docs" / "benchmarks.md",
                      REPO_ROOT / "docs" / "img")
    return 0


if __name__ == "__main__":
    sys.exit(main())
