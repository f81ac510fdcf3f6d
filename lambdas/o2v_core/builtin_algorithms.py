"""SageMaker built-in algorithm images and the rules SageMaker applies to them.

Sources: shared/reference/object2vec.md section 10a (awslabs/mlspace, AWS-authored):

* DescribeTrainingJob of a built-in algorithm job returns ``AlgorithmSpecification.MetricDefinitions``
  filled in by SageMaker (the algorithm's default regexes).
* CreateTrainingJob with a built-in image and any caller-supplied ``MetricDefinitions`` is refused
  with :data:`METRIC_OVERRIDE_MESSAGE` (``ValidationException``).

Built-in images are the ones ``sagemaker.core.image_uris`` knows:
``<account>.dkr.ecr.<region>.<domain>/<algorithm>:<tag>``. Only the algorithms this project runs
are listed; another built-in algorithm's repository would be added here with its source.
"""

from __future__ import annotations

import re

# ECR repositories of SageMaker built-in algorithms this project uses (sagemaker.core.image_uris'
# "object2vec" config; stacks/constructs/object2vec_image.py builds the per-region table from it).
BUILTIN_REPOSITORIES = frozenset({"object2vec"})
_ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<repository>[^:@]+)[:@]")

METRIC_OVERRIDE_MESSAGE = (
    "You can't override the metric definitions for Amazon SageMaker algorithms. "
    "Please retry the request without specifying metric definitions."
)


def builtin_algorithm(image_uri: str) -> str | None:
    """The built-in algorithm an image URI names, or None for any other image."""
    match = _ECR_IMAGE.match(image_uri)
    if match is None or match.group("repository") not in BUILTIN_REPOSITORIES:
        return None
    return match.group("repository")


def builtin_metric_definitions(algorithm: str) -> list[dict[str, str]]:
    """The metric definitions SageMaker itself adds to a built-in job (section 10a: Object2Vec's
    regexes from awslabs/mlspace ``object2Vec.json``; ``test:*`` lines carry no ``epoch=``)."""
    if algorithm != "object2vec":
        raise KeyError(f"no metric definitions recorded for built-in algorithm {algorithm!r}")
    definitions = []
    for channel in ("train", "validation", "test"):
        epoch = "" if channel == "test" else r"epoch=\S+, "
        for metric, kind in (("cross_entropy", "loss"), ("mean_squared_error", "loss"), ("accuracy", "score")):
            definitions.append({
                "Name": f"{channel}:{metric}",
                "Regex": rf"#quality_metric: host=\S+, {epoch}{channel} {metric} <{kind}>=(\S+)",
            })
    return definitions
