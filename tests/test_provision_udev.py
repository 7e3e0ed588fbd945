"""``provision udev`` on an emulated bank with its fake sysfs: the rules it writes, matched
the way udev matches KERNELS (a glob against the tty's device and its ancestors), give
each modem's AT and audio tty exactly its own names and touch no other tty; a modem gone
since the scan is named with its fix while the others get their rules."""
from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioning.cli import provision

#: Seconds a probe waits for AT: the emulator answers at once (not a timing assertion).
PROBE = 0.5

pytestmark = pytest.mark.timeout(120)


def ancestors(root: Path, tty: str) -> list[str]:
    """The names of a tty's device and every device above it, as udev walks them."""
    here = Path(os.path.realpath(root / "sys" / "class" / "tty" / tty / "device"))
    names = []
    while root.resolve() in here.parents:
        names.append(here.name)
        here = here.parent
    return names


def rules_of(text: str) -> list[tuple[str, list[str]]]:
    """(KERNELS glob, SYMLINK names) of every rule line."""
    out = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            kernels = re.search(r'KERNELS=="([^"]+)"', line)
            assert kernels and 'SUBSYSTEM=="tty"' in line and 'SUBSYSTEMS=="usb"' in line, line
            out.append((kernels.group(1), re.findall(r'SYMLINK\+="([^"]+)"', line)))
    return out


async def run(*args: str):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(CliRunner().invoke, provision, list(args))


@pytest.mark.bank(modems=6, vendors=("simcom", "quectel", "huawei", "generic"), sysfs=True)
async def test_rules_name_each_modems_own_ttys_and_no_other(bank, tmp_path):
    emu, _ = bank
    root = emu.sysfs_root
    state = tmp_path / "provisioning.json"
    scanned = await run("scan", "--sysfs-root", str(root), "--timeout", str(PROBE), "--state", str(state))
    assert scanned.exit_code == 0, scanned.output
    out = tmp_path / "99-simrotor.rules"
    done = await run("udev", "--state", str(state), "--sysfs-root", str(root), "--out", str(out), "--json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["problems"] == []
    rules = rules_of(out.read_text())
    audio = [vm for vm in emu.modems if vm.audio_port]
    assert audio, "the bank has audio ports to name"
    assert doc["ports"] == len(rules) == len(emu.modems) + len(audio)
    ttys = sorted(p.name for p in (root / "sys" / "class" / "tty").iterdir())
    matched: dict[str, list[str]] = {}
    for tty in ttys:
        names = [n for glob, links in rules for n in links
                 if any(fnmatch.fnmatchcase(a, glob) for a in ancestors(root, tty))]
        if names:
            matched[tty] = names
    ids = {m["imei"]: m["id"] for m in json.loads(state.read_text())["modems"].values()}
    for vm in emu.modems:
        for role, port in (("at", vm.port), ("audio", vm.audio_port)):
            if port is None:
                continue
            tty = os.path.basename(port)
            names = matched.pop(tty)
            assert len(names) == 2, (tty, names)  # exactly one rule: its IMEI name and its hub-port name
            assert names[0] == f"simrotor/imei-{vm.imei}.{role}"
            assert re.fullmatch(rf"simrotor/usb-1-\d+\.\d+\.{role}", names[1])
            assert doc["names"][ids[vm.imei]][role] == f"/dev/{names[0]}"
    assert matched == {}  # no rule names a tty it was not written for


@pytest.mark.bank(modems=3, sysfs=True)
async def test_a_modem_gone_since_the_scan_is_named_and_the_rest_written(bank, tmp_path):
    emu, _ = bank
    state = tmp_path / "provisioning.json"
    assert (await run("scan", "--sysfs-root", str(emu.sysfs_root), "--timeout", str(PROBE),
                      "--state", str(state))).exit_code == 0
    data = json.loads(state.read_text())
    gone = next(m for m in data["modems"].values() if m["id"] == "m02")
    gone["present"] = False
    state.write_text(json.dumps(data))
    out = tmp_path / "rules"
    done = await run("udev", "--state", str(state), "--sysfs-root", str(emu.sysfs_root), "--out", str(out))
    assert done.exit_code == 1
    assert "m02: not found at the last scan; fix: plug it in and run `simrotor provision scan`" in done.stderr
    assert "m01  at /dev/simrotor/imei-" in done.stdout and "m02" not in done.stdout
    text = out.read_text()
    kept = [m for m in data["modems"].values() if m is not gone]
    assert f"imei-{gone['imei']}" not in text
    assert len(rules_of(text)) == sum(1 + bool(m["audio_port"]) for m in kept)
    # no state yet: a clear usage error
    nothing = await run("udev", "--state", str(tmp_path / "none.json"), "--out", str(out))
    assert nothing.exit_code == 2 and "no modems scanned yet" in nothing.stderr
