"""The call state machine driven directly, and the vendor URC parsers."""
from __future__ import annotations

import asyncio

import pytest

from modem_drivers import call as c
from modem_drivers.call import Call, CallState
from modem_drivers.q850 import CallOutcome


async def test_forward_moves_and_duplicates():
    call = Call("+48600000123")
    assert call.advance(CallState.ALERTING)
    assert not call.advance(CallState.ALERTING)  # duplicate
    assert not call.advance(CallState.DIALING)  # backwards: ignored
    assert call.advance(CallState.ACTIVE)
    assert call.advance(CallState.RELEASED, 16)
    assert not call.advance(CallState.ACTIVE)
    assert call.state is CallState.RELEASED and call.cause == 16
    rep = call.report()
    assert rep.outcome is CallOutcome.ANSWERED_HUMAN
    assert rep.alerting_at is not None and rep.answered_at is not None


async def test_skipping_states_and_outcome_of_busy():
    call = Call("+48602000123")
    assert call.advance(CallState.RELEASED, 17)
    assert call.report().outcome is CallOutcome.BUSY
    assert call.report().alerting_at is None


async def test_every_table_move_is_allowed_and_others_are_not():
    for src, dests in c.TRANSITIONS.items():
        for dst in CallState:
            call = Call("+48600000000")
            call.state = src
            moved = call.advance(dst)
            assert moved == (dst in dests), (src, dst)


async def test_wait_for_wakes_on_release():
    call = Call("+48600000123")

    async def later():
        await asyncio.sleep(0.01)
        call.advance(CallState.RELEASED, 20)

    asyncio.get_running_loop().create_task(later())
    assert await call.wait_for(CallState.ACTIVE, timeout=1) is CallState.RELEASED
    with pytest.raises(TimeoutError):
        await Call("+48600000123").wait_for(CallState.ACTIVE, timeout=0.01)


async def test_wait_for_a_state_the_call_skipped():
    call = Call("+48600000123")

    async def answered_at_once():
        await asyncio.sleep(0.01)
        call.advance(CallState.ACTIVE, None)  # no ALERTING: some networks answer at once

    asyncio.get_running_loop().create_task(answered_at_once())
    assert await call.wait_for(CallState.ALERTING, timeout=1) is CallState.ACTIVE
    assert await call.wait_for(CallState.ALERTING, timeout=0.01) is CallState.ACTIVE  # already past it


@pytest.mark.parametrize(
    "line, parser, expected",
    [
        ('+CLCC: 1,0,2,0,0,"+48600000123",145', c.parse_clcc, (CallState.DIALING, None)),
        ('+CLCC: 1,0,3,0,0,"+48600000123",145', c.parse_clcc, (CallState.ALERTING, None)),
        ('+CLCC: 1,0,0,0,0,"+48600000123",145', c.parse_clcc, (CallState.ACTIVE, None)),
        ('+CLCC: 1,0,6,0,0,"+48600000123",145', c.parse_clcc, (CallState.RELEASED, None)),
        ('+CLCC: 1,1,4,0,0,"+48600000123",145', c.parse_clcc, None),  # incoming: not ours
        ("+CLCC: garbage", c.parse_clcc, None),
        ('^DSCI: 1,0,3,0,"+48600000123",145', c.parse_dsci, (CallState.ALERTING, None)),
        ("^ORIG: 1,0", c.parse_huawei, (CallState.DIALING, None)),
        ("^CONF: 1", c.parse_huawei, (CallState.ALERTING, None)),
        ("^CONN: 1,0", c.parse_huawei, (CallState.ACTIVE, None)),
        ("^CEND: 1,0,104,17", c.parse_huawei, (CallState.RELEASED, 17)),
        ("^CEND: 1,12,104,16", c.parse_huawei, (CallState.RELEASED, 16)),
        ("VOICE CALL: BEGIN", c.parse_voice_call, (CallState.ACTIVE, None)),
        ("VOICE CALL: END: 000012", c.parse_voice_call, (CallState.RELEASED, None)),
        ("BUSY", c.parse_release_final, (CallState.RELEASED, 17)),
        ("NO CARRIER", c.parse_release_final, (CallState.RELEASED, None)),
    ],
)
def test_vendor_call_lines(line, parser, expected):
    assert parser(line) == expected
