"""Each vendor dialect over the real pty: identification, echo/verbose/CMEE, PIN, quirks."""
from __future__ import annotations

import pytest

from modem_drivers.emulator import Emulator, PinState
from modem_drivers.emulator.host import AtHost

VENDORS = ("simcom", "quectel", "huawei", "generic")
MANUFACTURER = {"simcom": "SIMCOM_Ltd", "quectel": "Quectel", "huawei": "huawei", "generic": "+CGMI: Emulated Wireless Inc."}


pytestmark = pytest.mark.bank(modems=4, control_port=None)


async def _host(emu: Emulator, i: int, echo_off: bool = True) -> AtHost:
    host = AtHost(emu.modems[i].port)
    if echo_off:
        assert (await host.command("ATE0"))[-1] == "OK"
    return host


@pytest.mark.parametrize("i,vendor", list(enumerate(VENDORS)))
async def test_identification(emu: Emulator, i: int, vendor: str) -> None:
    modem = emu.modems[i]
    assert modem.vendor == vendor
    host = await _host(emu, i)
    assert await host.command("AT+CGMI") == [MANUFACTURER[vendor], "OK"]
    model = await host.command("AT+CGMM")
    assert model[-1] == "OK" and model[0].endswith(modem.model)
    imei = (await host.command("AT+CGSN"))[0].removeprefix("+CGSN: ")
    assert imei == modem.imei and len(imei) == 15 and imei.isdigit()
    assert (await host.command("AT+CIMI"))[0] == modem.sim.imsi
    crsm = await host.command("AT+CRSM=176,12258,0,0,10")
    assert crsm[0] == f'+CRSM: 144,0,"{modem.sim.iccid_swapped}"'
    # the swapped form really is EF_ICCID: swapping back gives the ICCID
    swapped = modem.sim.iccid_swapped
    assert "".join(swapped[k + 1] + swapped[k] for k in range(0, len(swapped), 2)).rstrip("F") == modem.sim.iccid
    cnum = await host.command("AT+CNUM")
    assert cnum[0] == f'+CNUM: "","{modem.sim.msisdn}",145'
    assert (await host.command("AT+COPS=3,2;+COPS?"))[0] == f'+COPS: 0,2,"{modem.sim.mcc_mnc}",7'
    assert (await host.command("AT+COPS=3,0;+COPS?"))[0] == f'+COPS: 0,0,"{modem.sim.operator_name}",7'
    rssi = int((await host.command("AT+CSQ"))[0].split(":")[1].split(",")[0])
    assert 0 <= rssi <= 31
    host.close()


@pytest.mark.parametrize("i,command,answer", [
    (0, "AT+CCID", "+CCID: {iccid}"),
    (1, "AT+QCCID", "+QCCID: {iccid}"),
    (2, 'AT^ICCID?', '^ICCID: "{swapped}"'),
])
async def test_vendor_iccid(emu: Emulator, i: int, command: str, answer: str) -> None:
    host = await _host(emu, i)
    sim = emu.modems[i].sim
    assert (await host.command(command))[0] == answer.format(iccid=sim.iccid, swapped=sim.iccid_swapped)
    host.close()


async def test_vendor_commands_are_not_shared(emu: Emulator) -> None:
    simcom, quectel, huawei, generic = [await _host(emu, i) for i in range(4)]
    assert (await simcom.command("AT+QCCID"))[-1] == "ERROR"
    assert (await quectel.command("AT+CCID"))[-1] == "ERROR"
    assert (await huawei.command("AT^CVOICE?")) == ["^CVOICE: 0,8000,16,20", "OK"]
    assert (await quectel.command("AT^CVOICE?"))[-1] == "ERROR"
    assert (await generic.command("AT^CVOICE?")) == ["COMMAND NOT SUPPORT"]
    assert (await generic.command("AT+CLCC=1")) == ["ERROR"]
    assert (await simcom.command("AT+CLCC=1")) == ["OK"]
    assert (await generic.command("AT+CNMI=2,1,0,2,0")) == ["+CMS ERROR: 303"]
    assert (await generic.command("AT+CNMI=2,1,0,1,0")) == ["OK"]
    assert (await simcom.command("AT+CNMI=2,1,0,2,0")) == ["OK"]
    for h in (simcom, quectel, huawei, generic):
        h.close()


async def test_echo_verbose_and_cmee(emu: Emulator) -> None:
    host = AtHost(emu.modems[0].port)
    # echo is on after power-up: the command comes back byte for byte, then the result
    assert await host.command("AT") == ["AT", "OK"]
    assert bytes(host.raw) == b"AT\r\r\nOK\r\n"
    assert await host.command("ATE0") == ["ATE0", "OK"]
    host.raw.clear()
    assert await host.command("AT") == ["OK"]
    assert bytes(host.raw) == b"\r\nOK\r\n"
    # unknown command: ERROR, then the numeric and the verbose +CME ERROR forms
    assert await host.command("AT+FOO") == ["ERROR"]
    assert await host.command("AT+CMEE=1") == ["OK"]
    assert await host.command("AT+FOO") == ["+CME ERROR: 100"]
    assert await host.command("AT+CMEE=2") == ["OK"]
    assert await host.command("AT+FOO") == ["+CME ERROR: unknown"]
    # numeric results after ATV0: "0<CR>" and "4<CR>"
    host.raw.clear()
    assert await host.command("ATV0", numeric=True) == ["0"]
    assert bytes(host.raw) == b"0\r"
    assert await host.command("AT+FOO", numeric=True) == ["+CME ERROR: unknown"]
    assert await host.command("ATV1") == ["OK"]
    assert await host.command("AT") == ["OK"]
    host.close()


async def test_line_endings_and_byte_at_a_time(emu: Emulator) -> None:
    host = await _host(emu, 1)
    assert await host.command("AT+CGMI", end=b"\r\n") == ["Quectel", "OK"]
    for byte in b"AT+CGMM\r":
        host.write(bytes([byte]))
    assert await host.until_final() == [emu.modems[1].model, "OK"]
    # concatenated commands on one line, and garbage before "AT" is ignored
    assert await host.command("\x00\x7fxxAT+CMEE=1;+CGMI") == ["Quectel", "OK"]
    # backspace edits the line
    assert await host.command("AT+CGMX\x08I") == ["Quectel", "OK"]
    host.close()


#: The bank of the PIN tests: every SIM asks for its PIN.
locked = pytest.mark.bank(modems=4, pin_locked=True, control_port=None)


@pytest.mark.parametrize("i", range(4))
@locked
async def test_pin_flow(emu: Emulator, i: int) -> None:
    modem = emu.modems[i]
    host = await _host(emu, i)
    assert await host.command("AT+CMEE=1;+CREG=1") == ["OK"]
    assert await host.command("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert await host.command("AT+CIMI") == ["+CME ERROR: 11"]
    assert await host.command("AT+CREG?") == ["+CREG: 1,0", "OK"]
    assert await host.command('AT+CPIN="0000"') == ["+CME ERROR: 16"]
    assert await host.command('AT+CPIN="1234"') == ["OK"]
    assert await host.expect("+CREG: 2") == "+CREG: 2"
    assert await host.expect("+CREG: 1") == "+CREG: 1"
    if modem.vendor == "huawei":  # chan_dongle: ^RSSI arrives on its own
        assert await host.expect("^RSSI: ") == f"^RSSI: {modem.rssi}"
    assert await host.command("AT+CPIN?") == ["+CPIN: READY", "OK"]
    assert (await host.command("AT+CIMI"))[0] == modem.sim.imsi
    host.close()


@locked
async def test_three_wrong_pins_want_the_puk(emu: Emulator) -> None:
    sim = emu.modems[0].sim
    host = await _host(emu, 0)
    await host.command("AT+CMEE=1")
    for _ in range(3):
        assert await host.command('AT+CPIN="9999"') == ["+CME ERROR: 16"]
    assert await host.command("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
    assert await host.command('AT+CPIN="1234"') == ["+CME ERROR: 12"]
    assert await host.command('AT+CPIN="00000000","4321"') == ["+CME ERROR: 16"]
    assert await host.command(f'AT+CPIN="{sim.puk}","4321"') == ["OK"]
    assert sim.pin_state is PinState.READY and sim.pin == "4321"
    # the PIN is asked again after a reset, and the new PIN works
    assert await host.command("AT+CFUN=1,1") == ["OK"]
    assert await host.command("ATE0") == ["ATE0", "OK"]
    assert await host.command("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert await host.command('AT+CPIN="4321"') == ["OK"]
    host.close()
