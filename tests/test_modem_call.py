"""The call state machine driven directly, and the vendor call-progress readers."""
from __future__ import annotations

import asyncio

import pytest

from common.contract import Outcome
from modem_drivers import call as c
from modem_drivers.call import Call, CallState
from modem_drivers.dialects import progress as p


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
    assert rep.outcome is Outcome.ANSWERED_HUMAN
    assert rep.alerting_at is not None and rep.answered_at is not None


async def test_skipping_states_and_outcome_of_busy():
    call = Call("+48602000123")
    assert call.advance(CallState.RELEASED, 17)
    assert call.report().outcome is Outcome.BUSY
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
        ('+CLCC: 1,0,2,0,0,"+48600000123",145', p.parse_clcc, (CallState.DIALING, None)),
        ('+CLCC: 1,0,3,0,0,"+48600000123",145', p.parse_clcc, (CallState.ALERTING, None)),
        ('+CLCC: 1,0,0,0,0,"+48600000123",145', p.parse_clcc, (CallState.ACTIVE, None)),
        ('+CLCC: 1,0,6,0,0,"+48600000123",145', p.parse_clcc, (CallState.RELEASED, None)),
        ('+CLCC: 1,1,4,0,0,"+48600000123",145', p.parse_clcc, None),  # incoming: not ours
        ("+CLCC: garbage", p.parse_clcc, None),
        ('^DSCI: 1,0,3,0,"+48600000123",145', p.parse_dsci, (CallState.ALERTING, None)),
        ("^ORIG: 1,0", p.parse_huawei, (CallState.DIALING, None)),
        ("^CONF: 1", p.parse_huawei, (CallState.ALERTING, None)),
        ("^CONN: 1,0", p.parse_huawei, (CallState.ACTIVE, None)),
        ("^CEND: 1,0,104,17", p.parse_huawei, (CallState.RELEASED, 17)),
        ("^CEND: 1,12,104,16", p.parse_huawei, (CallState.RELEASED, 16)),
        ("VOICE CALL: BEGIN", p.parse_voice_call, (CallState.ACTIVE, None)),
        ("VOICE CALL: END: 000012", p.parse_voice_call, (CallState.RELEASED, None)),
        ("BUSY", p.parse_release_final, (CallState.RELEASED, 17)),
        ("NO CARRIER", p.parse_release_final, (CallState.RELEASED, None)),
    ],
)
def test_vendor_call_lines(line, parser, expected):
    assert parser(line) == expected


# -- the call's own state changes (the modem calls these; nobody writes its fields) -------


async def test_release_reported_is_true_once_and_never_after_the_release():
    call = Call("+48600000123")
    assert call.release_reported() and call.releasing
    assert not call.release_reported()  # the cause is already being asked
    assert call.release(17) and call.cause == 17
    done = Call("+48600000123")
    done.release(16)
    assert not done.release_reported()


async def test_channel_failed_releases_as_a_channel_error_unless_answered():
    call = Call("+48600000123")
    assert call.channel_failed() and call.channel_lost and call.released and call.cause is None
    assert call.report().outcome is Outcome.CHANNEL_ERROR
    assert not call.channel_failed()  # once released, nothing changes
    answered = Call("+48600000123")
    answered.advance(CallState.ACTIVE)
    answered.channel_failed()
    assert answered.report().outcome is not Outcome.CHANNEL_ERROR


async def test_hung_up_is_a_local_release_and_keeps_the_modems_cause():
    call = Call("+48600000123")
    call.advance(CallState.ACTIVE)
    call.hung_up(16)
    assert call.local_release and call.released and call.cause == 16
    reported = Call("+48600000123")
    reported.release(31)  # the modem's report came first: its cause stands
    reported.hung_up(16)
    assert reported.cause == 31 and reported.local_release
    without = Call("+48600000123")
    without.release(None)
    without.hung_up(16)  # a missing cause is filled
    assert without.cause == 16
