"""The provisioning steps' pure parts without a bank: the PIN file and assign's bad input
named with where and the fix, the TOML writer read back by tomllib, the sysfs reader on
both driver shapes (usb-serial's ttyUSB and cdc_acm's ttyACM), inventory's sentence."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from provisioning.assign import assign, resolve
from provisioning.inventory import compare
from provisioning.scan import ScannedModem, ScanResult, candidate_ports
from provisioning.sims import pin_for, read_pin_file
from provisioning.state import ProvisioningError, empty, load_state, save_state
from provisioning.sysfs import place
from provisioning.tomlout import dumps


def test_pin_file_lines_and_errors(tmp_path: Path):
    f = tmp_path / "pins.txt"
    f.write_text("# batch\n* 1234\n8948010000000000017 98765432  # one card\n\n")
    pins = read_pin_file(f)
    assert pin_for(pins, ("iccid:8948010000000000017", "imei:1/slot:0")) == "98765432"
    assert pin_for(pins, ("iccid:8948010000000000024",)) == "1234"
    f.write_text("* 1234\n8948 12a4\n")
    with pytest.raises(ProvisioningError, match=r"pins.txt:2: expected '<ICCID or \*> <PIN of 4 to 8 digits>'"):
        read_pin_file(f)


def _state() -> dict:
    data = empty()
    data["modems"]["861475030000006"] = {"id": "m01", "imei": "861475030000006", "at_port": "/dev/x", "slots": 2}
    data["sims"]["89480100000000000007"] = {"modem_id": "m01", "imei": "861475030000006", "slot": 0, "pools": []}
    data["sims"]["89480200000000000014"] = {"modem_id": "m01", "imei": "861475030000006", "slot": 1, "pools": []}
    return data


def test_assign_targets_and_bad_input():
    data = _state()
    assert resolve(data, "m01/1") == ["89480200000000000014"]
    changed = assign(data, ["m01"], pools=["b", "a", "a"], limits={"calls_per_hour": 10})
    assert changed["sims"] == ["89480100000000000007", "89480200000000000014"]
    assert data["sims"]["89480100000000000007"]["pools"] == ["a", "b"]
    assign(data, ["m01/0"], label="A-1", number="+48 690 000 000")
    assert resolve(data, "A-1") == ["89480100000000000007"]
    assert data["sims"]["89480100000000000007"]["msisdn"] == "+48690000000"
    assign(data, ["operator:26001"], limits={"calls_per_day": 100})
    assert data["operator_limits"] == {"26001": {"calls_per_day": 100}}
    with pytest.raises(ProvisioningError, match="operator is its MCC\\+MNC, 5 or 6 digits"):
        assign(data, ["operator:260"], limits={"calls_per_day": 1})
    with pytest.raises(ProvisioningError, match="limit 'calls_per_week': unknown; fix: one of calls_per_hour"):
        assign(data, ["all"], limits={"calls_per_week": 1})
    with pytest.raises(ProvisioningError, match="--number: 'm01' names 2 SIMs"):
        assign(data, ["m01"], number="+48690000000")
    with pytest.raises(ProvisioningError, match="target 'm7': no such SIM, modem or label; fix: .*m01"):
        assign(data, ["m7"], label="x")
    with pytest.raises(ProvisioningError, match="--number 'abc'"):
        assign(data, ["m01/0"], number="abc")


def test_toml_writer_reads_back():
    doc = {"emulator_state": "x", "appliance": {"id": "a b", "listen": ""},
           "modem": [{"id": "m01", "port": "/dev/simrotor/imei-1.at", "pools": ["a", "ż"], "slots": 2}],
           "limits": {"pause_after_call": [5.0, 20.0], "windows": [{"start": "08:00", "end": "12:00", "max_calls": 2}]},
           "operator_limits": {"26001": {"calls_per_hour": 300}, "x y": {"sms_per_day": 1}},
           "callbacks": {"answer": True, "texts": {"pl": {"menu": "Naciśnij \"1\"\n"}}}}
    text = dumps(doc, {("modem", 0): ["m01: a label"]})
    assert tomllib.loads(text) == doc
    assert "# m01: a label\n[[modem]]" in text
    with pytest.raises(ValueError, match="finite"):
        dumps({"a": float("inf")})


def _tty(root: Path, usb: str, interface: int, name: str, *, acm: bool) -> None:
    """One tty in a sysfs tree: usb-serial (device = the port dir under the interface)
    or cdc_acm (device = the interface dir)."""
    dev = root / "sys/devices/pci0000:00/0000:00:14.0/usb1" / usb.split(".")[0] / usb
    dev.mkdir(parents=True, exist_ok=True)
    for k, v in (("idVendor", "1E0E"), ("idProduct", "9001"), ("serial", "0123")):
        (dev / k).write_text(v + "\n")
    iface = dev / f"{usb}:1.{interface}"
    iface.mkdir(exist_ok=True)
    (iface / "bInterfaceNumber").write_text(f"{interface:02x}\n")
    tty = iface / "tty" / name if acm else iface / name / "tty" / name
    tty.mkdir(parents=True)
    os.symlink("../.." if acm else f"../../../{name}", tty / "device")
    (root / "sys/class/tty").mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(tty, root / "sys/class/tty"), root / "sys/class/tty" / name)
    (root / "dev").mkdir(exist_ok=True)
    (root / "dev" / name).touch()


def test_sysfs_reader_on_usb_serial_and_cdc_acm(tmp_path: Path):
    _tty(tmp_path, "1-1.3", 2, "ttyUSB2", acm=False)
    _tty(tmp_path, "1-2", 0, "ttyACM0", acm=True)
    (tmp_path / "dev/serial/by-id").mkdir(parents=True)
    os.symlink("../../ttyUSB2", tmp_path / "dev/serial/by-id/usb-SimTech-if02-port0")
    usb = place(str(tmp_path / "dev/serial/by-id/usb-SimTech-if02-port0"), tmp_path)
    assert usb is not None and (usb.tty, usb.usb_path, usb.interface, usb.usb_id) == ("ttyUSB2", "1-1.3", 2, "1e0e:9001")
    acm = place(str(tmp_path / "dev/ttyACM0"), tmp_path)
    assert acm is not None and (acm.usb_path, acm.interface) == ("1-2", 0)
    assert place(str(tmp_path / "dev/nothing"), tmp_path) is None
    # by-id first, and a ttyUSB it covers is not listed again
    assert candidate_ports(tmp_path) == [str(tmp_path / "dev/serial/by-id/usb-SimTech-if02-port0"),
                                         str(tmp_path / "dev/ttyACM0")]


def test_inventory_sentence_and_state_file(tmp_path: Path):
    data = empty()
    data["inventory"] = {"provisioned_at": "2026-12-07T02:00:00Z", "modems": {
        "861475030000006": {"id": "m01", "usb_path": "1-1.1", "at_port": "/dev/a", "model": "SIM7600"},
        "861675030000019": {"id": "m02", "usb_path": "1-1.2", "at_port": "/dev/b", "model": "EC25"}}}
    data["modems"]["861475030000006"] = {"id": "m01", "last_seen": "2026-12-07T02:00:00Z"}
    moved = ScannedModem("/dev/b", None, "Q", "EC25", "r", "861675030000019", "quectel", "1-1.5", None)
    report = compare(data, ScanResult([moved], [], 1, 0.1))
    assert report.summary == ("expected 2 modems, found 1: missing IMEI 861475030000006 (m01, SIM7600), last seen on "
                              "hub port 1-1.1 at 2026-12-07T02:00:00Z; m02 (IMEI 861675030000019) moved from hub "
                              "port 1-1.2 to 1-1.5")
    with pytest.raises(ProvisioningError, match="no provisioned inventory yet; fix: run `provision write-config`"):
        compare(empty(), ScanResult([], [], 0, 0.0))
    path = tmp_path / "provisioning.json"
    save_state(path, data)
    assert path.stat().st_mode & 0o777 == 0o600 and load_state(path) == data
    path.write_text("{not json")
    with pytest.raises(ProvisioningError, match="provisioning.json: not JSON"):
        load_state(path)


def test_two_modems_with_one_imei_are_both_kept():
    """On two USB devices (cloned dongles); without sysfs two AT ports with one IMEI are
    one modem's (SIM7600's interfaces 2 and 3 both answer AT)."""
    from provisioning.scan import PortProbe, group, record_scan
    from provisioning.sysfs import UsbPlace

    def probes(placed: bool) -> list[PortProbe]:
        return [PortProbe(f"/dev/ttyUSB{i}", "at", None, "HUAWEI", "E173", "r", "863313010000068", "huawei",
                          UsbPlace(f"ttyUSB{i}", f"1-1.{i}", 2, "12d1:1436", None, None, None) if placed else None)
                for i in (2, 5)]

    assert len(group(probes(False))[0]) == 1
    modems, problems = group(probes(True))
    assert len(modems) == 2
    (dup,) = problems
    assert dup.kind == "duplicate_imei" and dup.port == "/dev/ttyUSB5" and "863313010000068" in dup.problem
    data = empty()
    record_scan(data, ScanResult(modems, problems, 2, 0.0), "now")
    assert sorted(data["modems"]) == ["863313010000068", "port:/dev/ttyUSB5"]
    assert sorted(m["id"] for m in data["modems"].values()) == ["m01", "m02"]
