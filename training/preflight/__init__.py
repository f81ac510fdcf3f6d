"""``o2v preflight``: read-only checks of an AWS account and region before ``cdk deploy``.

Each check reads (never writes) what a first deploy meets in a real account (reference 11f):
the credentials and region, the CDK bootstrap (:mod:`account`), the SageMaker instance quotas
(:mod:`quotas`), the subscription-filter slots of SageMaker's training log group
(:mod:`log_slots`), and the notification setting. :func:`runner.run_preflight` runs them all and
returns a :class:`report.Report`; ``training/commands/preflight.py`` prints it.
"""
