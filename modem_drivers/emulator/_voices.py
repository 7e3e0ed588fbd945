"""What each callee sounds like on an audio port, made once and cached on disk.

A callee's sound follows from his number (docs/emulator.md, "Call audio"): the plan's
behaviour digit ``B`` says person, machine or keypad person, the next digit ``V`` what a
person plays (a voice, silence, fax CNG, an operator's SIT and announcement) or which
keys a keypad person presses. Voices come from :mod:`.sounds` (espeak-ng, the corpus's
phrases and voices) with the network's impairments: telephone band (sox sinc), line
noise, a µ-law codec round trip. A clip is keyed by everything that makes it and stored
as raw PCM in the cache directory, so each is synthesised once per machine.

A line with noise carries it all call long, not only under the voice: ``line_floor`` is
the far end's quiet between sounds, the same noise at the same level as in its clips (a
step from a quieter floor to the clip's noise at the greeting's start, and back at its
end, made the AMD hear one long utterance where a person paused: issue 14).

``audio_dir`` replaces the generated sound by WAV files: ``<number>.wav`` (``+48…``,
``48…`` or the 9 national digits) first, then ``<kind>.wav`` (``person.wav``,
``machine.wav``, ``silence.wav``, ``fax.wav``, ``sit.wav``, ``keypad.wav``). The file
is played once from the first frame after the answer, as recorded: a recording carries
its own onset and its own line noise (an added onset of the emulator's floor delayed
every decision by 0.1–0.8 s and put a level step before the recording's noise). Its
digital silence is played as ±1 LSB (−90 dBFS): a live line never carries digital zero,
and the appliance rightly calls 500 ms of it a dead voice path. For a machine the file's
end counts as the beep's end.

Making a sound blocks (subprocesses): the network runs that in a worker thread, and asks
first without blocking (``blocking=False``), which serves a sound whose clips are cached
at once, from the event loop.
"""
from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import os
import subprocess
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from ._plan import Behaviour, national_number, plan_variant
from .sounds import (
    ANNOUNCEMENT,
    BAND_LIMIT,
    HUMAN,
    HUMAN_SHORT,
    MACHINE,
    NAMES,
    REPLY,
    SAMPLE_RATE,
    SIT_PLANS,
    VARIANTS,
    VOICES,
    Samples,
    add_noise,
    codec_round_trip,
    noise,
    speak,
    to_pcm,
    tone,
    zeros,
)

log = logging.getLogger(__name__)

#: Bump when the way clips are made changes, so stale cache files are not reused.
CACHE_VERSION: Final = 2  # 2: every clip carries its line's noise (a clean line its quiet floor)
#: Distinct voices per kind: callees share them (a number picks one by its hash), so a
#: bank dialling thousands of numbers synthesises a few dozen clips, not thousands.
VOICE_POOL: Final = 8


#: A quiet GSM line after the codec's comfort noise (white noise, dBFS RMS): under the
#: appliance's speech thresholds but not digital zero. A clean line carries it all call
#: long, under the voice too: a clip's pauses quieter than the line between them made the
#: AMD's floor sink and took 5 s to climb back (a person judged "unsure").
FLOOR_DBFS: Final = -66.0
#: The line noise loop a callee's quiet is cut from (s): long enough that its repeat is
#: not a tone (0.5 Hz), 32 KB per noise kind and level.
LINE_FLOOR_SECONDS: Final = 2


#: Clips kept in memory (a bank's few dozen voices, and --audio-dir files): ~50 KB each.
MEMORY_CLIPS: Final = 512


class NotReady(Exception):
    """A sound asked for without blocking needs making first (espeak-ng, sox)."""


class CalleeKind(enum.Enum):
    PERSON = "person"
    MACHINE = "machine"
    SILENCE = "silence"
    FAX = "fax"
    SIT = "sit"
    KEYPAD = "keypad"


#: Behaviour 0/7 (a person answers): digit V → what he plays. 0–6 a voice (even V
#: Polish, odd V English), 7 silence, 8 a fax machine's CNG, 9 an operator's SIT.
PERSON_VARIANTS: Final[dict[int, CalleeKind]] = {
    **{v: CalleeKind.PERSON for v in range(7)}, 7: CalleeKind.SILENCE, 8: CalleeKind.FAX, 9: CalleeKind.SIT,
}


#: Behaviour 8 with this V: a keypad person who listens (the next digit W picks his
#: script); any other V keeps the plan's first keypad person, who keys ``1DDMM#`` right
#: after answering whatever he hears.
LISTENING_KEYPAD: Final = 9


class KeyScript(enum.Enum):
    """Behaviour 8, V = 9 (a keypad person who listens): digit W → the keys he presses,
    one group after each prompt he hears (``DDMM`` is a real date 2–9 days ahead)."""

    CONFIRMS = 0  # 1 (it is me), DDMM, 1 (the date read back is right)
    INVALID_DATE_FIRST = 1  # 1, 3102 (31 February), DDMM, 1
    AGENT = 2  # 0 (a call back from a person) at the first question: inside a DDMM date 0 is a digit
    SILENT = 3  # never presses anything
    WRONG_PERSON = 4  # 2 (it is not me)


#: W digits 5–9 confirm, as 0 does.
KEY_VARIANTS: Final[dict[int, KeyScript]] = {**{s.value: s for s in KeyScript}, **{v: KeyScript.CONFIRMS for v in range(5, 10)}}
#: 31 February: a date no calendar has.
INVALID_DATE: Final = "3102"


def key_groups(script: KeyScript, today: dt.date, rng: np.random.Generator) -> tuple[str, ...]:
    when = today + dt.timedelta(days=int(rng.integers(2, 10)))
    date = f"{when.day:02d}{when.month:02d}"
    return {
        KeyScript.CONFIRMS: ("1", date, "1"),
        KeyScript.INVALID_DATE_FIRST: ("1", INVALID_DATE, date, "1"),
        KeyScript.AGENT: ("0",),
        KeyScript.SILENT: (),
        KeyScript.WRONG_PERSON: ("2",),
    }[script]


@dataclass(frozen=True, slots=True)
class CalleeSound:
    """Everything the far end of one call plays (PCM: 8 kHz s16le)."""

    kind: CalleeKind
    greeting: bytes  # from the answer (after ``onset_ms``): a voice, a greeting + beep, SIT + announcement, CNG
    onset_ms: int = 0  # quiet line before the greeting (people take 0.1–0.8 s to speak)
    said: str = ""
    beep_end_ms: int | None = None  # machine: where the beep ends, in ms from the greeting's start
    reply: bytes = b""  # a person's "Hello? Anyone there?" when nothing is heard after his greeting
    reply_after_ms: int = 0
    repeat_ms: int = 0  # fax: the greeting repeats with this period until the call ends
    keys: tuple[str, ...] = ()  # keypad person: key groups, one after each prompt
    source: str = "espeak"
    line_floor: bytes | None = None  # the line's noise between sounds (None: the quiet floor)


def listens(number: str) -> bool:
    """Is a behaviour-8 callee the keypad person who waits for prompts (V = 9)?"""
    return plan_variant(number) == LISTENING_KEYPAD


def _script_digit(number: str) -> int:
    national = national_number(number)
    return int(national[5]) if national is not None else 0


def _number_seed(seed: int, number: str) -> int:
    digest = hashlib.sha256(f"{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class SoundLibrary:
    """Makes and caches callee sounds. ``cache_dir`` holds the clips; ``audio_dir``, when
    given, overrides them with WAV files."""

    def __init__(self, cache_dir: Path, audio_dir: Path | None = None, seed: int = 0) -> None:
        self.cache_dir = cache_dir
        self.audio_dir = audio_dir
        self.seed = seed
        self._warned = False
        self._memory: dict[str, bytes] = {}  # clips and WAV files read or made, by key

    def kind_of(self, number: str, behaviour: Behaviour) -> CalleeKind:
        if behaviour is Behaviour.MACHINE:
            return CalleeKind.MACHINE
        if behaviour is Behaviour.HUMAN_DTMF:
            return CalleeKind.KEYPAD
        return PERSON_VARIANTS[plan_variant(number)]

    def sound_for(self, number: str, behaviour: Behaviour, today: dt.date | None = None, *,
                  blocking: bool = True) -> CalleeSound:
        """The far end of a call to ``number``. Blocking, it may run espeak-ng and sox;
        with ``blocking=False`` it only reads what is cached and raises :class:`NotReady`
        when something would have to be made (the event loop's fast path)."""
        kind = self.kind_of(number, behaviour)
        rng = np.random.default_rng(_number_seed(self.seed, number))
        onset = int(rng.uniform(100, 800))
        keys: tuple[str, ...] = ()
        if kind is CalleeKind.KEYPAD:
            if not listens(number):
                return CalleeSound(kind, b"", source="keys")  # the network keys his digits at once
            keys = key_groups(KEY_VARIANTS[_script_digit(number)], today or dt.date.today(), rng)
        wav = self._wav_for(number, kind)
        if wav is not None:
            pcm = self._memory.get(str(wav))
            if pcm is None:
                plain = _read_plain_wav(wav)  # already the port's format: read at once, no sox
                if plain is None and not blocking:
                    raise NotReady(str(wav))
                pcm = self._remember(str(wav), _never_zero(plain if plain is not None else _read_wav(wav)))
            beep = len(pcm) // (2 * SAMPLE_RATE // 1000) if kind is CalleeKind.MACHINE else None
            return CalleeSound(kind, pcm, 0, beep_end_ms=beep, keys=keys, source=str(wav))
        try:
            return self._generated(kind, number, keys, onset, blocking)
        except (OSError, subprocess.CalledProcessError) as exc:
            if not self._warned:
                log.warning("callee voices cannot be made (%s): callees play a quiet line", exc)
                self._warned = True
            return CalleeSound(kind, b"", onset, keys=keys, source="none")

    def _wav_for(self, number: str, kind: CalleeKind) -> Path | None:
        if self.audio_dir is None:
            return None
        national = national_number(number) or ""
        names = [f"{number}.wav", f"{number.lstrip('+')}.wav"]
        if national:
            names.append(f"{national}.wav")
        names.append(f"{kind.value}.wav")
        for name in names:
            path = self.audio_dir / name
            if path.is_file():
                return path
        return None

    # -- generated sounds -------------------------------------------------------------------
    def _line(self, kind: CalleeKind, number: str) -> tuple[str, str, tuple[str, int, int, float, int], np.random.Generator]:
        """The callee's language, name and line (voice, speed, pitch, SNR, voice slot), and
        the generator his sound's further draws continue from."""
        slot = _number_seed(self.seed, number) % VOICE_POOL
        rng = np.random.default_rng(slot * 7919 + len(kind.value))
        variant = plan_variant(number)
        if kind is CalleeKind.PERSON:
            lang = "en" if variant % 2 else "pl"
        else:
            lang = str(rng.choice(["en", "pl"]))
        voice = str(rng.choice(VOICES[lang])) + str(rng.choice(VARIANTS))
        speed, pitch = int(rng.integers(150, 231)), int(rng.integers(25, 76))
        name = str(rng.choice(NAMES[lang]))
        snr = float(rng.choice([-1.0, 35.0, 25.0, 18.0]))  # -1: no added noise
        return lang, name, (voice, speed, pitch, snr, slot), rng

    def line_floor_for(self, number: str, kind: CalleeKind) -> bytes | None:
        """The noise of the callee's line alone (None: the quiet floor), cheap to make:
        a line carries its noise from the answer on, also while his voice is still being
        made (a late sound started on the quiet floor and stepped up to the line's noise,
        a step a tone detector hears as sound)."""
        if kind is CalleeKind.SILENCE or self._wav_for(number, kind) is not None:
            return None
        _, _, (_, _, _, snr, slot), _ = self._line(kind, number)
        return self._line_floor(slot, snr, blocking=True)

    def _generated(self, kind: CalleeKind, number: str, keys: tuple[str, ...], onset: int,
                   blocking: bool) -> CalleeSound:
        lang, name, line, rng = self._line(kind, number)
        snr, slot = line[3], line[4]

        def clip(text: str) -> bytes:
            return self._clip(("say", text, *line), lambda: self._voice(text, line), blocking)

        floor = self._line_floor(slot, snr, blocking)

        if kind in (CalleeKind.PERSON, CalleeKind.KEYPAD):
            pool = HUMAN_SHORT if rng.random() < 0.6 else HUMAN
            said = str(rng.choice(pool[lang])).format(name=name)
            reply_text = str(rng.choice(REPLY[lang]))
            greeting, reply = clip(said), clip(reply_text)
            return CalleeSound(kind, greeting, onset, said, reply=reply, keys=keys,
                               reply_after_ms=int(rng.uniform(800, 2500)), line_floor=floor)
        if kind is CalleeKind.MACHINE:
            said = str(rng.choice(MACHINE[lang])).format(name=name)
            beep_hz, beep_ms = round(float(rng.uniform(400, 2000)), 1), int(rng.uniform(150, 1000))
            pause_ms = int(rng.uniform(200, 800))
            voice_pcm = clip(said)
            level, phase = float(rng.uniform(-22, -10)), int(rng.integers(2**31))
            beep = self._clip(("beep", pause_ms, beep_hz, beep_ms, level, phase, slot, snr), lambda: self._on_line(
                np.concatenate([zeros(pause_ms), tone(beep_hz, beep_ms, level, np.random.default_rng(phase))]), slot, snr),
                blocking)
            greeting = voice_pcm + beep
            return CalleeSound(kind, greeting, onset, said, beep_end_ms=len(greeting) // (2 * SAMPLE_RATE // 1000),
                               line_floor=floor)
        if kind is CalleeKind.SIT:
            sit_kind = str(rng.choice(list(SIT_PLANS)))
            said = str(rng.choice(ANNOUNCEMENT[lang]))
            level = float(rng.uniform(-24, -14))  # ITU-T E.180: −24 dBm0 nominal
            tones = np.concatenate([tone(f, ms, level, rng) for f, ms in SIT_PLANS[sit_kind]])
            announcement = clip(said)
            gap = int(rng.uniform(300, 1000))
            sit = self._clip(("sit", sit_kind, level, gap, slot, snr),
                             lambda: self._on_line(np.concatenate([tones, zeros(gap)]), slot, snr), blocking)
            return CalleeSound(kind, sit + announcement, onset, said, line_floor=floor)
        if kind is CalleeKind.FAX:
            # T.30 §4.1.2: a calling fax sends CNG, 1100 Hz for 0.5 s every 3.5 s (0.5 on, 3 off).
            cng = tone(1100.0, 500, float(rng.uniform(-20, -10)), rng)
            return CalleeSound(kind, to_pcm(self._on_line(cng, slot, snr)), onset, repeat_ms=3500, line_floor=floor)
        return CalleeSound(kind, b"", onset)  # silence: a quiet line (docs/emulator.md), its floor only

    def _voice(self, text: str, line: tuple[str, int, int, float, int]) -> Samples:
        voice, speed, pitch, snr, slot = line
        return self._on_line(speak(text, voice, speed, pitch, BAND_LIMIT), slot, snr)

    @staticmethod
    def _on_line(x: Samples, slot: int, snr: float) -> Samples:
        """``x`` as the callee's line carries it: with the line's noise (its kind and level;
        a clean line's quiet floor, :data:`FLOOR_DBFS` white) and through the codec."""
        rng = np.random.default_rng(slot)
        if snr >= 0:
            x = add_noise(x, _noise_kind(slot), snr, rng)
        else:
            x = x + noise("white", len(x), rng) * 32768 * 10 ** (FLOOR_DBFS / 20)
        return codec_round_trip(x)

    def _line_floor(self, slot: int, snr: float, blocking: bool) -> bytes | None:
        """The noise of this callee's line between his sounds: the kind and level his clips
        carry, through the codec, a loop of :data:`LINE_FLOOR_SECONDS` (None: a clean line)."""
        if snr < 0:
            return None
        kind = _noise_kind(slot)
        n = LINE_FLOOR_SECONDS * SAMPLE_RATE
        return self._clip(("floor", kind, snr), lambda: codec_round_trip(add_noise(zeros(n * 1000 / SAMPLE_RATE), kind, snr,
                                                                                  np.random.default_rng(n))), blocking)

    def _clip(self, key: tuple[object, ...], make: Callable[[], Samples], blocking: bool = True) -> bytes:
        digest = hashlib.sha1(repr((CACHE_VERSION, *key)).encode()).hexdigest()
        if digest in self._memory:
            return self._memory[digest]
        path = self.cache_dir / f"{digest}.s16"
        try:
            return self._remember(digest, path.read_bytes())
        except FileNotFoundError:
            pass
        if not blocking:
            raise NotReady(digest)
        pcm = self._remember(digest, to_pcm(make()))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(pcm)
        os.replace(tmp, path)  # atomic: two emulators sharing a cache never read half a clip
        return pcm

    def _remember(self, key: str, pcm: bytes) -> bytes:
        if len(self._memory) >= MEMORY_CLIPS:
            self._memory.pop(next(iter(self._memory)))  # the oldest goes
        self._memory[key] = pcm
        return pcm


def _noise_kind(slot: int) -> str:
    return ("white", "pink", "brown")[slot % 3]


def _never_zero(pcm: bytes) -> bytes:
    """Digital zero samples as ±1 LSB (alternating): a live line is never digital zero."""
    x = np.frombuffer(pcm, dtype="<i2").copy()
    zero = np.flatnonzero(x == 0)
    x[zero] = np.where(zero % 2, 1, -1)
    return x.tobytes()


def _read_plain_wav(path: Path) -> bytes | None:
    """The samples of a WAV that is already 8 kHz s16 mono PCM (a corpus file: read in the
    event loop, so its call starts with it), else None (sox converts it, in a thread)."""
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype()) != (SAMPLE_RATE, 1, 2, "NONE"):
                return None
            return w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        return None


def _read_wav(path: Path) -> bytes:
    """Any WAV sox reads, as 8 kHz s16le mono."""
    out = subprocess.run(
        ["sox", str(path), "-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed", "-b", "16", "-c", "1", "-"],
        capture_output=True, check=True,
    )
    return out.stdout


def default_cache_dir() -> Path:
    """``$SIMROTOR_SOUND_CACHE``, else ``$XDG_CACHE_HOME/simrotor/emulator-sounds``
    (``~/.cache`` when unset: the XDG base directory specification's default)."""
    explicit = os.environ.get("SIMROTOR_SOUND_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "simrotor" / "emulator-sounds"
