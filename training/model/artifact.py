"""The model artifact: everything ``o2v serve`` and ``o2v embed`` need, in one directory or
``model.tar.gz`` (the same files at the archive's root)::

    model.pt              the network weights (a PyTorch state_dict; loaded with weights_only)
    model_config.json     {"format": "o2v-model/1", "model": <resolved network settings>}
    hyperparameters.json  every Object2Vec hyperparameter the model was trained with
    training.json         best epoch, per-epoch metrics, seed, data files
    vocab.json            token -> id (when the auxiliary channel had one)
    tokenizer.json        tokenizer settings (when the auxiliary channel had them)
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.atomic import atomic_file
from training.data.tokenizer import TOKENIZER_FILE, Tokenizer
from training.data.vocab import VOCAB_FILE, Vocab
from training.model.config import ModelConfig
from training.model.network import Object2Vec

FORMAT = "o2v-model/1"
MODEL_FILE = "model.pt"
CONFIG_FILE = "model_config.json"
HYPERPARAMETERS_FILE = "hyperparameters.json"
TRAINING_FILE = "training.json"
ARCHIVE_NAME = "model.tar.gz"
REQUIRED = (MODEL_FILE, CONFIG_FILE, HYPERPARAMETERS_FILE)
OPTIONAL = (TRAINING_FILE, VOCAB_FILE, TOKENIZER_FILE)


class ArtifactError(ValueError):
    """A model directory or archive is incomplete or not one of ours."""


def save_model_dir(
    directory: Path,
    model: Object2Vec,
    hyperparameters: dict[str, Any],
    training: dict[str, Any],
    *,
    vocab_file: Path | None = None,
    tokenizer_file: Path | None = None,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_file(directory / MODEL_FILE) as staging:
        torch.save(model.state_dict(), staging)
    _write_json(directory / CONFIG_FILE, {"format": FORMAT, "model": model.config.to_json()})
    _write_json(directory / HYPERPARAMETERS_FILE, {key: str(value) for key, value in hyperparameters.items()})
    _write_json(directory / TRAINING_FILE, training)
    if vocab_file is not None:
        shutil.copyfile(vocab_file, directory / VOCAB_FILE)
    if tokenizer_file is not None:
        shutil.copyfile(tokenizer_file, directory / TOKENIZER_FILE)


def pack(directory: Path, archive: Path) -> Path:
    """Write ``archive`` (atomically) with the artifact files of ``directory`` at its root."""
    with atomic_file(archive) as staging, tarfile.open(staging, "w:gz") as tar:
        for name in (*REQUIRED, *OPTIONAL):
            if (directory / name).is_file():
                tar.add(directory / name, arcname=name)
    return archive


def _write_json(path: Path, data: object) -> None:
    with atomic_file(path) as staging:
        staging.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Assets:
    """What a client needs to build requests: settings, vocabulary and tokenizer (no weights)."""

    config: ModelConfig
    hyperparameters: dict[str, str]
    training: dict[str, Any]
    vocab: Vocab | None
    tokenizer: Tokenizer | None
    source: str


@dataclass(frozen=True)
class LoadedModel:
    model: Object2Vec
    assets: Assets

    @property
    def config(self) -> ModelConfig:
        return self.assets.config


def _read_files(path: Path, *, skip: str = "") -> dict[str, bytes]:
    wanted = (set(REQUIRED) | set(OPTIONAL)) - {skip}
    if path.is_dir():
        return {name: (path / name).read_bytes() for name in wanted if (path / name).is_file()}
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model directory or model.tar.gz")
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix("./")
                if member.isfile() and name in wanted:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        files[name] = handle.read()
    except tarfile.TarError as error:
        raise ArtifactError(f"{path}: not a readable model.tar.gz ({error})") from None
    return files


def _check_complete(path: Path, files: dict[str, bytes], required: tuple[str, ...]) -> None:
    missing = [name for name in required if name not in files]
    if missing:
        raise ArtifactError(f"{path}: missing {', '.join(missing)}; is this a model written by `o2v train`?")


def _assets(path: Path, files: dict[str, bytes]) -> Assets:
    _check_complete(path, files, (CONFIG_FILE, HYPERPARAMETERS_FILE))
    try:
        header = json.loads(files[CONFIG_FILE])
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ArtifactError(f"{path}: {CONFIG_FILE} is not format {FORMAT}")
        config = ModelConfig.from_json(header["model"])
        vocab = Vocab(json.loads(files[VOCAB_FILE])) if VOCAB_FILE in files else None
        tokenizer = (Tokenizer.from_json(json.loads(files[TOKENIZER_FILE]), where=f"{path}:{TOKENIZER_FILE}")
                     if TOKENIZER_FILE in files else None)
        return Assets(
            config=config,
            hyperparameters=json.loads(files[HYPERPARAMETERS_FILE]),
            training=json.loads(files[TRAINING_FILE]) if TRAINING_FILE in files else {},
            vocab=vocab,
            tokenizer=tokenizer,
            source=str(path),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: unreadable model settings ({error})") from None


def load_assets(path: Path) -> Assets:
    """Settings, vocabulary and tokenizer of a model directory or archive, without the weights."""
    return _assets(path, _read_files(path, skip=MODEL_FILE))


def load(path: Path) -> LoadedModel:
    """Load a model directory or ``model.tar.gz`` written by the trainer, ready for inference."""
    files = _read_files(path)
    _check_complete(path, files, REQUIRED)
    assets = _assets(path, files)
    model = Object2Vec(assets.config)
    try:
        state = torch.load(io.BytesIO(files[MODEL_FILE]), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, EOFError, ValueError) as error:
        raise ArtifactError(f"{path}: {MODEL_FILE} does not fit the model settings ({error})") from None
    model.eval()
    return LoadedModel(model, assets)
