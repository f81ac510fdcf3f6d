"""The Object2Vec algorithm image for the stack's region, from the SageMaker SDK's own table.

A stack with a concrete region gets the URI straight from ``image_uris.retrieve``; a
region-agnostic stack gets a CfnMapping over every commercial region in the SDK's table and
looks its region up at deploy time. Both read the SDK's local JSON: no network at synth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from aws_cdk import Aws, CfnMapping, Fn, Stack, Token
from constructs import Construct
from sagemaker.core import image_uris

ALGORITHM = "object2vec"
# Partitions other than the commercial one ("aws") use other ARN and DNS suffixes.
NON_COMMERCIAL_PREFIXES = ("cn-", "us-gov-", "us-iso")


@dataclass(frozen=True)
class RegistryImage:
    uri: str
    registry_account: str
    repository: str


@cache
def sdk_images() -> dict[str, RegistryImage]:
    """Every commercial region's Object2Vec image, as the SageMaker SDK resolves it."""
    config = image_uris.config_for_framework(ALGORITHM)
    regions: set[str] = set()
    for version in config["versions"].values():
        regions.update(version["registries"])
    images = {}
    for region in sorted(regions):
        if region.startswith(NON_COMMERCIAL_PREFIXES):
            continue
        images[region] = _parse(image_uris.retrieve(ALGORITHM, region))
    return images


def _parse(uri: str) -> RegistryImage:
    host, _, path = uri.partition("/")
    return RegistryImage(uri=uri, registry_account=host.split(".", 1)[0], repository=path.split(":", 1)[0])


class UnsupportedRegionError(ValueError):
    """The stack's region has no Object2Vec image in the SDK's table."""


class Object2VecImage(Construct):
    """``image_uri`` and ``repository_arn`` of the algorithm image in this stack's region."""

    MAPPING_ID = "Object2VecImageByRegion"

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        images = sdk_images()
        if not Token.is_unresolved(stack.region):
            if stack.region not in images:
                raise UnsupportedRegionError(
                    f"region {stack.region!r} has no Object2Vec image in the SageMaker SDK; "
                    f"allowed: {', '.join(images)}"
                )
            image = images[stack.region]
            self.image_uri = image.uri
            registry_account, repository = image.registry_account, image.repository
        else:
            mapping = CfnMapping(
                stack,
                self.MAPPING_ID,
                mapping={
                    region: {"ImageUri": image.uri, "RegistryAccount": image.registry_account}
                    for region, image in images.items()
                },
            )
            self.image_uri = mapping.find_in_map(Aws.REGION, "ImageUri")
            registry_account = mapping.find_in_map(Aws.REGION, "RegistryAccount")
            repository = next(iter(images.values())).repository
        self.repository_arn = Fn.join(
            "", ["arn:", Aws.PARTITION, ":ecr:", Aws.REGION, ":", registry_account, ":repository/", repository]
        )
