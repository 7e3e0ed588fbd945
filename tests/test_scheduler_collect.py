"""Status reports owed by a SIM in an inactive slot are collected (the slot is visited)
even when nothing else happens: a visit held back by its bounds books a wake-up instead
of waiting for a channel event that, at the quiet end of a run, never comes (e2e run:
an SMS ended ``no_report`` with its reports stored one slot switch away)."""
from __future__ import annotations

from types import SimpleNamespace

from appliance.channel import ChannelState
from appliance.jobs import ReportTracker
from appliance.scheduler.channels import BankSide


def _side(state: ChannelState = ChannelState.IDLE) -> tuple[BankSide, list, list]:
    ch = SimpleNamespace(id="emu009", slots=2, state=state, active_slot=1,
                         sims={0: SimpleNamespace(slot=0, sim_id="sim-a"), 1: SimpleNamespace(slot=1, sim_id="sim-b")})
    tracker = ReportTracker()
    tracker.expect("sim-a", 7)  # an SMS sent from slot 0 awaits its report
    woken: list[int] = []
    side = BankSide(SimpleNamespace(channels={ch.id: ch}), None, None, None, tracker,
                    clock=lambda: 0.0, spawn=lambda coro, what: None, wake=lambda: woken.append(1))
    switches: list[tuple[str, int, str, float]] = []
    side.switch = lambda cid, slot, reason, now: switches.append((cid, slot, reason, now)) or True  # type: ignore[method-assign]
    return side, switches, woken


async def test_an_owed_sim_is_visited_and_a_held_back_visit_books_a_wake_up():
    side, switches, woken = _side()
    side.collect_reports(10.0, interval=5.0)
    assert switches == [("emu009", 0, "collecting status reports", 10.0)]
    # Back on slot 1 at once (another job), the report still owed: within a second the
    # scan is held back, and the wake-up is booked for when it may run again.
    side.collect_reports(10.4, interval=5.0)
    assert len(switches) == 1 and side._collect_wake is not None and side._collect_wake[0] == 11.0
    # At 11.0 the scan runs; the channel's own bound (5 s) books 15.0, not a busy wait.
    side._collect_wake[1].cancel()
    side._collect_woken()
    assert woken == [1]
    side.collect_reports(11.0, interval=5.0)
    assert len(switches) == 1 and side._collect_wake[0] == 15.0
    side._collect_wake[1].cancel()
    side._collect_woken()
    side.collect_reports(15.0, interval=5.0)
    assert switches[-1] == ("emu009", 0, "collecting status reports", 15.0)


async def test_one_timer_the_earliest():
    side, _, _ = _side()
    side._last_collect_round = 10.0
    side.collect_reports(10.5, interval=5.0)
    first = side._collect_wake
    side.collect_reports(10.7, interval=5.0)
    assert side._collect_wake is first  # the booked 11.0 stands; no second timer
    first[1].cancel()


async def test_nothing_owed_books_nothing_and_a_busy_channel_waits_for_its_own_event():
    side, switches, _ = _side(ChannelState.BUSY)
    side.collect_reports(10.0, interval=5.0)
    assert switches == [] and side._collect_wake is None
    side.tracker.forget("sim-a", 7)
    side.collect_reports(20.0, interval=5.0)
    assert switches == [] and side._collect_wake is None
