"""README.md's quick start, run as written (``make demo``, no arguments), against what README.md says.

The quick start block runs once for the module in a fresh shell (``readme_demo``); every test
below reads that one run. README.md claims, and these tests check:

* the sample output (the ``text`` block after the quick start) has the shape of the real one:
  each of its lines, numbers and the elided ``...`` parts aside, appears in the output, in the
  same order (attempt lines, epoch lines, the monitor's stop, the ``ValidationLossDiverged``
  event, the relaunch, the promotion, the ``<- promoted`` marker, the ``o2v embed`` lines), and
  the run's wall time is of the sample's order of magnitude;
* attempt 1 runs with dropout 0 and diverges (``ValidationLossDiverged``); the rule relaunches it
  with more dropout; the served model is the attempt with the lowest best validation loss;
* ``runs/<timestamp>/`` holds ``report.md``, ``validation_loss.png``, ``run.json`` and the
  services' logs, and every local process stops at the end.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.readme.blocks import REPO_ROOT, Block, blocks, runnable
from tests.readme.shell import ShellRun, run_in_clean_shell

pytestmark = [pytest.mark.slow, pytest.mark.timeout(720)]

TIMESTAMP = re.compile(r"^\[\s*(\d+(?:\.\d+)?)s\]", re.MULTILINE)


def readme_quick_start() -> tuple[Block, Block]:
    """README.md's bash block with ``make demo``, and the sample output block that follows it."""
    found = blocks("README.md")
    for index, block in enumerate(found):
        if block.language == "bash" and any(command.text.startswith("make demo") for command in block.commands):
            sample = next((later for later in found[index + 1:] if later.language == "text"), None)
            assert sample is not None, f"{block.where}: no ```text sample output after the quick start"
            return block, sample
    raise AssertionError("README.md has no bash block with `make demo`")


@dataclass(frozen=True)
class DemoRun:
    shell: ShellRun
    run_dir: Path
    data: dict[str, Any]

    output_file: Path

    @property
    def output(self) -> str:
        return self.shell.output


@pytest.fixture(scope="module")
def readme_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    block, _ = readme_quick_start()
    lines = [runnable(command) for command in block.commands]  # `make test` is listed as not run here
    assert any(lines), f"{block.where}: nothing to run"
    home = tmp_path_factory.mktemp("readme-demo") / "home"
    shell = run_in_clean_shell(lines, home, timeout=660)
    # The whole output, to re-record README.md's sample from when the shape test says it changed
    # (runs/ is git-ignored; pytest's own temporary directories are soon cleaned up).
    kept = REPO_ROOT / "runs" / "readme-make-demo-output.txt"
    kept.parent.mkdir(exist_ok=True)
    kept.write_text(shell.output, encoding="utf-8")
    assert shell.returncode == 0 and not any(shell.statuses.values()), shell.describe()
    reported = re.search(r"^Report: (\S+)/report\.md", shell.output, re.MULTILINE)
    assert reported, f"no Report: line\n{shell.describe()}"
    run_dir = (REPO_ROOT / reported.group(1)).resolve()
    data = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    yield DemoRun(shell, run_dir, data, kept)
    if run_dir.is_relative_to((REPO_ROOT / "runs").resolve()):
        shutil.rmtree(run_dir, ignore_errors=True)


# -- the sample output's shape --------------------------------------------------------------------


def line_pattern(sample_line: str) -> re.Pattern[str]:
    """A sample line as a pattern: numbers (not those inside names like ``a2``), the run
    directory's timestamp and ``...`` elisions match anything of their kind; spacing is free."""
    text = sample_line.strip()
    pattern = ""
    for piece in re.split(r"(runs/[^/\s]+/|\.\.\.|(?<![A-Za-z\d])-?\d+(?:\.\d+)?|\s+)", text):
        if not piece:
            continue
        if piece.startswith("runs/"):
            pattern += r"runs/[^/\s]+/"
        elif piece == "...":
            pattern += r".*?"
        elif piece.isspace():
            pattern += r"\s+"
        elif re.fullmatch(r"-?\d+(?:\.\d+)?", piece):
            pattern += r"-?\d+(?:\.\d+)?"
        else:
            pattern += re.escape(piece)
    return re.compile(pattern)


def sample_lines() -> list[str]:
    _, sample = readme_quick_start()
    return [line for line in sample.body.splitlines() if line.strip()]


def test_the_sample_output_has_the_shape_of_the_real_one(readme_demo: DemoRun) -> None:
    """Every line of README.md's sample appears in the run's output, in the sample's order."""
    output_lines = readme_demo.output.splitlines()
    position = 0
    for line in sample_lines():
        pattern = line_pattern(line)
        found = next((index for index in range(position, len(output_lines))
                      if pattern.search(output_lines[index])), None)
        assert found is not None, (f"README.md's sample line\n  {line}\nhas no counterpart (in order) in the output "
                                   f"of `make demo` (all of it: {readme_demo.output_file}):\n"
                                   f"{readme_demo.output[-5000:]}")
        position = found + 1


def test_the_wall_time_is_of_the_samples_order_of_magnitude(readme_demo: DemoRun) -> None:
    sample_seconds = [float(value) for value in TIMESTAMP.findall("\n".join(sample_lines()))]
    run_seconds = [float(value) for value in TIMESTAMP.findall(readme_demo.output)]
    assert sample_seconds and run_seconds
    ratio = run_seconds[-1] / sample_seconds[-1]
    # An order of magnitude either way: the sample was recorded on a busy shared machine; a run
    # ten times faster or slower than it means the README's picture of the demo is wrong.
    assert 1 / 10 <= ratio <= 10, (f"the run's last line came at {run_seconds[-1]:.0f} s, README.md's sample's at "
                                 f"{sample_seconds[-1]:.0f} s; re-record the sample")


# -- what README.md says the loop does --------------------------------------------------------------


def test_attempt_1_diverges_and_the_rule_relaunches_it_with_more_dropout(readme_demo: DemoRun) -> None:
    output = readme_demo.output
    assert re.search(r"launch\s+attempt 1 \S+-a1 .*dropout 0\.0,", output), output
    event = re.search(r"event\s+ValidationLossDiverged a1: (\w+) at epoch \d+", output)
    assert event, output
    relaunch = re.search(r"rule RetrainOnDivergence -> retrain_launcher: launched \S+-a2 "
                         r"\(dropout (\d\.\d+) -> (\d\.\d+)\)", output)
    assert relaunch and float(relaunch.group(2)) > float(relaunch.group(1)), output
    attempts = readme_demo.data["attempts"]
    assert attempts[0]["diverged"] and attempts[0]["divergence_reason"] == event.group(1), attempts[0]
    assert len(attempts) >= 2
    assert float(attempts[1]["hyperparameters"]["dropout"]) > float(attempts[0]["hyperparameters"]["dropout"])


def test_the_served_model_is_the_lineages_best_attempt(readme_demo: DemoRun) -> None:
    attempts = readme_demo.data["attempts"]
    best = min((item for item in attempts if item["best_value"] is not None), key=lambda item: item["best_value"])
    assert readme_demo.data["promoted_job"] == best["name"], attempts
    marked = [line for line in readme_demo.output.splitlines() if line.rstrip().endswith("<- promoted")]
    assert len(marked) == 1 and best["name"] in marked[0], marked
    assert re.search(rf"ModelPromoted: {best['name'].rsplit('-', 1)[-1]} ", readme_demo.output)
    assert re.search(r"eval\s+test Spearman \d\.\d+ over \d+ pairs", readme_demo.output)


def test_the_run_directory_holds_the_report_the_plot_the_data_and_the_logs(readme_demo: DemoRun) -> None:
    run_dir = readme_demo.run_dir
    for name in ("report.md", "validation_loss.png", "run.json", "model.tar.gz"):
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "validation_loss.png").read_bytes().startswith(b"\x89PNG")
    assert "ValidationLossDiverged" in (run_dir / "report.md").read_text(encoding="utf-8")
    logs = [path for path in (run_dir / "services").rglob("*") if path.is_file() and path.stat().st_size]
    assert logs, f"no service logs under {run_dir / 'services'}"


def test_the_o2v_embed_example_answers_and_every_process_stops(readme_demo: DemoRun) -> None:
    output = readme_demo.output
    assert re.search(r"^\s+\$ o2v embed .+ --endpoint \S+ --region \S+", output, re.MULTILINE), output
    answers = re.findall(r'^\s+\{"sentence": "([^"]+)", "embedding": \[[-\d., ]+\.\.\.\]\}\s+\((\d+) values\)',
                         output, re.MULTILINE)
    assert len(answers) == 2 and {count for _, count in answers} == {str(readme_demo.data["embedding_dim"])}, output
    assert "o2v demo: every local process stopped." in output
