"""Registration reports (+CREG, +CGREG, +CEREG) read by their fields, not by how they came.

27.007 gives each report two shapes: the read command's answer starts with ``<n>``
(``AT+CREG?`` → ``+CREG: <n>,<stat>[,<lac>,<ci>[,<AcT>]]``) and the URC does not
(``+CREG: <stat>[,<lac>,<ci>[,<AcT>]]``). Real modems mix them up: some send the URC with
``<n>`` after ``AT+CREG=2`` (ModemManager's src/tests/test-modem-helpers.c: Altair LTE
``+CEREG: 1, 2, 0001, 00000100, 7`` unsolicited), some leave the quotes off, some put a
RAC where 27.007 has none (Novatel E362 ``+CEREG: 1, 1F00, 20 ,79D903 ,7``). Reading a
line by where it came from puts every field one off. So the shape is decided by the
fields, as ModemManager does (``mm_3gpp_parse_creg_response``):

* ``<n>`` and ``<stat>`` are bare numbers; the location fields (``<lac>``/``<tac>``,
  ``<ci>``) are strings, quoted by 27.007. A quoted second field makes the first one
  ``<stat>``; a quoted third field makes the first two ``<n>,<stat>``.
* Without quotes: one field is ``<stat>``; two are ``<n>,<stat>``; three are
  ``<stat>,<lac>,<ci>``; from four on, the second field is ``<stat>`` when it is a number
  of at most two digits (a LAC/TAC is four hex digits) and the first is a valid ``<n>``
  (0-5), else the first field is ``<stat>``.
* After ``<stat>``: ``<lac>,<ci>,<AcT>`` (+CGREG adds ``<rac>``, the later editions
  ``<cause_type>,<reject_cause>``, ignored here). An unquoted +CEREG with exactly four
  fields after ``<stat>`` is the RAC form ``<tac>,<rac>,<ci>,<AcT>``.

Which report decides whether a modem may work (``decisive``): +CREG when it says
registered, else +CEREG when it does (an LTE-only network: the modem is on E-UTRAN and
SMS goes over SGs or IMS), else +CREG's own state (nothing, before +CREG was heard).
+CGREG (packet data on GSM/UMTS) is read and kept, but never makes a voice/SMS modem
usable on its own.
"""
from __future__ import annotations

from collections.abc import Mapping

from .types import ACCESS_TECHNOLOGY, RegDomain, RegStat, Registration

__all__ = ["ENABLE", "QUERY", "decisive", "parse_registration"]

#: The set command that turns each report on with location (<n> = 2: "enable network
#: registration and location information unsolicited result code", 27.007 §7.2).
ENABLE: Mapping[RegDomain, str] = {
    RegDomain.CS: "AT+CREG=2",
    RegDomain.GPRS: "AT+CGREG=2",
    RegDomain.EPS: "AT+CEREG=2",
}
QUERY: Mapping[RegDomain, str] = {d: f"AT{d.value}?" for d in RegDomain}
_BY_PREFIX: Mapping[str, RegDomain] = {d.value: d for d in RegDomain}
#: Reports that can make a modem usable for calls and SMS, in the order they are asked.
_DECIDING = (RegDomain.CS, RegDomain.EPS)
#: Largest <n> of any of the three set commands (27.007 §10.1.22 +CEREG: 0-5).
_MAX_N = 5


def _split(body: str) -> list[tuple[str, bool]]:
    """Fields of a report's body as (text without quotes and spaces, was it quoted)."""
    fields = []
    for raw in body.split(","):
        text = raw.strip()
        quoted = len(text) >= 2 and text[0] == '"' and text[-1] == '"'
        fields.append((text[1:-1].strip() if quoted else text, quoted))
    return fields


def _is_stat(text: str) -> bool:
    """An unquoted field that can be <stat> and not a LAC: at most two digits as written
    (ModemManager's ``item_is_lac_not_stat``; Altair's unquoted TAC ``0001`` is a LAC)."""
    return text.isdecimal() and len(text) <= 2


def _stat_index(fields: list[tuple[str, bool]]) -> int:
    """0 when the report starts with <stat>, 1 when it starts with <n>,<stat>."""
    first_quoted = next((i for i, (_, quoted) in enumerate(fields) if quoted), None)
    if first_quoted == 1:
        return 0
    if first_quoted == 2:
        return 1
    count = len(fields)
    if count == 1 or count == 3:
        return 0
    if count == 2:
        return 1
    first, second = fields[0][0], fields[1][0]
    if first.isdecimal() and int(first) <= _MAX_N and _is_stat(second):
        return 1
    return 0


def parse_registration(line: str) -> Registration | None:
    """A +CREG/+CGREG/+CEREG line (URC or read answer) as a ``Registration``; None when it
    is not one of those reports or has no readable ``<stat>`` (the caller logs it)."""
    prefix, colon, body = line.partition(":")
    domain = _BY_PREFIX.get(prefix.strip().upper())
    if domain is None or not colon:
        return None
    fields = _split(body)
    s = _stat_index(fields)
    stat_text, quoted = fields[s]
    if quoted or not stat_text.isdecimal():
        return None
    rest = [text for text, _ in fields[s + 1 :]]
    if domain is RegDomain.EPS and len(rest) == 4 and not any(q for _, q in fields[s + 1 :]):
        rest = [rest[0], rest[2], rest[3]]  # <tac>,<rac>,<ci>,<AcT> (Novatel E362, Altair)
    lac = rest[0] or None if rest else None
    ci = rest[1] or None if len(rest) > 1 else None
    act = rest[2] if len(rest) > 2 else ""
    technology = ACCESS_TECHNOLOGY.get(int(act)) if act.isdecimal() else None
    return Registration(RegStat.of(int(stat_text)), lac, ci, technology, domain)


def decisive(reports: Mapping[RegDomain, Registration]) -> Registration | None:
    """The report that says whether the modem may call and send SMS (module docstring);
    None while nothing is decided (no +CREG report yet and no registered +CEREG one: an
    LTE "searching" alone never takes a channel out of service)."""
    for domain in _DECIDING:
        report = reports.get(domain)
        if report is not None and report.registered:
            return report
    return reports.get(RegDomain.CS)
