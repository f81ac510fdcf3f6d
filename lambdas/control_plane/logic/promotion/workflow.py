"""The promotion workflow: decide, deploy at most once per job, announce, then mark done.

The rules it applies are in :mod:`.rules`, the names it creates in :mod:`.serving_resources`;
every AWS call goes through ``control_plane.aws``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_lambda_powertools import Logger
from o2v_core.endpoint_deployment import deployment_config
from o2v_core.events import MalformedEvent, ModelPromoted, PromotionSkipped, TrainingSucceeded, to_detail
from o2v_core.function_settings import PromoterSettings
from o2v_core.naming import INFERENCE_ENVIRONMENT, LINEAGE_TAG_KEYS, TAG_DEPLOYMENT, job_prefix
from o2v_core.served_assets import TAG_VOCAB

from control_plane.aws.autoscaling import EndpointAutoscaling
from control_plane.aws.endpoint import (
    EndpointConfigExtras,
    EndpointState,
    EndpointUpdateRejected,
    SageMakerServing,
)
from control_plane.aws.event_bus import EventBus
from control_plane.aws.serving_record import ServingRecord, ServingRecordStore
from control_plane.aws.training_jobs import TrainingJob
from control_plane.logic.announce import Announcer
from control_plane.logic.jobs import TAG_PROMOTION
from control_plane.logic.promotion.rules import (
    Verdict,
    candidate_value,
    compare,
    provenance_veto,
    rollback_veto,
    status_veto,
)
from control_plane.logic.promotion.serving_resources import served_model_tags, serving_name

logger = Logger(child=True)

# State on the training job, set only after the event that reports it was put (docs/guarantees.md):
# "decided" (ModelPromoted or PromotionSkipped put) or "deferred" (the endpoint was busy, or the
# record did not name what the endpoint serves; the reconciler decides it once the endpoint is free).
PROMOTION_DECIDED = "decided"
PROMOTION_DEFERRED = "deferred"
DEFERRED_REASON_PREFIX = "deferred: "


@dataclass(frozen=True)
class Outcome:
    detail: ModelPromoted | PromotionSkipped
    record: ServingRecord | None = None  # written after ModelPromoted is put
    job_arn: str | None = None  # tagged with the decision after it is put
    deferred: bool = False

    @property
    def promoted(self) -> bool:
        return isinstance(self.detail, ModelPromoted)

    def as_dict(self) -> dict[str, object]:
        return {"outcome": self.detail.detail_type, **to_detail(self.detail)}


@dataclass
class Promoter:
    settings: PromoterSettings
    sagemaker: SageMakerServing
    records: ServingRecordStore
    bus: EventBus
    announcer: Announcer  # ModelPromoted goes out once per served-model change (control_plane.logic.announce)
    # The endpoint variant's scaling: deregistered before an update that changes the instance type;
    # the reconciler registers it again once the endpoint is InService (control_plane.logic.reconciler).
    autoscaling: EndpointAutoscaling = field(default_factory=EndpointAutoscaling)

    def handle(self, event: TrainingSucceeded) -> Outcome:
        """Decide, promote at most once, log the decision and put it on the bus."""
        self._check_ownership(event)
        outcome = self._decide_and_promote(event)
        detail = outcome.detail
        logger.info(
            "promotion decision",
            extra={
                "decision": detail.detail_type,
                "reason": getattr(detail, "reason", "promoted"),
                "trainingJobName": detail.trainingJobName,
                "metricName": detail.metricName,
                "candidateValue": detail.candidateValue,
                "servingValue": detail.previousValue if isinstance(detail, ModelPromoted) else detail.servingValue,
                "margin": self.settings.promotion_margin,
                "endpointName": detail.endpointName,
            },
        )
        if isinstance(detail, ModelPromoted) and outcome.record is not None:
            self.announcer.once(detail)
        else:
            self.bus.publish(detail)
        # Marked done only now that the event exists: a crash before this line repeats the
        # decision on the retry (or the reconciler's run), never loses it.
        if outcome.record is not None:
            self.records.write(outcome.record)
        if outcome.job_arn is not None:
            state = PROMOTION_DEFERRED if outcome.deferred else PROMOTION_DECIDED
            self.sagemaker.add_tags(outcome.job_arn, {TAG_PROMOTION: state})
        return outcome

    # -- steps ------------------------------------------------------------------------------

    def _check_ownership(self, event: TrainingSucceeded) -> None:
        if event.deployment != self.settings.deployment:
            raise MalformedEvent(
                f"field 'detail.deployment' is {event.deployment!r}; this promoter serves {self.settings.deployment!r}"
            )
        prefix = job_prefix(self.settings.deployment)
        if not event.trainingJobName.startswith(prefix):
            raise MalformedEvent(
                f"field 'detail.trainingJobName' is {event.trainingJobName!r}; "
                f"this deployment's jobs start with {prefix!r}"
            )

    def _skip(
        self,
        event: TrainingSucceeded,
        reason: str,
        candidate: float | None,
        serving: ServingRecord | None,
        *,
        job: TrainingJob | None = None,
        deferred: bool = False,
    ) -> Outcome:
        return Outcome(
            job_arn=job.arn if job is not None else None,
            deferred=deferred,
            detail=PromotionSkipped(
                deployment=self.settings.deployment,
                trainingJobName=event.trainingJobName,
                endpointName=self.settings.endpoint_name,
                candidateValue=candidate,
                servingValue=serving.metricValue if serving else None,
                metricName=event.metricName,
                reason=DEFERRED_REASON_PREFIX + reason if deferred else reason,
            ),
        )

    def _decide_and_promote(self, event: TrainingSucceeded) -> Outcome:
        serving = self.records.read()
        job = self.sagemaker.describe_training_job(event.trainingJobName)
        if serving is not None and serving.trainingJobName == event.trainingJobName:
            return self._skip(event, "already serving", serving.metricValue, serving, job=job)
        if job.tags.get(TAG_DEPLOYMENT, self.settings.deployment) != self.settings.deployment:
            raise MalformedEvent(
                f"field 'detail.trainingJobName': job {job.name!r} is tagged {TAG_DEPLOYMENT}="
                f"{job.tags[TAG_DEPLOYMENT]!r}, not {self.settings.deployment!r}"
            )
        if (job.status, job.model_data_url) != (event.trainingJobStatus, event.modelArtifact):
            logger.warning(
                "event disagrees with DescribeTrainingJob; SageMaker's answer wins",
                extra={
                    "eventStatus": event.trainingJobStatus,
                    "jobStatus": job.status,
                    "eventArtifact": event.modelArtifact,
                    "jobArtifact": job.model_data_url,
                },
            )
        candidate = candidate_value(event, job.status, job.tags)
        veto = status_veto(job.status, job.tags) or rollback_veto(job.tags)
        if veto is not None:
            return self._skip(event, veto, candidate, serving, job=job)
        if job.model_data_url is None:
            return self._skip(event, "training job has no model artifact", candidate, serving, job=job)
        foreign = provenance_veto(
            job,
            training_role_arn=self.settings.training_role_arn,
            training_output_uri=self.settings.training_output_uri,
        )
        if foreign is not None:
            return self._skip(event, foreign, candidate, serving, job=job)
        endpoint = self.sagemaker.describe_endpoint(self.settings.endpoint_name)
        config_name = serving_name(self.settings.deployment, job.name, "config")
        if endpoint is not None and endpoint.targets(config_name):
            return self._duplicate(event, candidate, serving, endpoint, job)
        if endpoint is not None and endpoint.busy:
            # Deferred, not failed: the bake takes longer than Lambda's retries last.
            return self._skip(event, self._busy_message(endpoint), candidate, serving, job=job, deferred=True)
        if endpoint is not None and serving is not None and serving.endpointConfigName != endpoint.config_name:
            # A stale record (a rollback, or a promotion whose record write failed) must not be the
            # yardstick: the reconciler rewrites it from the endpoint, then decides this candidate.
            reason = (
                f"the record names {serving.endpointConfigName!r} but endpoint {endpoint.name!r} serves "
                f"{endpoint.config_name!r}"
            )
            return self._skip(event, reason, candidate, serving, job=job, deferred=True)
        verdict = compare(candidate, event.metricName, serving, self.settings.promotion_margin,
                          validation_data=job.validation_data)
        if not verdict.promote:
            return self._skip(event, verdict.reason, candidate, serving, job=job)
        return self._deploy(event, job, job.model_data_url, candidate, serving, verdict, endpoint)

    def _deploy(
        self,
        event: TrainingSucceeded,
        job: TrainingJob,
        model_data_url: str,
        candidate: float,
        serving: ServingRecord | None,
        verdict: Verdict,
        endpoint: EndpointState | None,
    ) -> Outcome:
        settings = self.settings
        model_name = serving_name(settings.deployment, job.name, "model")
        config_name = serving_name(settings.deployment, job.name, "config")
        tags = {key: job.tags[key] for key in LINEAGE_TAG_KEYS if job.tags.get(key)}
        tags[TAG_DEPLOYMENT] = settings.deployment
        model_tags = dict(tags)
        vocab = job.vocab_uri  # its auxiliary channel: `o2v embed --endpoint` finds it the same way
        if vocab:
            model_tags[TAG_VOCAB] = vocab

        # The endpoint was described before the config is created: the new config carries the live
        # one's KmsKeyId and DataCaptureConfig. Races with concurrent invocations are settled below.
        config_extras = self._config_extras(endpoint)

        self.sagemaker.create_model(
            model_name,
            image_uri=settings.image_uri,
            model_data_url=model_data_url,
            role_arn=settings.model_role_arn,
            environment=INFERENCE_ENVIRONMENT,
            tags=model_tags,
        )
        self.sagemaker.create_endpoint_config(
            config_name,
            model_name=model_name,
            instance_type=settings.endpoint_instance_type,
            instance_count=settings.endpoint_min_capacity,  # the minimum capacity
            extras=config_extras,
            tags={**tags, **served_model_tags(job.name, event.metricName, candidate, job.validation_data)},
        )
        record = ServingRecord(
            modelDataUrl=model_data_url,
            trainingJobName=job.name,
            metricName=event.metricName,
            metricValue=candidate,
            modelName=model_name,
            endpointConfigName=config_name,
            vocab=vocab,
            validationData=job.validation_data,
        )

        if endpoint is None:
            if self.sagemaker.create_endpoint(settings.endpoint_name, config_name=config_name, tags=tags):
                return self._promoted(event, record, serving, verdict, "created the endpoint", job)
            endpoint = self._must_describe()  # a concurrent invocation created it first
        if endpoint.targets(config_name):
            return self._duplicate(event, candidate, serving, endpoint, job)
        if endpoint.busy:
            return self._skip(event, self._busy_message(endpoint), candidate, serving, job=job, deferred=True)
        if not settings.rollback_alarms:
            logger.warning("blue/green update without rollback alarms: nothing rolls a bad model back")
        if config_extras.instance_type != settings.endpoint_instance_type and self.autoscaling.deregister(
            settings.endpoint_name
        ):
            # "If the update would change the instance type for any model that is a target for auto
            # scaling, the update fails" (reference 11d): the reconciler registers it again once the
            # endpoint is InService. An unknown live type (its config is gone) counts as a change.
            logger.info(
                "deregistered the endpoint's scalable target before changing its instance type",
                extra={"from": config_extras.instance_type, "to": settings.endpoint_instance_type},
            )
        try:
            self.sagemaker.update_endpoint(
                settings.endpoint_name, config_name=config_name, deployment_config=deployment_config(
                    settings.rollback_alarms
                )
            )
        except EndpointUpdateRejected:
            endpoint = self._must_describe()
            if endpoint.targets(config_name):  # a concurrent duplicate started the same deployment
                return self._duplicate(event, candidate, serving, endpoint, job)
            if endpoint.busy:
                return self._skip(event, self._busy_message(endpoint), candidate, serving, job=job, deferred=True)
            raise
        return self._promoted(event, record, serving, verdict, "started a blue/green update", job)

    def _config_extras(self, endpoint: EndpointState | None) -> EndpointConfigExtras:
        """KmsKeyId and DataCaptureConfig for the new config: the live config's, else the settings'."""
        if endpoint is None:
            return self._first_config_extras()
        live = self.sagemaker.describe_endpoint_config(endpoint.config_name)
        if live is None:
            logger.warning(
                "the endpoint's current config is gone; the new config takes KmsKeyId and DataCaptureConfig "
                "from the settings",
                extra={"endpointName": endpoint.name, "endpointConfigName": endpoint.config_name},
            )
            return self._first_config_extras()
        return live

    def _first_config_extras(self) -> EndpointConfigExtras:
        """KmsKeyId and DataCaptureConfig of the first endpoint's config (later ones copy the live config's)."""
        return EndpointConfigExtras(self.settings.endpoint_kms_key_arn or None, self.settings.first_data_capture)

    def _must_describe(self) -> EndpointState:
        endpoint = self.sagemaker.describe_endpoint(self.settings.endpoint_name)
        if endpoint is None:
            raise RuntimeError(f"endpoint {self.settings.endpoint_name!r} vanished during promotion")
        return endpoint

    def _busy_message(self, endpoint: EndpointState) -> str:
        return (
            f"endpoint {endpoint.name!r} is {endpoint.status} (config {endpoint.config_name!r}, "
            f"pending {endpoint.pending_config_name!r}); decided once it is InService"
        )

    def _promoted(
        self,
        event: TrainingSucceeded,
        record: ServingRecord,
        serving: ServingRecord | None,
        verdict: Verdict,
        action: str,
        job: TrainingJob,
    ) -> Outcome:
        # ModelPromoted next, the record last (handle()).
        logger.info(f"promoted: {action}", extra={"verdict": verdict.reason, "record": record.to_json()})
        return Outcome(
            record=record,
            job_arn=job.arn,
            detail=ModelPromoted(
                deployment=self.settings.deployment,
                trainingJobName=event.trainingJobName,
                endpointName=self.settings.endpoint_name,
                modelName=record.modelName,
                candidateValue=record.metricValue,
                previousValue=serving.metricValue if serving else None,
                metricName=event.metricName,
            )
        )

    def _duplicate(
        self,
        event: TrainingSucceeded,
        candidate: float,
        serving: ServingRecord | None,
        endpoint: EndpointState,
        job: TrainingJob,
    ) -> Outcome:
        # The endpoint already serves or deploys this job's config: another invocation promoted it,
        # or an earlier attempt of this one died after CreateEndpoint/UpdateEndpoint. Neither
        # writes the record nor announces here (concurrent duplicates cannot tell who deployed);
        # the reconciler does both, once, when it finds the endpoint serving a config the record
        # does not name.
        serving_it = endpoint.config_name == serving_name(self.settings.deployment, job.name, "config")
        state = "serving" if serving_it and not endpoint.busy else f"deploying ({endpoint.status})"
        return self._skip(
            event, f"already {state}: duplicate event for {event.trainingJobName}", candidate, serving, job=job
        )
