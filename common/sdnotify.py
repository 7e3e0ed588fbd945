"""The sd_notify protocol: how a process under systemd says it is ready, alive and stopping.

Why here: both services run as ``Type=notify`` units with ``WatchdogSec=`` (``systemd/``).
systemd counts a service started only when it sends ``READY=1`` (the appliance once its
modems were tried and its API listens, the controller once it listens), and restarts it
when ``WATCHDOG=1`` stops coming. The pings are sent by a task on the service's own event
loop (``keep_alive``), so a loop stalled past the interval sends nothing and systemd
restarts it; ``STATUS=`` lines ride along for ``systemctl status``.

The protocol is one datagram per message, ``KEY=value`` lines, to the ``AF_UNIX`` socket
named in ``$NOTIFY_SOCKET`` (a leading ``@`` names the abstract namespace). Spoken here
without a dependency: it is a ``sendto``; python-systemd needs libsystemd's headers to
build, and the small PyPI clients add nothing over these lines (no watchdog timing).
Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op, and a failed send is
logged once, never raised: a service must not die because its supervisor went away.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)

#: With ``WatchdogSec=`` set, a ping every half interval: sd_watchdog_enabled(3)'s advice,
#: so one late wake-up of the loop does not cost a restart.
WATCHDOG_FRACTION = 0.5
#: Without a watchdog, how often the STATUS line is refreshed: a person reading
#: ``systemctl status`` needs it no fresher, and it costs one datagram.
STATUS_SECONDS = 10.0


class NotifyError(ValueError):
    """``$NOTIFY_SOCKET`` or ``$WATCHDOG_USEC`` holds something we cannot use."""


def socket_address(value: str | None) -> str | None:
    """``$NOTIFY_SOCKET`` as an ``AF_UNIX`` address: ``@name`` is the abstract socket
    ``\\0name``, ``/path`` a file; None when unset or empty."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    raise NotifyError(f"NOTIFY_SOCKET={value!r}: only an absolute path or an @abstract name is supported "
                      f"(not a vsock: address); fix: run the service as a plain Type=notify unit")


def watchdog_seconds(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog interval systemd expects pings within (``$WATCHDOG_USEC``), or None
    when there is none or it is meant for another process (``$WATCHDOG_PID``)."""
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner and owner != str(pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        raise NotifyError(f"WATCHDOG_USEC={usec!r} is not a whole number of microseconds") from None
    if value <= 0:
        raise NotifyError(f"WATCHDOG_USEC={usec!r} must be above 0")
    return value / 1_000_000


def one_line(text: str) -> str:
    """A value fit for one ``KEY=value`` line (a newline would start another key)."""
    return " ".join(text.split())


class Notifier:
    """Messages to systemd for this process. Every method is a no-op when not under a
    notify unit; ``send`` returns whether the datagram went out."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address: str | None = None
        self.watchdog: float | None = None
        try:
            self.address = socket_address(env.get("NOTIFY_SOCKET"))
            self.watchdog = watchdog_seconds(env, os.getpid() if pid is None else pid)
        except NotifyError as exc:
            logger.warning("sd_notify off: %s", exc)
            self.address = None
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """One datagram of ``KEY=value`` lines, e.g. ``send("READY=1", "STATUS=up")``."""
        if self.address is None:
            return False
        payload = "\n".join(assignments).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(payload, self.address)
        except OSError as exc:
            if not self._warned:  # once: a gone supervisor would otherwise log every ping
                logger.warning("sd_notify: cannot send to %s: %s", self.address.replace("\0", "@"), exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={one_line(text)}")

    def ping(self, status: str | None = None) -> bool:
        return self.send("WATCHDOG=1", *([f"STATUS={one_line(status)}"] if status else []))

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *([f"STATUS={one_line(status)}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def ping_interval(notifier: Notifier) -> float:
    """Seconds between ``keep_alive``'s messages (see the two constants above)."""
    return notifier.watchdog * WATCHDOG_FRACTION if notifier.watchdog else STATUS_SECONDS


async def keep_alive(notifier: Notifier, status: Callable[[], str] | None = None) -> None:
    """Until cancelled: every ``ping_interval`` a ``WATCHDOG=1`` (when systemd set a
    watchdog) and the ``STATUS=`` line when it changed. Runs as a task on the service's
    loop, so a stalled loop sends nothing; a failing status source is logged, and the
    ping still goes (the loop is alive; the line is not the watchdog's business)."""
    if not notifier.enabled:
        return
    last: str | None = None
    interval = ping_interval(notifier)
    while True:
        line: str | None = None
        if status is not None:
            try:
                line = one_line(status())
            except Exception:  # a status bug must not stop the pings
                logger.exception("sd_notify: status line")
        fields = ["WATCHDOG=1"] if notifier.watchdog else []
        if line is not None and line != last:
            fields.append(f"STATUS={line}")
            last = line
        if fields:
            notifier.send(*fields)
        await asyncio.sleep(interval)
