"""Definitions shared by the CDK stacks, the Lambda handlers, the trainer and local mode.

Each concern is defined once, here: the hyperparameter schema, event names and patterns, the
job-naming and tag scheme, the metric log-line format, the divergence detector and the retrain
policy. Standard library only: this package ships inside the Lambda asset.
"""
