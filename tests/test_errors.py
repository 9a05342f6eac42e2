"""Library validation raises `RewardlabError` subclasses, so the CLI reports it as one line, never a traceback."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rewardlab
from rewardlab.errors import InvalidValueError, RewardlabError, UnknownIdError

PACKAGE = Path(rewardlab.__file__).parent
BUILTIN_ERRORS = {"ValueError", "KeyError", "TypeError", "IndexError", "RuntimeError", "Exception"}
#: programming errors a user cannot trigger: a command declared with an option that has no library default
ALLOWED = {("cli/options.py", "TypeError")}


def builtin_raises() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                name = node.exc.func.id
                if name in BUILTIN_ERRORS and (relative, name) not in ALLOWED:
                    found.append(f"{relative}:{node.lineno} raises {name}")
    return found


def test_no_library_code_raises_a_bare_builtin_error() -> None:
    assert builtin_raises() == []


def test_validation_errors_are_still_the_standard_exceptions() -> None:
    from rewardlab.data.dataset import FeedbackDataset

    with pytest.raises(InvalidValueError) as caught:
        FeedbackDataset(name="empty").kfold(1)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RewardlabError)
    assert issubclass(UnknownIdError, KeyError) and str(UnknownIdError("unknown prompt id 'x'")) == "unknown prompt id 'x'"
