"""The command line as a user meets it: help, version, errors, and the README reference."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from survey import __version__
from survey.cli import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
COMMANDS = sorted(cli.commands)


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(name: str) -> None:
    command = cli.commands[name]
    assert command.help and len(command.help.strip()) > 40, f"`survey {name}` lacks help text"
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert re.search(rf"`survey {name}\b", README), f"`survey {name}` is missing from README.md"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_is_documented_in_help(name: str) -> None:
    for param in cli.commands[name].params:
        if isinstance(param, click.Option):
            assert param.help, f"survey {name} {param.opts[0]} has no help text"


def test_readme_states_the_two_fresh_machine_commands() -> None:
    assert "survey simulate" in README or "survey demo" in README
    assert re.search(r"pip install -e \"?\.\[test\]\"? && (python -m )?pytest", README)


def test_unknown_command_fails_cleanly() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2 and "No such command" in result.output
