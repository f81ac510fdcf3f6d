"""The Object2Vec embedding endpoint: model, endpoint config, endpoint and autoscaling."""

from __future__ import annotations

from aws_cdk import Aws, Fn
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct
from o2v_core import s3_layout

# The promoter's blue/green policy, so CloudFormation's endpoint updates and every promotion
# deploy the same way (one definition, in the promoter's logic).
from o2v_core.endpoint_deployment import DATA_CAPTURE_JSON_CONTENT_TYPES, DATA_CAPTURE_MODES, deployment_config
from o2v_core.naming import INFERENCE_ENVIRONMENT
from o2v_core.settings import ServingSettings

from stacks.data_stack import DataRefs

VARIANT_NAME = "AllTraffic"
# Application Auto Scaling acts on SageMaker variants through this service-linked role; without
# it, CDK would create an empty role of its own.
AUTOSCALING_SERVICE_LINKED_ROLE = (
    "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


class EmbeddingEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        serving: ServingSettings,
        image_uri: str,
        model_data_url: str,
        model_role: iam.IRole,
        data: DataRefs,
        rollback_alarm_names: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=model_role.role_arn,
            # Object2Vec inference needs no outbound network access (the promoter's models match).
            enable_network_isolation=True,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                model_data_url=model_data_url,
                environment=INFERENCE_ENVIRONMENT,
            ),
        )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=serving.min_capacity,
                    instance_type=serving.instance_type,
                    initial_variant_weight=1.0,
                )
            ],
            # SageMaker rejects a storage-volume key for instances with local NVMe storage, which
            # the hardware encrypts; data capture is encrypted with the key either way.
            kms_key_id=None if serving.instance_has_local_storage else data.key_arn,
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=serving.data_capture_sampling_percentage > 0,
                initial_sampling_percentage=serving.data_capture_sampling_percentage,
                destination_s3_uri=s3_layout.s3_uri(data.artifact_bucket_name, s3_layout.DATA_CAPTURE_PREFIX),
                kms_key_id=data.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode) for mode in DATA_CAPTURE_MODES
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    json_content_types=list(DATA_CAPTURE_JSON_CONTENT_TYPES)
                ),
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            # Without it, a stack update that swaps the config resets the autoscaled instance
            # count to the config's initial one (reference section 10f; aws-cdk#23151).
            retain_all_variant_properties=True,
        )
        # Blue/green with auto-rollback on the endpoint alarms, for CloudFormation's updates too.
        self.endpoint.add_property_override("DeploymentConfig", deployment_config(tuple(rollback_alarm_names)))
        self.endpoint_name = self.endpoint.attr_endpoint_name

        self.scalable_target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=Fn.join("", ["endpoint/", self.endpoint.attr_endpoint_name, f"/variant/{VARIANT_NAME}"]),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=serving.min_capacity,
            max_capacity=serving.max_capacity,
            role=iam.Role.from_role_arn(
                self,
                "AutoScalingRole",
                f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{AUTOSCALING_SERVICE_LINKED_ROLE}",
                mutable=False,
            ),
        )
        self.scalable_target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=serving.target_invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
        )
