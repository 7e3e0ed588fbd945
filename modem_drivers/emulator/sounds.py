"""Sound-making primitives shared by the emulator's callees and issue 6's corpus.

The emulator's far ends (``_voices.py``) and the labelled corpus
(``appliance/audio/corpus.py``) make their sounds the same way: espeak-ng voices
resampled by sox, tones, line noise, and the phrases people, machines and operators say.
They live here, on the hardware floor, because the emulator may not import ``appliance/``
(imports run down); the corpus imports them from here, so nothing is written twice.

Everything works on float samples at 8 kHz (full scale = 32768) until ``to_pcm``. The
espeak-ng voice itself (``speak``, ``to_pcm``) is ``modem_drivers.audio.speech``: the
appliance's prompts use it too, and the appliance must not import the emulator.
"""
from __future__ import annotations

from typing import Final

import numpy as np

from ..audio.frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from ..audio.speech import BAND_LIMIT, SPEECH_DBFS, Samples, speak, to_pcm

#: What the emulator's far ends and the corpus take from here (speech and the frame
#: format re-exported from ``modem_drivers.audio``, where they live).
__all__ = [
    "ANNOUNCEMENT",
    "BAND_LIMIT",
    "DTMF_COLS",
    "DTMF_KEYS",
    "DTMF_ROWS",
    "FRAME_BYTES",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "HUMAN",
    "HUMAN_SHORT",
    "MACHINE",
    "MU",
    "NAMES",
    "REPLY",
    "SAMPLE_RATE",
    "SIT_PLANS",
    "SPEECH_DBFS",
    "VARIANTS",
    "VOICES",
    "Samples",
    "add_noise",
    "codec_round_trip",
    "dtmf_tone",
    "noise",
    "speak",
    "to_pcm",
    "tone",
    "zeros",
]

#: Frame length in milliseconds (the audio port's 20 ms frames).
FRAME_MS: Final = 20

#: DTMF keys in keypad order and their ITU-T Q.23 frequencies (row = low group).
DTMF_KEYS: Final = "123A456B789C*0#D"
DTMF_ROWS: Final = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS: Final = (1209.0, 1336.0, 1477.0, 1633.0)

VOICES: Final = {"en": ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp"), "pl": ("pl",)}
VARIANTS: Final = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3",
                   "+f4", "+f5", "+klatt", "+klatt2", "+klatt3")
NAMES: Final = {"en": ("John", "Anna Smith", "Mark", "Sarah Jones", "David", "Emily"),
                "pl": ("Jan Kowalski", "Anna", "Piotr Nowak", "Kasia", "Marek", "Zofia Wiśniewska")}
#: How people answer: most with one or two words, some with a sentence (picked 60/40).
HUMAN_SHORT: Final = {
    "en": ("Hello?", "Yes?", "Hi!", "Yeah?", "Hello.", "Yes, hello?"),
    "pl": ("Halo?", "Tak?", "Słucham?", "Tak, słucham.", "Halo.", "No, słucham?"),
}
HUMAN: Final = {
    "en": ("Hello, who's this?", "Yeah, hello?", "Hello, speaking.", "Good morning.",
           "Hi, who is it?", "Hello, this is {name}."),
    "pl": ("Halo, kto mówi?", "Dzień dobry.", "Tak, halo?", "Halo, tu {name}.",
           "Słucham, kto dzwoni?", "Dzień dobry, słucham."),
}
REPLY: Final = {
    "en": ("Hello? Anyone there?", "Who is calling?", "Yes, go ahead.", "Hello?"),
    "pl": ("Halo, jest tam ktoś?", "Kto mówi?", "Proszę mówić.", "Halo?"),
}
MACHINE: Final = {
    "en": ("Hi, you've reached {name}. I can't take your call right now. Please leave a message after the tone.",
           "Hello. This is {name}. Leave a message and I'll call you back.",
           "The person you are calling is not available. Please leave a message after the beep.",
           "Hello, you have reached the voicemail of {name}. Please leave your name and number.",
           "{name} here. Sorry I missed you. Leave a message.",
           "Thank you for calling. Nobody is available to take your call. Please leave a message."),
    "pl": ("Dzień dobry, dodzwoniłeś się do {name}. Nie mogę teraz odebrać. Zostaw wiadomość po sygnale.",
           "Cześć, tu {name}. Oddzwonię najszybciej jak to możliwe.",
           "Abonent jest czasowo niedostępny. Proszę zostawić wiadomość po sygnale.",
           "Witaj, tu poczta głosowa {name}. Nagraj wiadomość po sygnale.",
           "Halo. Tu {name}. Nie ma mnie teraz, zostaw wiadomość.",
           "Dzień dobry. Nie możemy odebrać telefonu. Prosimy o pozostawienie wiadomości."),
}
ANNOUNCEMENT: Final = {
    "en": ("The number you have dialed is not in service. Please check the number and dial again.",
           "We're sorry, your call cannot be completed as dialed."),
    "pl": ("Wybrany numer nie istnieje. Sprawdź numer i spróbuj ponownie.",
           "Abonent o podanym numerze nie istnieje."),
}
#: SIT segment plans (frequency, ms): Bellcore codes and the plain ITU sequence.
SIT_PLANS: Final = {
    "intercept": ((913.8, 274), (1370.6, 274), (1776.7, 380)),
    "vacant_code": ((985.2, 380), (1370.6, 274), (1776.7, 380)),
    "no_circuit": ((985.2, 380), (1428.5, 380), (1776.7, 380)),
    "reorder": ((913.8, 274), (1428.5, 380), (1776.7, 380)),
    "itu": ((950.0, 330), (1400.0, 330), (1800.0, 330)),
}
def tone(f: float, ms: float, dbfs: float, rng: np.random.Generator) -> Samples:
    """A sine of ``f`` Hz for ``ms`` at ``dbfs`` RMS, random starting phase."""
    t = np.arange(round(ms * SAMPLE_RATE / 1000)) / SAMPLE_RATE
    return 32768 * 10 ** (dbfs / 20) * np.sqrt(2) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))


def dtmf_tone(key: str, ms: float, dbfs: float, rng: np.random.Generator, twist_db: float = 0.0,
              detune: float = 0.0) -> Samples:
    """One keypad key: its Q.23 row and column tones, each at ``dbfs`` ± ``twist_db``/2
    (low group louder for a positive twist), each frequency off by up to ± ``detune``
    (relative) and with a random phase."""
    k = DTMF_KEYS.index(key)
    t = np.arange(int(ms * SAMPLE_RATE / 1000)) / SAMPLE_RATE
    lo = 32768 * 10 ** ((dbfs + twist_db / 2) / 20) * np.sin(
        2 * np.pi * DTMF_ROWS[k // 4] * (1 + _detune(rng, detune)) * t + rng.uniform(0, 6.3))
    hi = 32768 * 10 ** ((dbfs - twist_db / 2) / 20) * np.sin(
        2 * np.pi * DTMF_COLS[k % 4] * (1 + _detune(rng, detune)) * t + rng.uniform(0, 6.3))
    return lo + hi


def _detune(rng: np.random.Generator, detune: float) -> float:
    return float(rng.uniform(-detune, detune)) if detune else 0.0


def noise(kind: str, n: int, rng: np.random.Generator) -> Samples:
    """Unit-variance white, pink (1/f power) or brown (1/f²) noise."""
    w = rng.normal(size=n)
    if kind == "white" or n < 4:
        return w
    spec = np.fft.rfft(w)
    f = np.maximum(np.arange(len(spec)), 1)
    spec /= np.sqrt(f) if kind == "pink" else f
    out = np.fft.irfft(spec, n)
    return out / (out.std() + 1e-12)


def zeros(ms: float) -> Samples:
    return np.zeros(int(ms * SAMPLE_RATE / 1000))


def add_noise(x: Samples, kind: str, snr_db: float, rng: np.random.Generator) -> Samples:
    """``x`` plus ``kind`` noise ``snr_db`` below the speech reference level."""
    speech_level = 32768 * 10 ** (SPEECH_DBFS / 20)
    return x + noise(kind, len(x), rng) * speech_level * 10 ** (-snr_db / 20)


#: µ = 255: the companding law G.711's µ-law segments approximate (North American/Japanese PCM).
MU: Final = 255.0


def codec_round_trip(x: Samples) -> Samples:
    """Through an 8-bit µ-law codec and back: what a circuit-switched leg does to the voice
    (the continuous µ-law curve with 8-bit quantisation; G.711's 16-segment table differs
    from it by a fraction of a step)."""
    y = np.clip(x / 32768, -1.0, 1.0)
    c = np.sign(y) * np.log1p(MU * np.abs(y)) / np.log1p(MU)
    c = np.round(c * 127) / 127
    return np.sign(c) * np.expm1(np.abs(c) * np.log1p(MU)) / MU * 32768
