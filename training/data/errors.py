"""The error every data problem raises: it names the file, the line and what was wrong."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A row or file cannot be used; ``str()`` reads ``file:line: problem``."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem
