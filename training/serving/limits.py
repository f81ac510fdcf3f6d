"""Request limits of the inference server and of the local InvokeEndpoint (no torch: the CLI imports it).

The service bounds a request by its body, not by a count of instances: InvokeEndpoint's ``Body``
is a ``BodyBlob`` with ``"max": 6291456`` (botocore ``data/sagemaker-runtime/2017-05-13/service-2.json``;
the developer guide's "payload size of 6 MB" for real-time endpoints), and AWS's movie-recommendation
notebook sends 9,430 instances in one request (``shared/reference/object2vec.md`` 11g).
"""

from __future__ import annotations

INVOKE_ENDPOINT_MAX_BODY_BYTES = 6_291_456  # 6 MiB, botocore sagemaker-runtime BodyBlob "max"

# Our own memory bound on one request: the numbers its response holds (instances x prediction
# width). 16 Mi numbers are about 0.5 GB as Python floats and 350 MB of JSON. Not an AWS limit.
DEFAULT_MAX_OUTPUT_VALUES = 16 * 1024 * 1024
