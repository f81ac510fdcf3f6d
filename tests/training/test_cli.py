"""The o2v dispatcher: every command is listed and explains itself."""

from __future__ import annotations

import pytest

from training.cli import COMMAND_MODULES, build_parser, main

MINE = ("prepare", "train", "serve", "embed", "launch")


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    listing = capsys.readouterr().out
    for command in MINE:
        assert command in listing
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        text = capsys.readouterr().out
        assert "Example" in text, command


def test_commands_are_one_module_each() -> None:
    assert {name.rsplit(".", 1)[1] for name in COMMAND_MODULES} >= set(MINE)
    build_parser()  # every listed module imports and registers


def test_user_errors_exit_2_with_a_message(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert main(["train", "--data", "/nonexistent/dataset", "--out", "/tmp/never-written"]) == 2
    assert "manifest.json not found" in capsys.readouterr().err
