"""SMS (PDU submit, status reports direct and stored, inbound), USSD forms, SIM-slot switch."""
from __future__ import annotations

import asyncio

import pytest
from gsmmodem.pdu import decodeSmsPdu, encodeSmsSubmitPdu

from modem_drivers.emulator import Emulator, SmsStatus, Timing
from modem_drivers.emulator._pdu import from_ucs2_hex, ucs2_hex, ussd_unpack
from modem_drivers.emulator.host import AtHost

pytestmark = pytest.mark.bank(modems=4, sims_per_modem=2, control_port=None)


async def _host(emu: Emulator, i: int) -> AtHost:
    host = AtHost(emu.modems[i].port)
    assert (await host.command("ATE0"))[-1] == "OK"
    assert await host.command("AT+CMGF=0") == ["OK"]
    return host




async def _cmgs(host: AtHost, number: str, text: str, *, reference: int = 0) -> list[int]:
    mrs = []
    for pdu in encodeSmsSubmitPdu(number, text, reference=reference, requestStatusReport=True):
        host.write(f"AT+CMGS={pdu.tpduLength}\r".encode())
        await host.prompt()
        host.write(str(pdu).encode() + b"\x1a")
        lines = await host.until_final()
        assert lines[-1] == "OK" and lines[-2].startswith("+CMGS: "), lines
        mrs.append(int(lines[-2].split(": ")[1]))
    return mrs


async def test_submit_with_stored_status_report(emu: Emulator) -> None:
    """SIMCom accepts ds=2: the report is stored in SR and announced with +CDSI."""
    host = await _host(emu, 0)
    assert await host.command("AT+CNMI=2,1,0,2,0") == ["OK"]
    number = "+48601012345"
    [mr] = await _cmgs(host, number, "Prosimy o kontakt")
    index = int((await host.expect('+CDSI: "SR",')).split(",")[1])
    assert await host.command('AT+CPMS="SR"') == ["+CPMS: 1,50,0,50,0,50", "OK"]
    lines = await host.command(f"AT+CMGR={index}")
    assert lines[0].startswith("+CMGR: 0,,") and lines[-1] == "OK"
    report = decodeSmsPdu(lines[1])
    assert report["type"] == "SMS-STATUS-REPORT"
    assert (report["reference"], report["number"], report["status"]) == (mr, number, 0x00)
    assert int(lines[0].split(",")[2]) == report["tpdu_length"]
    assert await host.command(f"AT+CMGD={index}") == ["OK"]
    assert await host.command(f"AT+CMGR={index}") == ["+CMS ERROR: 321"]
    assert await host.command('AT+CPMS="SM"') == ["+CPMS: 0,50,0,50,0,50", "OK"]
    [record] = emu.network.sms
    assert (record.to, record.text, record.status) == (number, "Prosimy o kontakt", SmsStatus.DELIVERED)
    assert record.sender == emu.modems[0].sim.msisdn
    host.close()


@pytest.mark.parametrize("behaviour,statuses,final", [
    (0, [0x00], SmsStatus.DELIVERED),
    (5, [0x30, 0x46], SmsStatus.EXPIRED),
    (6, [0x41], SmsStatus.FAILED),
])
async def test_direct_status_reports_follow_the_plan(emu: Emulator, behaviour: int, statuses: list[int], final: SmsStatus) -> None:
    """The generic modem refuses ds=2, the driver falls back to ds=1: reports come as +CDS."""
    host = await _host(emu, 3)
    assert await host.command("AT+CNMI=2,1,0,2,0") == ["+CMS ERROR: 303"]
    assert await host.command("AT+CNMI=2,1,0,1,0") == ["OK"]
    number = f"+48600{behaviour}00001"  # 60 O=0 B=behaviour
    [mr] = await _cmgs(host, number, "Test")
    for status in statuses:
        header = await host.expect("+CDS: ")
        pdu = await host.next_line()
        report = decodeSmsPdu(pdu)
        assert (report["reference"], report["status"]) == (mr, status)
        assert int(header.split(": ")[1]) == report["tpdu_length"]
    assert emu.network.sms[-1].status is final
    host.close()


async def test_concatenated_message_is_reassembled(emu: Emulator) -> None:
    host = await _host(emu, 1)
    await host.command("AT+CNMI=2,1,0,2,0")
    text = "Dzien dobry, prosimy o kontakt w sprawie zadluzenia. " * 4
    mrs = await _cmgs(host, "+48602012345", text, reference=42)
    assert len(mrs) == 2 and mrs[0] != mrs[1]
    for _ in range(100):  # the first +CDSI may have arrived inside the second AT+CMGS reply
        if bytes(host.raw).count(b'+CDSI: "SR",') == 2:
            break
        await asyncio.sleep(0.01)
    assert bytes(host.raw).count(b'+CDSI: "SR",') == 2
    [record] = emu.network.sms
    assert (record.text, record.parts, record.references, record.status) == (text, 2, mrs, SmsStatus.DELIVERED)
    host.close()


async def test_cmgs_cancel_and_bad_length(emu: Emulator) -> None:
    host = await _host(emu, 0)
    pdu = encodeSmsSubmitPdu("+48601012345", "x")[0]
    host.write(f"AT+CMGS={pdu.tpduLength}\r".encode())
    await host.prompt()
    host.write(str(pdu).encode() + b"\x1b")  # ESC cancels (27.005 §3.5.1)
    assert await host.until_final() == ["OK"]
    host.write(f"AT+CMGS={pdu.tpduLength + 1}\r".encode())
    await host.prompt()
    host.write(str(pdu).encode() + b"\x1a")
    assert await host.until_final() == ["+CMS ERROR: 304"]
    assert emu.network.sms == []
    host.close()


async def test_inbound_sms_stored_and_direct(emu: Emulator) -> None:
    modem = emu.modems[0]
    host = await _host(emu, 0)
    await host.command("AT+CNMI=2,1,0,2,0")
    await emu.inbound_sms("+48601012345", modem.sim.msisdn, "Zapłacę jutro")
    index = int((await host.expect('+CMTI: "SM",')).split(",")[1])
    lines = await host.command(f"AT+CMGR={index}")
    deliver = decodeSmsPdu(lines[1])
    assert (deliver["type"], deliver["number"], deliver["text"]) == ("SMS-DELIVER", "+48601012345", "Zapłacę jutro")
    assert await host.command("AT+CNMI=2,2,0,2,0") == ["OK"]
    long_text = "Oddzwonie po poludniu. " * 10
    await emu.inbound_sms("+48601012345", modem.sim.msisdn, long_text)
    parts = []
    for _ in range(2):
        header = await host.expect("+CMT: ,")
        pdu = decodeSmsPdu(await host.next_line())
        assert int(header.split(",")[1]) == pdu["tpdu_length"]
        parts.append(pdu["text"])
    assert "".join(parts) == long_text
    host.close()


async def _cusd(host: AtHost) -> str:
    """The +CUSD URC; its string may contain CR LF, so join lines until the closing quote."""
    line = await host.expect("+CUSD: ")
    while line.count('"') == 1:
        line += "\r\n" + await host.next_line()
    return line


async def test_ussd_in_every_form(emu: Emulator) -> None:
    balance = "Saldo: 12,34 PLN.\r\nKonto wazne do 31.12.2026"
    simcom, huawei = await _host(emu, 0), await _host(emu, 2)
    assert await simcom.command('AT+CUSD=1,"*100#",15') == ["OK"]
    assert await _cusd(simcom) == f'+CUSD: 0,"{balance}",15'
    assert await simcom.command('AT+CSCS="UCS2"') == ["OK"]
    assert await simcom.command(f'AT+CUSD=1,"{ucs2_hex("*100#")}",15') == ["OK"]
    answer = await _cusd(simcom)
    assert from_ucs2_hex(answer.split('"')[1]) == balance
    assert await simcom.command(f'AT+CUSD=1,"{ucs2_hex("*999#")}",15') == ["OK"]
    assert await _cusd(simcom) == "+CUSD: 4"
    assert await huawei.command('AT+CUSD=1,"AA180C3602",15') == ["OK"]
    packed = (await _cusd(huawei)).split('"')[1]
    assert all(c in "0123456789ABCDEF" for c in packed) and ussd_unpack(packed) == balance
    simcom.close()
    huawei.close()


@pytest.mark.parametrize("i,command", [(0, "+CSUS"), (1, "+QDSIM"), (3, "+CSUS")])
async def test_slot_switch(emu: Emulator, i: int, command: str) -> None:
    modem = emu.modems[i]
    host = await _host(emu, i)
    assert await host.command("AT+CREG=2") == ["OK"]
    before = (await host.command("AT+CNUM"))[0]
    assert before == f'+CNUM: "","{modem.sims[0].msisdn}",145'
    assert await host.command(f"AT{command}?") == [f"{command}: 0", "OK"]
    assert await host.command(f"AT{command}=1") == ["OK"]
    assert await host.expect("+CREG: 2") == "+CREG: 2"
    assert await host.expect("+CREG: 1") == f'+CREG: 1,"{modem.lac}","{modem.ci}",7'
    assert await host.command(f"AT{command}?") == [f"{command}: 1", "OK"]
    new = modem.sims[1]
    assert await host.command("AT+CNUM") == [f'+CNUM: "","{new.msisdn}",145', "OK"]
    assert await host.command("AT+CIMI") == [new.imsi, "OK"]
    assert await host.command("AT+CRSM=176,12258,0,0,10") == [f'+CRSM: 144,0,"{new.iccid_swapped}"', "OK"]
    assert await host.command("AT+COPS=3,2;+COPS?") == [f'+COPS: 0,2,"{new.mcc_mnc}",7', "OK"]
    assert await host.command(f"AT{command}=2") == ["ERROR"]
    host.close()


async def test_huawei_has_no_slot_switch(emu: Emulator) -> None:
    host = await _host(emu, 2)
    assert await host.command("AT+CSUS=1") == ["ERROR"]
    assert emu.modems[2].active_slot == 0
    host.close()


@pytest.mark.bank(modems=1, timing=Timing.REALISTIC, control_port=None)
async def test_realistic_sms_takes_its_time(emu: Emulator) -> None:
    host = await _host(emu, 0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await _cmgs(host, "+48601012345", "x")
    elapsed = loop.time() - t0
    # Realistic timing injects the submission delay (1–3 s); only its guaranteed
    # minimum is asserted, an upper bound would measure CI load, not the emulator.
    assert elapsed >= 1.0
    host.close()
