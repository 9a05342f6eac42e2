"""Every CLI default that the library also has comes from the library: no option shadows a config default."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer

from rewardlab.cli import app
from rewardlab.cli.options import FROM_CONFIG, library_defaults


def walk(command: Any, path: str = "rewardlab") -> Iterator[tuple[str, Any]]:
    """Every leaf command under ``command`` (typer vendors its own click, so groups are told by ``commands``)."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from walk(sub, f"{path} {name}")
    else:
        yield path, command


COMMANDS = dict(walk(typer.main.get_command(app)))


def linked(command: Any) -> tuple[tuple[Any, ...], dict[str, str]] | None:
    callback = command.callback
    while callback is not None:
        if hasattr(callback, "__rewardlab_defaults__"):
            return callback.__rewardlab_defaults__
        callback = getattr(callback, "__wrapped__", None)
    return None


def test_the_walk_finds_every_command_group() -> None:
    for expected in ("rewardlab train", "rewardlab quickstart", "rewardlab policy dpo", "rewardlab policy grpo",
                     "rewardlab bon", "rewardlab generate run", "rewardlab demo-reward sft", "rewardlab annotate stats",
                     "rewardlab experiment bon-noise", "rewardlab prompt-opt train"):
        assert expected in COMMANDS


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_no_option_default_is_left_unfilled(path: str) -> None:
    for param in COMMANDS[path].params:
        assert param.default is not FROM_CONFIG, f"{path} {param.name}"


@pytest.mark.parametrize("path", sorted(p for p, c in COMMANDS.items() if linked(c)))
def test_linked_commands_take_every_default_the_library_has(path: str) -> None:
    sources, renames = linked(COMMANDS[path])  # type: ignore[misc]
    tables = [library_defaults(source) for source in sources]
    checked = 0
    for param in COMMANDS[path].params:
        name = renames.get(param.name, param.name)
        owners = [table for table in tables if name in table]
        if owners:
            assert param.default == owners[0][name], f"{path} --{param.name}: {param.default!r} != {owners[0][name]!r}"
            checked += 1
    assert checked >= 3, f"{path}: linked to {sources} but takes almost nothing from it"


def test_the_commands_that_have_library_configs_are_linked() -> None:
    for path in ("rewardlab quickstart", "rewardlab policy dpo", "rewardlab policy grpo", "rewardlab bon",
                 "rewardlab generate run", "rewardlab demo-reward sft"):
        assert linked(COMMANDS[path]) is not None, path


def test_dpo_defaults_are_the_python_api_defaults() -> None:
    """The drift the redesign fixed: `policy dpo` used lr 1e-6 / β 0.1 while `run_dpo()` used 1e-5 / 0.05."""
    from rewardlab.optimize.policy import DPO_DEFAULTS

    params = {p.name: p.default for p in COMMANDS["rewardlab policy dpo"].params}
    assert params["lr"] == DPO_DEFAULTS.learning_rate and params["beta"] == DPO_DEFAULTS.beta
    assert params["generations"] == DPO_DEFAULTS.num_generations
