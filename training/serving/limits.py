"""Request limits of the inference server (no torch: the CLI imports it).

The body limit is InvokeEndpoint's (``o2v_core.aws_quotas.INVOKE_ENDPOINT_MAX_BODY_BYTES``, which
local mode's InvokeEndpoint also enforces); the service imposes no count of instances.
"""

from __future__ import annotations

# Our own memory bound on one request: the numbers its response holds (instances x prediction
# width). 16 Mi numbers are about 0.5 GB as Python floats and 350 MB of JSON. Not an AWS limit.
DEFAULT_MAX_OUTPUT_VALUES = 16 * 1024 * 1024
