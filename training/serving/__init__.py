"""The local inference server (SageMaker's ``/ping`` + ``/invocations`` contract) and its clients."""
