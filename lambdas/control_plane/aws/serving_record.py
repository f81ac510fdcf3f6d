"""Data access for the served-model record: one SSM String parameter that says what the endpoint
serves (written by the promoter and the reconciler; docs/promotion.md, "Who owns what")."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from control_plane.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


class ServingRecordError(ValueError):
    """The SSM parameter does not hold a valid served-model record; names the parameter and field."""


@dataclass(frozen=True)
class ServingRecord:
    """What the endpoint serves now. Stored as JSON with these exact (camelCase) keys."""

    modelDataUrl: str
    trainingJobName: str
    metricName: str
    metricValue: float
    modelName: str
    endpointConfigName: str
    vocab: str | None = None  # S3 URI of the vocab (SageMaker jobs); None: vocab.json is inside model.tar.gz
    # S3 URI of the validation channel metricValue was measured on; None: unknown (older records).
    validationData: str | None = None

    def to_json(self) -> str:
        data = {key: value for key, value in asdict(self).items() if value is not None}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, *, where: str) -> ServingRecord | None:
        """Parse a record; ``{}`` (a placeholder, since SSM values cannot be empty) means none yet."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ServingRecordError(f"{where}: not JSON ({error.msg})") from None
        if not isinstance(data, dict):
            raise ServingRecordError(f"{where}: must be a JSON object, got {type(data).__name__}")
        if not data:
            return None
        values: dict[str, Any] = {}
        for key in ("modelDataUrl", "trainingJobName", "metricName", "modelName", "endpointConfigName"):
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise ServingRecordError(f"{where}: field {key!r} must be a non-empty string, got {value!r}")
            values[key] = value
        metric = data.get("metricValue")
        if isinstance(metric, bool) or not isinstance(metric, (int, float)) or not math.isfinite(metric):
            raise ServingRecordError(f"{where}: field 'metricValue' must be a finite number, got {metric!r}")
        optional: dict[str, str | None] = {}
        for key in ("vocab", "validationData"):
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ServingRecordError(
                    f"{where}: field {key!r} must be a non-empty string when present, got {value!r}"
                )
            optional[key] = value
        return cls(metricValue=float(metric), vocab=optional["vocab"], validationData=optional["validationData"],
                   **values)


class ServingRecordStore:
    """The record in one SSM String parameter, created on first write; only the promoter and the
    reconciler write it (docs/promotion.md, "Who owns what")."""

    def __init__(self, parameter_name: str, client: SSMClient | None = None) -> None:
        self.parameter_name = parameter_name
        self._given = client

    @property
    def _ssm(self) -> SSMClient:
        return self._given or cast("SSMClient", clients.client("ssm"))

    def read(self) -> ServingRecord | None:
        try:
            answer = self._ssm.get_parameter(Name=self.parameter_name)
        except ClientError as error:
            if clients.error_code(error) == "ParameterNotFound":
                return None
            raise
        return ServingRecord.from_json(
            answer["Parameter"].get("Value", ""), where=f"SSM parameter {self.parameter_name!r}"
        )

    def clear(self) -> None:
        """No promoted model is served (an endpoint config the promoter did not create): ``{}``."""
        self._ssm.put_parameter(Name=self.parameter_name, Value="{}", Type="String", Overwrite=True)

    def write(self, record: ServingRecord) -> None:
        self._ssm.put_parameter(Name=self.parameter_name, Value=record.to_json(), Type="String", Overwrite=True)
