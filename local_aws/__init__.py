"""Local stand-ins for the AWS services, reached through boto3's endpoint settings.

One subpackage per service, as moto and SAM CLI lay them out. ``o2v demo`` (:mod:`training.demo`),
the tests and the bench use them; they import only ``o2v_core`` of ours (the Lambda handlers are
loaded by their ``FunctionSpec``'s dotted path, as Lambda does).

* :mod:`~local_aws.services`: starts and stops the moto server and the local
  SageMaker API, and builds the ``AWS_ENDPOINT_URL*`` environment that points boto3 at them.
* :mod:`~local_aws.sagemaker.api` (with :mod:`~local_aws.sagemaker.wire`, its HTTP side),
  :mod:`~local_aws.sagemaker.training_jobs` (with :mod:`~local_aws.sagemaker.training_job_record`,
  a job as SageMaker describes it), :mod:`~local_aws.sagemaker.endpoints` (with
  :mod:`~local_aws.sagemaker.inference_servers`, the server processes): the local SageMaker API
  (training jobs run the local trainer, endpoints run the local inference server);
  :mod:`~local_aws.clients` holds what they share (errors, clients, paging, tags, the Logs forwarder).
* :mod:`~local_aws.deployment`: what the three stacks would create, the one local deployment the
  demo, the tests and the bench make their accounts with (the rules through
  :mod:`~local_aws.events.rules`).
* :mod:`~local_aws.events.pump`, :mod:`~local_aws.awslambda.worker`: the event pump
  (the project's rules on the local EventBridge, delivered to the project's Lambda handlers).
* :mod:`~local_aws.logs.subscription`: CloudWatch Logs' subscription delivery;
  :mod:`~local_aws.curve_table`: the judge's curve store table, as the stack has it.

See ``docs/local-mode.md``.
"""
