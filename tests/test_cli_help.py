"""Every command, group and option has help text (after sqlite-utils' tests/test_docs.py).

A user meets costlens through ``--help`` and the README; an option without help is an option
nobody can find out about. The walk covers nested groups (``pricing ...``), so a new command
cannot land without its text.
"""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from costlens.cli import cli


def walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], (*path, name))


COMMANDS = list(walk(cli))


def test_the_walk_sees_every_command_group():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "replay", "run", "summary", "report", "pricing", "pricing show", "pricing check"} <= names


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_command_has_help(path, command):
    assert (command.help or "").strip(), f"costlens {' '.join(path)} has no help text"
    assert (command.get_short_help_str() or "").strip()


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_option_has_help(path, command):
    missing = [
        "/".join(param.opts)
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert not missing, f"costlens {' '.join(path)}: options without help: {missing}"


def test_help_is_reachable_for_every_command():
    from click.testing import CliRunner

    runner = CliRunner()
    for path, _ in COMMANDS:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
