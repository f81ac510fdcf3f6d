"""Each function's settings default to the deployment's values, defined once in ControlPlaneConfig."""

from __future__ import annotations

from dataclasses import MISSING, fields

import pytest
from o2v_core.function_settings import FromDeployment, deployment_default
from o2v_core.functions import FUNCTIONS
from o2v_core.runtime_config import ControlPlaneConfig

DEPLOYMENT_DEFAULTS = {item.name: item.default for item in fields(ControlPlaneConfig)}


def settings_classes() -> list[type[FromDeployment]]:
    found = {spec.settings for spec in FUNCTIONS}
    return sorted(found, key=lambda cls: cls.__name__)


@pytest.mark.parametrize("settings", settings_classes(), ids=lambda cls: cls.__name__)
def test_every_default_is_the_deployments(settings: type[FromDeployment]) -> None:
    drift = []
    for item in fields(settings):  # type: ignore[arg-type]  # every subclass is a dataclass
        if item.default is MISSING or item.name not in DEPLOYMENT_DEFAULTS:
            continue
        deployment = DEPLOYMENT_DEFAULTS[item.name]
        # A field the deployment requires may default to empty here, so a cold-start check names it.
        if deployment is MISSING:
            assert item.default == "", f"{settings.__name__}.{item.name} invents a default the deployment lacks"
        elif item.default != deployment:
            drift.append(f"{settings.__name__}.{item.name} = {item.default!r}, deployment {deployment!r}")
    assert drift == []


def test_a_field_the_deployment_requires_has_no_default_to_borrow() -> None:
    with pytest.raises(TypeError, match="training_role_arn"):
        deployment_default("training_role_arn")
