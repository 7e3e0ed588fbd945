"""One virtual modem: the AT interpreter behind a pseudo-terminal.

Input bytes are echoed (when ATE1), framed (``_framer``), queued, and a single worker
task per modem executes one command line at a time — AT is half-duplex, so a slow
command (``AT+CMGS`` waiting for the SC) holds the next one back as on real hardware.
Handlers are looked up in one table (``_HANDLERS``); vendor commands are only reachable
when the modem's dialect row lists them. Output follows V.250 framing: verbose
``<CR><LF>text<CR><LF>`` or numeric ``<code><CR>`` after ATV0.
"""
from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ._callee import AudioLine, FrameClock
from ._calls import Call, CallState, RELEASE_RESULT, DEFAULT_RELEASE_RESULT, progress_urcs, toa, _clcc
from ._commands import Command, Kind, parse_line
from ._dialects import DIALECTS, CallReport, CeerStyle, Dialect, UssdCoding
from ._framer import Body, Framer, Line
from ._network import Network, SmsRejected
from ._pdu import decode_submit, from_ucs2_hex, ucs2_hex, ussd_pack, ussd_unpack
from ._plan import CAUSE_NAMES, OPERATORS
from ._port import PtyPort
from ._results import RESULT_CODES, AtFailure, CmeError, CmsError, FixedResult
from ._sim import PIN2_ATTEMPTS, PIN_ATTEMPTS, PUK2_ATTEMPTS, PUK_ATTEMPTS, PinState, VirtualSim
from ._timing import TimingProfile
from ._tts import TEXT_MODES, Speaker

log = logging.getLogger(__name__)

Handler = Callable[["VirtualModem", Command], Awaitable[list[str]]]
_HANDLERS: dict[str, Handler] = {}

#: Every vendor-only command; reachable only on models whose dialect lists it.
VENDOR_COMMANDS: Final = frozenset().union(*(d.commands for d in DIALECTS.values()))
_RESET = re.compile(r"\s*\+CFUN\s*=\s*1\s*,\s*1\s*", re.IGNORECASE)
PROMPT: Final = b"\r\n> "  # 27.005 §3.5.1: <CR><LF><greater_than><space>
USSD_DCS: Final = 15  # 23.038 §5: GSM 7-bit default alphabet, language unspecified
CREG_ACT: Final = 7  # 27.007 §7.2 <AcT> 7 = E-UTRAN (what the doc's examples show)
#: SIM800 Series AT Command Manual V1.09 §1.4.4: a command line longer than 556 characters
#: (without "AT") is refused with ERROR. Applied to the TTS commands, whose text is long.
MAX_COMMAND_LINE: Final = 556


def at(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            _HANDLERS[name] = fn
        return fn
    return register


@dataclass(slots=True)
class Settings:
    """Volatile settings; a reset (ATZ, AT+CFUN=1,1, port loss) restores these."""

    echo: bool = True  # echo ON after power-up, as real modems (docs/dialects.md)
    verbose: bool = True
    cmee: int = 0
    cscs: str = "GSM"
    clip: bool = False
    creg: int = 0
    clcc_auto: bool = False
    dsci: bool = False
    dtmf: bool = False
    tts_path: int = 0  # SIM7600 AT+CDTAM: 0 local, 1 remote (the far end of a call hears TTS)
    cnmi: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    mem1: str = "SM"
    cops_format: int = 0
    cmgf: int = 0
    cfun: int = 1
    audio: int = 0  # the audio set-up command's last value (AT^DDSETEX=2, AT+CPCMREG=1, AT+QPCMV=1,0)


class VirtualModem:
    def __init__(self, modem_id: str, dialect: Dialect, imei: str, sims: list[VirtualSim],
                 network: Network, profile: TimingProfile, rng: random.Random, link: Path,
                 audio_link: Path | None = None, audio_clock: FrameClock | None = None) -> None:
        self.id = modem_id
        self.dialect = dialect
        self.vendor = dialect.vendor
        self.model = dialect.model
        self.imei = imei
        self.sims = sims
        self.active_slot = 0
        self.network = network
        self.profile = profile
        self.rng = rng
        self.port = str(link)
        self.settings = Settings()
        self.reg_stat = 0
        self.call: Call | None = None
        self.last_cause = 0
        self.rssi = rng.randint(12, 28)  # 27.007 §8.5: −89…−57 dBm, a usable signal
        self.lac = f"{rng.randrange(1, 0xFFFF):04X}"
        self.ci = f"{rng.randrange(1, 0xFFFFFFF):07X}"
        self.stuck = False
        self.rebooting = False
        self.lost_prefixes: list[str] = []
        self._pty = PtyPort(link, self._on_bytes)
        self._framer = Framer()
        self._inbox: asyncio.Queue[Line | Body] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._in_body = False
        self._held: list[tuple[str, ...]] = []
        self._after: Callable[[], None] | None = None
        self._reg_generation = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.speaker = Speaker(self, dialect.tts)
        #: The audio port (a second pty), on models whose dialect has an audio set-up command.
        self.audio: AudioLine | None = (
            AudioLine(audio_link, self, audio_clock or FrameClock())
            if dialect.audio_setup is not None and audio_link is not None else None
        )

    # -- life cycle -------------------------------------------------------------------------
    @property
    def sim(self) -> VirtualSim:
        return self.sims[self.active_slot]

    @property
    def device(self) -> str:
        return self._pty.device

    @property
    def online(self) -> bool:
        return self._pty.is_open

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pty.open(loop)
        if self.audio is not None:
            self.audio.open(loop)
        self._worker = loop.create_task(self._work(), name=f"modem-{self.id}")
        self._power_on()

    async def stop(self) -> None:
        tasks = [t for t in (self._worker, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pty.close(remove_link=True)
        if self.audio is not None:
            self.audio.close(remove_link=True)

    def _spawn(self, coro: Awaitable[None]) -> None:
        self.track(asyncio.get_running_loop().create_task(coro))  # type: ignore[arg-type]

    def track(self, task: asyncio.Task[None]) -> None:
        """Own a background task: cancelled when the modem stops."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _power_on(self) -> None:
        self.settings = Settings()
        self._framer.reset()
        while not self._inbox.empty():
            self._inbox.get_nowait()
        self._in_body, self._held = False, []
        self.stuck = self.rebooting = False
        for sim in self.sims:
            if sim.pin_enabled and sim.pin_state is PinState.READY:
                sim.pin_state = PinState.SIM_PIN  # the card asks for its PIN after power-up
        self._reg_generation += 1
        self.reg_stat = 1 if self.sim.pin_state is PinState.READY else 0
        self._flush_pending_sms()

    def _power_cycle(self) -> None:
        """What a reboot or a USB drop does to the modem's state."""
        if self.call is not None:
            self.network.drop(self, self.call)
        self._power_on()

    @property
    def audio_port(self) -> str | None:
        return self.audio.port if self.audio is not None else None

    def vanish(self, seconds: float | None) -> None:
        self._pty.close(remove_link=True)
        if self.audio is not None:
            self.audio.close(remove_link=True)  # one USB device: its audio interface goes too
        self._power_cycle()
        if seconds is not None:
            asyncio.get_running_loop().call_later(seconds, self.reappear)

    def reappear(self) -> None:
        if not self._pty.is_open and self._loop is not None:
            self._pty.open(self._loop)
            if self.audio is not None:
                self.audio.open(self._loop)
            self._power_on()

    def set_stuck(self, seconds: float | None) -> None:
        self.stuck = True
        if seconds is not None:
            asyncio.get_running_loop().call_later(seconds, self._unstick)

    def _unstick(self) -> None:
        self.stuck = False

    def reachable_via(self, sim: VirtualSim) -> bool:
        return (self.online and not self.rebooting and sim is self.sim
                and sim.pin_state is PinState.READY and self.reg_stat in (1, 5))

    # -- output -----------------------------------------------------------------------------
    def _write_reply(self, info: list[str], final: str) -> None:
        out = []
        if info:
            text = "\r\n".join(info)
            out.append(f"\r\n{text}\r\n" if self.settings.verbose else f"{text}\r\n")
        out.append(self._final_text(final))
        self._pty.write("".join(out).encode("latin-1", "replace"))

    def _final_text(self, final: str) -> str:
        if not self.settings.verbose and final in RESULT_CODES:
            return f"{RESULT_CODES[final]}\r"
        return f"\r\n{final}\r\n" if self.settings.verbose else f"{final}\r\n"

    def urc(self, *lines: str) -> None:
        """Unsolicited result code (one or more lines that belong together)."""
        if not self._pty.is_open or self.stuck or self.rebooting:
            return
        for prefix in self.lost_prefixes:
            if lines[0].startswith(prefix):
                self.lost_prefixes.remove(prefix)  # Fault.LOSE_URC drops only the next one
                return
        if self._in_body:
            self._held.append(lines)  # 27.005: URCs are buffered while the prompt is up
            return
        if len(lines) == 1 and lines[0] in RESULT_CODES:
            self._pty.write(self._final_text(lines[0]).encode())
            return
        text = "\r\n".join(lines)
        data = f"\r\n{text}\r\n" if self.settings.verbose else f"{text}\r\n"
        self._pty.write(data.encode("latin-1", "replace"))

    def write_raw(self, data: bytes) -> None:
        self._pty.write(data)

    # -- input ------------------------------------------------------------------------------
    def _on_bytes(self, data: bytes) -> None:
        if self.rebooting:
            return
        if self.settings.echo and not self.stuck:
            self._pty.write(data)
        for event in self._framer.feed(data):
            self._inbox.put_nowait(event)

    async def _work(self) -> None:
        while True:
            event = await self._inbox.get()
            if isinstance(event, Line):
                try:
                    await self._run_line(event.text)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one bad line never kills a port (docs/architecture.md, Style 5)
                    log.exception("modem %s failed on %r", self.id, event.text)
                    self._write_reply([], "ERROR")

    async def _run_line(self, text: str) -> None:
        start = text.upper().find("AT")
        if start < 0:
            return  # V.250 §5.2.1: characters before "AT" are ignored; no AT, no command
        body = text[start + 2:]
        if self.stuck:
            if not _RESET.fullmatch(body):
                return
            self.stuck = False
        latency = self.profile.draw(self.rng, self.profile.command_latency)
        if latency:
            await asyncio.sleep(latency)
        try:
            commands = parse_line(body)
        except ValueError:
            self._write_reply([], "ERROR")
            return
        info: list[str] = []
        try:
            for command in commands:
                info += await self._execute(command)
        except AtFailure as failure:
            self._write_reply(info, failure.render(self.settings.cmee))
        except (ValueError, IndexError):
            self._write_reply(info, CmeError(50).render(self.settings.cmee))
        else:
            self._write_reply(info, "OK")
        after, self._after = self._after, None
        if after is not None:
            after()

    async def _execute(self, command: Command) -> list[str]:
        name = command.name
        handler = _HANDLERS.get(name)
        if handler is not None and name in VENDOR_COMMANDS and name not in self.dialect.commands:
            handler = None
        if handler is None:
            if name.startswith("^") and self.dialect.caret_not_supported:
                raise FixedResult("COMMAND NOT SUPPORT")
            raise CmeError(100)
        return await handler(self, command)

    # -- helpers used by handlers ---------------------------------------------------------
    def _need_sim(self, sms: bool = False) -> VirtualSim:
        sim = self.sim
        state = sim.pin_state
        if state is PinState.READY:
            return sim
        codes = {PinState.SIM_PIN: (11, 311), PinState.SIM_PUK: (12, 316), PinState.BLOCKED: (13, 310)}
        cme, cms = codes[state]
        raise CmsError(cms) if sms else CmeError(cme)

    def _set_reg(self, stat: int) -> None:
        if stat == self.reg_stat:
            return
        self.reg_stat = stat
        if self.settings.creg:
            self.urc(self._creg_text(stat, urc=True))
        if self.dialect.rssi_urc and stat in (1, 5):
            self.urc(f"^RSSI: {self.rssi}")
        if stat in (1, 5):
            self._flush_pending_sms()

    def _creg_text(self, stat: int, urc: bool) -> str:
        head = f"+CREG: {stat}" if urc else f"+CREG: {self.settings.creg},{stat}"
        if self.settings.creg == 2 and stat in (1, 5):
            head += f',"{self.lac}","{self.ci}",{CREG_ACT}'
        return head

    def _register_soon(self, first: int = 2) -> None:
        """Search (stat 2), then register (stat 1) after the re-registration delay."""
        self._reg_generation += 1
        generation = self._reg_generation
        self._set_reg(first)

        async def later() -> None:
            await asyncio.sleep(self.profile.draw(self.rng, self.profile.reregistration))
            if generation == self._reg_generation:
                ready = self.sim.pin_state is PinState.READY and self.settings.cfun == 1
                self._set_reg(1 if ready else 0)

        self._spawn(later())

    def _flush_pending_sms(self) -> None:
        sim = self.sim
        pending, sim.pending_inbound = sim.pending_inbound, []
        for pdu in pending:
            self.sms_arrived(sim, pdu, len(pdu) - pdu[0] - 1)

    # -- events from the network ----------------------------------------------------------
    def call_progress(self, call: Call, state: CallState) -> None:
        style = self.dialect.call_report
        enabled = {CallReport.CLCC: self.settings.clcc_auto, CallReport.DSCI: self.settings.dsci}.get(style, False)
        for line in progress_urcs(style, enabled, self.dialect.voice_call_urcs, call, state):
            self.urc(line)

    def call_ended(self, call: Call, *, remote: bool) -> None:
        self.call_progress(call, CallState.RELEASED)
        if remote:
            self.urc(RELEASE_RESULT.get(call.cause or 0, DEFAULT_RELEASE_RESULT))
        self.speaker.call_ended(call)  # the voice stops with the call: end URC after release
        if self.audio is not None and self.audio.far is not None and self.audio.far.call is call:
            self.audio.hang_up()  # the port falls quiet with the call
        if self.call is call:
            self.call = None
        self.last_cause = call.cause or 0

    def ring(self, call: Call) -> None:
        self.urc("RING")
        if self.settings.clip:
            self.urc(f'+CLIP: "{call.number}",{toa(call.number)},,,,0')  # 27.007 §7.6

    def dtmf_received(self, digit: str) -> None:
        if self.dialect.dtmf_enable is None or self.settings.dtmf:
            self.urc(self.dialect.dtmf_urc.format(digit=digit, code=ord(digit)))

    def sms_arrived(self, sim: VirtualSim, pdu: bytes, tpdu_len: int) -> None:
        """An SMS-DELIVER for ``sim``: routed per AT+CNMI <mt> (27.005 §3.4.1)."""
        if not self.reachable_via(sim):
            sim.pending_inbound.append(pdu)  # the SC retries once the SIM is back
            return
        mt = self.settings.cnmi[1]
        if mt == 2:
            self.urc(f"+CMT: ,{tpdu_len}", pdu.hex().upper())
            return
        index = sim.sm.add(pdu)
        if mt in (1, 3):
            self.urc(f'+CMTI: "SM",{index}')

    def status_report(self, sim: VirtualSim, pdu: bytes, tpdu_len: int) -> None:
        """An SMS-STATUS-REPORT: routed per AT+CNMI <ds> (27.005 §3.4.1)."""
        ds = self.settings.cnmi[3]
        if ds == 1 and self.reachable_via(sim):
            self.urc(f"+CDS: {tpdu_len}", pdu.hex().upper())
            return
        index = sim.sr.add(pdu)
        if ds == 2 and self.reachable_via(sim):
            self.urc(f'+CDSI: "SR",{index}')

    # ======================================================================================
    # Handlers. Each returns the information lines; raising AtFailure gives the final.
    # ======================================================================================
    @at("E")
    async def _echo(self, c: Command) -> list[str]:
        self.settings.echo = c.int_arg(0, 0) == 1
        return []

    @at("V")
    async def _verbose(self, c: Command) -> list[str]:
        self.settings.verbose = c.int_arg(0, 0) == 1
        return []

    @at("Z", "&F")
    async def _defaults(self, c: Command) -> list[str]:
        self.settings = Settings()
        return []

    @at("Q", "X", "L", "M", "&C", "&D", "&W", "S", "+IFC", "+IPR", "^CURC", "+CSCB")
    async def _accepted(self, c: Command) -> list[str]:
        return ["+IPR: 115200"] if c.name == "+IPR" and c.kind is Kind.READ else []

    @at("I")
    async def _info(self, c: Command) -> list[str]:
        d = self.dialect
        return [d.manufacturer, d.model, f"Revision: {d.revision}"]

    def _ident(self, prefix: str, value: str) -> list[str]:
        return [f"{prefix}: {value}" if self.dialect.id_prefix else value]

    @at("+CGMI", "+GMI")
    async def _cgmi(self, c: Command) -> list[str]:
        return self._ident("+CGMI", self.dialect.manufacturer)

    @at("+CGMM", "+GMM")
    async def _cgmm(self, c: Command) -> list[str]:
        return self._ident("+CGMM", self.dialect.model)

    @at("+CGMR", "+GMR")
    async def _cgmr(self, c: Command) -> list[str]:
        return self._ident("+CGMR", self.dialect.revision)

    @at("+CGSN", "+GSN")
    async def _cgsn(self, c: Command) -> list[str]:
        return self._ident("+CGSN", self.imei)

    @at("+GCAP")
    async def _gcap(self, c: Command) -> list[str]:
        return ["+GCAP: +CGSM"]

    @at("+CMEE")
    async def _cmee(self, c: Command) -> list[str]:
        return self._numeric_setting(c, "cmee", range(3))

    def _numeric_setting(self, c: Command, attr: str, values: range) -> list[str]:
        """Read (``?``), test (``=?``) and set a numeric setting (27.007 §4.1 syntax)."""
        if c.kind is Kind.READ:
            return [f"{c.name}: {getattr(self.settings, attr)}"]
        if c.kind is Kind.TEST:
            return [f"{c.name}: ({values.start}-{values.stop - 1})"]
        value = c.int_arg(0, 0)
        if value not in values:
            raise CmeError(50)
        setattr(self.settings, attr, value)
        return []

    @at("+CFUN")
    async def _cfun(self, c: Command) -> list[str]:
        if c.kind is Kind.READ:
            return [f"+CFUN: {self.settings.cfun}"]
        if c.kind is Kind.TEST:
            return ["+CFUN: (0,1,4),(0-1)"]
        fun, reset = c.int_arg(0, 1), c.int_arg(1, 0)
        if reset == 1:
            self._after = self._reboot
            return []
        self.settings.cfun = fun
        if fun == 1 and self.reg_stat == 0 and self.sim.pin_state is PinState.READY:
            self._register_soon()
        elif fun != 1:
            self._reg_generation += 1
            self._set_reg(0)
        return []

    def _reboot(self) -> None:
        self._power_cycle()
        delay = self.profile.draw(self.rng, self.profile.reboot)
        if delay:
            self.rebooting = True

            async def boot() -> None:
                await asyncio.sleep(delay)
                self.rebooting = False

            self._spawn(boot())

    # -- SIM -------------------------------------------------------------------------------
    @at("+CPIN")
    async def _cpin(self, c: Command) -> list[str]:
        sim = self.sim
        if c.kind is Kind.READ:
            if sim.pin_state is PinState.BLOCKED:
                raise CmeError(13)
            return [f"+CPIN: {sim.pin_state.value}"]
        if c.kind is not Kind.SET:
            return []
        if sim.pin_state is PinState.SIM_PIN:
            if not sim.enter_pin(c.arg(0)):
                raise CmeError(16)
        elif sim.pin_state is PinState.SIM_PUK:
            if len(c.args) < 2:
                raise CmeError(12)
            if not sim.enter_puk(c.arg(0), c.arg(1)):
                raise CmeError(16)
        elif sim.pin_state is PinState.BLOCKED:
            raise CmeError(13)
        else:
            raise CmeError(3)  # already READY: 27.007 §8.3 gives "operation not allowed"
        self._after = self._register_soon  # OK first, then +CREG: 2 … +CREG: 1
        return []

    # PIN tries left, one row per dialect (docs/dialects.md "PIN tries"); reading them
    # never costs a try. PIN2/PUK2 are not modelled and read as fresh counters.
    @at("+CPINR")
    async def _cpinr(self, c: Command) -> list[str]:
        sim = self.sim
        sim.counter_reads += 1
        rows = {"SIM PIN": (sim.pin_attempts_left, PIN_ATTEMPTS), "SIM PUK": (sim.puk_attempts_left, PUK_ATTEMPTS),
                "SIM PIN2": (PIN2_ATTEMPTS, PIN2_ATTEMPTS), "SIM PUK2": (PUK2_ATTEMPTS, PUK2_ATTEMPTS)}
        wanted = c.arg(0).upper() if c.kind is Kind.SET else "*"  # 27.007 §8.65: <sel_code>, * a wildcard
        prefix = wanted[:-1] if wanted.endswith("*") else None
        picked = [code for code in rows if (code.startswith(prefix) if prefix is not None else code == wanted)]
        return [f"+CPINR: {code},{rows[code][0]},{rows[code][1]}" for code in picked]

    @at("+QPINC")
    async def _qpinc(self, c: Command) -> list[str]:
        sim = self.sim
        sim.counter_reads += 1
        rows = {"SC": (sim.pin_attempts_left, sim.puk_attempts_left), "P2": (PIN2_ATTEMPTS, PUK2_ATTEMPTS)}
        wanted = c.arg(0).upper() if c.kind is Kind.SET else ""
        if wanted and wanted not in rows:
            raise CmeError(50)
        return [f'+QPINC: "{fac}",{pin},{puk}' for fac, (pin, puk) in rows.items() if not wanted or fac == wanted]

    @at("^CPIN")
    async def _hw_cpin(self, c: Command) -> list[str]:
        sim = self.sim
        sim.counter_reads += 1
        if sim.pin_state is PinState.BLOCKED:
            raise CmeError(13)
        times = {PinState.SIM_PIN: str(sim.pin_attempts_left), PinState.SIM_PUK: str(sim.puk_attempts_left)}
        return [f"^CPIN: {sim.pin_state.value},{times.get(sim.pin_state, '')},{sim.puk_attempts_left},"
                f"{sim.pin_attempts_left},{PUK2_ATTEMPTS},{PIN2_ATTEMPTS}"]

    @at("+SPIC")
    async def _spic(self, c: Command) -> list[str]:
        sim = self.sim
        sim.counter_reads += 1
        return [f"+SPIC: {sim.pin_attempts_left},{sim.puk_attempts_left},{PIN2_ATTEMPTS},{PUK2_ATTEMPTS}"]

    @at("+CPWD")
    async def _cpwd(self, c: Command) -> list[str]:
        """27.007 §7.5: change a password; only "SC" (the SIM PIN) is modelled."""
        if c.kind is Kind.TEST:
            return ['+CPWD: ("SC",8)']
        if c.kind is not Kind.SET or len(c.args) < 3:
            raise CmeError(50)
        if c.arg(0).upper() != "SC":
            raise CmeError(50)
        sim = self._need_sim()
        new = c.arg(2)
        if not (new.isdigit() and 4 <= len(new) <= 8):
            raise CmeError(50)
        if not sim.change_pin(c.arg(1), new):
            raise CmeError(16)
        return []

    @at("+CIMI")
    async def _cimi(self, c: Command) -> list[str]:
        return [self._need_sim().imsi]

    @at("+CCID")
    async def _ccid(self, c: Command) -> list[str]:
        return [f"{self.dialect.iccid_prefix}{self.sim.iccid}"]

    @at("+QCCID")
    async def _qccid(self, c: Command) -> list[str]:
        return [f"+QCCID: {self.sim.iccid}"]

    @at("^ICCID")
    async def _hw_iccid(self, c: Command) -> list[str]:
        return [f'^ICCID: "{self.sim.iccid_swapped}"']

    @at("+CRSM")
    async def _crsm(self, c: Command) -> list[str]:
        # 27.007 §8.18: 176 = READ BINARY, 12258 = 0x2FE2 = EF_ICCID (TS 102 221 §13.2).
        if c.int_arg(0) == 176 and c.int_arg(1) == 12258:
            return [f'+CRSM: 144,0,"{self.sim.iccid_swapped}"']
        return ['+CRSM: 106,130,""']  # SW 6A82: file not found (TS 102 221 §10.2.1.5)

    @at("+CNUM")
    async def _cnum(self, c: Command) -> list[str]:
        sim = self._need_sim()
        return [f'+CNUM: "","{sim.msisdn}",{toa(sim.msisdn)}']

    # -- network ---------------------------------------------------------------------------
    @at("+CREG")
    async def _creg(self, c: Command) -> list[str]:
        if c.kind is Kind.READ:
            return [self._creg_text(self.reg_stat, urc=False)]
        if c.kind is Kind.TEST:
            return ["+CREG: (0-2)"]
        value = c.int_arg(0, 0)
        if value not in (0, 1, 2):
            raise CmeError(50)
        self.settings.creg = value
        return []

    @at("+COPS")
    async def _cops(self, c: Command) -> list[str]:
        if c.kind is Kind.TEST:
            ops = ",".join(f'(2,"{o.name}","{o.name}","{o.mcc_mnc}",7)' for o in OPERATORS)
            return [f"+COPS: {ops},,(0-4),(0-2)"]
        if c.kind is Kind.SET:
            if c.int_arg(0, 0) == 3:
                fmt = c.int_arg(1, 0)
                if fmt not in (0, 1, 2):
                    raise CmeError(50)
                self.settings.cops_format = fmt
            return []
        if c.kind is Kind.READ:
            if self.reg_stat not in (1, 5):
                return ["+COPS: 0"]
            sim, fmt = self.sim, self.settings.cops_format
            oper = sim.mcc_mnc if fmt == 2 else sim.operator_name
            return [f'+COPS: 0,{fmt},"{oper}",{CREG_ACT}']
        return []

    @at("+CSQ")
    async def _csq(self, c: Command) -> list[str]:
        if c.kind is Kind.TEST:
            return ["+CSQ: (0-31,99),(0-7,99)"]
        rssi = self.rssi if self.reg_stat in (1, 5) else 99
        return [f"+CSQ: {rssi},99"]

    @at("+CSUS", "+QDSIM")
    async def _slot(self, c: Command) -> list[str]:
        if c.name != self.dialect.slot_command or len(self.sims) < 2:
            raise CmeError(100)  # docs/dialects.md: no slot switch on single-slot modems
        if c.kind is Kind.READ:
            return [f"{c.name}: {self.active_slot}"]
        if c.kind is Kind.TEST:
            return [f"{c.name}: (0-{len(self.sims) - 1})"]
        slot = c.int_arg(0)
        if not 0 <= slot < len(self.sims):
            raise CmeError(50)
        if self.call is not None:
            raise CmeError(3)
        if slot != self.active_slot:
            self.active_slot = slot
            if self.sim.pin_enabled and self.sim.pin_state is PinState.READY:
                self.sim.pin_state = PinState.SIM_PIN  # a freshly selected card asks for PIN
            self._after = self._register_soon  # OK first, then +CREG: 2 … +CREG: 1
        return []

    # -- calls -----------------------------------------------------------------------------
    @at("+CLIP")
    async def _clip(self, c: Command) -> list[str]:
        if c.kind is Kind.READ:
            return [f"+CLIP: {int(self.settings.clip)},1"]
        self.settings.clip = c.int_arg(0, 0) == 1
        return []

    @at("D")
    async def _dial(self, c: Command) -> list[str]:
        text = c.raw.strip()
        voice = text.endswith(";")
        number = text.rstrip(";").strip()
        if not re.fullmatch(r"\+?[0-9*#]{1,20}", number):
            raise FixedResult("ERROR")
        if not voice:
            raise FixedResult("NO CARRIER")  # data calls are not simulated
        sim = self._need_sim()
        if self.reg_stat not in (1, 5):
            raise FixedResult("NO DIALTONE")
        if self.call is not None:
            raise CmeError(3)
        self.call = call = self.network.dial(self, sim, number)
        self._after = call.dial_confirmed.set  # OK first, then progress URCs
        return []

    @at("A")
    async def _answer(self, c: Command) -> list[str]:
        if self.call is None or self.call.state is not CallState.INCOMING:
            raise FixedResult("NO CARRIER")
        call = self.call
        self._after = lambda: self.network.answer(self, call)  # OK first, then progress URCs
        return []

    @at("H", "+CHUP")
    async def _hangup(self, c: Command) -> list[str]:
        if c.name in self.dialect.hangup_commands and self.call is not None:
            self.network.hangup(self, self.call)
        return []

    @at("+CLCC")
    async def _clcc(self, c: Command) -> list[str]:
        if c.kind is Kind.EXEC:
            return [_clcc(self.call, self.call.state)] if self.call else []
        if c.kind is Kind.READ:
            return [f"+CLCC: {int(self.settings.clcc_auto)}"]
        if c.kind is Kind.TEST:
            return ["+CLCC: (0,1)"] if self.dialect.call_report is CallReport.CLCC else []
        if self.dialect.call_report is not CallReport.CLCC:
            raise FixedResult("ERROR")  # docs/dialects.md: auto-report unsupported here
        self.settings.clcc_auto = c.int_arg(0, 0) == 1
        return []

    @at("^DSCI")
    async def _dsci(self, c: Command) -> list[str]:
        if c.kind is Kind.READ:
            return [f"^DSCI: {int(self.settings.dsci)}"]
        self.settings.dsci = c.int_arg(0, 0) == 1
        return []

    @at("+CEER")
    async def _ceer(self, c: Command) -> list[str]:
        cause = self.last_cause
        if self.dialect.ceer is CeerStyle.LOCATION_CAUSE:
            # M35 manual: +CEER: <locationID>,<cause>; we report location 1 (call control)
            # for every cause and 0,0 before any call; the driver reads only <cause>.
            return [f"+CEER: {1 if cause else 0},{cause}"]
        return [f"+CEER: {CAUSE_NAMES.get(cause, f'Cause {cause}')}"]

    @at("+VTS")
    async def _vts(self, c: Command) -> list[str]:
        if c.kind is Kind.TEST:
            return ["+VTS: (0-9,*,#,A-D)"]
        digits = "".join(c.args)
        if self.call is None or self.call.state is not CallState.ACTIVE:
            raise CmeError(3)
        if not re.fullmatch(r"[0-9*#A-Da-d]+", digits):
            raise CmeError(50)
        return []

    @at("^DTMF")
    async def _hw_dtmf(self, c: Command) -> list[str]:
        if self.call is None or self.call.state is not CallState.ACTIVE:
            raise CmeError(3)
        if not re.fullmatch(r"[0-9*#A-Da-d]", c.arg(1)):
            raise CmeError(50)
        return []

    @at("+DDET", "+QTONEDET")
    async def _dtmf_detect(self, c: Command) -> list[str]:
        if c.kind is Kind.READ:
            return [f"{c.name}: {int(self.settings.dtmf)}"]
        if c.name != self.dialect.dtmf_enable and self.dialect.dtmf_enable is not None:
            raise CmeError(100)
        self.settings.dtmf = c.int_arg(0, 0) == 1
        return []

    @at("+CTTS", "+QTTS")
    async def _tts(self, c: Command) -> list[str]:
        if c.name != self.dialect.tts:
            raise CmeError(100)
        if c.kind is Kind.READ:
            return [f"{c.name}: {int(self.speaker.playing)}"]
        if c.kind is Kind.TEST:
            return [f"{c.name}: (0-2)"]
        mode = c.int_arg(0)
        if mode == 0:  # stop: OK, then the end URC (only when something was playing)
            self._after = lambda: self.speaker.end(completed=False)
            return []
        if mode not in TEXT_MODES or len(c.args) < 2 or len(c.name) + len(c.raw) > MAX_COMMAND_LINE:
            raise FixedResult("ERROR")
        call = self.call
        if call is None or call.state is not CallState.ACTIVE or self.speaker.playing:
            raise FixedResult("ERROR")  # nothing to speak into, or the engine is busy
        text = TEXT_MODES[mode](c.arg(1))  # bad hex / non-ASCII: ValueError → +CME ERROR: 50
        heard = self.dialect.tts_path is None or self.settings.tts_path == 1
        self._after = lambda: self.speaker.start(call, text, heard=heard)  # OK first
        return []

    @at("+CDTAM")
    async def _tts_path(self, c: Command) -> list[str]:
        return self._numeric_setting(c, "tts_path", range(2))

    @at("^DDSETEX", "+CPCMREG", "+QPCMV")
    async def _audio_setup(self, c: Command) -> list[str]:
        """Switch the voice to the audio port (docs/emulator.md, "Call audio"): Huawei
        ``AT^DDSETEX=2`` (chan_dongle), SIM7600 ``AT+CPCMREG=1``/``=0``, EC25
        ``AT+QPCMV=1,0``/``=0``. Accepted and remembered; the port does not wait for it."""
        if c.name != self.dialect.audio_setup:
            raise CmeError(100)
        if c.kind is Kind.READ:
            return [f"{c.name}: {self.settings.audio}"]
        if c.kind is Kind.TEST:
            return [f"{c.name}: (0-2)" if c.name == "^DDSETEX" else f"{c.name}: (0,1)"]
        value = c.int_arg(0, 0)
        if value not in ((2,) if c.name == "^DDSETEX" else (0, 1)):
            raise CmeError(50)
        self.settings.audio = value
        return []

    @at("^CVOICE")
    async def _cvoice(self, c: Command) -> list[str]:
        # chan_dongle: voice over the audio port, 8 kHz 16-bit PCM in 20 ms frames.
        return ["^CVOICE: 0,8000,16,20"] if c.kind is Kind.READ else []

    # -- USSD ------------------------------------------------------------------------------
    @at("+CUSD")
    async def _cusd(self, c: Command) -> list[str]:
        if c.kind is Kind.READ:
            return ["+CUSD: 1"]
        if c.kind is Kind.TEST:
            return ["+CUSD: (0-2)"]
        n = c.int_arg(0, 0)
        if n == 2 or len(c.args) < 2:
            return []
        sim = self._need_sim()
        if self.reg_stat not in (1, 5):
            raise CmeError(30)
        try:
            request = self._ussd_decode(c.arg(1))
        except (ValueError, UnicodeDecodeError):
            raise CmeError(50) from None
        answer = self.network.ussd(sim, request)

        async def respond() -> None:
            await asyncio.sleep(self.profile.draw(self.rng, self.profile.call_setup))
            if answer is None:
                self.urc("+CUSD: 4")  # 27.007 §7.15: operation not supported
            else:
                self.urc(f'+CUSD: 0,"{self._ussd_encode(answer)}",{USSD_DCS}')

        self._spawn(respond())
        return []

    def _ussd_decode(self, text: str) -> str:
        if self.dialect.ussd is UssdCoding.PACKED_HEX:
            return ussd_unpack(text)
        if self.settings.cscs == "UCS2":
            return from_ucs2_hex(text)
        return text

    def _ussd_encode(self, text: str) -> str:
        if self.dialect.ussd is UssdCoding.PACKED_HEX:
            return ussd_pack(text)
        if self.settings.cscs == "UCS2":
            return ucs2_hex(text)
        return text

    @at("+CSCS")
    async def _cscs(self, c: Command) -> list[str]:
        if c.kind is Kind.READ:
            return [f'+CSCS: "{self.settings.cscs}"']
        if c.kind is Kind.TEST:
            return ['+CSCS: ("IRA","GSM","UCS2")']
        charset = c.arg(0).upper()
        if charset not in ("IRA", "GSM", "UCS2"):
            raise CmeError(4)
        self.settings.cscs = charset
        return []

    # -- SMS -------------------------------------------------------------------------------
    @at("+CMGF")
    async def _cmgf(self, c: Command) -> list[str]:
        if c.kind is Kind.READ:
            return [f"+CMGF: {self.settings.cmgf}"]
        if c.kind is Kind.TEST:
            return ["+CMGF: (0)"]
        if c.int_arg(0, 0) != 0:
            raise CmsError(303)  # PDU mode only
        return []

    @at("+CSCA")
    async def _csca(self, c: Command) -> list[str]:
        smsc = self.sim.operator.smsc if self.sim.operator else OPERATORS[0].smsc
        return [f'+CSCA: "{smsc}",145'] if c.kind is Kind.READ else []

    @at("+CNMI")
    async def _cnmi(self, c: Command) -> list[str]:
        if c.kind is Kind.READ:
            return ["+CNMI: " + ",".join(map(str, self.settings.cnmi))]
        if c.kind is Kind.TEST:
            ds = ",".join(map(str, sorted(self.dialect.cnmi_ds_supported)))
            return [f"+CNMI: (0-3),(0-3),(0,2),({ds}),(0,1)"]
        values = [c.int_arg(i, self.settings.cnmi[i]) for i in range(5)]
        limits = (3, 3, 3, 2, 1)
        if any(not 0 <= v <= hi for v, hi in zip(values, limits)) or values[3] not in self.dialect.cnmi_ds_supported:
            raise CmsError(303)
        self.settings.cnmi = values
        return []

    def _store(self, mem: str):  # type: ignore[no-untyped-def]
        return self.sim.sr if mem == "SR" else self.sim.sm

    @at("+CPMS")
    async def _cpms(self, c: Command) -> list[str]:
        sim = self._need_sim(sms=True)
        if c.kind is Kind.TEST:
            return ['+CPMS: ("SM","SR"),("SM"),("SM")']
        if c.kind is Kind.SET:
            mem = c.arg(0).upper()
            if mem not in ("SM", "SR", "ME", "MT"):
                raise CmsError(302)
            self.settings.mem1 = "SR" if mem == "SR" else "SM"
        m1 = self._store(self.settings.mem1)
        counts = f"{len(m1)},{m1.capacity},{len(sim.sm)},{sim.sm.capacity},{len(sim.sm)},{sim.sm.capacity}"
        if c.kind is Kind.READ:
            u1, t1, u2, t2, u3, t3 = counts.split(",")
            return [f'+CPMS: "{self.settings.mem1}",{u1},{t1},"SM",{u2},{t2},"SM",{u3},{t3}']
        return [f"+CPMS: {counts}"]

    @at("+CMGR")
    async def _cmgr(self, c: Command) -> list[str]:
        self._need_sim(sms=True)
        item = self._store(self.settings.mem1).read(c.int_arg(0))
        if item is None:
            raise CmsError(321)
        pdu, stat = item
        return [f"+CMGR: {stat},,{len(pdu) - pdu[0] - 1}", pdu.hex().upper()]

    @at("+CMGL")
    async def _cmgl(self, c: Command) -> list[str]:
        self._need_sim(sms=True)
        wanted = c.int_arg(0, 4)  # 27.005 §3.4.2 PDU mode: 0 unread, 1 read, 4 all
        store = self._store(self.settings.mem1)
        lines: list[str] = []
        for index, pdu, stat in store.items():
            if wanted == 4 or stat == wanted:
                lines += [f"+CMGL: {index},{stat},,{len(pdu) - pdu[0] - 1}", pdu.hex().upper()]
                store.read(index)
        return lines

    @at("+CMGD")
    async def _cmgd(self, c: Command) -> list[str]:
        self._need_sim(sms=True)
        store = self._store(self.settings.mem1)
        if c.int_arg(1, 0) == 4:  # 27.005 §3.5.4 <delflag> 4: delete all
            store.clear()
        else:
            store.delete(c.int_arg(0))
        return []

    @at("+CMGS")
    async def _cmgs(self, c: Command) -> list[str]:
        if c.kind is Kind.TEST:
            return []
        sim = self._need_sim(sms=True)
        if self.reg_stat not in (1, 5):
            raise CmsError(331)
        length = c.int_arg(0)
        self._framer.expect_body()
        self._in_body = True
        self._pty.write(PROMPT)
        try:
            event = await self._inbox.get()
        finally:
            self._in_body = False
            held, self._held = self._held, []
            for lines in held:
                self.urc(*lines)
        if not isinstance(event, Body):
            raise CmsError(304)
        if event.cancelled:
            return []
        hex_text = event.hex_text
        try:
            raw = bytes.fromhex(hex_text)
            if len(raw) - raw[0] - 1 != length:
                raise CmsError(304)  # 27.005 §3.5.1: <length> counts the TPDU octets only
            part = decode_submit(hex_text)
        except ValueError:
            raise CmsError(304) from None
        try:
            mr = await self.network.submit(self, sim, part)
        except SmsRejected as exc:
            raise CmsError(exc.cause) from None
        return [f"+CMGS: {mr}"]
