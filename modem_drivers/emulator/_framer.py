"""Bytes from the host → command lines and SMS bodies (sans-I/O, like the driver's parser).

Rules (ITU-T V.250 §5.2.1, 27.005 §3.5.1):
* a command line ends with S3 (CR); LF after it is ignored, so ``\\r`` and ``\\r\\n`` both
  work, and bytes may arrive one at a time or many at once;
* S5 (backspace) deletes the previous character;
* after ``AT+CMGS`` the modem is in *body* mode: everything up to Ctrl-Z (send) or ESC
  (cancel) is the PDU; CR/LF inside it are ignored;
* an over-long line is dropped (real modems overflow their line buffer the same way).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

CR: Final = 0x0D  # S3 default (V.250 §6.2.1)
LF: Final = 0x0A  # S4 default (V.250 §6.2.2)
BS: Final = 0x08  # S5 default (V.250 §6.2.3)
CTRL_Z: Final = 0x1A  # 27.005 §3.5.1: end of PDU
ESC: Final = 0x1B  # 27.005 §3.5.1: cancel sending
MAX_LINE: Final = 2048  # V.250 asks ≥ 40 characters; a PDU body is ≤ 2·176 hex digits


@dataclass(frozen=True, slots=True)
class Line:
    text: str


@dataclass(frozen=True, slots=True)
class Body:
    hex_text: str
    cancelled: bool


Event = Line | Body


class Mode(enum.Enum):
    LINE = "line"
    BODY = "body"


class Framer:
    __slots__ = ("_buf", "mode")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.mode = Mode.LINE

    def reset(self) -> None:
        self._buf.clear()
        self.mode = Mode.LINE

    def expect_body(self) -> None:
        self._buf.clear()
        self.mode = Mode.BODY

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        buf = self._buf
        for byte in data:
            if self.mode is Mode.BODY:
                if byte in (CTRL_Z, ESC):
                    events.append(Body(buf.decode("ascii", "replace").strip(), byte == ESC))
                    buf.clear()
                    self.mode = Mode.LINE
                elif byte not in (CR, LF) and len(buf) < MAX_LINE:
                    buf.append(byte)
                continue
            if byte == CR:
                events.append(Line(buf.decode("latin-1")))
                buf.clear()
            elif byte == LF and not buf:
                continue
            elif byte == BS:
                if buf:
                    buf.pop()
            elif len(buf) < MAX_LINE:
                buf.append(byte)
            else:
                buf.clear()
        return events
