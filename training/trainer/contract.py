"""The SageMaker training-container contract, with every path overridable.

Under a base directory (``--opt-ml DIR``, else ``$SM_BASE_DIR``, else ``/opt/ml``)::

    input/config/hyperparameters.json   Object2Vec hyperparameters (a JSON object; SageMaker
                                        passes every value as a string)
    input/data/<channel>/               train (required), validation, test, auxiliary
    model/                              the model files (SageMaker archives this directory)
    output/model.tar.gz                 the same files as one archive (for local stand-ins)
    output/failure                      why the job failed, when it did

Failures are reported as SageMaker's built-in algorithms do: ``ClientError: ...`` for bad
hyperparameters or data (the user's to fix), ``AlgorithmError: ...`` for anything else.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from o2v_core.hyperparameters import HyperparameterError

from training.data.errors import DataError

DEFAULT_BASE = Path("/opt/ml")
BASE_ENV = "SM_BASE_DIR"


@dataclass(frozen=True)
class ContainerPaths:
    hyperparameters: Path
    data: Path
    model: Path
    output: Path

    @classmethod
    def under(cls, base: Path) -> ContainerPaths:
        return cls(base / "input" / "config" / "hyperparameters.json", base / "input" / "data", base / "model",
                   base / "output")

    @property
    def failure(self) -> Path:
        return self.output / "failure"

    @property
    def archive(self) -> Path:
        return self.output / "model.tar.gz"


def base_dir(cli_value: Path | None, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if cli_value is not None:
        return cli_value
    return Path(env[BASE_ENV]) if env.get(BASE_ENV) else DEFAULT_BASE


def read_hyperparameters(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, None, "hyperparameters file not found") from None
    except json.JSONDecodeError as error:
        raise DataError(path, error.lineno, f"not valid JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise DataError(path, None, "expected a JSON object of hyperparameters")
    return data


def failure_reason(error: BaseException) -> str:
    client = isinstance(error, (HyperparameterError, DataError, FileNotFoundError, ValueError))
    return f"{'ClientError' if client else 'AlgorithmError'}: {error}"


def write_failure(paths: ContainerPaths, error: BaseException) -> str:
    reason = failure_reason(error)
    paths.output.mkdir(parents=True, exist_ok=True)
    paths.failure.write_text(reason + "\n", encoding="utf-8")
    return reason
