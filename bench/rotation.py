"""``simrotor bench rotation``: the cost of one rotation decision as the bank grows.

A steady-state simulation, all in this process (the policy is pure, so there is nothing
to emulate): N modems with 4 SIM slots each, 4 operators, 3 creditor pools, realistic
per-SIM caps, pauses and a time-of-day window; calls hold their channel 10–120 s on a
simulated clock, and requests arrive fast enough to keep most modems busy. Callees come
back with their history of numbers shown; some requests carry a pool, operator or
fixed-number hint. Figures (one JSON document):

* ``us_per_decision`` — wall time of the policy's work per placed job: ``choose`` plus
  ``record_start``, ``record_end`` and the bank's ``set_channel`` when the call ends
  (refused ``choose`` calls are counted in, spread over the placed jobs);
* ``us_per_choose`` — ``choose`` alone, per call (placed or refused);
* ``decisions_per_second`` — 1e6 / us_per_decision;
* ``refused_share``, ``switch_share`` — how often nothing qualified / a slot switch was
  needed, to show the workload is not trivial;
* ``scaling`` — us_per_decision at the largest size over the smallest, beside the ratio
  of log2(SIMs): O(log n) keeps the first near the second, O(n) would follow the SIMs.
"""
from __future__ import annotations

import gc
import heapq
import math
import random
import time
from typing import Any

import click

from common.clikit import emit, json_option

OPERATORS = ("26001", "26002", "26003", "26006")
POOLS = ("acme", "bolt", "cred")
SLOTS = 4


def _policy(modems: int, rng: random.Random):
    from appliance.rotation import LockRules, RotationPolicy, SimLimits, SimRef, WindowCap

    limits = SimLimits(
        calls_per_hour=20,
        calls_per_day=120,
        sms_per_hour=30,
        min_pause_seconds=30.0,
        pause_after_call=(5.0, 30.0),
        max_call_seconds_per_day=3 * 3600.0,
        windows=(WindowCap("08:00", "12:00", 40),),
    )
    rules = LockRules(consecutive_failed=5, consecutive_not_alerting=5, consecutive_unanswered=12, consecutive_short=8)
    policy = RotationPolicy(limits=limits, lock_rules=rules, tz="Europe/Warsaw", rng=random.Random(1))
    msisdns = []
    for m in range(modems):
        for slot in range(SLOTS):
            msisdn = f"48{5 + m % 4}{m:06d}{slot}"
            pools = frozenset({POOLS[rng.randrange(len(POOLS))]}) if rng.random() < 0.6 else frozenset()
            policy.add_sim(SimRef(f"m{m}s{slot}", msisdn, rng.choice(OPERATORS), f"m{m}", slot, pools), now=0.0)
            msisdns.append(msisdn)
    return policy, msisdns


def run_size(modems: int, decisions: int, seed: int = 42) -> dict[str, Any]:
    from appliance.rotation import AttemptSummary, Decision, JobKind, Request

    rng = random.Random(seed)
    policy, msisdns = _policy(modems, rng)
    now = 1_717_398_000.0  # 2024-06-03T07:00Z: 09:00 in Warsaw, inside the window
    for m in range(modems):
        policy.set_channel(f"m{m}", idle=True, active_slot=0, now=now)
    callees = max(1000, decisions // 4)
    shown: dict[int, tuple[str, ...]] = {}
    callee_ops = [rng.choice(OPERATORS) for _ in range(callees)]
    # requests and outcomes drawn up front: the timed loop is the policy's work
    plan = []
    for _ in range(decisions * 2):
        r = rng.random()
        plan.append((
            rng.randrange(callees),
            JobKind.SMS if r < 0.1 else (JobKind.HLR if r < 0.15 else JobKind.CALL),
            rng.random(),
            rng.uniform(10.0, 120.0),
            rng.random(),
        ))
    def answered(talk: float) -> AttemptSummary:
        return AttemptSummary(JobKind.CALL, True, True, talk, False)

    summaries = {
        "no_answer": AttemptSummary(JobKind.CALL, True, False, 0.0, False),
        "failed": AttemptSummary(JobKind.CALL, False, False, 0.0, True, 34),
        "sms": AttemptSummary(JobKind.SMS, False, False, 0.0, False),
        "hlr": AttemptSummary(JobKind.HLR, True, False, 0.0, False),
    }
    arrival = 80.0 / modems  # one request per 80 s per modem: most modems stay busy
    ending: list[tuple[float, int, str, str, Any]] = []
    seq = 0
    placed = refused = switches = chooses = 0
    t_choose = t_other = 0.0
    clock = time.perf_counter
    gc.collect()
    gc.disable()
    try:
        for callee, kind, hint, hold, outcome in plan:
            if placed >= decisions:
                break
            now += arrival
            while ending and ending[0][0] <= now:
                end_at, _, sim_id, channel, summary = heapq.heappop(ending)
                t = clock()
                policy.record_end(sim_id, summary, end_at)
                policy.set_channel(channel, idle=True, active_slot=int(sim_id.rsplit("s", 1)[1]), now=end_at)
                t_other += clock() - t
            history = shown.get(callee, ())
            extra: dict[str, Any] = {}
            if hint < 0.1:
                extra["pool"] = POOLS[callee % len(POOLS)]
            elif hint < 0.15:
                extra["required_operator"] = callee_ops[callee]
            elif hint < 0.17 and history:
                extra["fixed_msisdn"] = history[-1]
            req = Request(f"c{callee}", kind=kind, callee_operator=callee_ops[callee], shown=history, **extra)
            t = clock()
            d = policy.choose(req, now)
            t_choose += clock() - t
            chooses += 1
            if not isinstance(d, Decision):
                refused += 1
                continue
            t = clock()
            if d.needs_switch:
                switches += 1
                policy.set_channel(d.channel_id, idle=True, active_slot=int(d.sim_id.rsplit("s", 1)[1]), now=now)
            policy.record_start(d.sim_id, kind, now)
            t_other += clock() - t
            placed += 1
            shown[callee] = (history + (d.msisdn,))[-10:]  # the store keeps the last ten
            if kind is JobKind.SMS:
                summary = summaries["sms"]
            elif kind is JobKind.HLR:
                summary = summaries["hlr"]
            elif outcome < 0.55:
                summary = answered(hold)
            elif outcome < 0.97:
                summary = summaries["no_answer"]
            else:
                summary = summaries["failed"]
            seq += 1
            heapq.heappush(ending, (now + hold, seq, d.sim_id, d.channel_id, summary))
    finally:
        gc.enable()
    total = t_choose + t_other
    us = total / max(placed, 1) * 1e6
    return {
        "modems": modems,
        "sims": modems * SLOTS,
        "placed": placed,
        "refused_share": round(refused / max(chooses, 1), 4),
        "switch_share": round(switches / max(placed, 1), 4),
        "us_per_decision": round(us, 2),
        "us_per_choose": round(t_choose / max(chooses, 1) * 1e6, 2),
        "decisions_per_second": round(1e6 / us) if us else None,
        "simulated_seconds": round(placed * arrival, 1),
    }


def run(sizes: list[int], per_modem: int) -> dict[str, Any]:
    # the same number of jobs per modem at every size: the same simulated time, so the
    # caps and pauses bind alike and only the bank's size differs
    results = [run_size(m, m * per_modem) for m in sizes]
    small, large = results[0], results[-1]
    return {
        "sizes": results,
        "scaling": {
            "sims_ratio": large["sims"] / small["sims"],
            "log2_sims_ratio": round(math.log2(large["sims"]) / math.log2(small["sims"]), 3),
            "us_per_decision_ratio": round(large["us_per_decision"] / small["us_per_decision"], 3),
        },
        "target_us_per_decision": 100,  # issue 4: <= 100 µs per scheduling decision on 2 cores
    }


@click.command()
@click.option("--modems", "modems", default="100,1000", show_default=True,
              help="Comma-separated bank sizes (modems; 4 SIM slots each).")
@click.option("--per-modem", type=int, default=60, show_default=True,
              help="Placed jobs per modem at each size (60 ≈ 80 simulated minutes).")
@json_option
def rotation(modems: str, per_modem: int, as_json: bool) -> None:
    """Cost of a rotation decision at growing bank sizes (shows O(log n)).

    \b
    Example:
      simrotor bench rotation --modems 100,1000 --per-modem 60 --json
    """
    sizes = [int(x) for x in modems.split(",") if x.strip()]
    if not sizes or min(sizes) < 1 or per_modem < 1:
        raise click.BadParameter("need at least one size >= 1 and --per-modem >= 1")
    emit(run(sizes, per_modem), as_json)
