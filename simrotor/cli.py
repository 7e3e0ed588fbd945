"""The ``simrotor`` command: one root, sub-commands loaded from their own packages.

Sub-commands are imported lazily so ``simrotor --help`` is fast and a broken optional
part (say, audio without numpy) cannot take the modem tools down with it.
"""
from __future__ import annotations

import importlib
import importlib.util

import click

#: name -> "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "demo": "simrotor.demo:demo",
    "emulate": "modem_drivers.emulator.cli:emulate",
    "modem": "simrotor.modem:modem",
    "audio": "appliance.audio.cli:audio",
    "bench": "bench.cli:bench",
    "appliance": "appliance.cli:appliance",
    "controller": "controller.cli:controller",
    "provision": "provisioning.cli:provision",
    "voicebot": "appliance.voicebot.cli:voicebot",
}


def _importable(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        # Only list what is installed, so ``--help`` never fails on a missing part.
        return sorted(n for n, t in SUBCOMMANDS.items() if _importable(t.split(":")[0]))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="simrotor")
def main() -> None:
    """simrotor — the telephony edge for debt-collection contact centers.

    \b
    Examples:
      simrotor emulate --modems 4 --state-file /tmp/bank.json
      simrotor modem probe /dev/ttyUSB2 --json
      simrotor demo
    """
