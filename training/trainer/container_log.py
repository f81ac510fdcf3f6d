"""The lines the Object2Vec container prints, in its words (reference section 10b).

Every line carries the container's prefix ``[MM/DD/YYYY HH:MM:SS INFO <thread>] `` (UTC time,
the printing thread's id). The ``#quality_metric`` text after the prefix is exactly
:func:`o2v_core.metric_lines.format_line`, so SageMaker's metric regexes and our parser
(``o2v_core.metric_lines``, which searches each line) read it as they read a real job's log.

Lines printed here, as the real log shows them:

- ``Epoch N Training metrics:   perplexity: P cross_entropy: C accuracy: A`` and the ``train``
  ``#quality_metric`` lines, then ``Epoch N Validation metrics: ...`` and the ``validation`` ones;
- ``#progress_metric: host=algo-1, completed X % of epochs``;
- from the second epoch on the early-stopping trace (``patience losses``, ``min patience losses``,
  ``current loss``, ``absolute loss difference``, ``Bad epoch: ... Bad count:K``);
- ``Bad epochs exceeded patience. Stopping training early!``, ``Early stopping criterion met!
  Stopping training at epoch: N``, ``Best model based on epoch M. Best loss: X``,
  ``Serializing model to ...``, ``Test Metrics:...`` and the ``test`` lines (no ``epoch=``).

For ``output_layer=mean_squared_error`` the real log was not seen (the sourced run is softmax);
the same shapes are used with ``mean_squared_error: X`` in place of the softmax metrics. The
progress and timing lines of the real log (``Epoch: N, batches: ...``, ``#throughput_metric``,
``#metrics {...}``) are not imitated; the trainer's own progress goes to its ``log`` stream.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TextIO

from o2v_core.early_stopping import EarlyStoppingStep
from o2v_core.metric_lines import format_line

HOST = "algo-1"


def prefix(now: float | None = None, thread: int | None = None) -> str:
    """``[12/01/2026 22:40:07 INFO 140286541891392] ``: the container's log-line prefix (UTC)."""
    stamp = time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(time.time() if now is None else now))
    return f"[{stamp} INFO {threading.get_ident() if thread is None else thread}] "


def metrics_text(values: Mapping[str, float]) -> str:
    """``perplexity: P cross_entropy: C accuracy: A`` (perplexity only for cross-entropy)."""
    parts: list[str] = []
    if "cross_entropy" in values:
        parts.append(f"perplexity: {math.exp(min(values['cross_entropy'], 700.0))}")
    parts += [f"{name}: {value}" for name, value in values.items()]
    return " ".join(parts)


class ContainerLog:
    """Writes container-style lines to every stream, one flush per line."""

    def __init__(self, streams: Iterable[TextIO]) -> None:
        self.streams = list(streams)

    def line(self, text: str) -> None:
        full = prefix() + text
        for stream in self.streams:
            print(full, file=stream, flush=True)

    def metrics(self, channel: str, values: Mapping[str, float], epoch: int | None = None) -> None:
        for metric, value in values.items():
            self.line(format_line(channel, metric, value, epoch=epoch, host=HOST))

    def epoch(self, epoch: int, epochs: int, train: Mapping[str, float],
              validation: Mapping[str, float] | None) -> None:
        self.line(f"Epoch {epoch} Training metrics:   {metrics_text(train)}")
        self.metrics("train", train, epoch)
        if validation is not None:
            self.line(f"Epoch {epoch} Validation metrics: {metrics_text(validation)}")
            self.metrics("validation", validation, epoch)
        self.line(f"#progress_metric: host={HOST}, completed {100 * (epoch + 1) // epochs} % of epochs")

    def early_stopping(self, step: EarlyStoppingStep) -> None:
        if not step.window:
            return
        self.line(f"patience losses: {list(step.window)}")
        self.line(f"min patience losses: {step.window_min}")
        self.line(f"current loss: {step.loss}")
        self.line(f"absolute loss difference: {step.difference}")
        if step.bad:
            self.line(f"Bad epoch: loss has not improved (enough). Bad count:{step.bad_count}")

    def stopped_early(self, epoch: int) -> None:
        self.line("Bad epochs exceeded patience. Stopping training early!")
        self.line(f"Early stopping criterion met! Stopping training at epoch: {epoch}")

    def best_model(self, epoch: int, loss: float, model_path: str) -> None:
        # The real line shows the loss rounded ("Best loss: 0.181" for a validation loss of 0.1813).
        self.line(f"Best model based on epoch {epoch}. Best loss: {loss:.3f}")
        self.line(f"Serializing model to {model_path}")

    def test(self, values: Mapping[str, float]) -> None:
        self.line(f"Test Metrics:{metrics_text(values)}")
        self.metrics("test", values)
