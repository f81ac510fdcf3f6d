"""The READMEs' fenced code blocks, their commands, and how the suite runs them as written.

A user copies a ``bash`` block into a shell; so does the suite. Each block becomes one bash
script run in a fresh shell (``env -i``: only ``HOME`` and ``PATH=/usr/bin:/bin``, the
repository as the working directory), the commands in the README's order, each one's exit
status checked. Commands that need AWS credentials cannot run here; they are listed in
:data:`NEEDS_AWS` (reviewed, exact: a test fails when an entry matches no README command), and
what can be checked of them without an account runs in their place (``cdk synth`` of the
stacks a ``cdk deploy`` names, ``o2v prepare`` without ``--upload``, ``--help`` of every ``o2v``
command). :data:`PLACEHOLDERS` are the README's stand-ins for the user's own paths.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
READMES = ("README.md", "training/README.md", "stacks/README.md")
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Command:
    """One command as a user types it (continuation lines joined), and where it is."""

    text: str
    where: str  # README.md:123

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text, comments=True)


@dataclass(frozen=True)
class Block:
    path: str
    line: int  # of the opening fence
    language: str
    body: str
    commands: list[Command] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def blocks(path: str, root: Path = REPO_ROOT) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    found: list[Block] = []
    lines = (root / path).read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        language = opening.group(1)
        commands = _commands(body, path, start + 2) if language == "bash" else []
        found.append(Block(path, start + 1, language, "\n".join(body), commands))
    return found


def bash_blocks(root: Path = REPO_ROOT) -> list[Block]:
    return [block for path in READMES if (root / path).is_file() for block in blocks(path, root)
            if block.language == "bash"]


def _commands(body: list[str], path: str, first_line: int) -> list[Command]:
    commands: list[Command] = []
    pending: list[str] = []
    start = first_line
    for offset, line in enumerate(body):
        if not pending:
            start = first_line + offset
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        commands.append(Command(" ".join(part.strip() for part in pending), f"{path}:{start}"))
        pending = []
    if pending:
        raise ValueError(f"{path}:{start}: the block ends inside a continued command")
    return commands


# -- what cannot run without AWS, and what runs instead -----------------------------------------

# (pattern on the command as written, why it is not run). Reviewed: keep it short and exact.
NEEDS_AWS: tuple[tuple[str, str], ...] = (
    (r"^cdk deploy\b", "deploys to an AWS account (cdk ls and cdk synth of the named stacks run instead)"),
    (r"^o2v preflight\b", "reads the AWS account and region (its --help runs instead)"),
    (r"^o2v launch\b", "starts a SageMaker training job (its --help runs instead)"),
    (r"^o2v embed\b.*--endpoint\b", "invokes a real SageMaker endpoint (its --help runs instead)"),
    (r"^o2v embed --corpus s3://", "reads and writes S3 in an AWS account (its --help runs instead; "
     "tests/training/test_bulk_local.py runs it against moto)"),
    (r"^o2v verify\b(?!.*--local)", "runs the deployed loop in the AWS account (its --help runs instead; "
     "tests/local_mode/test_verify_local.py runs it with --local)"),
)
# Options that only make sense with an account: removed, the rest of the command runs.
AWS_ONLY_OPTIONS = {"o2v prepare": ("--upload",)}
# Not run here, and why; each reason says where else it runs, if anywhere.
NOT_RUN_HERE = (
    (r"^make test\b", "the suite itself (this test runs inside it)"),
    (r"^\.venv/bin/o2v train --data channels\b", "needs a notebook's channels and hyperparameter file; "
     "tests/conformance/test_train_channels.py runs it as written with them"),
)
# Documented exit statuses other than 0 that are an answer, not a failure (README.md: "Exit code
# 0: healthy or undecided; 3: diverged").
ANSWER_STATUSES = {"detect": (3,)}
# The README's stand-ins for the user's own paths, and what stands for them here.
PLACEHOLDERS = {"path/to/stsbenchmark": "../shared/data/stsbenchmark"}


def skip_reason(command: Command) -> str | None:
    for pattern, reason in NEEDS_AWS + NOT_RUN_HERE:
        if re.search(pattern, command.text):
            return reason
    return None


def o2v_subcommand(command: Command) -> str | None:
    """``prepare`` for ``o2v prepare ...`` or ``.venv/bin/o2v prepare ...``."""
    words = command.words
    if words and os.path.basename(words[0]) == "o2v" and len(words) > 1 and not words[1].startswith("-"):
        return words[1]
    return None


def runnable(command: Command) -> list[str]:
    """The shell lines that stand for ``command`` here (none: skipped, see :func:`skip_reason`)."""
    text = command.text
    for placeholder, here in PLACEHOLDERS.items():
        text = text.replace(placeholder, here)
    if re.search(r"^cdk deploy\b", text):
        stacks = [word for word in shlex.split(text, comments=True)[2:] if not word.startswith("-")]
        lines = ["__stacks=\"$(cdk ls)\" || false"]
        for stack in stacks:  # a name cdk ls does not print fails here
            lines.append(f"grep -qx {shlex.quote(stack)} <<<\"$__stacks\" || "
                         f"{{ echo 'no stack {stack} in cdk ls' >&2; false; }}")
        # `cdk synth` synthesizes every stack unless given names; it has no --all.
        arguments = [word for word in shlex.split(text, comments=True)[2:] if word != "--all"]
        lines.append(shlex.join(["cdk", "synth", "--quiet", *arguments]))
        return lines
    if skip_reason(command) is not None:
        return []
    answers = ANSWER_STATUSES.get(o2v_subcommand(command) or "", ())
    if answers:
        text = shlex.join(shlex.split(text, comments=True))  # without its comment, which would hide the ||
        text += " || [ $? -eq " + " -o $? -eq ".join(str(code) for code in answers) + " ]"
    for prefix, options in AWS_ONLY_OPTIONS.items():
        words = shlex.split(text, comments=True)
        if len(words) > 1 and os.path.basename(words[0]) + " " + words[1] == prefix:
            text = _without_upload(words, options)
    return [text]


def _without_upload(words: list[str], options: tuple[str, ...]) -> str:
    """The command without ``--upload`` and the options that only configure the upload."""
    upload_settings = ("--deployment", "--name", "--bucket", "--region")
    kept: list[str] = []
    skip_value = False
    for word in words:
        if skip_value:
            skip_value = False
            continue
        if word in options:
            continue
        if word in upload_settings:
            skip_value = True
            continue
        kept.append(word)
    return shlex.join(kept)
