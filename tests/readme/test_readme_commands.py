"""The READMEs' commands run as written, in a fresh shell, up to where AWS credentials are needed.

Every ``bash`` block of README.md, training/README.md and stacks/README.md runs here (see
:mod:`tests.readme.blocks` for what stands in for the commands that need an AWS account, and
:mod:`tests.readme.shell` for the clean shell). The quick start's ``make demo`` runs once for the
module (``readme_demo``); ``test_readme_demo.py`` checks what the README says about its output.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.readme.blocks import (
    NEEDS_AWS,
    NOT_RUN_HERE,
    REPO_ROOT,
    Block,
    Command,
    bash_blocks,
    o2v_subcommand,
    runnable,
    skip_reason,
)
from tests.readme.shell import run_in_clean_shell

BLOCKS = bash_blocks()
QUICK_START = next((block for block in BLOCKS if block.path == "README.md"
                    and any(command.text.startswith("make demo") for command in block.commands)), None)
OTHER_BLOCKS = [block for block in BLOCKS if block is not QUICK_START]


def test_the_readmes_have_the_blocks_this_suite_runs() -> None:
    assert QUICK_START is not None, "README.md has no bash block with `make demo`"
    paths = {block.path for block in OTHER_BLOCKS}
    assert {"README.md", "training/README.md"} <= paths, paths
    deploy = [block for block in OTHER_BLOCKS if any(c.text.startswith("cdk deploy") for c in block.commands)]
    assert deploy, "README.md has no deploy block (cdk deploy)"


def test_the_list_of_commands_not_run_is_exact() -> None:
    """Every entry of the reviewed skip lists stands for a command some README shows."""
    commands = [command for block in BLOCKS for command in block.commands]
    for pattern, reason in NEEDS_AWS + NOT_RUN_HERE:
        assert any(re.search(pattern, command.text) for command in commands), (
            f"skip-list entry {pattern!r} ({reason}) matches no README command; remove it")


def test_every_readme_command_is_run_or_listed() -> None:
    """Nothing is skipped silently: each command runs, or a reviewed entry says why not."""
    for block in BLOCKS:
        for command in block.commands:
            assert runnable(command) or skip_reason(command), command


def _plan(blocks: list[Block]) -> tuple[list[list[str]], list[Command]]:
    """The blocks' commands as they run here, then ``--help`` of every ``o2v`` command they name."""
    commands = [command for block in blocks for command in block.commands]
    lines = [runnable(command) for command in commands]
    named: dict[str, Command] = {}
    for command in commands:
        subcommand = o2v_subcommand(command)
        if subcommand is not None:
            named.setdefault(subcommand, command)
    for subcommand, command in named.items():
        # Spelled as the README spells it: a bare `o2v` must be on the PATH the blocks set up.
        lines.append([f"{command.words[0]} {subcommand} --help >/dev/null"])
        commands.append(Command(f"{command.words[0]} {subcommand} --help", command.where))
    return lines, commands


def _fresh_outputs(commands: list[Command]) -> None:
    """A fresh clone has no ``runs/``: remove what the file's ``o2v`` commands would refuse to replace
    (their ``--out`` under ``runs/``, without ``--force``), as each README file starts afresh."""
    runs = (REPO_ROOT / "runs").resolve()
    for command in commands:
        words = command.words
        if o2v_subcommand(command) and "--out" in words and "--force" not in words:
            out = (REPO_ROOT / words[words.index("--out") + 1]).resolve()
            if out.is_relative_to(runs) and out.is_dir():
                shutil.rmtree(out)


FILES = sorted({block.path for block in OTHER_BLOCKS}, key=lambda path: (path != "README.md", path))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", FILES)
def test_readme_blocks_run_in_a_clean_shell(path: str, tmp_path: Path) -> None:
    """A file's blocks run in one shell, in order, as a reader runs them in one terminal."""
    blocks = [block for block in OTHER_BLOCKS if block.path == path]
    lines, commands = _plan(blocks)
    _fresh_outputs(commands)
    run = run_in_clean_shell(lines, tmp_path / "home", timeout=840)
    failed = [commands[index].where + ": " + commands[index].text
              for index, code in run.statuses.items() if code]
    assert not failed and run.returncode == 0, f"{path}: {failed or 'the shell'} failed\n{run.describe()}"
    expected = [index for index, command_lines in enumerate(lines) if command_lines]
    assert sorted(run.statuses) == expected, f"{path}: not every command ran\n{run.describe()}"
