"""``simrotor bench …``: benchmarks print JSON; each lives in its own module."""
from __future__ import annotations

import importlib

import click

#: name -> "module:attribute" of a click command.
BENCHMARKS: dict[str, str] = {
    "amd-replay": "bench.amd_replay:amd_replay",
    "at": "bench.at:at",
    "audio": "bench.audio:audio",
    "controller": "bench.controller:controller",
    "live": "bench.live:live",
    "migrate": "bench.migrate:migrate",
    "multiplex": "bench.multiplex:multiplex",
    "page": "bench.page:page",
    "report-eta": "bench.report_eta:report_eta",
    "rotation": "bench.rotation:rotation",
}


class _LazyBench(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(BENCHMARKS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = BENCHMARKS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=_LazyBench)
def bench() -> None:
    """Benchmarks (not tests): each prints one JSON document with its figures.

    \b
    Example:
      simrotor bench at --modems 256 --timing fast --json
    """
