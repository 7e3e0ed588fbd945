"""The emulator: N virtual modems on pseudo-terminals plus the network, in one event loop.

``Emulator.start`` opens every pty (both ends), points the stable symlinks at them,
attaches the SIMs to the network and, unless disabled, starts the HTTP control API.
Faults are injected per modem (``inject``); inbound traffic through the network.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._callee import FrameClock
from ._calls import CallState
from ._control import ControlServer
from ._dialects import dialect_for
from ._faults import EmulatorError, Fault
from ._modem import VirtualModem
from ._network import Network
from ._sim import luhn_digit, make_sim
from ._state import STATE_VERSION, appliance_config, modem_entry
from ._sysfs import lay_out
from ._timing import PROFILES, Timing
from ._voices import SoundLibrary, default_cache_dir


@dataclass(slots=True)
class EmulatorConfig:
    modems: int = 4
    sims_per_modem: int = 1
    vendors: tuple[str, ...] = ("simcom", "quectel", "huawei", "generic")  # round-robin
    timing: Timing = Timing.FAST
    seed: int = 0
    state_dir: Path | None = None  # where the port symlinks live (temp dir if None)
    pin_locked: bool = False  # every SIM starts with +CPIN: SIM PIN (pin "1234")
    block_after_calls: int | None = None  # operator blocks a SIM after this many calls
    control_port: int | None = 0  # HTTP control API on 127.0.0.1 (0: any free port; None: off)
    balances: dict[str, float] = field(default_factory=dict)  # msisdn → credit (0 = no credit)
    # TTS voice speed in characters a second; None = the timing profile's (15 realistic,
    # instant in fast timing). Lets a fast-timing test hear a message that takes time.
    speech_rate: float | None = None
    # Call audio (docs/emulator.md, "Call audio"): WAV files that replace the generated
    # callee sounds, and where generated voices are cached (None: default_cache_dir()).
    audio_dir: Path | None = None
    sound_cache: Path | None = None
    # A fake sysfs and by-id tree under <state_dir>/sysroot (docs/emulator.md, "Fake
    # sysfs"), for `simrotor provision scan --sysfs-root`; off by default: nothing reads it.
    sysfs: bool = False

    def validate(self) -> None:
        if self.modems < 1:
            raise EmulatorError("modems: expected a positive number of modems")
        if not 1 <= self.sims_per_modem <= 8:
            raise EmulatorError("sims_per_modem: expected 1 to 8 SIM slots per modem")
        if not self.vendors:
            raise EmulatorError("vendors: expected at least one vendor")
        for vendor in self.vendors:
            try:
                dialect_for(vendor, 0)
            except ValueError as exc:
                raise EmulatorError(f"vendors: {exc}") from None
        if self.block_after_calls is not None and self.block_after_calls < 0:
            raise EmulatorError("block_after_calls: expected a number ≥ 0 or None")
        if self.speech_rate is not None and not self.speech_rate > 0:
            raise EmulatorError("speech_rate: expected characters per second > 0, or None")
        if self.audio_dir is not None and not Path(self.audio_dir).is_dir():
            raise EmulatorError(f"audio_dir: {self.audio_dir} is not a directory of WAV files")


def make_imei(tac: str, serial: int) -> str:
    body = f"{tac}{serial % 1_000_000:06d}"  # TS 23.003 §6.2.1: TAC(8) SNR(6) CD(1)
    return body + luhn_digit(body)


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        config.validate()
        self.config = config
        self.profile = PROFILES[config.timing]
        if config.speech_rate is not None:
            self.profile = dataclasses.replace(self.profile, speech_chars_per_second=config.speech_rate)
        sounds = SoundLibrary(Path(config.sound_cache) if config.sound_cache else default_cache_dir(),
                              Path(config.audio_dir) if config.audio_dir else None, config.seed)
        self.network = Network(self.profile, config.seed, config.block_after_calls, sounds)
        self.frame_clock = FrameClock()  # the 20 ms clock every audio port's far end steps on
        self.modems: list[VirtualModem] = []
        self._by_id: dict[str, VirtualModem] = {}
        self._own_state_dir = config.state_dir is None
        self.state_dir = Path(config.state_dir) if config.state_dir else Path(tempfile.mkdtemp(prefix="simrotor-emu-"))
        self.control_url: str | None = None
        self.sysfs_root: Path | None = None
        self._control: ControlServer | None = None
        self.started = False

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        self.state_dir.mkdir(parents=True, exist_ok=True)
        per_vendor: dict[str, int] = {}
        width = max(3, len(str(cfg.modems - 1)))
        try:
            for i in range(cfg.modems):
                vendor = cfg.vendors[i % len(cfg.vendors)]
                nth = per_vendor.get(vendor, 0)
                per_vendor[vendor] = nth + 1
                dialect = dialect_for(vendor, nth)
                sims = [make_sim(i * cfg.sims_per_modem + s, s, cfg.seed, cfg.pin_locked)
                        for s in range(cfg.sims_per_modem)]
                for sim in sims:
                    if sim.msisdn in cfg.balances:
                        sim.balance = cfg.balances[sim.msisdn]
                modem_id = f"emu{i:0{width}d}"
                modem = VirtualModem(
                    modem_id, dialect, make_imei(dialect.tac, cfg.seed * 100_003 + i), sims,
                    self.network, self.profile, random.Random(f"modem:{cfg.seed}:{i}"),
                    self.state_dir / f"tty{modem_id.upper()}",
                    self.state_dir / f"tty{modem_id.upper()}-audio", self.frame_clock,
                )
                modem.start(loop)
                self.modems.append(modem)
                self._by_id[modem_id] = modem
                self.network.attach(modem)
            if cfg.sysfs:
                self.sysfs_root = lay_out(self.state_dir / "sysroot", self.modems)
            if cfg.control_port is not None:
                self._control = ControlServer(self)
                self.control_url = await self._control.start(cfg.control_port)
        except BaseException:
            await self.stop()
            raise
        self.started = True

    async def stop(self) -> None:
        if self._control is not None:
            await self._control.stop()
            self._control = None
        await self.network.close()
        await asyncio.gather(*(m.stop() for m in self.modems), return_exceptions=True)
        await self.frame_clock.close()
        self.started = False
        if self.sysfs_root is not None:  # by-id links to ports that are gone would mislead a scan
            shutil.rmtree(self.sysfs_root, ignore_errors=True)
            self.sysfs_root = None
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def modem(self, modem_id: str) -> VirtualModem:
        try:
            return self._by_id[modem_id]
        except KeyError:
            raise EmulatorError(f"modem: no modem {modem_id!r} (expected one of emu000…)") from None

    async def inject(self, modem_id: str, fault: Fault | str, **params: Any) -> None:
        modem = self.modem(modem_id)
        try:
            fault = Fault(fault)
        except ValueError:
            raise EmulatorError(f"fault: {fault!r} is not one of {[f.value for f in Fault]}") from None
        if fault is Fault.VANISH:
            seconds = params.get("seconds", 1.0)
            modem.vanish(None if seconds is None else float(seconds))
        elif fault is Fault.GARBAGE:
            data = params.get("bytes")
            if data is None:
                count = int(params.get("count", 32))
                data = bytes(random.Random(f"garbage:{modem_id}").randrange(256) for _ in range(count))
            elif isinstance(data, str):
                data = data.encode("latin-1")
            modem.write_raw(bytes(data))
        elif fault is Fault.STUCK:
            seconds = params.get("seconds")
            modem.set_stuck(None if seconds is None else float(seconds))
        elif fault is Fault.LOSE_URC:
            prefix = params.get("prefix")
            if not prefix:
                raise EmulatorError("prefix: expected the start of the URC to lose, e.g. '+CDS'")
            modem.lost_prefixes.append(str(prefix))
        elif fault is Fault.BLOCK_SIM:
            slot = params.get("slot")
            slot = modem.active_slot if slot is None else int(slot)
            if not 0 <= slot < len(modem.sims):
                raise EmulatorError(f"slot: expected 0…{len(modem.sims) - 1}")
            modem.sims[slot].blocked = True

    async def callee_hangs_up(self, modem_id: str) -> None:
        """The far end of ``modem_id``'s answered call hangs up now (cause 16)."""
        modem = self.modem(modem_id)
        call = modem.call
        if call is None or call.state is not CallState.ACTIVE:
            raise EmulatorError(f"modem: {modem_id} has no answered call")
        self.network.callee_hangs_up(modem, call)

    async def inbound_sms(self, sender: str, to_msisdn: str, text: str) -> None:
        self._need_subscriber(to_msisdn)
        self.network.inbound_sms(sender, to_msisdn, text)

    async def inbound_call(self, caller: str, to_msisdn: str, ring_seconds: float = 5, keys: str = "") -> None:
        """A call towards a virtual SIM; answered, the caller keys ``keys`` (DTMF), one
        key after each prompt he hears on an audio port, from the answer on elsewhere."""
        self._need_subscriber(to_msisdn)
        if any(k not in "0123456789*#ABCD" for k in keys):
            raise EmulatorError("keys: expected DTMF keys 0-9, *, #, A-D")
        self.network.inbound_call(caller, to_msisdn, ring_seconds, keys)

    def _need_subscriber(self, msisdn: str) -> None:
        if self.network.subscriber(msisdn) is None:
            raise EmulatorError(f"to: {msisdn!r} is not a virtual SIM of this emulator")

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "status": "running" if self.started else "stopped",
            "pid": os.getpid(),
            "control": self.control_url,
            "timing": self.config.timing.value,
            "seed": self.config.seed,
            "state_dir": str(self.state_dir),
            "sysfs_root": str(self.sysfs_root) if self.sysfs_root else None,
            "modems": [modem_entry(m) for m in self.modems],
            "appliance_config": appliance_config(self.modems),
        }
