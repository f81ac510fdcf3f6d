"""The one place that builds the control plane's parts from a function's settings: the AWS data
access (``control_plane.aws``) handed to the logic. The handlers call it; ``logic/`` never
constructs an adapter, and no handler imports another."""

from __future__ import annotations

from typing import Any

from o2v_core.detector import DetectorConfig
from o2v_core.function_settings import JudgeSettings, LauncherSettings, PromoterSettings, ReconcilerSettings
from o2v_core.resource_names import job_curve_table_name
from o2v_core.retrain_policy import RetrainPolicy

from control_plane.aws.announcements import Announcements
from control_plane.aws.autoscaling import EndpointAutoscaling
from control_plane.aws.curve_store import CurveStore
from control_plane.aws.endpoint import SageMakerServing
from control_plane.aws.event_bus import EventBus
from control_plane.aws.serving_record import ServingRecordStore
from control_plane.aws.training_jobs import TrainingJobs
from control_plane.aws.training_logs import TrainingLogs
from control_plane.logic.announce import Announcer
from control_plane.logic.monitor import Judge
from control_plane.logic.promotion import Promoter
from control_plane.logic.reconciler import Reconciler


def judge_from_env(logs: TrainingLogs | None = None) -> Judge:
    """The per-job judge over this deployment's AWS data access (both judging handlers use it)."""
    config = JudgeSettings.from_env()
    return Judge(
        deployment=config.deployment,
        jobs=TrainingJobs(),
        logs=logs or TrainingLogs(),
        bus=EventBus(config.event_bus_name),
        store=CurveStore(job_curve_table_name(config.deployment)),
        detector=DetectorConfig.from_json(config.detector_config),
        stop_on_divergence=config.stop_on_divergence,
        finish_within_epochs=config.finish_diverged_within_epochs,
    )


def announcer_from_config(config: LauncherSettings | PromoterSettings) -> Announcer:
    """The project bus and the ledger in the artifact bucket, as the handlers use them (and the
    witness queue, which only the reconciler's settings name)."""
    return Announcer(
        EventBus(config.event_bus_name),
        Announcements(config.artifact_bucket, config.deployment,
                      witness_queue_url=getattr(config, "announcement_witness_queue_url", "")),
    )


def promoter_from_config(settings: PromoterSettings) -> Promoter:
    """The promoter with real clients and its checked settings."""
    return Promoter(
        settings=settings,
        sagemaker=SageMakerServing(),
        records=ServingRecordStore(settings.serving_model_parameter),
        bus=EventBus(settings.event_bus_name),
        announcer=announcer_from_config(settings),
        autoscaling=EndpointAutoscaling(),
    )


def reconciler_from_config(config: ReconcilerSettings, **overrides: Any) -> Reconciler:
    """The reconciler with plain AWS data access, as the handler runs it (tests may set ``now``)."""
    return Reconciler(
        deployment=config.deployment,
        jobs=TrainingJobs(),
        logs=TrainingLogs(),
        bus=EventBus(config.event_bus_name),
        detector=DetectorConfig.from_json(config.detector_config),
        policy=RetrainPolicy.from_json(config.retrain_policy),
        promoter=promoter_from_config(config),
        **overrides,
    )
