"""The control plane's business metrics: what the loop did, not how often a function ran.

Invocation counts also count the runs that did nothing (a monitor tick with no job, a duplicate
delivery). These count outcomes: each event the control plane put on its bus, each attempt
launched, each repair the reconciler made. Handlers publish them as CloudWatch embedded metric
format through Powertools Metrics (``control_plane.observability``); the dashboard of the
training stack graphs them. Defined once here for both.
"""

from __future__ import annotations

from o2v_core.events import (
    MODEL_PROMOTED,
    MODEL_ROLLED_BACK,
    PROMOTION_SKIPPED,
    RETRAINING_EXHAUSTED,
    TRAINING_SUCCEEDED,
    VALIDATION_LOSS_DIVERGED,
)

NAMESPACE = "O2V/ControlPlane"
DIMENSION = "Deployment"

DIVERGENCES_DETECTED = "DivergencesDetected"
TRAININGS_SUCCEEDED = "TrainingsSucceeded"
RETRAININGS_EXHAUSTED = "RetrainingsExhausted"
PROMOTIONS = "Promotions"
PROMOTIONS_SKIPPED = "PromotionsSkipped"
ROLLBACKS = "Rollbacks"
ATTEMPTS_LAUNCHED = "AttemptsLaunched"
RECONCILER_REPAIRS = "ReconcilerRepairs"

# One count per event put on the project bus (control_plane.aws.event_bus).
METRIC_OF_EVENT = {
    VALIDATION_LOSS_DIVERGED: DIVERGENCES_DETECTED,
    TRAINING_SUCCEEDED: TRAININGS_SUCCEEDED,
    RETRAINING_EXHAUSTED: RETRAININGS_EXHAUSTED,
    MODEL_PROMOTED: PROMOTIONS,
    PROMOTION_SKIPPED: PROMOTIONS_SKIPPED,
    MODEL_ROLLED_BACK: ROLLBACKS,
}

# The dashboard's business widgets: (title, metric names).
DASHBOARD_GROUPS = (
    ("Retraining: divergences, attempts launched, lineages exhausted",
     (DIVERGENCES_DETECTED, ATTEMPTS_LAUNCHED, RETRAININGS_EXHAUSTED)),
    ("Promotion: successes, promotions, skips, rollbacks",
     (TRAININGS_SUCCEEDED, PROMOTIONS, PROMOTIONS_SKIPPED, ROLLBACKS)),
    ("Reconciler repairs", (RECONCILER_REPAIRS,)),
)
