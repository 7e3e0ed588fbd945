"""The modem on the network: signal strength and registration, asked and reported.

Registration is kept per domain (+CREG circuit-switched, +CEREG LTE, +CGREG GPRS): an
LTE-only network registers the modem in +CEREG only, so the deciding report is chosen by
``registration.decisive``. A new SIM (slot switch) or a lost port forgets them all.
"""
from __future__ import annotations

from ..at import CommandFailed, Urc
from ..dialects import standard as std
from ..errors import ModemError, NotRegistered
from ..registration import ENABLE as REG_ENABLE
from ..registration import QUERY as REG_QUERY
from ..registration import decisive, parse_registration
from ..types import RegDomain, Registration, RegistrationChanged, RegStat, Signal
from .core import ModemCore, logger


class Network(ModemCore):
    """Signal, registration queries and URCs, and the check that the modem may work."""

    async def signal(self, *, timeout: float | None = None) -> Signal:
        """+CSQ; ``timeout`` replaces the DEFAULT class's deadline (the bank's stuck-modem
        check asks with its own, shorter one)."""
        return await self._read(std.SIGNAL, timeout=timeout)

    async def registration_status(self) -> Registration:
        """Ask +CREG and, when it does not say registered, +CEREG and +CGREG on a modem that
        took their set commands (an LTE-only network registers the modem in +CEREG only).
        Returns the deciding report (``registration.decisive``); its ``domain`` says which."""
        await self._query_registration(RegDomain.CS, optional=False)
        if not self.registrations[RegDomain.CS].registered:
            for domain in (RegDomain.EPS, RegDomain.GPRS):
                if self.capabilities.get(REG_ENABLE[domain]):
                    await self._query_registration(domain, optional=True)
        reg = decisive(self.registrations)
        assert reg is not None  # the +CREG answer is in
        self.registration = reg
        return reg

    async def _query_registration(self, domain: RegDomain, *, optional: bool) -> None:
        """One read command (``AT+CREG?``...); an unreadable answer counts as UNKNOWN. An
        optional domain's failure (the modem took the set command, refuses the read) is
        logged and leaves its last report out."""
        prefix = domain.value
        try:
            r = await self._cmd(REG_QUERY[domain], expect=prefix)
        except (CommandFailed, ModemError) as exc:
            if not optional:
                raise
            logger.debug("%s: %s failed: %s", self.name, REG_QUERY[domain], exc)
            self.registrations.pop(domain, None)
            return
        line = next((ln for ln in r.lines if ln.startswith(prefix)), "")
        reg = parse_registration(line)
        if reg is None:
            logger.warning("%s: unreadable %s answer %r", self.name, REG_QUERY[domain], line[:80])
            reg = Registration(RegStat.UNKNOWN, domain=domain)
        self.registrations[domain] = reg

    def _forget_registration(self) -> None:
        """A new SIM (slot switch) or a lost port: the old reports say nothing any more."""
        self.registrations.clear()
        self.registration = None

    async def require_registered(self) -> Registration:
        self._require_sim()
        reg = await self.registration_status()
        if reg.stat is RegStat.DENIED:
            raise NotRegistered("registration denied by the network (SIM blocked or not allowed here)")
        if not reg.registered:
            states = "; ".join(f"{d.value}: {r.stat.name.lower().replace('_', ' ')}"
                               for d, r in self.registrations.items())
            raise NotRegistered(f"not registered on a network ({states})")
        return reg

    def _urc_registration(self, urc: Urc) -> None:
        """+CREG/+CEREG/+CGREG URC: kept by domain; the deciding report is emitted (a
        +CGREG change alone decides nothing and emits nothing)."""
        reg = parse_registration(urc.text)
        if reg is None:
            logger.warning("%s: malformed registration URC dropped: %r", self.name, urc.text[:80])
            return
        self.registrations[reg.domain] = reg
        if reg.domain is RegDomain.GPRS:
            return
        decided = decisive(self.registrations)
        if decided is not None:
            self.registration = decided
            self._emit(RegistrationChanged(decided))
