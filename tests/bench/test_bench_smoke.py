"""The bench command in its smoke configuration: every section runs end to end, so the scripts can't rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# The server section has its own smoke test below (the two together would pass the time limit).
SECTIONS = ("record", "detection", "cost", "value", "quality", "throughput", "synth", "scale")


@pytest.mark.timeout(360)
def test_bench_smoke_runs_every_section(repo_root: Path, shared_data: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    # What another command wrote there (python -m bench.demo_seeds --write: the committed study), and a Spearman
    # measured on a model that this run records again.
    demo = json.loads((repo_root / "bench" / "results" / "results.json").read_text(encoding="utf-8"))["demo_seeds"]
    (work / "results.json").write_text(json.dumps({"demo_seeds": demo, "value_test": {"x": 1.0}}), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root), str(repo_root / "lambdas")])}
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", ",".join(SECTIONS), "--work", str(work), "--shared",
         str(shared_data)],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=340, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

    results = json.loads((work / "results.json").read_text(encoding="utf-8"))
    assert results["smoke"] is True
    assert results["demo_seeds"] == demo and "x" not in results.get("value_test", {})
    assert set(results["sections"]) == set(SECTIONS)
    assert all(info["run_id"] == results["run_id"] for info in results["sections"].values())

    detection = results["detection"]
    assert {"ours_recommended", "object2vec_early_stopping", "debugger_overfit", "keras_early_stopping"} <= set(
        detection["scores"]
    )
    assert detection["recommended"]["patience"] >= 1
    assert len(results["records"]) >= 2
    assert all(len(item["validation"]) == item["spec"]["epochs"] for item in results["records"])

    assert all(item["early_stopping_patience"] >= 1 for item in results["records"])
    assert "recorded_es" in detection["scores"]["ours_recommended"]
    full = results["cost"]["early_stopping_off"]
    assert {"ours", "grid", "random_search", "hyperband", "median_rule", "no_remediation"} <= set(full["summary"])
    assert full["summary"]["grid"]["reached"] == full["summary"]["grid"]["seeds"]  # the grid defines "good"
    assert {"grid", "hyperband", "every_seed_good"} <= set(results["cost"]["early_stopping_on"]["targets"])

    value = results["value"]
    assert {"loop", "shipped", "study_pick", "o2v_early_stopping", "early_stopped_after_rise",
            "budget_after_early_best", "generalization_gap"} <= set(value["rules"])
    assert value["chosen_policy"] in value["policies"] and value["deployed_policy"] == "stop"

    assert results["quality"]["models"] and "spearman_cosine" in results["quality"]["minilm"]
    server = results["throughput"]["server"]
    assert server["minilm"] and all(row["sentences_per_second"] > 0 for rows in server["models"].values()
                                    for row in rows.values())
    assert set(results["throughput"]["trainer"]["networks"]) == {"hcnn", "bilstm", "pooled_embedding"}
    assert "ratio" in results["synth"] or "skipped" in results["synth"]

    doc = (work / "benchmarks.md").read_text(encoding="utf-8")
    assert set(results["scale"]["designs"]) == {"polling", "subscription"}
    for heading in ("## 1. Divergence detection", "## 2. Cost", "AMT Hyperband", "median rule", "## 3. Throughput",
                    "## 4. Embedding quality", "## 6. Is a retrain worth it",
                    "## Scale", "## The demo's recipe across seeds"):
        assert heading in doc
    assert (work / "img" / "curve_suite_synthetic.png").is_file()
    assert (work / "img" / "curve_suite_recorded.png").is_file()
    # No machine paths leak into what the full run commits.
    assert str(work) not in json.dumps(results["records"])


@pytest.mark.timeout(300)
def test_bench_smoke_server_section(repo_root: Path, shared_data: Path, tmp_path: Path) -> None:
    work = _smoke_section("server", repo_root, shared_data, tmp_path, timeout=280)
    server = json.loads((work / "results.json").read_text(encoding="utf-8"))["server"]
    assert set(server["servers"]) == {"stdlib", "waitress"}
    new, old = server["servers"]["waitress"], server["servers"]["stdlib"]
    assert new["bad_summary"] == {"5xx": 0, "hangs": 0, "no_answer": 0}, new["bad_requests"]
    assert old["bad_summary"]["hangs"] >= 2 and old["bad_summary"]["5xx"] == 2  # the defects of the former server
    assert new["idle"]["established"] == server["idle_connections"]
    assert new["new_connection"]["5xx"] == 0 and new["new_connection"]["failed"] == 0
    assert new["batch1"]["x_minilm"] > 0
    doc = (work / "benchmarks.md").read_text(encoding="utf-8")
    assert "## 5. Inference server under load and bad input" in doc
    assert "5. Zero 5xx and zero hangs on the bad-request set" in doc


@pytest.mark.timeout(240)
def test_bench_smoke_bulk_section(repo_root: Path, shared_data: Path, tmp_path: Path) -> None:
    work = _smoke_section("bulk", repo_root, shared_data, tmp_path, timeout=220)
    bulk = json.loads((work / "results.json").read_text(encoding="utf-8"))["bulk"]
    assert sorted(bulk["sizes"], key=int) == ["2000", "4000"]
    for row in bulk["sizes"].values():
        assert row["local"]["sentences_per_second"] > 0 and row["local"]["peak_rss_mib"] > 0
        assert row["local"]["loop_seconds"] is not None  # the command's own summary line was found
        assert row["tokenizer"]["sentences"] == row["local"]["sentences"]
    assert bulk["minilm"]["sentences"] == 200
    assert set(bulk["targets"]) == {"x_minilm", "x_tokenizer_time", "flat_memory"}
    assert bulk["cost"]["instance_hours_per_million"] > 0
    doc = (work / "benchmarks.md").read_text(encoding="utf-8")
    assert "## 7. Bulk embedding (`o2v embed --corpus`)" in doc
    assert "7. Bulk embedding within 3x the tokenizer-alone time" in doc


def _smoke_section(section: str, repo_root: Path, shared_data: Path, tmp_path: Path, *, timeout: int) -> Path:
    """``python -m bench --smoke --only SECTION``; returns its work directory."""
    work = tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root), str(repo_root / "lambdas")])}
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", section, "--work", str(work), "--shared",
         str(shared_data)], cwd=repo_root, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return work
