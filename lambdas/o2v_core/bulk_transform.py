"""Bulk embedding with SageMaker Batch Transform: job names, S3 layout and the job's defaults, once.

Used by the CLI (``training/bulk/transform.py``), the stacks (the grants on the prefixes, the rule
on the job-name prefix) and the local SageMaker API's tests.

How the defaults are sized for throughput per dollar (docs/bulk-embedding.md says the same):

* **Instance type** ``ml.c5.xlarge``: Object2Vec's embedding is a small network whose inference
  is CPU-bound and needs little memory, so the cheapest vCPU-hour wins; the c5 family is SageMaker's
  compute-optimized CPU family, and it is in CreateTransformJob's ``TransformInstanceType`` enum
  (botocore's service model). A GPU (``ml.p3.2xlarge``, reference section 5 for deep models) pays
  off only when the measured CPU throughput is too low; the cost estimate in docs/benchmarks.md
  takes the instance's hourly price as an input, it is not in our sources.
* **One instance** by default: a job's fixed start-up (minutes) dominates a small corpus. For a
  large one, ``--instance-count N`` spreads the input *objects* over N instances ("Batch
  Transform partitions the Amazon S3 objects in the input by key and maps Amazon S3 objects to
  instances ... If you have one input file but initialize multiple compute instances, only one
  instance processes the input file", developer guide, batch-transform.html): the corpus is
  therefore written as objects of :data:`RECORDS_PER_OBJECT` request lines, so N instances get
  work as soon as the corpus has N objects (1M sentences: 10 objects).
* **Mini-batches**: ``BatchStrategy`` ``MultiRecord`` with ``SplitType`` ``Line`` packs "as many
  records in a mini-batch as can fit within the MaxPayloadInMB limit"; ``MaxPayloadInMB`` 1 and
  ``MaxConcurrentTransforms`` 2 are the values of AWS's own Object2Vec batch-transform example
  (reference section 4d). 1 MB of ``{"in0": [ids]}`` lines is thousands of sentences per request,
  so per-request overhead is negligible, and two requests in flight keep the instance busy while
  one is being serialized.
* ``INFERENCE_PREFERRED_MODE=embedding``, ``application/jsonlines`` in and out, ``AssembleWith``
  ``Line``: the documented Object2Vec embedding transform (reference 4b, 11g).
"""

from __future__ import annotations

import time

from o2v_core.events import TRANSFORM_JOB_INFIX
from o2v_core.naming import INFERENCE_ENVIRONMENT, job_prefix

JSON_LINES = "application/jsonlines"  # reference 4b: one {"in0": [ids]} per line in, {"embeddings": [...]} out
ENVIRONMENT = dict(INFERENCE_ENVIRONMENT)  # INFERENCE_PREFERRED_MODE=embedding (reference 4d, 11g)
DEFAULT_INSTANCE_TYPE = "ml.c5.xlarge"
DEFAULT_INSTANCE_COUNT = 1
MAX_PAYLOAD_MB = 1  # reference 4d (AWS's Object2Vec transformer example)
MAX_CONCURRENT_TRANSFORMS = 2  # reference 4d
BATCH_STRATEGY = "MultiRecord"
RECORDS_PER_OBJECT = 100_000  # request lines per input object: the unit SageMaker deals to instances
OUTPUT_SUFFIX = ".out"  # "stores the transformed data with an .out suffix" (TransformOutput's S3OutputPath)

# Dataset bucket: {BULK_INPUT_PREFIX}{job}/part-NNNNN.jsonl (the request lines the CLI writes, the
# job reads) and {BULK_OUTPUT_PREFIX}{job}/part-NNNNN.jsonl.out (what the job writes, the CLI reads).
BULK_INPUT_PREFIX = "bulk-embeddings/input/"
BULK_OUTPUT_PREFIX = "bulk-embeddings/output/"
# A transform job of deployment D is named {D}--embed-<UTC time>: the deployment's job prefix, so the
# rule that reports the end of a job and the IAM grants match this deployment's jobs only.
# The serving stack's managed policy for whoever runs o2v embed --corpus (its construct id; the IAM
# check attributes the CLI's recorded calls to it).
CALLER_POLICY = "BulkEmbeddingCaller"
JOB_INFIX = TRANSFORM_JOB_INFIX  # defined with the rule's pattern (o2v_core.events)


def transform_job_prefix(deployment: str) -> str:
    return f"{job_prefix(deployment)}{JOB_INFIX}"


def transform_job_name(deployment: str, now: float | None = None) -> str:
    """``{deployment}--embed-YYYYMMDD-HHMMSS``: at most 24 + 2 + 6 + 15 = 47 characters, within
    TransformJobName's 63 and its pattern (botocore's service model)."""
    return transform_job_prefix(deployment) + time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))


def part_name(index: int) -> str:
    return f"part-{index:05d}.jsonl"
