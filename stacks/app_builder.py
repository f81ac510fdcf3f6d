"""Build the whole CDK app for one environment: used by app.py, the tests and stacks.summary."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks

from stacks.data_stack import DataStack
from stacks.serving_stack import ServingStack
from stacks.settings import Settings, load_settings
from stacks.training_stack import TrainingStack

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Deployment:
    app: App
    settings: Settings
    data: DataStack
    training: TrainingStack
    serving: ServingStack
    nag_packs: tuple[NagPack, ...]

    @property
    def stacks(self) -> tuple[DataStack, TrainingStack, ServingStack]:
        return (self.data, self.training, self.serving)


def cdk_json_context(path: Path = REPO_ROOT / "cdk.json") -> dict[str, Any]:
    """The context block of cdk.json, as the CDK CLI would pass it to the app."""
    context: dict[str, Any] = json.loads(path.read_text())["context"]
    return context


def new_app(**kwargs: Any) -> App:
    """The CDK app (the CLI hands it cdk.json's context and ``-c`` values)."""
    return App(**kwargs)


def build(app: App, settings: Settings | None = None) -> Deployment:
    """Add the three stacks and the cdk-nag packs to ``app``."""
    if settings is None:
        settings = load_settings(app.node.try_get_context)
    env = Environment(account=settings.account, region=settings.region)
    data = DataStack(
        app,
        f"{settings.deployment}-data",
        settings=settings,
        env=env,
        description=f"Object2Vec {settings.deployment}: key, buckets (stateful)",
    )
    training = TrainingStack(
        app,
        f"{settings.deployment}-training",
        settings=settings,
        data=data,
        env=env,
        description=f"Object2Vec {settings.deployment}: training role and retraining control plane",
    )
    serving = ServingStack(
        app,
        f"{settings.deployment}-serving",
        settings=settings,
        data=data,
        env=env,
        description=f"Object2Vec {settings.deployment}: embedding endpoint and promotion",
    )
    # Both packs run on the whole app as policy validation: a finding fails synthesis unless it is
    # acknowledged, with a reason, on the resource that raises it.
    nag_packs: tuple[NagPack, ...] = (AwsSolutionsChecks(app), ServerlessChecks(app))
    Validations.of(app).add_plugins(*nag_packs)
    return Deployment(app, settings, data, training, serving, nag_packs)


def build_app(env_name: str, *, context: Mapping[str, Any] | None = None, outdir: str | None = None) -> Deployment:
    """A fresh app for ``env_name`` with cdk.json's context (plus ``context`` overrides)."""
    merged = {**cdk_json_context(), **(context or {}), "env": env_name}
    return build(new_app(context=merged, outdir=outdir))
