"""Speech for the audio port: text -> an espeak-ng voice at 8 kHz, and float samples ->
s16le bytes. The appliance's prompts (``appliance/voicebot/tts.py``) and the emulator's
far ends (``emulator/sounds.py``, issue 6's corpus through it) make speech the same way,
so the call to espeak-ng and sox is here, once.

Float samples: 8 kHz, full scale = 32768, until ``to_pcm``.
"""
from __future__ import annotations

import subprocess
from typing import Final

import numpy as np
import numpy.typing as npt

from .frames import SAMPLE_RATE

Samples = npt.NDArray[np.float64]

#: Speech is normalised to this active level (dBFS); issue 6's corpus's reference level too.
SPEECH_DBFS: Final = -20.0
#: ITU-T G.712 telephone band, as ``sox sinc`` applies it.
BAND_LIMIT: Final = ("sinc", "300-3400")


def speak(text: str, voice: str, speed: int, pitch: int, effects: tuple[str, ...] = ()) -> Samples:
    """espeak-ng → sox (resample to 8 kHz, then ``effects``) → float samples at
    :data:`SPEECH_DBFS` active level, the voice's leading and trailing silence cut."""
    said = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        capture_output=True, check=True,
    )
    conv = subprocess.run(
        ["sox", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed", "-b", "16", "-c", "1", "-",
         *effects],
        input=said.stdout, capture_output=True, check=True,
    )
    x = np.frombuffer(conv.stdout, dtype="<i2").astype(np.float64)
    nz = np.flatnonzero(np.abs(x) > 64)
    if len(nz):
        x = x[nz[0] : nz[-1] + 1]  # espeak pads silence; the caller decides the timing
    active = x[np.abs(x) > 0.05 * (np.abs(x).max() + 1)]
    rms = float(np.sqrt(np.mean(active**2))) if len(active) else 1.0
    return x * (32768 * 10 ** (SPEECH_DBFS / 20) / rms)


def to_pcm(x: Samples) -> bytes:
    """Float samples → s16le bytes, clipped as a real codec clips."""
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()
