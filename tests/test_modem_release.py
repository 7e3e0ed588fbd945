"""A call the network refuses at once, on a modem whose release cause comes in its own
URC (Huawei ^CEND, no +CEER): the bare NO CARRIER may come first — as a URC, or as
ATD's final result — and the cause must still be the one ^CEND carries."""
from __future__ import annotations

import pytest

from common.contract import Outcome
from modem_drivers.call import CallState
from modem_drivers.modem import CAUSE_URC_GRACE, Modem
from tests.at_peer import Peer


class _OkByDefault(dict):
    """Replies for a scripted Huawei: anything not scripted is simply OK."""

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        return super().get(key, b"\r\nOK\r\n")


def huawei(peer: Peer) -> None:
    peer.replies = _OkByDefault({
        "AT+CGMI": b"\r\nhuawei\r\n\r\nOK\r\n",
        "AT+CGMM": b"\r\nE1750\r\n\r\nOK\r\n",
        "AT+CPIN?": b"\r\n+CPIN: READY\r\n\r\nOK\r\n",
        "AT+CEER": b"\r\nERROR\r\n",  # must not be needed
    })


@pytest.mark.parametrize("no_carrier_as", ["final", "urc"])
async def test_cause_from_cend_after_a_bare_no_carrier(tmp_path, no_carrier_as: str) -> None:
    peer = Peer(tmp_path)
    huawei(peer)
    number = "+48601600123"

    def dial(p: Peer, command: str) -> bytes:
        # unassigned number (Q.850 cause 1): refused before alerting; ^CEND 0.2 s later
        p.later(0.2, b"\r\n^CEND: 1,0,104,1\r\n")
        if no_carrier_as == "final":
            return b"\r\nNO CARRIER\r\n"
        p.later(0.05, b"\r\nNO CARRIER\r\n")
        return b"\r\nOK\r\n"

    peer.replies[f"ATD{number};"] = dial
    modem = await Modem.open(str(peer.link), name="huawei-peer")
    try:
        assert modem.dialect.name == "huawei"
        call = await modem.dial(number)
        await call.wait_released(CAUSE_URC_GRACE + 1.0)
        assert call.state is CallState.RELEASED
        rep = call.report()
        assert (rep.outcome, rep.cause) == (Outcome.INVALID_NUMBER, 1)
        assert "AT+CEER" not in peer.received
    finally:
        await modem.close()
        peer.close()
