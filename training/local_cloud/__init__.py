"""Local mode: local stand-ins for the AWS services, reached through boto3's endpoint settings.

* :mod:`~training.local_cloud.services`: starts and stops the moto server and the local
  SageMaker API, and builds the ``AWS_ENDPOINT_URL*`` environment that points boto3 at them.
* :mod:`~training.local_cloud.sagemaker_api`, :mod:`~training.local_cloud.jobs`,
  :mod:`~training.local_cloud.endpoints`: the local SageMaker API (training jobs run the local
  trainer, endpoints run the local inference server); :mod:`~training.local_cloud.local_aws`
  holds what they share (errors, clients, paging, tags, the Logs forwarder).
* :mod:`~training.local_cloud.pump`, :mod:`~training.local_cloud.lambda_worker`: the event pump
  (the project's rules on the local EventBridge, delivered to the project's Lambda handlers).
* :mod:`~training.local_cloud.demo` (a package, one module per step), :mod:`~training.local_cloud.report`:
  ``o2v demo``.

See ``docs/local-mode.md``.
"""
