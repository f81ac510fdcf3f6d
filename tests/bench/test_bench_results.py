"""The bench's results file and what section 6 reads from the recorded runs (issue 29): a run merges
into the results it does not produce, SNLI test accuracy comes from the trainer's test channel,
``--rerecord`` trains recorded runs again in place, and the report renders its sections in order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from o2v_core.retrain_policy import RetrainPolicy

from bench import sections, value
from bench.__main__ import SECTIONS, previous_results
from bench.config import SMOKE
from bench.cost import OwnStop
from bench.record import RunRecord, RunSpec, prepare_datasets, run_one
from bench.report import _target_notes, render
from bench.value_report import served_on_test

REPO_ROOT = Path(__file__).resolve().parents[2]


def _record(dataset: str, dropout: float, validation: list[float], *, test: dict[str, float] | None = None,
            test_per_epoch: list[float] | None = None, size: int = 8, epochs: int | None = None) -> RunRecord:
    spec = RunSpec(dataset, "pooled_embedding", size, dropout, 0, epochs or len(validation))
    metric = "validation:cross_entropy" if dataset == "snli" else "validation:mean_squared_error"
    return RunRecord(spec, metric, validation, [v * 0.5 for v in validation], [1.0] * len(validation), 1.0, 0,
                     f"models/{spec.key}", 3, 0.01, None, test, test_per_epoch)


def _context(tmp_path: Path, results: dict[str, object], records: list[RunRecord]) -> sections.Context:
    return sections.Context(cfg=SMOKE, repo=REPO_ROOT, shared=REPO_ROOT.parent / "shared" / "data",
                            work=tmp_path, results=results, log=lambda message: None, records=records)


def test_a_full_run_merges_into_the_results_it_does_not_produce(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    demo = {"seeds": [0, 1], "size": "standard"}
    path.write_text(json.dumps({"demo_seeds": demo, "value_test": {"stsb/x": 50.0}, "value_recheck": {"stsb/x": 0.1},
                                "scale": {"designs": {}}}), encoding="utf-8")
    full = previous_results(path, SECTIONS)
    assert full["demo_seeds"] == demo  # python -m bench.demo_seeds --write's study survives `make bench`
    assert "value_test" not in full and "value_recheck" not in full  # measured on models recorded again
    partial = previous_results(path, ["detection", "cost"])
    assert partial["demo_seeds"] == demo and partial["value_test"] == {"stsb/x": 50.0}
    assert previous_results(tmp_path / "absent.json", SECTIONS) == {}


def test_a_record_keeps_the_trainers_test_metrics_and_reads_records_from_before_them() -> None:
    item = _record("snli", 0.0, [1.0, 0.9], test={"accuracy": 0.61, "cross_entropy": 0.9}, test_per_epoch=[58.0, 61.0])
    again = RunRecord.from_json(json.loads(json.dumps(item.to_json())))
    assert again.test == {"accuracy": 0.61, "cross_entropy": 0.9} and again.test_per_epoch == [58.0, 61.0]
    older = item.to_json()
    del older["test"], older["test_per_epoch"]  # results files written before the bench kept them
    assert RunRecord.from_json(older).test is None and RunRecord.from_json(older).test_per_epoch is None


def test_snli_test_accuracy_is_read_at_the_epoch_each_attempt_serves(tmp_path: Path) -> None:
    # Test accuracy x 100 of each epoch's weights, as run_one records it for a classification run.
    first = _record("snli", 0.0, [1.0, 0.9, 1.2], test_per_epoch=[55.0, 60.0, 58.0])
    following = _record("snli", 0.1, [1.0, 0.8, 0.85], test_per_epoch=[54.0, 64.5, 65.0])
    untested = _record("snli", 0.2, [1.0, 0.95, 0.97])
    test = sections._test_quality(_context(tmp_path, {}, [first, following, untested]))
    assert test(first, 1) == 60.0 and test(following, 2) == 65.0
    assert test(untested, 1) is None  # recorded before the bench kept the test metrics
    # STS-B: the saved model's Spearman, so nothing at another epoch, nor where the model is not kept.
    stsb = _record("stsb", 0.0, [1.0, 0.9])
    assert test(stsb, 1) is None and test(stsb, stsb.saved_best_epoch) is None

    found = value.cases([first, following, untested], RetrainPolicy())
    own = OwnStop(True, 3, 0.01, None)
    always = value.score_rule(lambda curve: value.Verdict(True, None), found, 0.01, own, test)
    row = always["rows"][0]
    assert row["test_metric"] == "SNLI accuracy" and row["served_dropout"] == 0.1
    assert (row["first_test"], row["served_test"]) == (60.0, 64.5)  # each attempt's best validation epoch, 1 and 1
    # From dropout 0.1 the next attempt (0.2, no test metrics) is worse on validation, so 0.1 stays served: measured.
    assert always["rows"][1]["served_test"] == always["rows"][1]["first_test"] == 64.5
    assert always["test_gain"] == {"SNLI accuracy": {"mean": pytest.approx((4.5 + 0.0) / 2), "cases": 2}}
    assert value.score_rule(lambda curve: value.Verdict(True, None), found[:1], 0.01, own,
                            lambda item, epoch: None)["test_cases"] == 0  # nothing measured: no gain claimed


def test_an_alarm_before_the_best_epoch_serves_the_epoch_the_loop_held(tmp_path: Path) -> None:
    # The control plane stops a diverged job (finish_within_epochs 0): attempt 1 pays epochs 0-2 only.
    first = _record("snli", 0.0, [1.0, 0.9, 1.1, 0.5], test_per_epoch=[50.0, 61.0, 59.0, 70.0])
    worse = _record("snli", 0.1, [1.0, 0.95, 0.96, 0.97], test_per_epoch=[40.0, 45.0, 44.0, 43.0])
    test = sections._test_quality(_context(tmp_path, {}, [first, worse]))
    found = value.cases([first, worse], RetrainPolicy())
    stopped_at_2 = value.score_rule(lambda curve: value.Verdict(True, 2), found, 0.01, OwnStop(True, 9, 0.01, 0),
                                    test)
    row = stopped_at_2["rows"][0]
    assert row["premature"] and row["served_dropout"] == 0.0
    # Served: epoch 1 of the three attempt 1 ran (61.0); attempt 1 alone would have served epoch 3 (70.0).
    assert (row["served_test"], row["first_test"]) == (61.0, 70.0) and stopped_at_2["served_worse_on_test"] == 1


def test_test_gains_are_kept_apart_per_metric() -> None:
    rows = [{"test_metric": "STS-B Spearman", "first_test": 50.0, "served_test": 54.0},
            {"test_metric": "STS-B Spearman", "first_test": 48.0, "served_test": 48.0},
            {"test_metric": "SNLI accuracy", "first_test": 60.0, "served_test": 59.0}]
    assert value.test_gains(rows) == {"SNLI accuracy": {"mean": -1.0, "cases": 1},
                                      "STS-B Spearman": {"mean": 2.0, "cases": 2}}


def test_rerecord_refuses_what_it_could_not_record_again(tmp_path: Path) -> None:
    configured = SMOKE.main_runs()[0]
    item = _record("stsb", configured.dropout, [1.0] * configured.epochs, size=configured.size)
    stray = _record("snli", 0.0, [1.0, 0.9])  # no such run in the smoke configuration
    ctx = _context(tmp_path, {}, [item, stray])
    with pytest.raises(SystemExit, match="no recorded run's key starts with it"):
        sections.rerecord(ctx, ("stsb/hcnn",))
    with pytest.raises(SystemExit, match="not configured"):
        sections.rerecord(ctx, ("snli/",))
    assert ctx.records == [item, stray]  # nothing dropped


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rerecord_trains_the_runs_again_in_their_place_with_their_test_metrics(tmp_path: Path,
                                                                                shared_data: Path) -> None:
    first, second = SMOKE.main_runs()[:2]
    former = [_record("stsb", spec.dropout, [9.0] * spec.epochs, size=spec.size) for spec in (first, second)]
    results: dict[str, object] = {"value_test": {first.key: 1.0, second.key: 2.0}}
    ctx = sections.Context(cfg=SMOKE, repo=REPO_ROOT, shared=shared_data, work=tmp_path, results=results,
                           log=lambda message: None, records=list(former))
    sections.rerecord(ctx, (first.key,))
    assert [item.spec.key for item in ctx.records] == [first.key, second.key]  # the suite's order, kept
    again = ctx.records[0]
    assert again is not former[0] and ctx.records[1] is former[1]
    assert again.test is not None and "mean_squared_error" in again.test  # the trainer's test line, kept
    assert (tmp_path / again.model).is_dir()  # the model stays for the test metrics
    assert results["value_test"] == {second.key: 2.0}  # what was measured on the former model goes
    recheck = results["value_recheck"]
    assert isinstance(recheck, dict)
    assert recheck[first.key] == pytest.approx(max(abs(v - 9.0) for v in again.validation))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_classification_run_records_the_test_accuracy_of_every_epoch(tmp_path: Path, shared_data: Path) -> None:
    datasets = prepare_datasets(shared_data, tmp_path, snli=True, smoke=True)  # SNLI: train on dev, test on test
    item = run_one(RunSpec("snli", "pooled_embedding", 16, 0.0, 0, 3), datasets["snli"], tmp_path)
    assert item.test_per_epoch is not None and len(item.test_per_epoch) == len(item.validation) == 3
    assert all(0.0 <= score <= 100.0 for score in item.test_per_epoch)
    # The saved model is the best epoch's weights: its per-epoch score is the trainer's own test line.
    assert item.test is not None
    assert item.test_per_epoch[item.saved_best_epoch] == pytest.approx(100.0 * item.test["accuracy"])


def test_the_report_renders_its_numbered_sections_and_targets_in_order() -> None:
    results = json.loads((REPO_ROOT / "bench" / "results" / "results.json").read_text(encoding="utf-8"))
    page = render(results, {}, "img/", "bench/results/results.json")
    numbers = [int(found) for found in re.findall(r"^## (\d+)\. ", page, flags=re.MULTILINE)]
    assert numbers == sorted(numbers) and {5, 6} <= set(numbers)
    targets = page.split("## Targets", 1)[1].split("\n## ", 1)[0]
    rows = [int(found) for found in re.findall(r"^\| (\d+)\. ", targets, flags=re.MULTILINE)]
    assert rows == sorted(rows) and 6 in rows


def test_the_commentary_says_which_sections_were_measured_again_since_it_was_written(tmp_path: Path) -> None:
    discussion = tmp_path / "discussion.md"
    discussion.write_text("<!-- sections: detection=run-a, value=run-b -->\n**Why each verdict**: ...\n",
                          encoding="utf-8")
    same = {"sections": {"detection": {"run_id": "run-a"}, "value": {"run_id": "run-b"}, "scale": {"run_id": "x"}}}
    assert _target_notes(same, discussion) == "**Why each verdict**: ..."
    later = {"sections": {"detection": {"run_id": "run-a"}, "value": {"run_id": "run-c"}}}
    note = _target_notes(later, discussion)
    assert "section `value` was measured again (now run `run-c`)" in note and "`detection`" not in note
    assert note.endswith("**Why each verdict**: ...")
    assert _target_notes({**same, "smoke": True}, discussion) == ""


def test_a_pair_serving_attempt_1s_own_weights_is_not_worse_even_unmeasured() -> None:
    def row(config: str, dropout: float, served: float, best: int, served_epoch: int, first: float | None,
            test: float | None) -> dict[str, object]:
        return {"config": config, "seed": 0, "dropout": dropout, "served_dropout": served, "best_epoch": best,
                "served_epoch": served_epoch, "first_test": first, "served_test": test, "test_metric": "SNLI accuracy"}

    rows = [row("a", 0.0, 0.1, 3, 2, 50.0, 52.0), row("b", 0.0, 0.0, 3, 3, None, None),
            row("c", 0.0, 0.0, 3, 1, None, None)]  # c: the loop stopped attempt 1 before its best epoch
    found = served_on_test(rows)
    assert [item["config"] for item in found["tested"]] == ["a"] and not found["worse"]
    assert found["untested"] == ["b seed 0", "c seed 0"] and found["untested_own"] == ["b seed 0"]
