"""SageMaker's request contract (training/local_cloud/sagemaker_contract.py) applied by the moto
server the control-plane and promotion tests run, as the local SageMaker API applies it.

moto checks almost nothing of what SageMaker checks (moto 5.2.5 accepts a 64-character job name,
an unknown instance type, a role ARN of "unused"). Wrapping ``SageMakerResponse.call_action``
checks every SageMaker request that reaches the moto server before moto handles it, and answers a
violation with SageMaker's ``ValidationException`` and message, as AWS does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.responses import SageMakerResponse

from training.local_cloud.sagemaker_contract import ContractViolation, check_request


def contract_checked(original: Callable[[SageMakerResponse], Any]) -> Callable[[SageMakerResponse], Any]:
    def call_action(self: SageMakerResponse) -> Any:
        try:
            params = json.loads(self.body or "{}")
            check_request(self._get_action(), params)
        except ContractViolation as violation:
            status, headers, body = self.serialized(ActionResult(ValidationError(message=violation.message)))
            headers["status"] = status
            headers, body = self._enrich_response(headers, body)
            return status, headers, body
        return original(self)

    return call_action
