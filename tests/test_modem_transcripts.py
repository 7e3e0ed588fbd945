"""Real modem replies the driver got wrong (issue 12 item 7), replayed through the whole
stack: a scripted modem on a real pseudo-terminal (tests/at_peer.py), the AT port, the
Modem. Every transcript names where it was captured; each test fails on the driver
before the fix.

Sources:
* ModemManager src/tests/test-modem-helpers.c, the +CREG/+CGREG/+CEREG tables (MM);
* ModemManager src/plugins/simtech/tests/test-modem-helpers-simtech.c ("^CIEV: 1,0",
  "MISSED_CALL: 11:01AM 07712345678");
* python-gsmmodem issue #19 (Wavecom M1306B: AT+CPIN? answered "+CPIN: READY", no OK);
* asterisk-chan-dongle test/parse.c (``+CMTI: "ME",41``, ``+CMTI: 0,111``);
* Gammu's AT driver (Siemens MC35: ``+CMGR: 0,,0`` for an empty slot);
* dreamfabric.com/sms/ SMS-DELIVER example ("hellohello" from +27838890001).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from common.contract import Outcome
from modem_drivers.at import AtTimeout
from modem_drivers.call import CallState
from modem_drivers.errors import NotRegistered
from modem_drivers.modem import Modem
from modem_drivers.registration import decisive, parse_registration
from modem_drivers.types import (
    RegDomain,
    RegistrationChanged,
    RegStat,
    SmsReceived,
    SmsUndecodable,
)
from tests.at_peer import Peer

HELLO_PDU = b"07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"


class _OkByDefault(dict):  # type: ignore[type-arg]
    """Replies of a scripted modem: anything not scripted is simply OK."""

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        return super().get(key, b"\r\nOK\r\n")


def scripted(peer: Peer, manufacturer: bytes = b"Emulated Wireless Inc.", model: bytes = b"GSM-27007") -> None:
    """A 27.007 modem, registered, SIM ready; tests override single replies."""
    peer.replies = _OkByDefault({
        "AT+CGMI": b"\r\n" + manufacturer + b"\r\n\r\nOK\r\n",
        "AT+CGMM": b"\r\n" + model + b"\r\n\r\nOK\r\n",
        "AT+CPIN?": b"\r\n+CPIN: READY\r\n\r\nOK\r\n",
        "AT+CREG?": b"\r\n+CREG: 2,1,\"00C3\",\"1A2B\"\r\n\r\nOK\r\n",
    })


async def opened(peer: Peer, **kw: object) -> Modem:
    modem = await Modem.open(str(peer.link), name="peer", **kw)  # type: ignore[arg-type]
    modem.port.abandoned_grace = 0.2
    return modem


@pytest.fixture
async def peer(tmp_path) -> AsyncIterator[Peer]:
    p = Peer(tmp_path, echo=False)
    yield p
    p.close()


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


# -- 1, 2: registration reports by field count, stat values above 5 ---------------------

#: (line, stat, lac, ci, technology, domain) — ModemManager's tables, solicited and not.
MM_REGISTRATION = [
    ("+CREG: 1,3", RegStat.DENIED, None, None, None),
    ("+CREG: 3", RegStat.DENIED, None, None, None),
    ("+CREG: 11", RegStat.RLOS, None, None, None),
    ("+CREG: 1,1,84CD,00D30173", RegStat.HOME, "84CD", "00D30173", None),  # Sierra Mercury
    ("+CREG: 1,84CD,00D30156", RegStat.HOME, "84CD", "00D30156", None),
    ("+CREG: 11,\"33FE\",\"a3fb477\"", RegStat.RLOS, "33FE", "a3fb477", None),
    ("+CREG: 2,1,\"CE00\",\"01CEAD8F\"", RegStat.HOME, "CE00", "01CEAD8F", None),  # SE K850i
    ("+CREG: 1,\"CE00\",\"00005449\"", RegStat.HOME, "CE00", "00005449", None),
    ("+CREG: 2,0,00,0", RegStat.NOT_REGISTERED, "00", "0", None),  # Huawei E160G
    ("+CREG: 2,1,8BE3,2BAF", RegStat.HOME, "8BE3", "2BAF", None),
    ("+CREG: 1,8BE3,2BAF", RegStat.HOME, "8BE3", "2BAF", None),
    ("+CREG: 2,,", RegStat.SEARCHING, None, None, None),  # Novatel XU870
    ("+CREG:002,001,\"18d8\",\"ffff\"", RegStat.HOME, "18d8", "ffff", None),  # Iridium
    ("+CREG:2,1,0001,0010", RegStat.HOME, "0001", "0010", None),
    ("+CREG: 1,0001,0010,0", RegStat.HOME, "0001", "0010", "GSM"),
    ("+CREG: 001,\"0001\",\"0010\",000", RegStat.HOME, "0001", "0010", "GSM"),
    ("+CREG: 10,0001,0010,0", RegStat.CSFB_NOT_PREFERRED_ROAMING, "0001", "0010", "GSM"),
    ("+CREG: 0011,\"0001\",\"0010\",000", RegStat.RLOS, "0001", "0010", "GSM"),
    ("+CREG: 2,6,\"8B37\",\"0A265185\",7", RegStat.SMS_ONLY_HOME, "8B37", "0A265185", "E-UTRAN"),  # u-blox
    ("+CREG: 6,\"8B37\",\"0A265185\",7", RegStat.SMS_ONLY_HOME, "8B37", "0A265185", "E-UTRAN"),
    ("+CREG: 2,5,\"0502\",\"0404736D\"", RegStat.ROAMING, "0502", "0404736D", None),  # MD400 URC with <n>
    ("+CREG: 2,1,000B,2816, B, C2816", RegStat.HOME, "000B", "2816", None),  # Samsung S8500
    ("+CREG: 2,11,003F,8FE3, B, C2816", RegStat.RLOS, "003F", "8FE3", None),
    ("+CGREG: 2,1,\"8BE3\",\"00002B5D\",3", RegStat.HOME, "8BE3", "00002B5D", "GSM/EGPRS"),  # F3607gw
    ("+CGREG: 5,\"0502\",\"0404736D\",2", RegStat.ROAMING, "0502", "0404736D", "UTRAN"),
    ("+CGREG: 2,1, 81ED, 1A9CEB", RegStat.HOME, "81ED", "1A9CEB", None),  # Alcatel X220D URC with <n>
    ("+CGREG: 1,\"1422\",\"00000142\",3,\"00\"", RegStat.HOME, "1422", "00000142", "GSM/EGPRS"),  # RAC
    ("+CGREG:2,10,ebbd,f025", RegStat.CSFB_NOT_PREFERRED_ROAMING, "ebbd", "f025", None),
    ("+CGREG:002,0011,\"0f0d\",\"14c3\"", RegStat.RLOS, "0f0d", "14c3", None),
    ("+CGREG: 2, 1, \"0426\", \"F00F\"", RegStat.HOME, "0426", "F00F", None),  # Thuraya
    ("+CEREG: 1,3", RegStat.DENIED, None, None, None),
    ("+CEREG: 2,1, 1F00, 79D903 ,7", RegStat.HOME, "1F00", "79D903", "E-UTRAN"),
    ("+CEREG: 1, 1F00, 79D903 ,7", RegStat.HOME, "1F00", "79D903", "E-UTRAN"),
    ("+CEREG: 2,10,\"8d83\",\"671f98a\",7", RegStat.CSFB_NOT_PREFERRED_ROAMING, "8d83", "671f98a", "E-UTRAN"),
    ("+CEREG: 2,10, 2CA8, 20 ,B5583D ,7", RegStat.CSFB_NOT_PREFERRED_ROAMING, "2CA8", "B5583D", "E-UTRAN"),
    ("+CEREG: 11, 78FE, 20 ,14419E ,7", RegStat.RLOS, "78FE", "14419E", "E-UTRAN"),
    ("+CEREG: 1, 2, 0001, 00000100, 7", RegStat.SEARCHING, "0001", "00000100", "E-UTRAN"),  # Altair URC with <n>
    ("+CEREG: 2, 0001, 00000100, 7", RegStat.SEARCHING, "0001", "00000100", "E-UTRAN"),
    ("+CEREG: 2,1, 1F00, 20 ,79D903 ,7", RegStat.HOME, "1F00", "79D903", "E-UTRAN"),  # Novatel E362
    ("+CEREG: 1, 1F00, 20 ,79D903 ,7", RegStat.HOME, "1F00", "79D903", "E-UTRAN"),
]


@pytest.mark.parametrize(("line", "stat", "lac", "ci", "tech"), MM_REGISTRATION, ids=[r[0] for r in MM_REGISTRATION])
def test_registration_reports_read_by_field_count(line, stat, lac, ci, tech) -> None:
    reg = parse_registration(line)
    assert reg is not None
    assert (reg.stat, reg.lac, reg.ci, reg.technology) == (stat, lac, ci, tech)
    assert reg.domain is RegDomain(line.partition(":")[0])


def test_unreadable_registration_lines() -> None:
    for line in ("+CREG:", "+CREG: x", '+CREG: "1"', "+CSQ: 20,99", "CREG 1"):
        assert parse_registration(line) is None, line


@pytest.mark.parametrize(
    ("value", "registered", "roaming", "voice"),
    [(0, False, False, False), (1, True, False, True), (2, False, False, False), (3, False, False, False),
     (4, False, False, False), (5, True, True, True), (6, True, False, False), (7, True, True, False),
     (8, False, False, False), (9, True, False, True), (10, True, True, True), (11, False, False, False),
     (12, False, False, False), (99, False, False, False)],
)
def test_stat_values_of_27007_mean_what_they_say(value, registered, roaming, voice) -> None:
    stat = RegStat.of(value)
    assert (stat.registered, stat.roaming, stat.voice) == (registered, roaming, voice)
    assert (stat is RegStat.UNKNOWN) == (value in (4, 12, 99))


async def test_creg_urc_that_carries_n_keeps_a_registered_modem_registered(peer) -> None:
    # After AT+CREG=2 some modems send the URC in the read form (MM: Sony-Ericsson MD400
    # "+CREG: 2,5,...", Altair "+CEREG: 1, 2, ..."); read by position it says "searching".
    scripted(peer)
    modem = await opened(peer)
    try:
        got: list = []
        modem.subscribe(got.append)
        peer.send(b'\r\n+CREG: 2,1,"1A2B","00C3A1F",7\r\n')
        await until(lambda: any(isinstance(e, RegistrationChanged) for e in got))
        reg = next(e for e in got if isinstance(e, RegistrationChanged)).registration
        assert (reg.stat, reg.lac, reg.ci, reg.technology) == (RegStat.HOME, "1A2B", "00C3A1F", "E-UTRAN")
        assert reg.registered and modem.registration == reg
    finally:
        await modem.close()


async def test_sms_only_registration_is_registered_but_not_for_voice(peer) -> None:
    # u-blox TOBY-L2 on LTE (MM test_creg2_ublox_solicited): stat 6 = registered, SMS only.
    scripted(peer)
    peer.replies["AT+CREG?"] = b'\r\n+CREG: 2,6,"8B37","0A265185",7\r\n\r\nOK\r\n'
    modem = await opened(peer)
    try:
        reg = await modem.require_registered()
        assert reg.stat is RegStat.SMS_ONLY_HOME and reg.registered and not reg.voice
    finally:
        await modem.close()


# -- 7: LTE modems register in +CEREG ---------------------------------------------------


async def test_lte_only_network_registration_comes_from_cereg(peer) -> None:
    scripted(peer)
    peer.replies["AT+CREG?"] = b"\r\n+CREG: 2,0\r\n\r\nOK\r\n"  # no CS service on LTE-only
    peer.replies["AT+CEREG?"] = b'\r\n+CEREG: 2,1,"1F00","079D903",7\r\n\r\nOK\r\n'
    peer.replies["AT+CGREG?"] = b"\r\n+CGREG: 2,4\r\n\r\nOK\r\n"
    modem = await opened(peer)
    try:
        assert {"AT+CREG=2", "AT+CEREG=2", "AT+CGREG=2"} <= set(peer.received)
        reg = await modem.require_registered()
        assert (reg.domain, reg.stat, reg.technology) == (RegDomain.EPS, RegStat.HOME, "E-UTRAN")
        assert modem.registrations[RegDomain.CS].stat is RegStat.NOT_REGISTERED
        assert modem.registrations[RegDomain.GPRS].stat is RegStat.UNKNOWN
        # the URC path: +CEREG says searching, then registered roaming
        got: list = []
        modem.subscribe(got.append)
        peer.send(b"\r\n+CEREG: 2\r\n\r\n+CEREG: 5,\"1F00\",\"079D903\",7\r\n")
        await until(lambda: len([e for e in got if isinstance(e, RegistrationChanged)]) == 2)
        first, second = (e.registration for e in got if isinstance(e, RegistrationChanged))
        assert not first.registered and first.domain is RegDomain.CS  # nothing registered: +CREG's state
        assert (second.stat, second.domain) == (RegStat.ROAMING, RegDomain.EPS)
    finally:
        await modem.close()


async def test_modem_without_cereg_opens_and_is_asked_creg_only(peer) -> None:
    scripted(peer)
    peer.replies["AT+CEREG=2"] = b"\r\nERROR\r\n"  # a 2G modem (SIM800): tolerated
    peer.replies["AT+CGREG=2"] = b"\r\nERROR\r\n"
    peer.replies["AT+CREG?"] = b"\r\n+CREG: 2,2\r\n\r\nOK\r\n"
    modem = await opened(peer)
    try:
        with pytest.raises(NotRegistered, match=r"\+CREG: searching"):
            await modem.require_registered()
        assert "AT+CEREG?" not in peer.received and "AT+CGREG?" not in peer.received
    finally:
        await modem.close()


def test_cs_registration_decides_before_eps() -> None:
    cs = parse_registration("+CREG: 3")
    eps = parse_registration('+CEREG: 1,"1F00","79D903",7')
    assert cs is not None and eps is not None
    assert decisive({RegDomain.CS: cs, RegDomain.EPS: eps}) is eps
    assert decisive({RegDomain.CS: cs}) is cs
    gprs = parse_registration("+CGREG: 1")
    assert gprs is not None and decisive({RegDomain.CS: cs, RegDomain.GPRS: gprs}) is cs  # PS alone: no
    searching = parse_registration("+CEREG: 2")
    assert searching is not None and decisive({RegDomain.EPS: searching}) is None  # nothing decided


# -- 3: +CPIN: READY without OK (Wavecom) ---------------------------------------------


async def test_wavecom_opens_although_cpin_has_no_final(peer) -> None:
    # python-gsmmodem issue #19, a Wavecom M1306B through gsmterm: identification as shown
    # there (leading/trailing spaces kept), and "AT+CPIN?" -> "+CPIN: READY" with no OK.
    scripted(peer, manufacturer=b" WAVECOM MODEM  ", model=b" MULTIBAND  900E  1800 ")
    peer.replies["AT+CGMR"] = b"\r\n430e09gm.3 1207928 020102 14:41\r\n\r\nOK\r\n"
    peer.replies["AT+CPIN?"] = b"\r\n+CPIN: READY\r\n"
    peer.replies["AT+CSQ"] = b"\r\n+CSQ: 19,0\r\n\r\nOK\r\n"
    modem = await opened(peer)
    try:
        assert modem.pin_state.value == "READY"
        assert modem.identity is not None and modem.identity.model == "MULTIBAND  900E  1800"
        assert "AT+CMGF=0" in peer.received  # configured: the SIM counted as ready
        assert (await modem.signal()).rssi == 19  # the queue is in step after the quirk
    finally:
        await modem.close()


# -- 4: vendor URCs inside a reply ------------------------------------------------------


async def test_vendor_urcs_are_never_the_model_name(peer) -> None:
    scripted(peer, manufacturer=b"SIMCOM_Ltd")
    peer.replies["AT+CGMM"] = (b"\r\n^CIEV: 1,0\r\n\r\nMISSED_CALL: 11:01AM 07712345678\r\n"
                               b"\r\nSIMCOM_SIM7600E-H\r\n\r\nOK\r\n")
    peer.replies["AT+CGMR"] = b"\r\n^BOOT:12345,0,0,0,6\r\n\r\n+CGMR: LE11B12SIM7600M22\r\n\r\nOK\r\n"
    modem = await opened(peer)
    try:
        assert modem.identity is not None
        assert (modem.identity.model, modem.identity.revision) == ("SIMCOM_SIM7600E-H", "LE11B12SIM7600M22")
        assert modem.dialect.name == "simcom"
    finally:
        await modem.close()


async def test_vendor_urc_before_a_stored_message_is_not_its_pdu(peer) -> None:
    scripted(peer)
    peer.replies["AT+CMGR=3"] = (b"\r\nMISSED_CALL: 11:01AM 07712345678\r\n\r\n^CIEV: 1,0\r\n"
                                 b"\r\n+CMGR: 0,,24\r\n" + HELLO_PDU + b"\r\n\r\nOK\r\n")
    modem = await opened(peer)
    try:
        got: list = []
        modem.subscribe(got.append)
        peer.send(b'\r\n+CMTI: "SM",3\r\n')
        await until(lambda: "AT+CMGD=3" in peer.received)
        assert [e.sms.text for e in got if isinstance(e, SmsReceived)] == ["hellohello"]
        assert not any(isinstance(e, SmsUndecodable) for e in got)
    finally:
        await modem.close()


# -- 5: +CMTI variants --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("urc", "index"),
    [(b'+CMTI: "ME",41', 41), (b"+CMTI: 0,111", 111), (b"+CMTI: 3", 3), (b'+CMTI: "SM", 7', 7), (b"+CMTI: ME,9", 9)],
)
async def test_cmti_variants_are_read(peer, urc: bytes, index: int) -> None:
    scripted(peer)
    peer.replies[f"AT+CMGR={index}"] = b"\r\n+CMGR: 0,,24\r\n" + HELLO_PDU + b"\r\n\r\nOK\r\n"
    modem = await opened(peer)
    try:
        got: list = []
        modem.subscribe(got.append)
        peer.send(b"\r\n" + urc + b"\r\n")
        await until(lambda: f"AT+CMGD={index}" in peer.received)
        assert [e.sms.text for e in got if isinstance(e, SmsReceived)] == ["hellohello"]
        named = b'"ME"' in urc or b"ME," in urc
        assert ('AT+CPMS="ME"' in peer.received) == named  # only a named storage is selected
    finally:
        await modem.close()


# -- 6: +CMGR header without its PDU --------------------------------------------------------


async def test_cmgr_without_pdu_keeps_the_slot_and_logs_once(peer, caplog) -> None:
    scripted(peer)
    peer.replies["AT+CMGR=4"] = b"\r\n+CMGR: 0,,0\r\n\r\nOK\r\n"
    modem = await opened(peer)
    try:
        with caplog.at_level(logging.WARNING, logger="modem_drivers.modem"):
            for _ in range(3):
                peer.send(b'\r\n+CMTI: "SM",4\r\n')
            await until(lambda: peer.received.count("AT+CMGR=4") == 3)
            assert (await modem.signal()).rssi >= 0  # the reads are done (one queue)
        assert "AT+CMGD=4" not in peer.received
        assert caplog.text.count("slot 4 answered without a message") == 1
    finally:
        await modem.close()


# -- 8: every way out of a dial clears the driver's call ---------------------------------


async def test_dial_without_answer_clears_the_call_and_owes_a_hangup(peer) -> None:
    scripted(peer)
    peer.silent.add("ATD+48600000123;")  # the modem is stuck while dialing
    modem = await opened(peer)
    try:
        modem.dial_timeout = 0.3
        with pytest.raises(AtTimeout):
            await modem.dial("+48600000123")
        assert modem.call is None
        peer.replies["AT+CSUS=1"] = b"\r\nOK\r\n"
        await modem.switch_slot(1)  # not "cannot switch SIM during a call"
        received = peer.received
        assert received.index("ATH") < received.index("AT+CSUS=1")  # the owed hang-up first
    finally:
        await modem.close()


async def test_reset_of_a_stuck_modem_is_sent_although_a_hangup_is_owed(peer) -> None:
    # The bank restarts a modem that stopped answering (AT+CFUN=1,1 also unsticks it): the
    # owed hang-up must not go first, a stuck modem would time out on it and stay stuck.
    scripted(peer)
    peer.silent.update({"ATD+48600000123;", "ATH"})
    modem = await opened(peer)
    try:
        modem.dial_timeout = 0.3
        with pytest.raises(AtTimeout):
            await modem.dial("+48600000123")
        await modem.reset()
        assert "AT+CFUN=1,1" in peer.received and "ATH" not in peer.received
    finally:
        await modem.close()


async def test_port_lost_during_a_call_hangs_up_first_after_reopen(peer) -> None:
    # A USB glitch need not end the call on the modem: the first command after the port
    # is back is the hang-up, before the re-initialisation.
    scripted(peer)
    modem = await opened(peer)
    try:
        modem.port.reconnect_first = 0.02
        call = await modem.dial("+48600000123")
        peer.vanish()
        await until(lambda: call.released)
        assert call.channel_lost
        before = len(peer.received)
        peer.reappear()
        await until(lambda: "ATE0" in peer.received[before:])
        after = peer.received[before:]
        assert "ATH" in after and after.index("ATH") < after.index("ATE0")
    finally:
        await modem.close()


async def test_cancelled_dial_clears_the_call(peer) -> None:
    scripted(peer)
    peer.silent.add("ATD+48600000123;")
    modem = await opened(peer)
    try:
        modem.dial_timeout = 0.3  # the port holds an abandoned ATD until its deadline
        task = asyncio.ensure_future(modem.dial("+48600000123"))
        await until(lambda: "ATD+48600000123;" in peer.received)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert modem.call is None
        peer.replies["ATD+48600000123;"] = b"\r\nOK\r\n"
        peer.silent.clear()
        call = await modem.dial("+48600000123")  # dials again: no stale call in the way
        assert modem.call is call and "ATH" in peer.received
    finally:
        await modem.close()


async def test_hangup_without_answer_releases_the_call_here(peer, caplog) -> None:
    scripted(peer)
    modem = await opened(peer)
    try:
        call = await modem.dial("+48600000123")
        peer.send(b'\r\n+CLCC: 1,0,0,0,0,"+48600000123",145\r\n')  # not polled: AT+CLCC=1 was OK
        await call.wait_for(CallState.ACTIVE, timeout=5)
        peer.silent.add("ATH")
        with caplog.at_level(logging.WARNING):
            await modem.hangup()  # no exception: the call ends here
        assert call.released and modem.call is None
        assert "hang-up got no answer" in caplog.text
        peer.silent.clear()
        peer.replies["AT+CSUS=1"] = b"\r\nOK\r\n"
        await modem.switch_slot(1)
        assert peer.received.count("ATH") == 2  # the owed one went before the switch
    finally:
        await modem.close()


async def test_refused_dial_with_unanswered_ceer_still_releases(peer) -> None:
    scripted(peer)
    peer.replies["ATD+48601200123;"] = b"\r\nBUSY\r\n"
    peer.silent.add("AT+CEER")
    modem = await opened(peer)
    try:
        call = await asyncio.wait_for(modem.dial("+48601200123"), 10)
        assert call.released and call.report().outcome is Outcome.BUSY
        assert modem.call is None or modem.call.released
    finally:
        await modem.close()


async def test_a_refused_slot_switch_is_a_refusal_not_a_modem_without_slots(peer) -> None:
    """A modem that answers ERROR to one slot switch (no SIM there now, a SIM fault) still
    has its slots: the bank tries again later with backoff. Before, the refusal was
    ``Unsupported`` and the bank cut the channel to one slot for good."""
    from modem_drivers.errors import SlotRefused, Unsupported

    scripted(peer)
    peer.replies["AT+CSUS=1"] = b"\r\nERROR\r\n"  # a bare refusal (no +CME cause)
    modem = await opened(peer)
    try:
        with pytest.raises(SlotRefused) as exc:
            await modem.switch_slot(1)
        assert not isinstance(exc.value, Unsupported) and "slot 1" in str(exc.value)
        peer.replies["AT+CSUS=1"] = b"\r\nOK\r\n"
        await modem.switch_slot(1)
        assert modem.slot == 1
    finally:
        await modem.close()


async def test_setup_after_reopen_is_tried_again_until_the_modem_answers(peer, monkeypatch) -> None:
    """A modem back on USB may not answer its set-up at once (still booting): the driver
    tries again with backoff and reports the port restored when it does — before, one
    failed set-up left the channel "port lost" for good."""
    import modem_drivers.modem.lifecycle as modem_module
    from modem_drivers.types import PortRestored

    monkeypatch.setattr(modem_module, "REINIT_BACKOFF", (0.05, 0.2))  # the test's patience, not the rule
    scripted(peer)
    modem = await opened(peer)
    restored: list[object] = []
    modem.subscribe(lambda ev: restored.append(ev) if isinstance(ev, PortRestored) else None)
    try:
        modem.port.reconnect_first = 0.02
        peer.vanish()
        await until(lambda: modem.port.state.value != "open")
        peer.silent.add("ATE0")  # booting: the first set-up command gets no answer
        before = len(peer.received)
        peer.reappear()
        await until(lambda: peer.received[before:].count("ATE0") >= 1, timeout=10)
        await asyncio.sleep(0.2)
        assert not restored
        peer.silent.discard("ATE0")
        await until(lambda: restored, timeout=15)
        assert peer.received[before:].count("ATE0") >= 2
    finally:
        await modem.close()
