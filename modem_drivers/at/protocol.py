"""Sans-I/O AT parser: bytes in, typed events out (the h11 model).

Rules of the machine:

* Bytes are framed into lines. A line ends at ``\\r``, ``\\n``, ``\\r\\n`` or ``\\r\\r\\n``:
  a run of CRs plus at most one LF is one terminator, decided byte by byte, so every split
  of the stream frames the same lines. Empty lines carry nothing and are skipped.
* Two states: IDLE and IN FLIGHT (``begin(command, expect=..., prompt=...)`` enters it, a
  final result code leaves it). While IDLE every line is a ``Urc`` (unknown ones too).
* IN FLIGHT, in this order: the echo of the command is dropped; a final result code ends
  the command (``NO CARRIER``/``BUSY``/``NO ANSWER``/``NO DIALTONE`` only for the call
  commands ATD/ATA/ATO, a URC otherwise; ATV0 digits are finals here only); a line with an
  expected prefix is an ``InfoLine``; a line in the URC table is a ``Urc``; so is any
  other line whose key is ``+`` or ``^`` and a letter (``^CIEV: 1,0``, ``+PACSP1``): a
  vendor URC we do not know, never part of a reply that does not expect its prefix; any
  other line is an ``InfoLine`` (``AT+CGMI`` answers without a prefix, ``AT+CMGR``'s PDU
  line is hex).
* ``> `` at the start of a line is a ``Prompt`` only while the command expects one; after
  it, the modem's echo of the payload (the line with Ctrl-Z or ESC) is dropped.
* Two-line URCs (``+CMT``, ``+CDS``, ``+CBM``) take the next non-empty line as ``pdu``.
  A ``+CUSD`` line whose quoted string is still open continues over the following lines
  until the quote closes; the pieces are joined with ``\\r\\n``.
* Garbage (control bytes, invalid UTF-8) and lines over ``MAX_LINE_BYTES`` are dropped with
  a logged warning; the parser resynchronises at the next line end and never raises on
  input.

Measure the hot path with ``parser_cost_per_line`` (used by ``bench/``).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Iterable

from common.phone import mask

from .errors import AtProtocolError, error_code_from_text
from .events import NEED_DATA, Final, FinalKind, InfoLine, NeedData, Prompt, Urc
from .tables import (
    CALL_COMMAND_PREFIXES,
    CALL_PROGRESS_KINDS,
    MAX_LINE_BYTES,
    NUMERIC_FINALS,
    NUMERIC_URCS,
    PREFIX_FINALS,
    QUOTED_MULTILINE_PREFIXES,
    TWO_LINE_URCS,
    URC_PREFIXES,
    VERBOSE_FINALS,
)

__all__ = ["AtParser", "default_expect", "parser_cost_per_line"]

logger = logging.getLogger(__name__)

_EOL = re.compile(rb"[\r\n]")
# C0 controls except TAB, and DEL: never part of a modem's text line (V.250 §5.1: lines are
# IA5 text); Ctrl-Z/ESC are handled before this check while a payload is being echoed.
_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Stripped from both ends of a line: whitespace plus the NUL/0xFF noise a modem emits while
# it boots or when the line is opened at the wrong baud rate.
_JUNK = b" \t\x00\xff\xfe"
_PROMPT = b"> "
_FINALS: dict[bytes, FinalKind] = {**VERBOSE_FINALS, **PREFIX_FINALS}
_CONNECT_RATE = b"CONNECT "  # "CONNECT 115200" (V.250 §6.2.6, result code with rate)
# Key of a line that names itself like a 27.007 (``+``) or vendor (``^``, Huawei/SIMCom)
# result code: the sigil and a letter. "+48601..." (a number) and hex PDU lines do not match.
_SIGIL_KEY = re.compile(rb"[+^][A-Za-z]")
_PAYLOAD_END = (b"\x1a", b"\x1b")  # Ctrl-Z sends, ESC cancels (27.005 §3.5.1)

Event = Final | InfoLine | Urc | Prompt


def _prefix_key(prefix: str) -> bytes:
    """Normalise a prefix the way the parser keys lines: no trailing ':' or spaces."""
    return prefix.strip().rstrip(":").rstrip().encode()


@functools.lru_cache(maxsize=4096)  # begin() runs per command; expect tuples repeat
def _expect_keys(expect: tuple[str, ...]) -> frozenset[bytes]:
    return frozenset(_prefix_key(p) for p in expect)


# Commands whose set form (AT+X=...) must not claim +X lines: the answer comes as a URC
# that may precede the OK (27.007 §7.15 +CUSD; Telit GM862 AT reference rev. 5).
_NO_AUTO_EXPECT = frozenset({"+CUSD"})


@functools.lru_cache(maxsize=4096)  # a modem layer sends a few dozen distinct commands
def default_expect(command: str) -> tuple[str, ...]:
    """Prefixes a command's information lines carry, derived from its name.

    ``AT+CSQ`` → ``+CSQ``; ``AT+CREG?`` → ``+CREG``; ``AT^ICCID?`` → ``^ICCID``. For a
    set command (``AT+X=...``) only when ``+X`` is not also a URC, so a ``+CREG:`` URC
    during ``AT+CREG=2`` still reaches the subscribers.
    """
    upper = command.strip().upper()
    if not upper.startswith("AT") or len(upper) < 4 or upper[2] not in "+^$#*%":
        return ()
    end = len(upper)
    for stop in "=?;":
        i = upper.find(stop, 3)
        if i != -1 and i < end:
            end = i
    name = command.strip()[2:end]
    if name.upper() in _NO_AUTO_EXPECT:
        return ()
    is_set = end < len(upper) and upper[end] == "="
    if is_set and name.encode() in URC_PREFIXES:
        return ()
    return (name,)


@functools.lru_cache(maxsize=4096)
def _is_call_command(command: str) -> bool:
    return command.upper().startswith(CALL_COMMAND_PREFIXES)


class AtParser:
    """Frames an AT byte stream into ``Final``/``InfoLine``/``Urc``/``Prompt`` events.

    Drive it like h11: ``receive_data(bytes)``, then call ``next_event()`` until it
    returns ``NEED_DATA``. Tell it a command is in flight with ``begin()`` *before*
    writing the command, so the reply is never parsed in the wrong state.
    """

    __slots__ = (
        "_buf",
        "_pos",
        "_after_cr",
        "_discarding",
        "_quoted",
        "_quoted_len",
        "_two_line",
        "_queued",
        "_urcs",
        "_two_line_keys",
        "_multiline_keys",
        "_max_line",
        "_command",
        "_echo",
        "_expect",
        "_prompt",
        "_payload",
        "_call_command",
        "lines_in",
        "lines_dropped",
    )

    def __init__(self, *, max_line: int = MAX_LINE_BYTES) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._after_cr = False  # last terminator ended in CR: swallow more CRs and one LF
        self._discarding = False  # inside an over-long line, dropping until its end
        self._quoted: list[bytes] | None = None  # pieces of a line whose quote is open
        self._quoted_len = 0
        self._two_line: tuple[str, str] | None = None  # (name, text) waiting for its PDU
        self._queued: Event | None = None  # second event produced by one line
        self._urcs: dict[bytes, str] = dict(URC_PREFIXES)
        self._two_line_keys: set[bytes] = set(TWO_LINE_URCS)
        self._multiline_keys: set[bytes] = set(QUOTED_MULTILINE_PREFIXES)
        self._max_line = max_line
        self._command: str | None = None
        self._echo: bytes | None = None
        self._expect: frozenset[bytes] = frozenset()
        self._prompt = False
        self._payload = False
        self._call_command = False
        self.lines_in = 0  # non-empty lines framed (stats for the benchmark)
        self.lines_dropped = 0  # garbage and over-long lines

    # -- configuration -------------------------------------------------------------

    def add_urc_prefixes(self, prefixes: Iterable[str], *, two_line: bool = False) -> None:
        """Teach the parser more URC prefixes at run time (a dialect's own URCs)."""
        for prefix in prefixes:
            key = _prefix_key(prefix)
            if not key:
                raise ValueError(f"empty URC prefix in {prefixes!r}")
            self._urcs[key] = key.decode()
            if two_line:
                self._two_line_keys.add(key)

    def add_multiline_prefixes(self, prefixes: Iterable[str]) -> None:
        """Lines with these prefixes continue over line ends while a quote is open."""
        self._multiline_keys.update(_prefix_key(p) for p in prefixes)

    # -- command state -------------------------------------------------------------

    @property
    def command(self) -> str | None:
        """The command in flight, or None while idle."""
        return self._command

    def begin(self, command: str, *, expect: tuple[str, ...] | None = None,
              prompt: bool = False) -> None:
        """Enter IN FLIGHT for ``command``; its final result code returns to IDLE.

        ``expect`` lists the prefixes of the command's information lines (they win over
        the URC table, so ``+CREG:`` answers ``AT+CREG?``); None means the command's own
        prefix (``default_expect``: ``+CSQ`` for ``AT+CSQ``); ``prompt`` arms ``> ``.
        """
        if expect is None:
            expect = default_expect(command)
        if self._command is not None:
            raise AtProtocolError(
                f"begin({command!r}) while {self._command!r} is still in flight"
            ) from None
        stripped = command.strip()
        self._command = stripped
        self._echo = stripped.encode()
        self._expect = _expect_keys(tuple(expect))
        self._prompt = prompt
        self._payload = False
        self._call_command = _is_call_command(stripped)

    def reset(self) -> None:
        """Forget buffered bytes and the command in flight (the port was reopened).

        Prefixes added at run time are kept: they describe the modem, not the session.
        """
        self._buf.clear()
        self._pos = 0
        self._after_cr = False
        self._discarding = False
        self._quoted = None
        self._quoted_len = 0
        self._two_line = None
        self._queued = None
        self._end_command()

    def abort(self) -> None:
        """Return to IDLE without a final (the port gave up on the command)."""
        self._end_command()

    def _end_command(self) -> None:
        self._command = None
        self._echo = None
        self._expect = frozenset()
        self._prompt = False
        self._payload = False
        self._call_command = False

    # -- bytes in, events out ------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Append bytes read from the port (any split is fine)."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_event(self) -> Event | NeedData:
        """The next event, or ``NEED_DATA`` when the buffered bytes hold no complete one."""
        queued = self._queued
        if queued is not None:
            self._queued = None
            return queued
        while True:
            line = self._next_line()
            if line is None:
                return NEED_DATA
            if line is _PROMPT:
                self._payload = True
                return Prompt()
            found = self._on_line(line)
            if found is not None:
                return found

    # -- framing -------------------------------------------------------------------

    def _next_line(self) -> bytes | None:
        """Cut the next raw line (without terminator) from the buffer, or None."""
        buf = self._buf
        pos = self._pos
        n = len(buf)
        while True:
            if self._after_cr:
                while pos < n and buf[pos] == 13:
                    pos += 1
                if pos == n:
                    self._pos = pos
                    return None
                if buf[pos] == 10:
                    pos += 1
                self._after_cr = False
            if self._prompt and self._quoted is None and buf.startswith(_PROMPT, pos):
                self._pos = pos + 2
                return _PROMPT
            match = _EOL.search(buf, pos)
            if match is None:
                if n - pos > self._max_line:
                    if not self._discarding:
                        self._drop("over-long line", bytes(buf[pos : pos + 40]))
                        self._discarding = True
                    pos = n
                self._pos = pos
                return None
            end = match.start()
            self._after_cr = buf[end] == 13
            line = bytes(buf[pos:end])
            pos = end + 1
            if self._discarding:
                self._discarding = False
                continue
            if len(line) > self._max_line:
                self._drop("over-long line", line[:40])
                continue
            self._pos = pos
            return line

    def _drop(self, why: str, sample: bytes) -> None:
        self.lines_dropped += 1
        logger.warning("dropped %s (limit %d bytes): %s", why, self._max_line, mask(repr(sample)))

    # -- classification ------------------------------------------------------------

    def _on_line(self, raw: bytes) -> Event | None:
        """Turn one framed line into an event, or None when it carries none."""
        if self._quoted is not None:
            return self._continue_quoted(raw)
        line = raw.strip(_JUNK)
        if not line:
            return None
        if self._payload and line.endswith(_PAYLOAD_END):
            return None  # the modem echoing the payload we sent after "> "
        if _BAD.search(line) is not None:
            self._drop("garbage line", line[:40])
            return None
        self.lines_in += 1
        colon = line.find(b":")
        key = line[:colon].rstrip() if colon > 0 else line
        if self._two_line is not None:
            name, text = self._two_line
            self._two_line = None
            if key not in _FINALS:
                return self._urc_with_pdu(name, text, line)
            # A final result where the PDU should be: the header was truncated or noise.
            # Report the header alone and let the final end the command.
            logger.warning("%s without its PDU line before %s", name, mask(repr(line[:40])))
            self._queued = self._classify(line, key)
            return Urc(name, text)
        if key in self._multiline_keys and line.count(b'"') % 2:
            self._quoted = [line]
            self._quoted_len = len(line)
            return None
        return self._classify(line, key)

    def _continue_quoted(self, raw: bytes) -> Event | None:
        quoted = self._quoted
        assert quoted is not None
        quoted.append(raw)
        self._quoted_len += len(raw) + 2
        if self._quoted_len > self._max_line:
            self._quoted = None
            self._drop("over-long quoted string", quoted[0][:40])
            return None
        if raw.count(b'"') % 2 == 0:
            return None
        self._quoted = None
        line = b"\r\n".join(quoted).rstrip(_JUNK)
        if _BAD.search(line.replace(b"\r\n", b"")) is not None:
            self._drop("garbage line", line[:40])
            return None
        colon = line.find(b":")
        return self._classify(line, line[:colon].rstrip())

    def _classify(self, line: bytes, key: bytes) -> Event | None:
        try:
            text = line.decode()
        except UnicodeDecodeError:
            self._drop("undecodable line", line[:40])
            return None
        if self._command is None:
            return self._urc(key, text)
        if self._echo is not None and line == self._echo:
            self._echo = None
            return None
        kind = _FINALS.get(key)
        if kind is None:
            if line.startswith(_CONNECT_RATE):
                kind = FinalKind.CONNECT
            elif len(line) == 1:
                kind = NUMERIC_FINALS.get(line)
                if kind is None and line in NUMERIC_URCS:
                    return Urc(NUMERIC_URCS[line], text)
                if kind is not None:
                    text = kind.value
        if kind is not None:
            if kind in CALL_PROGRESS_KINDS and not self._call_command:
                return Urc(kind.value, text)
            return self._final(kind, text)
        if key in self._expect:
            return InfoLine(text)
        if key in self._urcs or _SIGIL_KEY.match(key) is not None:
            return self._urc(key, text)
        return InfoLine(text)

    def _final(self, kind: FinalKind, text: str) -> Final:
        code: int | None = None
        if kind is FinalKind.CME_ERROR or kind is FinalKind.CMS_ERROR:
            _, _, detail = text.partition(":")
            detail = detail.strip()
            if detail.isdigit():
                code = int(detail)
            elif detail:
                code = error_code_from_text(kind is FinalKind.CMS_ERROR, detail)
        self._end_command()
        return Final(kind, text, code)

    def _urc(self, key: bytes, text: str) -> Urc | None:
        name = self._urcs.get(key)
        if name is None:
            name = key.decode(errors="replace")
        if key in self._two_line_keys:
            self._two_line = (name, text)
            return None
        return Urc(name, text)

    def _urc_with_pdu(self, name: str, text: str, line: bytes) -> Urc | None:
        try:
            pdu = line.decode()
        except UnicodeDecodeError:
            self._drop("undecodable PDU line", line[:40])
            return Urc(name, text)
        return Urc(name, text, pdu)


def parser_cost_per_line(stream: bytes, *, repeat: int = 100, chunk: int = 0) -> float:
    """CPU seconds the parser spends per framed line on ``stream`` (idle state, URCs).

    For the benchmark: feed a prepared byte stream ``repeat`` times through a fresh
    parser (in ``chunk``-byte reads when given, else whole), drain every event, and divide
    the process CPU time by the lines framed.
    """
    parser = AtParser()
    pieces = [stream[i : i + chunk] for i in range(0, len(stream), chunk)] if chunk else [stream]
    start = time.process_time()
    for _ in range(repeat):
        for piece in pieces:
            parser.receive_data(piece)
            while parser.next_event() is not NEED_DATA:
                pass
    spent = time.process_time() - start
    return spent / max(parser.lines_in, 1)
