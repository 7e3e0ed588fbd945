"""Logging of every long-running simrotor process (appliance, controller): one line per
event, machine-readable, bounded in rate whatever a bug does.

* ``setup_logging(format, level)`` puts one handler on the root logger: ``json`` writes
  one JSON object per line (``ts`` in UTC ISO-8601, ``level``, ``logger``, ``msg``, the
  call's ``extra=`` fields, ``exc`` with the traceback as one string); ``text`` writes
  one line per event for people (``key=value`` fields, the traceback as one escaped
  string). Uncaught exceptions and ``warnings`` go through the same handler, so nothing
  reaches the stream as a multi-line traceback.
* Phone numbers are masked in every message, field and traceback with the AT layer's
  masker (``common.phone.mask``: all but the last 3 digits, docs/architecture.md "Logs").
* ``Throttle`` bounds the rate of anything keyed (log lines per call site, rows of the
  appliance's events table per subject): at most ``burst`` per key per ``interval``, the
  rest counted and reported once per window. ``RateLimitFilter`` applies it to log lines
  keyed by (logger, message template), INFO and above, and writes "suppressed K
  similar lines in the last T s" when a window closes.
* ``LogSection`` is the ``[log]`` table both configs share; ``log_options`` the
  ``--log-format``/``--log-level`` options both ``run`` commands share (they override it).
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any, Final, Literal

import click
import msgspec

from .clock import iso
from .phone import mask

__all__ = [
    "LOG_FORMATS", "LOG_LEVELS", "LogSection", "RateLimitFilter", "Suppressed", "Throttle",
    "JsonFormatter", "TextFormatter", "log_options", "setup_logging",
]

LogFormat = Literal["json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LOG_FORMATS: Final = ("json", "text")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

#: The rate bound of one kind of line, from the Linux kernel's printk_ratelimit
#: (include/linux/ratelimit_types.h: DEFAULT_RATELIMIT_INTERVAL 5 s, BURST 10, then
#: "N callbacks suppressed"): a hot loop costs at most ~2 lines a second. A kind of
#: line is (logger, message template, subject), the subject being the call's first
#: argument (a channel, a port, a job: "channel %s: …"), so one stuck channel is held
#: to 2 lines a second while 500 healthy channels sharing a template are not.
RATE_INTERVAL_SECONDS: Final = 5.0
RATE_BURST: Final = 10
#: All lines of a process together: 500 per 5 s, 100 a second. Measured: the
#: appliance's e2e run logs 3.9 INFO lines per job (1,233 for 319 jobs); the default
#: per-SIM caps allow a channel ~60 jobs an hour, so 512 channels log ~34 lines a
#: second at most. The bound is met by a bug, e.g. a loop over every channel or a
#: message made new each time (an f-string), which the bound per kind cannot see.
#: journald's own default (10,000 per 30 s per service, 333 a second) stays above.
RATE_TOTAL_BURST: Final = 500
#: Kinds tracked at once (a few per channel of the largest bank, in one interval);
#: more share the ``OVERFLOW`` budget, so a bug that makes every key unique cannot grow
#: the table.
RATE_MAX_KEYS: Final = 4096
#: Subjects longer than this are not names of a channel or job: no subject then.
SUBJECT_MAX_CHARS: Final = 64
#: DEBUG lines are not bounded: a person turns DEBUG on, for minutes, to read every AT
#: command of every modem (one template for all), which a bound per template would cut
#: to ten lines. A service runs at INFO, where the bound holds.
RATE_MIN_LEVEL: Final = logging.INFO
#: A summary line names at most this many kinds (the most held back first).
SUMMARY_KINDS: Final = 20
#: The key under which lines over ``RATE_TOTAL_BURST`` or ``RATE_MAX_KEYS`` are counted.
OVERFLOW: Final = ("*", "over the process-wide bound")


class LogSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[log]`` of the appliance's and the controller's config."""

    format: LogFormat = "json"  # "json" for journald and log shippers, "text" for a terminal
    level: LogLevel = "INFO"


# -- the rate bound ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Suppressed:
    """A closed window in which ``count`` items of ``key`` were held back; ``last`` is
    the note given with the last of them (a log record, an event's detail)."""

    key: Hashable
    count: int
    seconds: float
    last: Any


@dataclass(slots=True)
class _Window:
    start: float
    passed: int = 0
    suppressed: int = 0
    last: Any = None


@dataclass(slots=True)
class Throttle:
    """At most ``burst`` items per key in each window of ``interval`` seconds (the window
    opens at the key's first item), and at most ``total_burst`` items of all keys per
    interval. ``admit`` says whether an item goes through and returns the windows that
    closed with items held back, each to be reported once. Memory is bounded: windows
    are dropped when they close (swept once per interval) and at most ``max_keys`` are
    open; keys beyond that share the ``OVERFLOW`` window."""

    burst: int = RATE_BURST
    interval: float = RATE_INTERVAL_SECONDS
    total_burst: int | None = RATE_TOTAL_BURST
    max_keys: int = RATE_MAX_KEYS
    clock: Callable[[], float] = time.monotonic
    _windows: dict[Hashable, _Window] = field(default_factory=dict)
    _total_start: float = float("-inf")
    _total_passed: int = 0
    _next_sweep: float = float("-inf")

    def admit(self, key: Hashable, note: Any = None) -> tuple[bool, list[Suppressed]]:
        now = self.clock()
        closed = self.sweep(now) if now >= self._next_sweep else []
        w = self._windows.get(key)
        if w is not None and now - w.start >= self.interval:
            self._close(key, w, now, closed)
            w = None
        if w is None:
            if len(self._windows) >= self.max_keys:
                key = OVERFLOW
                w = self._windows.get(OVERFLOW)
            if w is None:
                w = self._windows[key] = _Window(now)
        if now - self._total_start >= self.interval:
            self._total_start, self._total_passed = now, 0
        if w.passed < self.burst and (self.total_burst is None or self._total_passed < self.total_burst):
            w.passed += 1
            self._total_passed += 1
            return True, closed
        if w.passed < self.burst:  # held back by the process-wide bound: counted apart
            w = self._windows.get(OVERFLOW) or self._windows.setdefault(OVERFLOW, _Window(now))
        w.suppressed += 1
        w.last = note
        return False, closed

    def sweep(self, now: float | None = None, *, everything: bool = False) -> list[Suppressed]:
        """Close the windows that ended (all of them with ``everything``, at exit)."""
        now = self.clock() if now is None else now
        closed: list[Suppressed] = []
        for key, w in list(self._windows.items()):
            if everything or now - w.start >= self.interval:
                self._close(key, w, now, closed)
        self._next_sweep = now + self.interval
        return closed

    def _close(self, key: Hashable, w: _Window, now: float, closed: list[Suppressed]) -> None:
        del self._windows[key]
        if w.suppressed:
            closed.append(Suppressed(key, w.suppressed, round(now - w.start, 1), w.last))


class RateLimitFilter(logging.Filter):
    """A handler filter: lines keyed by (logger, message template, subject) pass while
    their ``Throttle`` window allows; a closed window with lines held back becomes one
    line "suppressed K similar lines in the last T s" (at the level of the last one
    held back, with the template in ``like`` and the ``subject``), handed to ``sink``
    (the handler)."""

    def __init__(self, sink: Callable[[logging.LogRecord], Any], throttle: Throttle | None = None) -> None:
        super().__init__()
        self.sink = sink
        self.throttle = throttle or Throttle()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_simrotor_summary", False) or record.levelno < RATE_MIN_LEVEL:
            return True
        with self._lock:
            ok, closed = self.throttle.admit((record.name, str(record.msg), _subject(record)), record)
        self._report(closed)
        return ok

    def flush(self) -> None:
        """Report every open window with lines held back (the process is stopping)."""
        with self._lock:
            closed = self.throttle.sweep(everything=True)
        self._report(closed)

    def _report(self, closed: list[Suppressed]) -> None:
        """One line for all the windows that closed together: after a busy minute a dozen
        kinds close at once, and a line each would be a burst of its own (the soak test's
        quiet end counted eight). The kinds go in ``kinds``, the most held back first."""
        if not closed:
            return
        kinds = []
        for s in closed:
            if s.key == OVERFLOW:
                name, like, subject = "simrotor.logs", "(any: more lines than the process-wide bound)", None
            else:
                name, like, subject = s.key  # type: ignore[misc]
            kinds.append({"logger": name, "like": like, "suppressed": s.count, "seconds": s.seconds,
                          **({"subject": subject} if subject is not None else {})})
        kinds.sort(key=lambda k: -k["suppressed"])
        worst = max(closed, key=lambda s: s.last.levelno)
        total, seconds = sum(s.count for s in closed), max(s.seconds for s in closed)
        top = kinds[0]
        if len(kinds) == 1:
            msg, args = "suppressed %d similar lines in the last %g s", (total, seconds)
        else:
            msg, args = "suppressed %d lines of %d kinds in the last %g s", (total, len(kinds), seconds)
        self.sink(logging.makeLogRecord({
            "name": top["logger"], "levelno": worst.last.levelno, "levelname": worst.last.levelname,
            "msg": msg, "args": args, "suppressed": total, "seconds": seconds, "like": top["like"],
            **({"subject": top["subject"]} if "subject" in top else {}),
            **({"kinds": kinds[:SUMMARY_KINDS]} if len(kinds) > 1 else {}), "_simrotor_summary": True,
        }))


def _subject(record: logging.LogRecord) -> str | None:
    """The call's first argument when it names something (a channel, a port, a job)."""
    args = record.args
    first = args[0] if isinstance(args, tuple) and args else None
    if isinstance(first, (str, int)) and not isinstance(first, bool):
        text = str(first)
        return text if len(text) <= SUBJECT_MAX_CHARS else None
    return None


# -- formatting ------------------------------------------------------------------------------
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _ts(created: float) -> str:
    return iso(created)


def _message(record: logging.LogRecord) -> str:
    """The record's message; a call whose arguments do not fit its template still gives
    one line (logging would print a traceback to stderr from ``handleError``)."""
    try:
        return record.getMessage()
    except Exception as exc:  # noqa: BLE001 - any formatting error
        return f"{record.msg!r} (log arguments {record.args!r} do not fit: {exc})"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The call's structured fields (``extra=``), numbers masked."""
    return {k: _masked(v) for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def _masked(value: Any) -> Any:
    """A field as JSON-ready data with every string masked (numbers stay numbers: a
    count is not a phone number, and a phone number is never held as an int here)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_masked(v) for v in value]
    return mask(value)


def _exc(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    parts = []
    if record.exc_info:
        parts.append(formatter.formatException(record.exc_info))
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(formatter.formatStack(record.stack_info))
    return mask("\n".join(parts)) if parts else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": _ts(record.created), "level": record.levelname, "logger": record.name,
                               "msg": mask(_message(record))}
        doc.update(_fields(record))
        exc = _exc(record, self)
        if exc is not None:
            doc["exc"] = exc
        # json.dumps escapes newlines inside strings: one line whatever the message holds.
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """One line per event for people: ``ts LEVEL logger: msg key=value … exc="…"``."""

    def format(self, record: logging.LogRecord) -> str:
        msg = mask(_message(record)).replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        line = f"{_ts(record.created)} {record.levelname} {record.name}: {msg}"
        for key, value in _fields(record).items():
            line += f" {key}={json.dumps(value, ensure_ascii=False, default=str)}"
        exc = _exc(record, self)
        if exc is not None:
            line += f" exc={json.dumps(exc, ensure_ascii=False)}"
        return line


_FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stream handler of ``setup_logging``: its own failures are one line too, and
    closing it reports windows still holding lines back."""

    rate: RateLimitFilter | None = None

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        try:
            exc = sys.exc_info()[1]
            self.stream.write(json.dumps({"ts": _ts(time.time()), "level": "ERROR", "logger": "simrotor.logs",
                                          "msg": mask(f"a log line could not be written: {exc!r}")}) + self.terminator)
        except Exception:  # noqa: BLE001 - the stream itself is gone; nothing left to tell
            pass

    def close(self) -> None:
        if self.rate is not None:
            rate, self.rate = self.rate, None
            rate.flush()
        super().close()


def setup_logging(fmt: str = "json", level: str = "INFO", *, stream: IO[str] | None = None,
                  throttle: Throttle | None = None, hooks: bool = True) -> logging.Handler:
    """Send every log record of the process to ``stream`` (stderr) in ``fmt``, rate
    bounded; replaces a handler installed by an earlier call. With ``hooks``, uncaught
    exceptions (main thread and others) are logged instead of printed. Returns the
    handler."""
    if fmt not in _FORMATTERS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(_FORMATTERS[fmt]())
    handler.rate = RateLimitFilter(handler.handle, throttle)
    handler.addFilter(handler.rate)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    if hooks:
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_thread_uncaught
    return handler


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """An exception nobody caught is one log line (with ``exc``), not a printed traceback."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("simrotor").critical("stopped by an uncaught %s", kind.__name__, exc_info=(kind, exc, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        logging.getLogger("simrotor").error("thread %s stopped by an uncaught %s", getattr(args.thread, "name", "?"),
                                            args.exc_type.__name__, exc_info=(args.exc_type, args.exc_value,
                                                                              args.exc_traceback))


def log_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--log-format`` and ``--log-level`` of a ``run`` command; unset means the
    config's ``[log]`` table (default json, INFO)."""
    command = click.option("--log-level", type=click.Choice(LOG_LEVELS), default=None,
                           help="Overrides [log] level of the config (default INFO).")(command)
    command = click.option("--log-format", type=click.Choice(LOG_FORMATS), default=None,
                           help="json: one JSON object per line; text: one line per event for people. "
                                "Overrides [log] format of the config (default json).")(command)
    return command

