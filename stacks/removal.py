"""The removal policy of every resource a deployment keeps (``removal_policy: retain`` in cdk.json).

``RETAIN_ON_UPDATE_OR_DELETE`` renders ``DeletionPolicy: RetainExceptOnCreate`` (and
``UpdateReplacePolicy: Retain``): the resource is kept when the stack is deleted or the resource
replaced, but deleted when the stack operation that *created* it rolls back. With plain ``Retain``
a resource with a fixed physical name (the functions' log groups, the curve table) survives the
rollback of a failed first deploy, and every retry then fails with "already exists" (reference
section 11c; AWS What's New 2023-07-31, "AWS CloudFormation ... RetainExceptOnCreate"). A resource
created by a failed stack operation holds no data worth keeping, so every retained resource uses it.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy


def removal_policy(retain_data: bool) -> RemovalPolicy:
    """Kept on stack deletion and replacement (except when its own creation rolls back), or destroyed."""
    return RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain_data else RemovalPolicy.DESTROY
