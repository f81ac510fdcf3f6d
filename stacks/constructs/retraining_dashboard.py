"""A dashboard of the retraining loop: validation loss per attempt, what the loop did (business
metrics), epochs saved by stopping diverged jobs, failure queues."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from o2v_core import business_metrics
from o2v_core.early_stopping import epochs_saved_query
from o2v_core.resource_names import TRAINING_JOB_METRICS_NAMESPACE


def validation_loss_search(deployment: str, metric_name: str) -> str:
    """Every job of the deployment, one line per attempt (a job is named {deployment}-{lineage}-a{n}).

    The metric name is matched exactly (quoted), the job name partially (unquoted: its tokens).
    """
    return (
        f"SEARCH('{{{TRAINING_JOB_METRICS_NAMESPACE},TrainingJobName}} "
        f"MetricName=\"{metric_name}\" TrainingJobName={deployment}', 'Average', 60)"
    )


class RetrainingDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: str,
        job_prefix: str,
        metric_name: str,
        judging_logs: Sequence[logs.ILogGroup],
        functions: Mapping[str, lambda_.IFunction],
        queues: Mapping[str, sqs.IQueue],
    ) -> None:
        super().__init__(scope, construct_id)
        hour = Duration.hours(1)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{deployment}-retraining")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"{metric_name} per attempt (jobs {job_prefix}<lineage>-a<n>)",
                width=24,
                height=8,
                left=[
                    cloudwatch.SearchExpression(
                        expression=validation_loss_search(deployment, metric_name),
                        label="",
                        period=Duration.minutes(1),
                    )
                ],
                left_y_axis=cloudwatch.YAxisProps(label=metric_name, show_units=False),
            )
        )
        # What the loop did (o2v_core.business_metrics, counted by the handlers), not invocations,
        # which also count the runs that did nothing.
        self.dashboard.add_widgets(*(
            cloudwatch.GraphWidget(
                title=title,
                width=8,
                left=[
                    cloudwatch.Metric(
                        namespace=business_metrics.NAMESPACE, metric_name=name,
                        dimensions_map={business_metrics.DIMENSION: deployment},
                        period=hour, statistic="Sum", label=name,
                    )
                    for name in names
                ],
            )
            for title, names in business_metrics.DASHBOARD_GROUPS
        ))
        self.dashboard.add_widgets(
            cloudwatch.LogQueryWidget(
                title="Epochs saved by stopping diverged jobs (at least; 0: left to finish with their best epoch)",
                width=8,
                log_group_names=[group.log_group_name for group in judging_logs],
                query_string=epochs_saved_query(),
                view=cloudwatch.LogQueryVisualizationType.TABLE,
            ),
            cloudwatch.GraphWidget(
                title="Messages in failure queues",
                width=8,
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=hour, statistic="Maximum", label=name)
                    for name, queue in queues.items()
                ],
            ),
            cloudwatch.GraphWidget(
                title="Function errors",
                width=8,
                left=[
                    function.metric_errors(period=hour, statistic="Sum", label=function_id)
                    for function_id, function in functions.items()
                ],
            ),
        )
