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

Where each part lives: ``o2v_core.function_settings.PromoterSettings`` (its settings, checked
when built), :mod:`.rules` (pure rules),
:mod:`.serving_resources` (names and tags of what it creates), :mod:`.workflow` (the steps and
their AWS calls, through ``control_plane.aws``); ``control_plane.handlers.wiring`` builds it.
"""

from control_plane.logic.promotion.rules import (
    Verdict,
    artifact_holds_best_epoch,
    candidate_value,
    compare,
    lower_is_better,
    provenance_veto,
    rollback_veto,
    status_veto,
)
from control_plane.logic.promotion.serving_resources import (
    TAG_METRIC_NAME,
    TAG_METRIC_VALUE,
    TAG_VALIDATION_DATA,
    served_model_tags,
    serving_name,
)
from control_plane.logic.promotion.workflow import (
    DEFERRED_REASON_PREFIX,
    PROMOTION_DECIDED,
    PROMOTION_DEFERRED,
    Outcome,
    Promoter,
)

__all__ = [
    "DEFERRED_REASON_PREFIX",
    "PROMOTION_DECIDED",
    "PROMOTION_DEFERRED",
    "TAG_METRIC_NAME",
    "TAG_METRIC_VALUE",
    "TAG_VALIDATION_DATA",
    "Outcome",
    "Promoter",
    "Verdict",
    "artifact_holds_best_epoch",
    "candidate_value",
    "compare",
    "lower_is_better",
    "provenance_veto",
    "rollback_veto",
    "served_model_tags",
    "serving_name",
    "status_veto",
]
