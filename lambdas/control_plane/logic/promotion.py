"""Promotion decisions: is a finished job's model better than the served one, and deploy it once.

Rules (``docs/promotion.md`` explains them with examples):

* **Promotable status.** ``Completed`` jobs are promotable. ``Stopped`` jobs (the monitor stops
  diverging attempts) are promotable only when the training job carries the tag
  ``o2v:artifact-holds-best-epoch=true``: our local trainer keeps the best epoch's weights, while
  whether SageMaker's Object2Vec does is unconfirmed, so an untagged stopped job's artifact may
  hold the weights of a diverged epoch. Every other status is never promotable.
* **The candidate's number.** The value that describes the artifact: the best validation value
  when the artifact holds the best epoch, else the final validation value. A ``Completed`` job's
  artifact holds its best epoch, early-stopped or not (reference section 10d); a ``Stopped``
  one's only with the tag above.
* **Overfitted attempts are candidates too.** A job that diverged but ended on its own (its early
  stopping, or its budget) keeps its best epoch, which may be the best of its lineage: the
  evaluator offers it like a healthy one, so the endpoint ends up serving the best model across
  a lineage's attempts.
* **Margin (relative).** With served value ``s`` and candidate ``c`` of a loss metric, promote
  iff ``s - c > margin * |s|``; for a score (``accuracy``) iff ``c - s > margin * |s|``. So
  ``margin = 0`` promotes any strict improvement and never an equal one; ``0.02`` asks for 2 %.
  Relative, because cross-entropy and mean squared error live on different scales.
* **Comparable metrics only.** A candidate measured with another metric than the served model
  is skipped (reason names both); the operator decides.
* **Comparable data only.** Validation values are compared only when measured on the same
  validation channel (the S3 URI; the record keeps the served model's): the attempts of a
  lineage share it. A candidate validated on another dataset is skipped with a reason naming
  both datasets. A record written before it kept the channel is compared as before.
* **Exactly one deployment per job.** Model and endpoint-config names are deterministic from the
  job name; "already exists" means a duplicate or a retry got there first, and we carry on with
  the existing resource. Only the invocation whose CreateEndpoint/UpdateEndpoint call succeeds
  emits ``ModelPromoted``; a duplicate finds the endpoint already serving or deploying its config
  and emits ``PromotionSkipped``. If the deploying invocation dies before its ``ModelPromoted``,
  the reconciler announces it (it finds the endpoint serving a config the record does not name).
* **Deferred, not failed.** While the endpoint is creating or updating (a 10-minute bake), or
  while the record does not name what the endpoint serves, a candidate is tagged
  ``o2v:promotion=deferred``; the reconciler decides it once the endpoint is InService.
* **Never a rolled-back model.** A job tagged ``o2v:rolled-back`` (the reconciler saw the
  endpoint roll its deployment back) is skipped.
* **Same encryption and data capture as the live config.** A new endpoint config copies
  ``KmsKeyId`` and ``DataCaptureConfig`` from the endpoint's current config (DescribeEndpointConfig);
  only the first endpoint, which has none, takes them from the settings the serving stack passes.
* **Two parameters.** After a deployment is accepted, the served ``ModelDataUrl`` goes to the URL
  parameter (read by the serving stack at deploy time), then ``ModelPromoted`` is put, then the
  JSON record is written (nothing is marked done before the event that says so; docs/guarantees.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aws_lambda_powertools import Logger
from o2v_core.endpoint_deployment import MAX_ROLLBACK_ALARMS, data_capture_config, deployment_config
from o2v_core.events import MalformedEvent, ModelPromoted, PromotionSkipped, TrainingSucceeded, to_detail
from o2v_core.metric_lines import SCORE_KIND
from o2v_core.naming import (
    INFERENCE_ENVIRONMENT,
    LINEAGE_TAG_KEYS,
    MAX_JOB_NAME,
    TAG_BEST_EPOCH_ARTIFACT,
    TAG_DEPLOYMENT,
    job_prefix,
)
from o2v_core.resource_names import TRAINING_OUTPUT_PREFIX
from o2v_core.runtime_config import PREFIX, ConfigError, ControlPlaneConfig
from o2v_core.served_assets import TAG_TRAINING_JOB, TAG_VOCAB

from control_plane.aws.event_bus import EventBus
from control_plane.aws.serving import (
    EndpointConfigSettings,
    EndpointState,
    EndpointUpdateRejected,
    SageMakerServing,
    ServingRecord,
    ServingRecordStore,
    TrainingJob,
)
from control_plane.logic.jobs import TAG_PROMOTION, TAG_ROLLED_BACK

if TYPE_CHECKING:
    pass

logger = Logger(child=True)


# State on the training job, set only after the event that reports it was put (docs/guarantees.md):
# "decided" (ModelPromoted or PromotionSkipped put) or "deferred" (the endpoint was busy, or the
# record did not name what the endpoint serves; the reconciler decides it once the endpoint is free).
PROMOTION_DECIDED = "decided"
PROMOTION_DEFERRED = "deferred"
DEFERRED_REASON_PREFIX = "deferred: "
# What a promoted endpoint config serves, so the reconciler can rebuild the record from the endpoint
# (with o2v_core.served_assets.TAG_TRAINING_JOB, which `o2v embed --endpoint` reads too).
TAG_METRIC_NAME = "o2v:metric-name"
TAG_METRIC_VALUE = "o2v:metric-value"
TAG_VALIDATION_DATA = "o2v:validation-data"


# ---------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class PromotionSettings:
    deployment: str
    endpoint_name: str
    serving_model_parameter: str
    model_role_arn: str
    image_uri: str
    margin: float
    instance_type: str
    event_bus_name: str
    rollback_alarm_names: tuple[str, ...]
    serving_model_data_url_parameter: str = ""
    # Provenance: only jobs that ran as this role, with an artifact below this S3 prefix.
    training_role_arn: str = ""
    training_output_uri: str = ""
    # KmsKeyId and DataCaptureConfig of the first endpoint's config (later ones copy the live config's).
    first_endpoint_config: EndpointConfigSettings = dataclasses.field(default_factory=EndpointConfigSettings)

    @classmethod
    def from_config(cls, config: ControlPlaneConfig) -> PromotionSettings:
        """Check the promotion settings; raises ConfigError naming the environment variable."""

        def env(field: str) -> str:
            return PREFIX + field.upper()

        required = (
            "endpoint_name",
            "serving_model_parameter",
            "model_role_arn",
            "image_uri",
            "endpoint_instance_type",
            "training_role_arn",
            "artifact_bucket",
        )
        for field in required:
            if not getattr(config, field):
                raise ConfigError(f"environment variable {env(field)} must be set for the promoter")
        margin = config.promotion_margin
        if not (math.isfinite(margin) and 0.0 <= margin < 1.0):
            raise ConfigError(
                f"environment variable {env('promotion_margin')} must be a relative margin in [0, 1), got {margin!r}"
            )
        alarms = tuple(name.strip() for name in config.rollback_alarm_names.split(",") if name.strip())
        if len(alarms) > MAX_ROLLBACK_ALARMS:
            raise ConfigError(
                f"environment variable {env('rollback_alarm_names')} names {len(alarms)} alarms; "
                f"SageMaker accepts at most {MAX_ROLLBACK_ALARMS}"
            )
        percentage = config.data_capture_sampling_percentage
        if not 0 <= percentage <= 100:
            raise ConfigError(
                f"environment variable {env('data_capture_sampling_percentage')} must be in [0, 100], got {percentage}"
            )
        if percentage and not config.data_capture_s3_uri:
            raise ConfigError(
                f"environment variable {env('data_capture_s3_uri')} must be set when "
                f"{env('data_capture_sampling_percentage')} is {percentage}"
            )
        capture = (
            data_capture_config(config.data_capture_s3_uri, percentage, config.data_capture_kms_key_arn or None)
            if config.data_capture_s3_uri
            else None
        )
        return cls(
            deployment=config.deployment,
            endpoint_name=config.endpoint_name,
            serving_model_parameter=config.serving_model_parameter,
            model_role_arn=config.model_role_arn,
            image_uri=config.image_uri,
            margin=margin,
            instance_type=config.endpoint_instance_type,
            event_bus_name=config.event_bus_name,
            rollback_alarm_names=alarms,
            serving_model_data_url_parameter=config.serving_model_data_url_parameter,
            training_role_arn=config.training_role_arn,
            training_output_uri=f"s3://{config.artifact_bucket}/{TRAINING_OUTPUT_PREFIX}",
            first_endpoint_config=EndpointConfigSettings(config.endpoint_kms_key_arn or None, capture),
        )


# ---------------------------------------------------------------------------------------------
# Pure rules


def lower_is_better(metric_name: str) -> bool:
    """``validation:cross_entropy`` and ``validation:mean_squared_error`` are losses; accuracy a score."""
    metric = metric_name.rsplit(":", 1)[-1]
    return SCORE_KIND.get(metric, "loss") == "loss"


def artifact_holds_best_epoch(tags: dict[str, str]) -> bool:
    return tags.get(TAG_BEST_EPOCH_ARTIFACT, "").strip().lower() == "true"


def status_veto(status: str, tags: dict[str, str]) -> str | None:
    """Why a job of this status is not promotable, or None when it is."""
    if status == "Completed":
        return None
    if status == "Stopped":
        if artifact_holds_best_epoch(tags):
            return None
        return (
            "training job was stopped and its artifact may hold a diverged epoch's weights "
            f"(no {TAG_BEST_EPOCH_ARTIFACT}=true tag)"
        )
    return f"training job status is {status!r}; only Completed (or tagged Stopped) jobs are promotable"


def provenance_veto(job: TrainingJob, *, training_role_arn: str, training_output_uri: str) -> str | None:
    """Why a job is not this deployment's to promote, or None: it must have run as the training
    role, and its artifact must lie below the artifact bucket's training prefix (where only that
    role may write). A job started by anyone else, or pointing at another artifact, never serves."""
    if job.role_arn != training_role_arn:
        return (
            f"training job ran with role {job.role_arn!r}, not this deployment's training role "
            f"{training_role_arn!r}; only its jobs are promotable"
        )
    if job.model_data_url is not None and not job.model_data_url.startswith(training_output_uri):
        return (
            f"model artifact {job.model_data_url!r} is not below {training_output_uri}, where this "
            "deployment's training jobs write; only those artifacts are promotable"
        )
    return None


def candidate_value(event: TrainingSucceeded, status: str, tags: Mapping[str, str]) -> float:
    """The validation value that describes the model artifact.

    A Completed job's artifact holds its best epoch (reference section 10d: "Best model based on
    epoch M" is what Object2Vec serializes); a Stopped one's only when tagged so.
    """
    holds_best = status == "Completed" or artifact_holds_best_epoch(dict(tags))
    return event.bestValue if holds_best else event.finalValue


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    threshold: float | None = None  # the value the candidate had to beat


def compare(
    candidate: float, metric_name: str, serving: ServingRecord | None, margin: float, *,
    validation_data: str | None = None,
) -> Verdict:
    """Does ``candidate`` beat the served model by the relative margin, on the same data?"""
    if not math.isfinite(candidate):
        return Verdict(False, f"candidate {metric_name} is not finite ({candidate!r})")
    if serving is None:
        return Verdict(True, "no model is served yet")
    if serving.metricName != metric_name:
        return Verdict(
            False,
            f"not comparable: the served model was measured by {serving.metricName}, the candidate by {metric_name}",
        )
    if serving.validationData and validation_data != serving.validationData:
        return Verdict(
            False,
            f"not comparable: the served model ({serving.trainingJobName}) was validated on "
            f"{serving.validationData}, the candidate on {validation_data or 'no validation channel'}; "
            "validation values of different datasets say nothing about which model is better",
        )
    served = serving.metricValue
    needed = margin * abs(served)
    if lower_is_better(metric_name):
        threshold = served - needed
        better = served - candidate > needed
        relation = "below"
    else:
        threshold = served + needed
        better = candidate - served > needed
        relation = "above"
    numbers = (
        f"candidate {metric_name}={candidate:.6g}, served={served:.6g}, margin={margin:g} (relative): "
        f"needs to be strictly {relation} {threshold:.6g}"
    )
    return Verdict(better, ("better by the margin; " if better else "not better by the margin; ") + numbers, threshold)


def serving_name(deployment: str, job_name: str, kind: Literal["model", "config"]) -> str:
    """Deterministic model / endpoint-config name for a job: ``{deployment}-m-...`` / ``{deployment}-c-...``.

    Duplicate events for one job produce the same name, so SageMaker refuses the second create.
    Names longer than 63 characters are cut and end in 8 hex digits of the job name's SHA-256.
    """
    prefix = job_prefix(deployment)
    if not job_name.startswith(prefix):
        raise ValueError(f"training job {job_name!r} does not start with {prefix!r}")
    head = f"{prefix}{'m' if kind == 'model' else 'c'}-"
    body = job_name[len(prefix):]
    if len(head) + len(body) <= MAX_JOB_NAME:
        return head + body
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    room = MAX_JOB_NAME - len(head) - len(digest) - 1
    return f"{head}{body[:room].rstrip('-')}-{digest}"


# ---------------------------------------------------------------------------------------------
# The workflow


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
    settings: PromotionSettings
    sagemaker: SageMakerServing
    records: ServingRecordStore
    bus: EventBus

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
                "margin": self.settings.margin,
                "endpointName": detail.endpointName,
            },
        )
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
        verdict = compare(candidate, event.metricName, serving, self.settings.margin,
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
        config_settings = self._config_settings(endpoint)

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
            instance_type=settings.instance_type,
            settings=config_settings,
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
        if not settings.rollback_alarm_names:
            logger.warning("blue/green update without rollback alarms: nothing rolls a bad model back")
        try:
            self.sagemaker.update_endpoint(
                settings.endpoint_name, config_name=config_name, deployment_config=deployment_config(
                    settings.rollback_alarm_names
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

    def _config_settings(self, endpoint: EndpointState | None) -> EndpointConfigSettings:
        """KmsKeyId and DataCaptureConfig for the new config: the live config's, else the settings'."""
        if endpoint is None:
            return self.settings.first_endpoint_config
        live = self.sagemaker.describe_endpoint_config(endpoint.config_name)
        if live is None:
            logger.warning(
                "the endpoint's current config is gone; the new config takes KmsKeyId and DataCaptureConfig "
                "from the settings",
                extra={"endpointName": endpoint.name, "endpointConfigName": endpoint.config_name},
            )
            return self.settings.first_endpoint_config
        return live

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
        # The URL parameter first (what a redeploy of the serving stack renders: SageMaker is
        # already deploying this model), ModelPromoted next, the record last (handle()).
        self.records.write_url(record)
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


def served_model_tags(
    job_name: str, metric_name: str, value: float, validation_data: str | None = None
) -> dict[str, str]:
    """The endpoint config's tags that let the reconciler rebuild the record from the endpoint."""
    tags = {TAG_TRAINING_JOB: job_name, TAG_METRIC_NAME: metric_name, TAG_METRIC_VALUE: repr(value)}
    if validation_data:
        tags[TAG_VALIDATION_DATA] = validation_data
    return tags


def rollback_veto(tags: dict[str, str]) -> str | None:
    """A model the endpoint's rollback alarms rejected is never deployed again."""
    if TAG_ROLLED_BACK in tags:
        return f"the endpoint rolled this model back ({TAG_ROLLED_BACK}={tags[TAG_ROLLED_BACK]}); not deployed again"
    return None


def promoter_from_config(config: ControlPlaneConfig) -> Promoter:
    settings = PromotionSettings.from_config(config)
    return Promoter(
        settings=settings,
        sagemaker=SageMakerServing(),
        records=ServingRecordStore(
            settings.serving_model_parameter, url_parameter_name=settings.serving_model_data_url_parameter or None
        ),
        bus=EventBus(settings.event_bus_name),
    )
