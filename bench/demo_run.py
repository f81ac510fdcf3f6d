"""The live loop: ``o2v demo`` (local mode) end to end, and the model it promotes.

The demo runs the real control plane against local stand-ins for AWS: attempt 1 overfits, the
divergence monitor stops it, the retrain launcher starts attempt n+1 with more dropout and the
promoter deploys the best attempt. This module runs it once (``python -m training.demo``,
the same as ``o2v demo``), keeps the attempts' summary (no machine paths) and unpacks the
promoted ``model.tar.gz`` so section 4 can serve it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_demo(work: Path, *, size: str = "quick", timeout: float = 900.0) -> tuple[dict[str, Any], Path | None]:
    """Run the demo; return its summary and the unpacked promoted model (None when there is none)."""
    runs = work / "demo-runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "lambdas"), env.get("PYTHONPATH", "")])
    started = time.monotonic()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "training.demo", "--size", size, "--runs-dir", str(runs)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"o2v demo --size {size} did not finish within {timeout:.0f}s"}, None
    seconds = time.monotonic() - started
    run_files = sorted(runs.glob("*/run.json"))
    if completed.returncode != 0 or not run_files:
        tail = (completed.stderr or completed.stdout)[-600:].replace(str(REPO_ROOT), ".")
        return {"error": f"o2v demo --size {size} exited {completed.returncode}: {tail}"}, None
    run_dir = run_files[-1].parent
    data = json.loads(run_files[-1].read_text(encoding="utf-8"))
    attempts = [{
        "name": item.get("name"),
        "attempt": item.get("attempt"),
        "dropout": float(item.get("hyperparameters", {}).get("dropout", "nan")),
        "status": item.get("status"),
        "best_epoch": item.get("best_epoch"),
        "best_value": item.get("best_value"),
        "epochs_run": len(item.get("validation", [])),
        "diverged": item.get("diverged"),
        "detected_at_epoch": item.get("detected_at_epoch"),
        "launched_by": item.get("launched_by"),
    } for item in data.get("attempts", [])]
    summary: dict[str, Any] = {"size": size, "seconds": round(seconds, 1), "attempts": attempts,
                               "demo_wall_seconds": data.get("wall_seconds")}
    for key in ("promoted_job", "promoted_value", "spearman", "test_pairs", "embedding_dim", "outcome"):
        if key in data and not isinstance(data[key], (dict, list)):
            summary[key] = data[key]
    archive = run_dir / "model.tar.gz"
    if not archive.is_file():
        summary["error"] = "the demo promoted no model (no model.tar.gz in its run directory)"
        return summary, None
    model = work / "demo-model"
    shutil.rmtree(model, ignore_errors=True)
    model.mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(model, filter="data")
    return summary, model
