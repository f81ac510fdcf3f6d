"""The points only a real account settles (docs/verification.md, "What only a real account
confirms"; reference section 11), each a named check that records what AWS did, so that a user can
report it and we can turn "unconfirmed" into a sourced fact. In local mode each says "could not
tell: local mode" and why: local mode's moto does not encrypt, evaluate alarms or run Lambda's
runtime, and its local SageMaker API does not bake a blue/green update.

The rollback check (issue 25, item 5 of "What to build") is among them: a deliberately failing
candidate goes through the promoter, the run invokes it during the bake, and the endpoint must go
back to the previous model with the record and ``ModelRolledBack`` saying so
(:mod:`training.verify.rollback`, which explains the candidate and cites its sources). In local
mode it says could not tell: moto evaluates no alarm and the local SageMaker API does not bake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core import resource_names as rn
from o2v_core.endpoint_deployment import VARIANT_NAME, scalable_resource_id

from training.preflight.report import Check, Status
from training.verify.loop_checks import LoopChecks, aws_error
from training.verify.rollback import RollbackProbe

Results = Mapping[str, Check]  # the loop's checks by name
AUTOSCALING_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"  # reference 11d


@dataclass(frozen=True)
class AccountPoint:
    """One "only a real account confirms" point: its check's name, the docs' point, and the check."""

    name: str
    point: str  # as docs/verification.md names it
    local_reason: str
    check: Callable[[LoopChecks, Results], Check]

    def run(self, loop: LoopChecks, results: Results) -> Check:
        if loop.target.local:
            return Check(self.name, Status.UNKNOWN, f"local mode: {self.local_reason}",
                         "run `o2v verify --env dev` in an account to settle it")
        try:
            return self.check(loop, results)
        except (ClientError, BotoCoreError) as error:
            return Check(self.name, Status.UNKNOWN, f"the read failed: {aws_error(error)}",
                         "grant the read it names, or look by hand")


def _passed(results: Results, *names: str) -> bool:
    return all(name in results and results[name].status is Status.PASSED for name in names)


def encrypted_delivery(loop: LoopChecks, results: Results) -> Check:
    name = "EventBridge and SNS deliver into the encrypted topic and queues"
    if _passed(results, "announcements reach the operators' topic"):
        witness = [url for logical, url in loop.target.queues.items() if "Witness" in logical]
        return Check(name, Status.PASSED, "EventBridge put the announcements into the message-key topic and SNS "
                     f"delivered them (witness queue(s): {len(witness)}); reference 11b's open point: delivery works")
    return Check(name, Status.FAILED, "no announcement reached the subscriber: see that check's line",
                 "report the NotifyOperators rule's FailedInvocations metric and the message key's policy")


def curve_store_key(loop: LoopChecks, results: Results) -> Check:
    name = "the curve store with the data key"
    table = loop.client("dynamodb").describe_table(TableName=loop.target.curve_table)["Table"]
    sse = table.get("SSEDescription", {})
    wrote = _passed(results, "metric lines reach the judge")
    detail = f"SSE {sse.get('Status', 'none')} {sse.get('SSEType', '')} {sse.get('KMSMasterKeyArn', '')}".strip()
    status = Status.PASSED if wrote else Status.FAILED
    return Check(name, status, f"{detail}; the judge {'wrote' if wrote else 'did not write'} its lines with the "
                 "UseDataKey grant (kms:Decrypt, kms:GenerateDataKey)",
                 None if wrote else "report the judge's AccessDenied from its log group")


def stopped_job_artifact(loop: LoopChecks, results: Results) -> Check:
    name = "Object2Vec saves a model on StopTrainingJob"
    stopped = [job for job in loop.seen.attempts() if job["TrainingJobStatus"] == "Stopped"]
    if not stopped:
        return Check(name, Status.UNKNOWN, "no attempt was stopped this run (the divergence was left to finish)",
                     "rerun; the answer is recorded when the judge stops an attempt")
    job = stopped[0]
    uri = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if not uri:
        return Check(name, Status.PASSED, f"recorded: {job['TrainingJobName']} Stopped with no ModelArtifacts "
                     "(reference 10d: Object2Vec saves nothing on stop)")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        size = loop.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError as error:
        return Check(name, Status.PASSED, f"recorded: {job['TrainingJobName']} names {uri}, which is absent "
                     f"({aws_error(error)})")
    return Check(name, Status.PASSED, f"recorded: {job['TrainingJobName']} Stopped with {uri} ({size} bytes)")


def rollback(loop: LoopChecks, results: Results) -> Check:
    name = "blue/green rollback on a tripped alarm"
    alarms = loop.client("cloudwatch").describe_alarms(AlarmNames=list(loop.target.rollback_alarms))["MetricAlarms"]
    missing = sorted(set(loop.target.rollback_alarms) - {str(alarm["AlarmName"]) for alarm in alarms})
    if missing:
        return Check(name, Status.FAILED, f"rollback alarm(s) {', '.join(missing)} do not exist",
                     "`cdk deploy --all -c env=<the environment>` from this checkout")
    if not _passed(results, "promotion of the best attempt", "endpoint serves the promoted model"):
        return Check(name, Status.UNKNOWN, "no model of this run was served, so no candidate can be rolled back "
                     "from it", "see the promotion and endpoint checks above")
    return RollbackProbe(loop).run()


def autoscaling(loop: LoopChecks, results: Results) -> Check:
    name = "endpoint autoscaling and its service-linked role"
    resource = scalable_resource_id(loop.target.endpoint_name)
    targets = loop.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"]
    try:
        loop.client("iam").get_role(RoleName=AUTOSCALING_ROLE)
        role = f"role {AUTOSCALING_ROLE} exists"
    except ClientError as error:
        role = f"role {AUTOSCALING_ROLE}: {aws_error(error)}"
    if not targets:
        return Check(name, Status.UNKNOWN, f"no scalable target {resource} (variant {VARIANT_NAME}) yet; {role}",
                     "the reconciler registers it once the endpoint is InService: rerun with --keep and look later")
    return Check(name, Status.PASSED, f"recorded: {resource} registered, min {targets[0]['MinCapacity']} max "
                 f"{targets[0]['MaxCapacity']}, role {targets[0].get('RoleARN', '?')}; {role}")


def lambda_runtime(loop: LoopChecks, results: Results) -> Check:
    name = "the bundled Powertools on Lambda's runtime"
    functions = loop.target.functions
    if not functions:
        return Check(name, Status.UNKNOWN, "the stacks name no function")
    config = loop.client("lambda").get_function_configuration(FunctionName=next(iter(functions.values())))
    ran = _passed(results, "metric lines reach the judge", "promotion of the best attempt")
    return Check(name, Status.PASSED if ran else Status.FAILED,
                 f"{config.get('Runtime')} on {', '.join(config.get('Architectures', []))}: the functions "
                 f"{'imported and ran' if ran else 'did not all run'} (the judge's and the promoter's work above)",
                 None if ran else "report the first function log group's ImportModuleError, if any")


def custom_resources(loop: LoopChecks, results: Results) -> Check:
    name = "the inline custom resources answered CloudFormation"
    cloudformation = loop.client("cloudformation")
    deployment = loop.target.deployment
    stacks = (rn.data_stack_name(deployment), rn.training_stack_name(deployment), rn.serving_stack_name(deployment))
    statuses = {stack: cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] for stack in stacks}
    settled = all(status.endswith("_COMPLETE") and "ROLLBACK" not in status for status in statuses.values())
    text = ", ".join(f"{stack} {status}" for stack, status in statuses.items())
    return Check(name, Status.PASSED if settled else Status.FAILED, text,
                 None if settled else "look at the stack events for the custom resource that timed out")


def permissions(loop: LoopChecks, results: Results) -> Check:
    name = "policy conditions and deploy-time values"
    loop_names = ("metric lines reach the judge", "divergence detected, attempt 2 with more dropout",
                  "promotion of the best attempt", "endpoint serves the promoted model")
    if _passed(results, *loop_names):
        return Check(name, Status.PASSED, "every call of the loop was allowed with the deployed conditions and "
                     "resolved ARNs (the loop's checks above passed)")
    return Check(name, Status.UNKNOWN, "a loop check did not pass: an AccessDenied in a function's log group would "
                 "show a condition or ARN our IAM check reads differently", "report the denied call")


POINTS = (
    AccountPoint("EventBridge and SNS deliver into the encrypted topic and queues",
                 "Which source conditions KMS sees for EventBridge's and SNS's deliveries to encrypted SQS queues",
                 "moto encrypts nothing and checks no key policy", encrypted_delivery),
    AccountPoint("the curve store with the data key", "The curve store's encryption with the data key",
                 "moto's table is not encrypted", curve_store_key),
    AccountPoint("Object2Vec saves a model on StopTrainingJob",
                 "Whether Object2Vec saves a usable model on StopTrainingJob",
                 "the local trainer is not Object2Vec (it saves its best epoch by design)", stopped_job_artifact),
    AccountPoint("blue/green rollback on a tripped alarm",
                 "Which role SageMaker's blue/green auto-rollback evaluates its alarms as; what DescribeEndpoint "
                 "names after a blue/green auto-rollback",
                 "CloudWatch alarms are not evaluated (moto) and the local SageMaker API does not bake an update "
                 "or evaluate its rollback alarms (tests script the rollback)", rollback),
    AccountPoint("endpoint autoscaling and its service-linked role", "Endpoint autoscaling as the reconciler "
                 "registers it", "moto does not check the endpoint, the caller or the service-linked role",
                 autoscaling),
    AccountPoint("the bundled Powertools on Lambda's runtime",
                 "The bundled Powertools in Lambda's python3.13 on arm64",
                 "the handlers run on this machine's Python", lambda_runtime),
    AccountPoint("the inline custom resources answered CloudFormation",
                 "The inline custom resources' answer reaching CloudFormation",
                 "nothing is deployed with CloudFormation", custom_resources),
    AccountPoint("policy conditions and deploy-time values", "Conditions in policies; values known only at "
                 "deploy time", "local mode evaluates no IAM policy", permissions),
)
