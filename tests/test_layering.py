"""Who may import whom: the contracts in pyproject.toml ([tool.importlinter]), checked by import-linter.

docs/architecture.md explains the rules. The first test checks this repository; the second shows
the contracts are not vacuous: the same configuration, run on a small tree of stand-in packages
that breaks each rule once, reports every break.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = REPO_ROOT / "pyproject.toml"


def lint_imports(cwd: Path, config: Path, python_path: list[Path]) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    python_path_text = os.pathsep.join(str(path) for path in python_path)
    env = {**os.environ, "PYTHONPATH": python_path_text, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [executable, "--config", str(config), "--no-cache", "--no-logo"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_the_repository_keeps_every_layering_contract() -> None:
    completed = lint_imports(REPO_ROOT, PYPROJECT, [REPO_ROOT, REPO_ROOT / "lambdas"])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    contracts = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    assert completed.stdout.count(" KEPT") == len(contracts) >= 5, completed.stdout


# One forbidden import per rule, in stand-in packages named like ours.
VIOLATIONS = {
    "o2v_core/bad_ours.py": "import control_plane\n",
    "o2v_core/bad_external.py": "import boto3\n",
    "control_plane/bad.py": "import stacks\n",
    "control_plane/aws/bad.py": "import control_plane.logic\n",
    "stacks/bad.py": "import control_plane.logic\n",
    "training/data/bad.py": "import stacks\n",
    "training/commands/bad.py": "import control_plane.aws\n",
    "training/demo/bad.py": "import control_plane.aws\n",
    "training/commands/bad_local.py": "import local_aws.sagemaker\n",
    "training/verify/bad_local.py": "import local_aws.deployment\n",  # only --local's module may
    # o2v verify's real path reaching local_aws through another module of ours
    "training/verify/loop_checks.py": "import training.demo.local_account\n",
    "local_aws/bad.py": "import control_plane\n",
    "local_aws/sagemaker/bad.py": "import training.data\n",
    "o2v_core/bad_local.py": "import local_aws\n",
    "control_plane/bad_local.py": "import local_aws\n",
    "stacks/bad_local.py": "import local_aws.sagemaker\n",
    "bench/bad.py": "import tests\n",
    "control_plane/handlers/promoter.py": "import control_plane.handlers.reconciler\n",  # one handler importing another
}
ALLOWED = {
    "control_plane/handlers/fine.py": "import control_plane.logic\nimport o2v_core\n",
    "training/demo/fine.py": "import local_aws.sagemaker\nimport o2v_core\n",
    "training/verify/local.py": "import local_aws.deployment\nimport o2v_core\n",
    "training/verify/runner.py": "import training.verify.local\n",  # for --local alone
    "local_aws/fine.py": "import local_aws.sagemaker\nimport o2v_core\n",
    "bench/fine.py": "import stacks\nimport control_plane\nimport training\nimport local_aws\n",
    "tests/fine.py": "import local_aws.sagemaker\n",
    "o2v_core/fine.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import boto3\n",
}


def _stand_ins_for_named_modules(root: Path) -> None:
    """An empty module for each of our modules a contract names and the tree lacks (import-linter
    refuses a contract whose module does not exist)."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    ours = set(config["root_packages"])
    for contract in config["contracts"]:
        named = [*contract.get("source_modules", []), *contract.get("forbidden_modules", [])]
        for module in [*named, *contract.get("modules", [])]:
            path = root / (module.replace(".", "/") + ".py")
            if module.split(".")[0] in ours and not path.exists() and not path.with_suffix("").is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("", encoding="utf-8")


def test_the_contracts_catch_each_forbidden_import(tmp_path: Path) -> None:
    packages = ["o2v_core", "control_plane", "control_plane/handlers", "control_plane/logic", "control_plane/aws",
                "stacks", "training", "training/data", "training/commands", "training/demo", "training/verify",
                "local_aws", "local_aws/sagemaker", "bench", "tests"]
    for package in packages:
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "boto3").mkdir()
    (tmp_path / "boto3" / "__init__.py").write_text("", encoding="utf-8")
    for path, text in {**VIOLATIONS, **ALLOWED}.items():
        (tmp_path / path).write_text(text, encoding="utf-8")
    _stand_ins_for_named_modules(tmp_path)
    config = tmp_path / "pyproject.toml"
    shutil.copy(PYPROJECT, config)

    completed = lint_imports(tmp_path, config, [tmp_path])

    report = completed.stdout + completed.stderr
    assert completed.returncode != 0, report
    for path in VIOLATIONS:
        module = path.removesuffix(".py").replace("/", ".")
        assert f"{module} ->" in report, f"{module}: not reported\n{report}"
    for path in ALLOWED:
        module = path.removesuffix(".py").replace("/", ".")
        assert f"{module} ->" not in report, f"{module}: reported although allowed\n{report}"


def test_the_independence_contract_names_every_handler() -> None:
    """A new handler joins the "no handler imports another" contract (wiring is what they share)."""
    contracts = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    (independence,) = [contract for contract in contracts if contract["type"] == "independence"]
    handlers = PYPROJECT.parent / "lambdas" / "control_plane" / "handlers"
    modules = {f"control_plane.handlers.{path.stem}" for path in handlers.glob("*.py")
               if path.stem not in ("__init__", "wiring")}
    assert set(independence["modules"]) == modules
