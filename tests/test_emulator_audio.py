"""The emulator's audio ports over real ptys: which modems have one, the 20 ms clock, what
each callee plays (checked with issue 6's detectors), what the far end records."""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import math
import os
import tty
import wave
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from appliance.audio import Beep, DtmfDetector, FaxTone, Sit
from appliance.audio import CallAudio as Detectors
from modem_drivers.emulator import Emulator
from modem_drivers.emulator._plan import plan_behaviour
from modem_drivers.emulator.host import AtHost
from modem_drivers.emulator.sounds import (
    FRAME_BYTES,
    HUMAN,
    HUMAN_SHORT,
    NAMES,
    SAMPLE_RATE,
)

AUDIO_MODELS = {"E1550", "SIMCOM_SIM7600E-H", "EC25", "E173"}


@pytest.fixture(scope="session")
def sound_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated voices, made once per test session (not in the user's ~/.cache)."""
    return tmp_path_factory.mktemp("sounds")


class AudioPort:
    """The host's end of an audio port: raw, non-blocking, read by the event loop."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.data = bytearray()
        self._more = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            self.data += os.read(self.fd, 65536)
        except (BlockingIOError, OSError):
            return
        self._more.set()

    async def frames(self, n: int, timeout: float = 20.0) -> bytes:
        """Wait until ``n`` whole frames have arrived; the first ``n`` of them."""
        async with asyncio.timeout(timeout):
            while len(self.data) < n * FRAME_BYTES:
                self._more.clear()
                await self._more.wait()
        return bytes(self.data[: n * FRAME_BYTES])

    async def say(self, pcm: bytes) -> None:
        """Write ``pcm`` as the appliance does: one frame every 20 ms."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(0, len(pcm), FRAME_BYTES):
            os.write(self.fd, pcm[i : i + FRAME_BYTES])
            await asyncio.sleep(max(0.0, t0 + (i // FRAME_BYTES + 1) * 0.02 - loop.time()))

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


def tone_pcm(hz: float, ms: int, dbfs: float = -20.0) -> bytes:
    t = np.arange(ms * SAMPLE_RATE // 1000) / SAMPLE_RATE
    x = 32768 * 10 ** (dbfs / 20) * math.sqrt(2) * np.sin(2 * np.pi * hz * t)
    return np.rint(x).astype("<i2").tobytes()


def rms_dbfs(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    p = float(np.mean(x * x)) if len(x) else 0.0
    return 10 * math.log10(p / 32768**2) if p > 0 else -120.0


def detect(pcm: bytes) -> list[object]:
    det = Detectors(run_amd=False)
    events: list[object] = []
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        events += det.feed(pcm[i : i + FRAME_BYTES])
    return events + list(det.finish())


def digits_in(pcm: bytes) -> str:
    det = DtmfDetector()
    out = []
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        out += det.feed(pcm[i : i + FRAME_BYTES])
    out += det.finish()
    return "".join(d.digit for d in out)


@pytest.fixture
async def bank_of(emulated_bank, sound_cache: Path):  # type: ignore[no-untyped-def]
    async def start(**options):  # type: ignore[no-untyped-def]
        options.setdefault("sound_cache", sound_cache)
        return await emulated_bank(**options)
    return start


async def dial(emu: Emulator, i: int, number: str) -> tuple[AtHost, AudioPort]:
    host = AtHost(emu.modems[i].port)
    assert (await host.command("ATE0"))[-1] == "OK"
    port = AudioPort(emu.modems[i].audio_port or "")
    assert await host.command(f"ATD{number};") == ["OK"]
    return host, port


def record_of(emu: Emulator, number: str):  # type: ignore[no-untyped-def]
    return next(r for r in reversed(emu.network.calls) if r.callee == number)


# -- which modems have a port ------------------------------------------------------------------
async def test_audio_port_only_for_audio_vendors(bank_of) -> None:  # type: ignore[no-untyped-def]
    emu, state_file = await bank_of(modems=6, vendors=("huawei", "simcom", "quectel", "generic"), control_port=None)
    state = json.loads(state_file.read_text())
    for modem, entry in zip(emu.modems, state["modems"]):
        assert "audio_port" in entry
        if modem.model in AUDIO_MODELS:
            assert entry["audio_port"] == modem.audio_port == str(emu.state_dir / f"tty{modem.id.upper()}-audio")
            assert os.path.realpath(entry["audio_port"]).startswith("/dev/pts/")
            assert os.path.realpath(entry["audio_port"]) != os.path.realpath(entry["port"])
        else:  # SIM800 and the generic modem
            assert entry["audio_port"] is None and modem.audio_port is None
    assert {m.model for m in emu.modems if m.audio_port} == AUDIO_MODELS
    # the audio set-up commands (the contract with the driver's dialect rows)
    answers = {
        "E1550": [("AT^DDSETEX=2", ["OK"])],
        "SIMCOM_SIM7600E-H": [("AT+CPCMREG=1", ["OK"]), ("AT+CPCMREG=0", ["OK"]), ("AT+CPCMREG?", ["+CPCMREG: 0", "OK"])],
        "EC25": [("AT+QPCMV=1,0", ["OK"]), ("AT+QPCMV=0", ["OK"])],
        "SIM800": [("AT+CPCMREG=1", ["ERROR"])],
        "GSM-27007": [("AT+QPCMV=1,0", ["ERROR"])],
    }
    for modem in emu.modems:
        if modem.model not in answers:
            continue
        host = AtHost(modem.port)
        await host.command("ATE0")
        for line, expected in answers[modem.model]:
            assert await host.command(line) == expected, (modem.model, line)
        host.close()
    # a vanished modem's audio port goes with it and comes back beside the AT port
    await emu.inject("emu000", "vanish", seconds=0.2)
    assert not os.path.exists(emu.modems[0].audio_port or "")
    await asyncio.sleep(0.4)
    assert os.path.realpath(emu.modems[0].audio_port or "").startswith("/dev/pts/")


# -- the clock, silence outside calls, what the far end records ----------------------------------
async def test_frames_only_during_an_answered_call_at_20_ms_and_what_the_host_sends_is_recorded(bank_of) -> None:  # type: ignore[no-untyped-def]
    emu, _ = await bank_of(modems=1, vendors=("huawei",))
    host = AtHost(emu.modems[0].port)
    await host.command("ATE0")
    port = AudioPort(emu.modems[0].audio_port or "")
    os.write(port.fd, tone_pcm(1000, 200))  # outside a call: read and thrown away
    await asyncio.sleep(0.3)
    assert port.data == b""  # and nothing is written
    number = "+48600000123"  # a person
    loop = asyncio.get_running_loop()
    assert await host.command(f"ATD{number};") == ["OK"]
    await port.frames(1)
    first = loop.time()
    await port.frames(51)
    # 50 frames after the first took 50 ticks of 20 ms: a paced stream, never a burst
    assert loop.time() - first >= 50 * 0.02 - 0.05
    # the host says something: a 1 s tone, paced; the far end records it on its clock
    said_at = emu.network.calls[-1].audio.frames_sent * 20  # type: ignore[union-attr]
    await port.say(tone_pcm(700, 1000))
    await asyncio.sleep(0.9)  # the far end hears the quiet after it: the span closes
    audio = record_of(emu, number).audio
    assert audio is not None and audio.kind == "person"
    spans = [s for s in audio.heard if s.start_ms >= said_at - 100]
    assert len(spans) == 1, audio.heard
    span = spans[0]
    assert 900 <= span.end_ms - span.start_ms <= 1100
    assert abs(rms_dbfs(audio.span_audio(span)) + 20) < 1.5
    assert audio.frames_heard >= 48
    # the control API: the record without its PCM, the recording as a WAV
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emu.control_url}/calls") as resp:
            public = (await resp.json())[-1]["audio"]
        assert public["heard"][-1] == {"start_ms": span.start_ms, "end_ms": span.end_ms}
        assert "pcm" not in public and public["kind"] == "person"
        async with http.get(f"{emu.control_url}/calls/0/heard.wav", params={"from_ms": str(span.start_ms)}) as resp:
            assert resp.status == 200
            with wave.open(io.BytesIO(await resp.read())) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
                pcm = w.readframes(w.getnframes())
        assert pcm[: len(audio.span_audio(span))] == audio.span_audio(span)
        async with http.get(f"{emu.control_url}/calls/0/heard.wav", params={"from": "beep"}) as resp:
            assert resp.status == 404 and (await resp.json())["error"] == "no_beep"
    # the call ends: the port falls quiet
    assert (await host.command("AT+CHUP"))[-1] == "OK"
    await asyncio.sleep(0.1)
    sent = audio.frames_sent
    received = len(port.data)
    await asyncio.sleep(0.3)
    assert len(port.data) == received == sent * FRAME_BYTES
    host.close()
    port.close()


# -- what each callee plays --------------------------------------------------------------------
CALLEES = {
    "person": "+48600000123",
    "machine": "+48601100200",
    "silence": "+48600070123",
    "fax": "+48600080123",
    "sit": "+48600090123",
    "keys": "+48602812345",  # the plan's first keypad person: 1DDMM# from the answer
}


async def test_each_callee_plays_its_kind_of_audio(bank_of) -> None:  # type: ignore[no-untyped-def]
    emu, _ = await bank_of(modems=len(CALLEES), vendors=("huawei",), control_port=None)
    # A real line carries its noise from the first frame: the far ends' sounds are made
    # before the dial, so none starts on the emulator's quiet floor while its sound is still
    # being made (that level step reads as sound before the fax's CNG, which is then a beep).
    assert emu.network.sounds is not None
    for number in CALLEES.values():
        await asyncio.to_thread(emu.network.sounds.sound_for, number, plan_behaviour(number))
    lines = {kind: await dial(emu, i, number) for i, (kind, number) in enumerate(CALLEES.items())}
    # listen until the machine's beep has sounded (and 1 s more), 4 s at least
    machine = record_of(emu, CALLEES["machine"])
    async with asyncio.timeout(30):
        while machine.audio is None or machine.audio.beep_ms is None:
            await asyncio.sleep(0.1)
    beep_ms = machine.audio.beep_ms
    heard = {kind: await port.frames(max(200, beep_ms // 20 + 50)) for kind, (host, port) in lines.items()}

    person = record_of(emu, CALLEES["person"]).audio
    assert person is not None and person.source == "espeak"
    assert person.said in {p.format(name=n) for p in HUMAN_SHORT["pl"] + HUMAN["pl"] for n in NAMES["pl"]}  # V even: Polish
    loud = [rms_dbfs(heard["person"][i : i + FRAME_BYTES]) for i in range(0, 200 * FRAME_BYTES, FRAME_BYTES)]
    assert max(loud) > -35  # he speaks...
    assert loud[0] < max(loud) - 12  # ...after a breath (his line's noise, which runs all call long)

    beeps = [e for e in detect(heard["machine"]) if isinstance(e, Beep)]
    assert len(beeps) == 1 and abs(beeps[0].tone.end_ms - beep_ms) <= 25, (beeps, beep_ms)
    await lines["machine"][1].say(tone_pcm(600, 1000))  # the message, after the beep
    await asyncio.sleep(0.9)
    message = [s for s in machine.audio.heard if s.start_ms >= beep_ms]
    assert len(message) == 1 and 900 <= message[0].end_ms - message[0].start_ms <= 1100
    assert rms_dbfs(machine.audio.span_audio(message[0])) > -30  # recorded at its level
    assert machine.audio.span_audio(message[0]) in machine.audio.after_beep()  # in its recording after the beep

    quiet = np.frombuffer(heard["silence"], dtype="<i2")
    assert rms_dbfs(heard["silence"]) < -55 and np.count_nonzero(quiet) > len(quiet) // 2  # a line, not digital zero

    assert any(isinstance(e, FaxTone) and e.kind.value == "cng" for e in detect(heard["fax"]))
    assert any(isinstance(e, Sit) for e in detect(heard["sit"]))

    keyed = record_of(emu, CALLEES["keys"])
    assert len(keyed.dtmf) == 6 and keyed.dtmf[0] == "1" and keyed.dtmf[-1] == "#"
    assert digits_in(heard["keys"]) == keyed.dtmf  # in band...
    host = lines["keys"][0]
    assert [(await host.expect("^DDTMF: ")).split(": ")[1] for _ in range(6)] == list(keyed.dtmf)  # ...and as URCs
    assert [k.digit for k in keyed.audio.keys] == list(keyed.dtmf)  # type: ignore[union-attr]
    for host, port in lines.values():
        host.close()
        port.close()


# -- the keypad person who listens -------------------------------------------------------------
#: behaviour 8, V = 9, W = script: the groups he keys, one after each prompt
SCRIPTS = {
    "+48600890111": ["1", "DDMM", "1"],  # confirms a valid date
    "+48600891111": ["1", "3102", "DDMM", "1"],  # an impossible date first
    "+48600892111": ["0"],  # asks for a person at the first question
    "+48600893111": [],  # never presses anything
    "+48600894111": ["2"],  # not the debtor
}


async def _converse(emu: Emulator, i: int, number: str, expected: list[str]) -> list[str]:
    host, port = await dial(emu, i, number)
    record = record_of(emu, number)
    groups: list[str] = []
    await port.frames(60)  # his "Halo?"
    for _ in range(max(len(expected), 2)):
        before = len(record.dtmf)
        await port.say(tone_pcm(440, 600))  # a prompt, then quiet
        try:
            async with asyncio.timeout(3):
                want = len(expected[len(groups)]) if len(groups) < len(expected) else 1
                while len(record.dtmf) < before + want:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            break
        groups.append(record.dtmf[before:])
    await asyncio.sleep(0.3)
    assert digits_in(bytes(port.data)) == record.dtmf
    host.close()
    port.close()
    return groups


async def test_the_listening_keypad_person_keys_after_each_prompt(bank_of) -> None:  # type: ignore[no-untyped-def]
    emu, _ = await bank_of(modems=len(SCRIPTS), vendors=("huawei",), control_port=None)
    results = await asyncio.gather(*(_converse(emu, i, n, e) for i, (n, e) in enumerate(SCRIPTS.items())))
    today = dt.date.today()
    for (number, expected), groups in zip(SCRIPTS.items(), results):
        assert len(groups) == len(expected), (number, groups)
        for want, got in zip(expected, groups):
            if want == "DDMM":
                when = dt.date(today.year + (int(got[2:]) < today.month), int(got[2:]), int(got[:2]))
                assert 2 <= (when - today).days <= 9
            else:
                assert got == want
        record = record_of(emu, number)
        assert record.audio is not None and record.audio.kind == "keypad"
        assert [k.digit for k in record.audio.keys] == list(record.dtmf)
        assert len(record.audio.heard) >= len(groups)
        # each group came after the prompt before it had ended
        for group_start, prompt in zip(_group_starts(record.audio.keys, groups), record.audio.heard):
            assert group_start > prompt.end_ms


def _group_starts(keys, groups):  # type: ignore[no-untyped-def]
    out, n = [], 0
    for g in groups:
        out.append(keys[n].at_ms)
        n += len(g)
    return out


# -- --audio-dir --------------------------------------------------------------------------------
async def test_audio_dir_plays_wav_files_per_number_then_per_kind(bank_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    recordings = tmp_path / "recordings"
    recordings.mkdir()

    def write(name: str, pcm: bytes, rate: int = 8000) -> None:
        with wave.open(str(recordings / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)

    write("machine.wav", tone_pcm(500, 1000, -18))
    t16 = np.arange(16000 // 2) / 16000  # half a second at 16 kHz: sox converts it
    write("600000555.wav", np.rint(3000 * np.sin(2 * np.pi * 1500 * t16)).astype("<i2").tobytes(), 16000)
    emu, _ = await bank_of(modems=2, vendors=("huawei",), control_port=None, audio_dir=recordings)
    (h1, machine), (h2, person) = await dial(emu, 0, "+48601112345"), await dial(emu, 1, "+48600000555")
    m_pcm, p_pcm = await machine.frames(150), await person.frames(150)
    m_rec, p_rec = record_of(emu, "+48601112345").audio, record_of(emu, "+48600000555").audio
    assert m_rec.source == str(recordings / "machine.wav") and p_rec.source == str(recordings / "600000555.wav")
    loud = [i for i in range(0, len(m_pcm), FRAME_BYTES) if rms_dbfs(m_pcm[i : i + FRAME_BYTES]) > -25]
    assert 45 <= len(loud) <= 51  # the file's second of tone
    assert abs(m_rec.beep_ms - (loud[-1] // FRAME_BYTES * 20 + 20)) <= 20  # the file's end is the beep's
    loud = [i for i in range(0, len(p_pcm), FRAME_BYTES) if rms_dbfs(p_pcm[i : i + FRAME_BYTES]) > -25]
    assert 22 <= len(loud) <= 26  # half a second
    for h, p in ((h1, machine), (h2, person)):
        h.close()
        p.close()


# -- a caller calling back -----------------------------------------------------------------------
async def test_an_inbound_caller_keys_after_the_prompt(bank_of) -> None:  # type: ignore[no-untyped-def]
    emu, _ = await bank_of(modems=1, vendors=("huawei",))
    host = AtHost(emu.modems[0].port)
    await host.command("ATE0")
    port = AudioPort(emu.modems[0].audio_port or "")
    async with aiohttp.ClientSession() as http:
        body = {"from": "+48601012345", "to": emu.modems[0].sim.msisdn, "ring_seconds": 5, "keys": "1"}
        async with http.post(f"{emu.control_url}/inbound/call", json=body) as resp:
            assert resp.status == 202
        async with http.post(f"{emu.control_url}/inbound/call", json={**body, "keys": "x"}) as resp:
            assert resp.status == 422 and (await resp.json())["detail"].startswith("keys:")
    await host.expect("RING")
    assert await host.command("ATA") == ["OK"]
    await port.frames(10)
    record = emu.network.calls[0]
    assert record.direction == "in" and record.dtmf == ""  # nothing before he hears a prompt
    await port.say(tone_pcm(440, 600))
    assert await host.expect("^DDTMF: ") == "^DDTMF: 1"
    assert record.dtmf == "1" and record.audio is not None and record.audio.keys[0].at_ms > record.audio.heard[0].end_ms
    host.close()
    port.close()


def test_the_cli_takes_an_audio_dir_that_exists(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from modem_drivers.emulator.cli import emulate

    result = CliRunner().invoke(emulate, ["--audio-dir", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "--audio-dir" in result.output
    assert "--sound-cache" in CliRunner().invoke(emulate, ["--help"]).output


async def test_a_far_end_whose_voice_is_still_being_made_starts_on_its_line_noise(bank_of, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A real line carries its noise from the answer on. A callee whose voice is not made
    yet (a cold cache: espeak-ng runs while the call rings) starts on his line's noise,
    not on the emulator's quiet floor, which then stepped up to the noise when the voice
    was ready: a level step a tone detector took for sound (a fax's CNG became a beep)."""
    from modem_drivers.emulator._voices import CalleeKind, NotReady

    emu, _ = await bank_of(modems=1, vendors=("huawei",), control_port=None, sound_cache=tmp_path / "cold")
    sounds = emu.network.sounds
    assert sounds is not None
    number = next(n for n in (f"+486000001{k:02d}" for k in range(100))
                  if sounds.kind_of(n, plan_behaviour(n)) is CalleeKind.PERSON and sounds._line(CalleeKind.PERSON, n)[2][3] >= 0)
    with pytest.raises(NotReady):
        sounds.sound_for(number, plan_behaviour(number), blocking=False)  # his voice is not made yet
    floor = sounds.line_floor_for(number, CalleeKind.PERSON)
    assert floor is not None and rms_dbfs(floor) > -50  # a noisy line, louder than the quiet floor
    host, port = await dial(emu, 0, number)
    first = await port.frames(5)  # the first 100 ms after the answer: before any breath ends
    assert abs(rms_dbfs(first) - rms_dbfs(floor)) < 3, (rms_dbfs(first), rms_dbfs(floor))
    host.close()
    port.close()
