"""One family of user-facing errors.

Everything a user can cause (a bad file, an existing output, a wrong option) raises a
:class:`SurveyError`. The CLI turns these into ``Error: <message>`` and a non-zero exit code;
any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["InputFileError", "OutputExistsError", "SurveyError"]


class SurveyError(Exception):
    """An expected problem, reported to the user as one line."""

    exit_code = 1


class InputFileError(SurveyError):
    """An input file is unreadable or is not what the command needs."""

    exit_code = 2

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OutputExistsError(SurveyError):
    """An output file exists and the caller did not allow overwriting it."""

    exit_code = 3

    def __init__(self, path: str | Path):
        self.path = Path(path)
        super().__init__(f"{self.path}: output exists (use --overwrite to replace it)")
