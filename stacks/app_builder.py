"""Build the whole CDK app for one environment: used by app.py, the tests and stacks.summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks
from o2v_core import resource_names
from o2v_core.events import rules
from o2v_core.functions import FUNCTIONS
from o2v_core.settings import Settings, load_settings, read_cdk_context

from stacks.data_stack import DataStack
from stacks.serving_stack import ServingStack
from stacks.training_stack import TrainingStack

REPO_ROOT = Path(__file__).resolve().parents[1]
CDK_JSON = REPO_ROOT / "cdk.json"


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


class WiringError(RuntimeError):
    """A rule or function of o2v_core is wired by no stack, or by two."""


def check_wiring(deployment: str, training: TrainingStack, serving: ServingStack) -> None:
    """Every o2v_core.events.rules() spec and every o2v_core.functions spec is deployed exactly once."""
    wired_rules = [*training.control_plane.rules, *serving.promotion.rules]
    expected_rules = [spec.rule_id for spec in rules(deployment)]
    if sorted(wired_rules) != sorted(expected_rules):
        raise WiringError(f"rules wired {sorted(wired_rules)}; o2v_core.events.rules() has {sorted(expected_rules)}")
    wired_functions = [*training.control_plane.functions, *serving.promotion.functions]
    expected_functions = [spec.function_id for spec in FUNCTIONS]
    if sorted(wired_functions) != sorted(expected_functions):
        raise WiringError(f"functions deployed {sorted(wired_functions)}; o2v_core.functions has {expected_functions}")


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
        resource_names.data_stack_name(settings.deployment),
        settings=settings,
        env=env,
        description=f"Object2Vec {settings.deployment}: key, buckets, served-model record (stateful)",
    )
    training = TrainingStack(
        app,
        resource_names.training_stack_name(settings.deployment),
        settings=settings,
        data=data,
        env=env,
        description=f"Object2Vec {settings.deployment}: training role and retraining control plane",
    )
    serving = ServingStack(
        app,
        resource_names.serving_stack_name(settings.deployment),
        settings=settings,
        data=data,
        training=training,
        env=env,
        description=f"Object2Vec {settings.deployment}: embedding endpoint and promotion",
    )
    check_wiring(settings.deployment, training, serving)
    # Both packs run on the whole app as policy validation: a finding fails synthesis unless it is
    # acknowledged, with a reason, on the resource that raises it.
    nag_packs: tuple[NagPack, ...] = (AwsSolutionsChecks(app), ServerlessChecks(app))
    Validations.of(app).add_plugins(*nag_packs)
    return Deployment(app, settings, data, training, serving, nag_packs)


def build_app(env_name: str, *, context: Mapping[str, Any] | None = None, outdir: str | None = None) -> Deployment:
    """A fresh app for ``env_name`` with cdk.json's context (plus ``context`` overrides)."""
    merged = {**read_cdk_context(CDK_JSON), **(context or {}), "env": env_name}
    return build(new_app(context=merged, outdir=outdir))
