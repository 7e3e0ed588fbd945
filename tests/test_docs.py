"""Docs are runnable and checked (docs/architecture.md, Style 9): the README's quick start is the scripts
that exist and that CI runs, and every sub-command is documented with an example."""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from simrotor.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the quick start has a ```sh block"
    return [ln.split("#", 1)[0].strip() for ln in block.group(1).splitlines() if ln.strip()]


def test_quick_start_is_exactly_two_commands_that_exist():
    cmds = quick_start_commands()
    assert len(cmds) == 2
    for cmd in cmds:
        script = ROOT / cmd.split()[0]
        assert script.is_file() and script.stat().st_mode & 0o111, cmd


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert quick_start_commands()[1] in ci


def _all_commands(group: click.Group, ctx: click.Context, prefix: str = ""):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        path = f"{prefix} {name}".strip()
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, ctx, path)


def test_every_sub_command_is_in_the_readme_and_has_an_example():
    ctx = click.Context(main)
    seen = dict(_all_commands(main, ctx))
    for name in SUBCOMMANDS:
        if name in seen:
            assert f"simrotor {name}" in README, f"README does not mention simrotor {name}"
    for path, cmd in seen.items():
        assert cmd.help and "Example" in cmd.help, f"simrotor {path} --help has no example"


@pytest.mark.parametrize("path", ["modem", "modem probe", "modem sms", "emulate", "bench at"])
def test_help_runs(path):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, path.split() + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_demo_script_passes_its_arguments_to_simrotor():
    """The quick-start script forwards its arguments to `simrotor demo` (and to nothing else)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SIMROTOR_VENV": sys.prefix}  # the venv running the tests
    proc = subprocess.run([str(ROOT / "scripts" / "demo"), "--help"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--until-done" in proc.stdout and "Usage:" in proc.stdout
