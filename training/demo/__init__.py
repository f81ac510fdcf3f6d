"""``o2v demo``: the whole retraining loop on this machine, with local stand-ins for AWS.

1. Prepare STS-B (``--data DIR``, else ``../shared/data/stsbenchmark`` beside the repo when it
   exists, else the official download) into ``runs/<timestamp>/data``.
2. Start the local services (:mod:`local_aws.services`) and the event pump
   (:mod:`local_aws.events.pump`); create what the stacks would (buckets, roles, the project
   bus, the SNS topic, the rules). Nothing is deployed anywhere.
3. Launch attempt 1 with a configuration that is prone to overfit (dropout 0), through the
   launcher of ``o2v launch`` (:func:`training.launcher.launch.plan_launch` and ``submit``, the
   SageMaker Python SDK), given the outputs the stacks would have instead of reading them.
4. Watch: epochs as they reach the local CloudWatch Logs, the monitor detecting divergence and
   stopping the job, the rule firing, the launcher starting the next attempt with more dropout,
   and the promoter deploying the best attempt to the local endpoint.
5. Embed the STS-B test sentences through the endpoint (``sagemaker-runtime`` InvokeEndpoint)
   and report the Spearman correlation of the cosine similarities with the gold scores.

The handlers, the rules, the launcher and the boto3 calls are the ones the stacks deploy and
``o2v launch`` runs; only the endpoints differ (``AWS_ENDPOINT_URL*``). Settings come from
``cdk.json`` (environment ``dev`` by default) through :func:`o2v_core.settings.load_settings`.

Where each step lives: :mod:`.options` (options, sizes), :mod:`.recipe` (attempt 1's
overfit-prone recipe, also the bench's), :mod:`.data` (step 1), :mod:`local_aws.deployment` (step
2's stand-ins for the stacks) and :mod:`.stack_outputs` (what ``o2v launch`` reads from them),
:mod:`.watcher` (step 4's progress lines), :mod:`.evaluation` (step 5 and the ``o2v embed``
example), :mod:`.summary` (the report's content), :mod:`.orchestrator` (the steps in order, and
the clean-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the types for mypy; at runtime each name loads on first use (below)
    from training.demo.console import Console
    from training.demo.options import SIZES, DemoError, DemoOptions, Size
    from training.demo.orchestrator import Demo, run_demo
    from training.demo.recipe import overfit_prone_hyperparameters, overfit_prone_recipe

# Loaded on first use (PEP 562), not at import: ``o2v verify`` against an account imports the
# demo's recipe and data modules, and must not load local_aws through the orchestrator.
_EXPORTS = {
    "SIZES": "training.demo.options",
    "Console": "training.demo.console",
    "Demo": "training.demo.orchestrator",
    "DemoError": "training.demo.options",
    "DemoOptions": "training.demo.options",
    "Size": "training.demo.options",
    "overfit_prone_hyperparameters": "training.demo.recipe",
    "overfit_prone_recipe": "training.demo.recipe",
    "run_demo": "training.demo.orchestrator",
}

__all__ = [
    "SIZES",
    "Console",
    "Demo",
    "DemoError",
    "DemoOptions",
    "Size",
    "overfit_prone_hyperparameters",
    "overfit_prone_recipe",
    "run_demo",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
