"""Prompts as audio: text synthesised with Debian's espeak-ng into 8 kHz signed 16-bit
mono WAV (the audio ports' format), made once and cached on disk by a hash of the text
and the voice.

The espeak-ng and sox call itself is :func:`modem_drivers.audio.speech.speak`, the one
the emulator's callees and the labelled corpus use (imports run down, so it lives on the
hardware floor); this module adds the voice per language, the cache and the WAV file.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from modem_drivers.audio.frames import SAMPLE_RATE
from modem_drivers.audio.speech import speak, to_pcm

#: espeak-ng voice per dialogue language (``espeak-ng --voices=pl`` / ``=en`` on Debian).
VOICES: Final = {"pl": "pl", "en": "en"}
#: Words per minute: espeak-ng's default 175 is quick on a phone line; 150 is the slow end
#: of the corpus's 150–230 range (appliance/audio/corpus.py), clearer for read-out numbers.
SPEED_WPM: Final = 150
#: espeak-ng's default pitch (0–99).
PITCH: Final = 50
#: Bumped when the rendering changes, so old cache entries are not reused.
FORMAT_VERSION: Final = 1
#: Where prompts are cached unless told otherwise (XDG base directory spec).
DEFAULT_CACHE: Final = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "simrotor" / "prompts"


class TtsError(RuntimeError):
    """A prompt that cannot be synthesised (espeak-ng or sox missing or failing)."""


@dataclass(frozen=True, slots=True)
class Synthesiser:
    """Renders prompt text to cached WAV files in ``cache_dir``."""

    cache_dir: Path = DEFAULT_CACHE
    speed_wpm: int = SPEED_WPM
    pitch: int = PITCH

    def voice(self, lang: str) -> str:
        try:
            return VOICES[lang]
        except KeyError:
            raise TtsError(f"language {lang!r}: expected one of {', '.join(VOICES)}") from None

    def path(self, text: str, lang: str) -> Path:
        """Where the prompt's WAV is (or will be) cached."""
        key = f"{FORMAT_VERSION}\0{self.voice(lang)}\0{self.speed_wpm}\0{self.pitch}\0{text}"
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.wav"

    def render(self, text: str, lang: str) -> Path:
        """The prompt as a WAV file, synthesised on the first call only."""
        if not text.strip():
            raise TtsError("empty prompt: nothing to say")
        target = self.path(text, lang)
        if target.is_file():
            return target
        for tool in ("espeak-ng", "sox"):
            if shutil.which(tool) is None:
                raise TtsError(f"{tool} not found: install Debian's espeak-ng and sox")
        try:
            pcm = to_pcm(speak(text, self.voice(lang), self.speed_wpm, self.pitch))
        except subprocess.CalledProcessError as exc:
            raise TtsError(f"{exc.cmd[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed: two calls rendering one prompt never
        # leave a half-written file in the cache.
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(SAMPLE_RATE)
                out.writeframes(pcm)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def pcm(self, text: str, lang: str) -> bytes:
        """The prompt as raw s16le samples, ready for an audio port."""
        with wave.open(str(self.render(text, lang)), "rb") as w:
            return w.readframes(w.getnframes())
