"""The audio port's PCM format and its framer: 8 kHz signed 16-bit little-endian mono in
20 ms frames, cut from whatever chunks the tty delivers.

The framer only buffers and cuts (zigpy-znp's ``uart.py`` habit: the serial layer frames,
nothing else); a raw PCM stream has no header or checksum, so a frame is simply the next
320 bytes. What the frames mean is the health rule's and the listener's business.
"""
from __future__ import annotations

from typing import Final

#: Narrowband voice: ^CVOICE: 0,8000,16,20 on Huawei dongles (chan_dongle), AT+CPCMREG
#: (SIM7600 manual, 8 kHz default) and AT+QPCMV (EC2x voice over USB) all carry 8 kHz,
#: 16-bit signed little-endian, mono.
SAMPLE_RATE: Final = 8000
SAMPLE_BYTES: Final = 2
#: 20 ms a frame: Huawei's ^CVOICE frame period, and the packet time of G.711/RTP voice.
FRAME_SECONDS: Final = 0.020
FRAME_SAMPLES: Final = int(SAMPLE_RATE * FRAME_SECONDS)  # 160
FRAME_BYTES: Final = FRAME_SAMPLES * SAMPLE_BYTES  # 320
#: One frame of digital silence (what a dead voice path delivers, too).
SILENCE: Final = bytes(FRAME_BYTES)


class Framer:
    """Bytes in, whole 320-byte frames out; a partial frame waits for the next chunk."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every frame it completed (oldest first)."""
        self._buf += data
        whole = len(self._buf) - len(self._buf) % FRAME_BYTES
        if not whole:
            return []
        frames = [bytes(self._buf[i : i + FRAME_BYTES]) for i in range(0, whole, FRAME_BYTES)]
        del self._buf[:whole]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of the frame not yet complete."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial frame (a new call: the stream starts over)."""
        self._buf.clear()
