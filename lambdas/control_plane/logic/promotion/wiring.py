"""Builds the promoter from the function's environment: real clients, checked settings."""

from __future__ import annotations

from o2v_core.function_settings import PromoterSettings

from control_plane.aws.autoscaling import EndpointAutoscaling
from control_plane.aws.endpoint import SageMakerServing
from control_plane.aws.event_bus import EventBus
from control_plane.aws.serving_record import ServingRecordStore
from control_plane.logic.announce import announcer_from_config
from control_plane.logic.promotion.workflow import Promoter


def promoter_from_config(settings: PromoterSettings) -> Promoter:
    return Promoter(
        settings=settings,
        sagemaker=SageMakerServing(),
        records=ServingRecordStore(settings.serving_model_parameter),
        bus=EventBus(settings.event_bus_name),
        announcer=announcer_from_config(settings),
        autoscaling=EndpointAutoscaling(),
    )
