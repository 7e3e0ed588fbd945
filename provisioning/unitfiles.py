"""The files simrotor ships for systemd and udev (the top-level ``systemd/`` folder), found
from a source checkout or from an installed wheel, and made ready for this machine.

Why a lookup: in a checkout (``pip install -e .``, ``./scripts/test``) the folder sits
beside the packages; a wheel installs it as data files under ``<prefix>/share/simrotor/
systemd`` (``pyproject.toml``, ``[tool.setuptools.data-files]``), since setuptools' package
data cannot reach a folder outside a package.
"""
from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Final

#: The units in ``systemd/``, the service each runs.
UNITS: Final = ("simrotor-appliance.service", "simrotor-controller.service")
SYSUSERS: Final = "simrotor.sysusers"
UDEV_TEMPLATE: Final = "99-simrotor.rules.in"
#: The simrotor the shipped units name; ``unit_text`` puts this machine's in its place.
SHIPPED_BIN: Final = "/usr/local/bin/simrotor"


class UnitFilesError(RuntimeError):
    """The shipped files or the simrotor executable cannot be found."""


def shipped_dir() -> Path:
    """The folder holding the shipped units, udev template and sysusers file."""
    checkout = Path(__file__).resolve().parent.parent / "systemd"
    installed = Path(sysconfig.get_path("data")) / "share" / "simrotor" / "systemd"
    for folder in (checkout, installed):
        if (folder / UNITS[0]).is_file():
            return folder
    raise UnitFilesError(f"simrotor's systemd files are in neither {checkout} nor {installed}; "
                         f"fix: reinstall simrotor (pip install simrotor) or run from a checkout")


def shipped(name: str) -> str:
    return (shipped_dir() / name).read_text()


def simrotor_bin() -> Path:
    """The ``simrotor`` executable of the Python running this (a venv's ``bin/``), else
    the one on $PATH: the units start the same installation that installed them."""
    beside = Path(sys.executable).parent / "simrotor"
    if beside.is_file():
        return beside
    found = shutil.which("simrotor")
    if found:
        return Path(found)
    raise UnitFilesError(f"no simrotor executable beside {sys.executable} nor on $PATH; fix: give --bin PATH")


def unit_text(name: str, bin_path: Path) -> str:
    """The shipped unit ``name`` with ``ExecStart=`` naming ``bin_path``."""
    if not bin_path.is_absolute() or any(c.isspace() for c in str(bin_path)):
        raise UnitFilesError(f"--bin {bin_path}: ExecStart= needs an absolute path without spaces")
    text = shipped(name)
    if f"ExecStart={SHIPPED_BIN} " not in text:
        raise UnitFilesError(f"{shipped_dir() / name}: no 'ExecStart={SHIPPED_BIN} …' line to fill in")
    return text.replace(f"ExecStart={SHIPPED_BIN} ", f"ExecStart={bin_path} ")
