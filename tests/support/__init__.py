"""The test harness: the SageMaker fake, fault injection, AWS call recording, moto extensions,
a Lambda context and the cloud helpers."""
