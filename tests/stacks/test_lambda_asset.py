"""The functions carry the Powertools the tests run; no function needs a regional layer (issue 24 item 5).

AWS fact (reference 11e): Powertools' public layers are published per region and architecture;
"CompatibleArchitectures are not supported in ca-west-1" (powertools-lambda-python#3545), so an
arm64 function with the layer fails at CreateFunction there, and a layer version in config is not
tied to the pinned library. The functions run python3.13 on arm64 while the tests run another
Python build: only pure-Python files may travel in the asset.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from o2v_core.functions import FUNCTIONS

from stacks.constructs.lambda_asset import BUNDLED_DISTRIBUTIONS, COMPILED_SUFFIXES
from tests.stacks.conftest import Synthesized

REPO = Path(__file__).resolve().parents[2]
BUNDLED_MODULES = ("aws_lambda_powertools", "jmespath", "typing_extensions", "aws_xray_sdk", "wrapt")


def pinned_powertools() -> str:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in dependencies if d.startswith("aws-lambda-powertools")]
    match = re.fullmatch(r"aws-lambda-powertools\[tracer\]==([\w.]+)", pin)
    assert match, pin
    return match.group(1)


def asset_directory(synthesized: Synthesized, function: dict[str, Any]) -> Path:
    """The staged directory of a function's asset: ``asset.<hash>`` for S3Key ``<hash>.zip``."""
    key = function["Properties"]["Code"]["S3Key"]
    directory = synthesized.outdir / f"asset.{key.removesuffix('.zip')}"
    assert directory.is_dir(), directory
    return directory


def function_assets(synthesized: Synthesized) -> dict[str, Path]:
    """Logical ID -> asset directory of every function whose code is an asset (not inline)."""
    assets = {}
    for role in ("data", "training", "serving"):
        for logical_id, function in synthesized.resources(role, "AWS::Lambda::Function").items():
            if "S3Key" in function["Properties"]["Code"]:
                assets[f"{role}/{logical_id}"] = asset_directory(synthesized, function)
    return assets


def control_plane_asset(synthesized: Synthesized) -> Path:
    handlers = {spec.handler for spec in FUNCTIONS}
    directories: set[Path] = set()
    for role in ("training", "serving"):
        for function in synthesized.resources(role, "AWS::Lambda::Function").values():
            if function["Properties"].get("Handler") in handlers:
                directories.add(asset_directory(synthesized, function))
    (directory,) = directories  # one asset for every control-plane function
    return directory


def test_no_function_needs_a_layer(synthesized: Synthesized) -> None:
    for role in ("data", "training", "serving"):
        for logical_id, function in synthesized.resources(role, "AWS::Lambda::Function").items():
            assert "Layers" not in function["Properties"], f"{role}/{logical_id}"


def test_the_asset_holds_the_powertools_version_the_tests_run(synthesized: Synthesized) -> None:
    asset = control_plane_asset(synthesized)
    version_file = (asset / "aws_lambda_powertools" / "shared" / "version.py").read_text()
    (bundled,) = re.findall(r'^VERSION = "([^"]+)"', version_file, flags=re.MULTILINE)
    assert bundled == metadata.version("aws-lambda-powertools") == pinned_powertools()
    for module in BUNDLED_MODULES:
        assert (asset / module).is_dir() or (asset / f"{module}.py").is_file(), module
    assert (asset / "o2v_core").is_dir() and (asset / "control_plane" / "handlers").is_dir()


def test_the_asset_holds_no_compiled_file(synthesized: Synthesized) -> None:
    for where, asset in function_assets(synthesized).items():
        compiled = [p for p in asset.rglob("*") if p.suffix in COMPILED_SUFFIXES or p.suffix == ".pyc"]
        assert compiled == [], where


def test_the_bundled_tree_imports_on_its_own_as_lambda_would(synthesized: Synthesized, tmp_path: Path) -> None:
    """Each bundled module comes from the asset (not the test environment), and every handler
    imports with Tracer enabled (in Lambda it imports the X-Ray SDK) and no compiled extension."""
    asset = control_plane_asset(synthesized)
    script = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(asset)!r})\n"
        f"modules = {{name: importlib.import_module(name).__file__ for name in {list(BUNDLED_MODULES)!r}}}\n"
        "import aws_xray_sdk.core\n"
        f"for handler in {sorted({spec.handler.rsplit('.', 1)[0] for spec in FUNCTIONS})!r}:\n"
        "    importlib.import_module(handler)\n"
        "from control_plane.observability import tracer\n"
        "print(json.dumps({'modules': modules, 'tracing': not tracer.disabled}))\n"
    )
    environment = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_FUNCTION_NAME": "o2v-test-function",
        "LAMBDA_TASK_ROOT": str(asset),  # Tracer enables itself in Lambda only (it checks this variable)
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "o2v-test",
        "HOME": str(tmp_path),
    }
    # -B: no __pycache__ written into the synthesized asset, which other tests read.
    done = subprocess.run(
        [sys.executable, "-B", "-c", script], capture_output=True, text=True, env=environment, cwd=tmp_path,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["tracing"] is True
    for module, path in answer["modules"].items():
        assert Path(path).is_relative_to(asset), (module, path)


def test_every_bundled_distribution_is_installed_here() -> None:
    for name in BUNDLED_DISTRIBUTIONS:
        assert metadata.version(name)
