"""The stacks publish every output the launcher reads, under the names it reads them by.

Both sides take the stack names and output keys from ``o2v_core.resource_names``; this checks
the synthesized templates against the launcher's own lists (``training.launcher.stack``).
"""

from __future__ import annotations

from o2v_core.resource_names import data_stack_name, training_stack_name

from tests.stacks.conftest import Synthesized
from training.launcher.stack import DATA_OPTIONAL, DATA_REQUIRED, TRAINING_OPTIONAL, TRAINING_REQUIRED


def test_every_output_the_launcher_reads_is_in_the_synthesized_stack(synthesized: Synthesized) -> None:
    deployment = synthesized.deployment
    assert deployment.data.stack_name == data_stack_name(deployment.settings.deployment)
    assert deployment.training.stack_name == training_stack_name(deployment.settings.deployment)
    for role, keys in (("data", DATA_REQUIRED + DATA_OPTIONAL), ("training", TRAINING_REQUIRED + TRAINING_OPTIONAL)):
        outputs = synthesized.template_json(role)["Outputs"]
        missing = [key for key in keys if key not in outputs]
        assert missing == [], f"{synthesized.stack_name(role)} lacks launcher output(s) {missing}"
