"""The appliance's TOML configuration, validated at start with errors that name the key
and the fix.

Shape (every table optional except where noted; defaults beside each field)::

    [appliance]
    id = "box-01"                       # required: this appliance's name in logs and results
    store = "/var/lib/simrotor/appliance.db"
    listen = "127.0.0.1:8470"           # local JSON API and the technician page
    token = "change-me"                 # bearer token of the local API (required to listen)
    timezone = "Europe/Warsaw"          # for per-SIM time-of-day windows

    emulator_state = "/tmp/bank.json"   # optional: take [[modem]] entries from `simrotor emulate`

    [[modem]]                           # one per modem (or from emulator_state)
    id = "m01"
    port = "/dev/serial/by-id/usb-SimTech…-if02"
    audio = "/dev/serial/by-id/usb-SimTech…-if04"   # optional: the modem's audio port (on_answer = "amd")
    slots = 2
    pin = "1234"                        # optional
    pools = ["creditor-a"]              # optional: tags for job hints

    [limits]                            # per-SIM traffic profile (see docs/rotation.md)
    [operator_limits."26001"]           # per-operator caps
    [lock]                              # SIM-bank lock rules
    [quarantine]                        # causes that look like a blocked SIM
    [calls]                             # on_answer = "hangup" | "hold" | "play" | "amd", message = "…"
    [callbacks]                         # answer calls to our SIMs: answer = true, lang, creditor
    [callbacks.creditors]               # pool -> the creditor a callback's message names
    [callbacks.texts.pl]                # menu = "…{creditor}…", callback, opt_out, none, client
    [retry] / [ussd] / [supervision]
    [link]                              # url = "wss://…/v1/link" or a list of controllers; empty: standalone
    [log]                               # format = "json" | "text", level = "INFO"

Every number is checked against its bound (``_BOUNDS``, or ``common.configkit``'s
defaults: finite, not negative, seconds at most a week); an API listening beyond
loopback needs a token of at least 16 characters.
"""
from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec

from common.configkit import (
    COUNT,
    MAX_SECONDS,
    SECONDS,
    WAIT,
    Bound,
    check_numbers,
    check_store_dir,
    check_token,
    explain,
)
from common.contract import (
    CALL_BOUNDS,
    MESSAGE_LANGS,
    RETRY_BOUNDS,
    OnHuman,
    OnMachine,
)
from common.files import read_toml
from common.logs import LogSection

from .jobspec import MAX_MESSAGE_LENGTH, ON_ANSWER, message_problem

_formatter: Final = string.Formatter()

ON_MACHINE: Final = tuple(a.value for a in OnMachine)
ON_HUMAN: Final = tuple(a.value for a in OnHuman)


class ConfigError(ValueError):
    """A configuration problem, with the file, the key and the fix in the message."""


class _Base(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class ApplianceSection(_Base):
    id: str
    store: str = "appliance.db"
    listen: str | None = "127.0.0.1:8470"
    token: str | None = None
    timezone: str = "UTC"
    status_page: bool = True  # the technician page at / (technicians sign in: simrotor appliance user add)
    metrics_token: str | None = None  # /metrics: unset = this machine only (loopback); set = Bearer token from everyone


class ModemEntry(_Base):
    id: str
    port: str
    audio: str | None = None  # the modem's audio port (docs/dialects.md, "Call audio on the audio port")
    slots: int = 1
    pin: str | None = None
    vendor: str | None = None  # force a dialect; default: detected from +CGMI/+CGMM
    pools: tuple[str, ...] = ()


class WindowCapEntry(_Base):
    start: str
    end: str
    max_calls: int


class LimitsSection(_Base):
    # Defaults follow the cautious end of what Polish operators tolerate on a consumer SIM
    # before flagging it as a dialer (field practice of SIM-bank operators; no public norm).
    calls_per_hour: int | None = 30
    calls_per_day: int | None = 150
    sms_per_hour: int | None = 30
    sms_per_day: int | None = 200
    min_pause_seconds: float = 10.0
    pause_after_call: tuple[float, float] = (5.0, 20.0)
    max_call_seconds_per_day: float | None = 4 * 3600.0
    windows: tuple[WindowCapEntry, ...] = ()


class OperatorLimitsEntry(_Base):
    calls_per_hour: int | None = None
    calls_per_day: int | None = None
    sms_per_hour: int | None = None
    sms_per_day: int | None = None


class LockSection(_Base):
    # GoIP/Dinstar-style lock rules; None switches a rule off.
    consecutive_failed: int | None = 5
    consecutive_not_alerting: int | None = 5
    consecutive_unanswered: int | None = None
    consecutive_short: int | None = None
    short_call_seconds: float = 5.0
    lock_seconds: float | None = 3600.0
    min_balance: float | None = None


class QuarantineSection(_Base):
    # Q.850 causes with which operators refuse calls of a blocked SIM: 8 operator
    # determined barring, 21 call rejected, 50 facility not subscribed, 57 bearer
    # capability not authorised — counted only when the call never alerted.
    causes: tuple[int, ...] = (8, 21, 50, 57)
    consecutive: int = 3


class CallsSection(_Base):
    max_ring_seconds: float = 30.0  # Asterisk Dial() practice for outbound dialers: 25-30 s
    max_talk_seconds: float = 60.0
    on_answer: str = "hangup"  # hangup | hold | play (speak ``message`` with the modem's TTS)
    message: str | None = None  # for "play"; a job's call.message overrides it
    # on_answer = "amd" (issue 14): what each AMD decision does, and the message as audio
    on_machine: str = "leave_message"  # leave_message | hangup
    on_human: str = "play"  # play | hangup (voicebot: per job, with the job's variables)
    lang: str = "pl"  # the voice message text is synthesised in (espeak-ng, appliance/voicebot/tts.py)
    message_wav: str | None = None  # an 8 kHz mono WAV played instead of synthesising message


class CallbackTexts(_Base):
    """What an answered caller hears in one language (``None``: the shipped text)."""

    menu: str | None = None  # names {creditor}, then offers 1 (call me back) and 9 (stop calling)
    callback: str | None = None  # after 1
    opt_out: str | None = None  # after 9
    none: str | None = None  # no key (or another) after the repeat
    client: str | None = None  # said as {creditor} when the SIM's pools name none


#: The shipped texts, each a short sentence or two: the modem's TTS (the fallback without
#: an audio port) carries at most MAX_MESSAGE_LENGTH characters a line. Polish says the
#: creditor in the genitive slot ("w imieniu …"): company names stay as they are there,
#: and the unnamed client is declined to fit ("naszego klienta").
CALLBACK_TEXTS: Final[dict[str, CallbackTexts]] = {
    "pl": CallbackTexts(
        menu="Dzień dobry, dzwoniliśmy w imieniu {creditor}. Naciśnij 1, a oddzwonimy. "
             "Naciśnij 9, a nie zadzwonimy więcej.",
        callback="Dziękujemy, oddzwonimy. Do widzenia.",
        opt_out="Nie będziemy już dzwonić na ten numer. Do widzenia.",
        none="Dziękujemy, do widzenia.",
        client="naszego klienta",
    ),
    "en": CallbackTexts(
        menu="Hello, we called you for {creditor}. Press 1 and we will call you back. "
             "Press 9 and we will stop calling.",
        callback="Thank you, we will call you back. Goodbye.",
        opt_out="We will not call this number again. Goodbye.",
        none="Thank you, goodbye.",
        client="our client",
    ),
}


class CallbacksSection(_Base):
    # A debtor calling back a number he was shown is answered, never left ringing
    # (issue 14); answer = false leaves incoming calls ringing and only records them.
    answer: bool = True
    lang: str = "pl"  # the language of the texts (and of the espeak-ng voice)
    creditor: str | None = None  # named for SIMs whose pools have no creditor below
    creditors: dict[str, str] = {}  # [[modem]] pool -> the creditor's name
    # Seconds a caller has to key after the menu; one repeat, then "none". 8 s is the
    # voicebot's menu timeout (appliance/voicebot, timeout_s), itself ITU-T E.180's few
    # seconds for a person to react to a prompt, with margin.
    key_timeout_seconds: float = 8.0
    texts: dict[str, CallbackTexts] = {}  # per language: any text replaced


class RetrySection(_Base):
    max_attempts: int = 3
    backoff_seconds: float = 300.0
    backoff_factor: float = 2.0
    retry_outcomes: tuple[str, ...] = ("busy", "no_answer", "network_error", "channel_error")
    retry_interrupted: bool = False
    # Attempts that failed on our side (channel_error, network_error) are retried on
    # another SIM without using the callee's budget, up to this many times.
    max_channel_retries: int = 5
    channel_retry_seconds: float = 5.0


class SmsSection(_Base):
    # A status report can take as long as the SMSC keeps trying: its validity period,
    # commonly 24 h to 72 h (23.040 §9.2.3.12 leaves it to the SMSC); we wait 24 h.
    report_timeout_seconds: float = 24 * 3600.0
    # An HLR-style ping only needs the first report (delivered or first failure).
    ping_timeout_seconds: float = 60.0
    # How often an idle multi-SIM modem may switch to an inactive slot whose SIM owes
    # status reports (a switch costs a re-registration, ~10-30 s on real modems).
    collect_interval_seconds: float = 300.0


class UssdSection(_Base):
    # Balance checks per SIM (appliance/balance.py); "" or interval 0 switches them off.
    balance_code: str | None = "*100#"
    interval_seconds: float = 6 * 3600.0
    balance_pattern: str = r"(\d+[.,]\d{1,2})"


class LinkSection(_Base):
    # The controller's WebSocket (appliances dial out: NAT-friendly). Empty = standalone.
    # A list names several controllers of one fleet (one database): they are tried in
    # turn, the next one first when a link drops, with backoff after a whole round fails.
    url: str | list[str] = ""
    # Where `simrotor provision enroll` stored the per-appliance credential.
    credential_file: str = "appliance.credential"
    heartbeat_seconds: float = 10.0
    # Backpressure: the appliance asks for at most this many queued jobs per idle
    # channel, so a dead appliance strands little work.
    queue_per_channel: float = 2.0
    reconnect_backoff: tuple[float, float] = (0.5, 30.0)

    @property
    def urls(self) -> tuple[str, ...]:
        """The controllers' link URLs, in the order they are tried (none: standalone)."""
        return tuple(u for u in ([self.url] if isinstance(self.url, str) else self.url) if u)


class SupervisionSection(_Base):
    # Signal and registration come from URCs; this is the pace of the fallback check.
    check_interval_seconds: float = 60.0
    stuck_timeout_seconds: float = 10.0
    reopen_backoff: tuple[float, float] = (1.0, 60.0)


class ApplianceConfig(_Base):
    appliance: ApplianceSection
    emulator_state: str | None = None
    modem: tuple[ModemEntry, ...] = ()
    limits: LimitsSection = LimitsSection()
    operator_limits: dict[str, OperatorLimitsEntry] = {}
    lock: LockSection = LockSection()
    quarantine: QuarantineSection = QuarantineSection()
    calls: CallsSection = CallsSection()
    callbacks: CallbacksSection = CallbacksSection()
    retry: RetrySection = RetrySection()
    sms: SmsSection = SmsSection()
    ussd: UssdSection = UssdSection()
    operator_prefixes: dict[str, str] = {}
    supervision: SupervisionSection = SupervisionSection()
    link: LinkSection = LinkSection()
    log: LogSection = LogSection()


#: Bounds beyond configkit's defaults (finite, >= 0, ``…_seconds`` at most a week), each
#: with its reason; a wait of 0 where the work would then repeat in a hot loop is refused.
_BOUNDS: dict[str, Bound] = {
    "modem.slots": Bound(1, 8, "SIM slots of one modem: multi-SIM modems and SIM-bank boards carry 1 to 8"),
    "limits.pause_after_call": SECONDS,
    "limits.max_call_seconds_per_day": Bound(0, 86400, "seconds of talk in a day; a day has 86,400"),
    "lock.consecutive_failed": Bound(1, None, "a rule counts at least one attempt; leave the key out to switch it off"),
    "lock.consecutive_not_alerting": Bound(1, None, "a rule counts at least one attempt; leave the key out to switch it off"),
    "lock.consecutive_unanswered": Bound(1, None, "a rule counts at least one attempt; leave the key out to switch it off"),
    "lock.consecutive_short": Bound(1, None, "a rule counts at least one attempt; leave the key out to switch it off"),
    "quarantine.causes": Bound(1, 127, "Q.850 cause values are 1 to 127 (ITU-T Q.850 §2.2.5, a 7-bit field)"),
    "quarantine.consecutive": Bound(1, None, "at least one failed call before a SIM is quarantined"),
    # A job may set the same keys within the same bounds: the wire contract's.
    "calls.max_ring_seconds": CALL_BOUNDS["max_ring_seconds"],
    "calls.max_talk_seconds": CALL_BOUNDS["max_talk_seconds"],
    "callbacks.key_timeout_seconds": Bound(1, 60, "seconds a caller has to key after the menu: under 1 s nobody "
                                           "can react, past a minute he has hung up"),
    "retry.max_attempts": Bound(1, None, "the first attempt counts: 1 means no retry"),
    "retry.backoff_seconds": WAIT,
    "retry.backoff_factor": RETRY_BOUNDS["backoff_factor"],
    "retry.channel_retry_seconds": WAIT,
    "sms.report_timeout_seconds": WAIT,
    "sms.ping_timeout_seconds": WAIT,
    "sms.collect_interval_seconds": WAIT,
    "ussd.interval_seconds": Bound(0, MAX_SECONDS, "seconds between balance checks; 0 switches them off"),
    "link.heartbeat_seconds": WAIT,
    "link.queue_per_channel": COUNT,
    "link.reconnect_backoff": WAIT,
    "supervision.check_interval_seconds": WAIT,
    "supervision.stuck_timeout_seconds": WAIT,
    "supervision.reopen_backoff": WAIT,
}

_FIXES: dict[str, str] = {
    "appliance": 'add an [appliance] table with at least id = "box-01"',
    "appliance.id": 'set id = "box-01" (any name)',
    "modem": '[[modem]] tables, each with id = "m01" and port = "/dev/ttyUSB2"',
    "modem.port": 'port = "/dev/ttyUSB2" (any pyserial URL)',
    "modem.slots": "slots = 1 (SIM slots of this modem, 1 to 8)",
    "limits.pause_after_call": "pause_after_call = [5.0, 20.0] (min and max seconds)",
    "appliance.listen": 'listen = "127.0.0.1:8470"',
    "log.format": 'format = "json" (one JSON object per line) or "text"',
    "log.level": 'level = "INFO" (or "DEBUG", "WARNING", "ERROR")',
}


def parse_config(data: dict[str, Any], *, source: str = "config", base_dir: Path | None = None) -> ApplianceConfig:
    try:
        cfg = msgspec.convert(data, ApplianceConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(explain(exc, source, ApplianceConfig, data, _FIXES)) from None
    _check(cfg, source)
    if cfg.emulator_state:
        path = Path(cfg.emulator_state)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        cfg = msgspec.structs.replace(cfg, modem=cfg.modem + tuple(modems_from_emulator_state(path, source)))
    if not cfg.modem:
        raise ConfigError(f"{source}: no modems: add [[modem]] tables or emulator_state = \"bank.json\"")
    _check_callbacks(cfg, source)
    ids = [m.id for m in cfg.modem]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{source}: [[modem]] id {dup[0]!r} appears twice; fix: give each modem its own id")
    return cfg


def _check(cfg: ApplianceConfig, source: str) -> None:
    def bad(where: str, what: str, fix: str) -> ConfigError:
        return ConfigError(f"{source}: {where}: {what}; fix: {fix}")

    check_numbers(cfg, source, _BOUNDS, ConfigError)
    check_store_dir(cfg.appliance.store, source, "[appliance] store", ConfigError)
    if cfg.appliance.listen:
        if not re.fullmatch(r"[\w.\-\[\]:]+:\d{1,5}", cfg.appliance.listen):
            raise bad("[appliance] listen", f"{cfg.appliance.listen!r} is not host:port", 'listen = "127.0.0.1:8470"')
        if not cfg.appliance.token:
            raise bad("[appliance] token", "the local API needs a bearer token", 'token = "a long random string", or listen = "" to switch the API off')
        check_token(cfg.appliance.listen, cfg.appliance.token, source, "[appliance] token", "listen", ConfigError)
        check_token(cfg.appliance.listen, cfg.appliance.metrics_token, source, "[appliance] metrics_token", "listen",
                    ConfigError)
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(cfg.appliance.timezone)
    except Exception:
        raise bad("[appliance] timezone", f"unknown time zone {cfg.appliance.timezone!r}", 'timezone = "Europe/Warsaw"') from None
    for i, m in enumerate(cfg.modem):
        if m.pin is not None and not re.fullmatch(r"\d{4,8}", m.pin):
            raise bad(f"[[modem]] #{i + 1} ({m.id}) pin", "a PIN is 4 to 8 digits", 'pin = "1234"')
    for u in cfg.link.urls:
        parsed = urlsplit(u)
        if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
            raise bad("[link] url", f"{u!r} is not a controller's link URL",
                      'url = "wss://controller.example:8480/v1/link", or a list of them')
    if len(set(cfg.link.urls)) != len(cfg.link.urls):
        raise bad("[link] url", "a controller is listed twice", "list each controller's URL once")
    for where, (lo, hi), example in (("[limits] pause_after_call", cfg.limits.pause_after_call, "[5.0, 20.0]"),
                                     ("[link] reconnect_backoff", cfg.link.reconnect_backoff, "[0.5, 30.0]"),
                                     ("[supervision] reopen_backoff", cfg.supervision.reopen_backoff, "[1.0, 60.0]")):
        if hi < lo:
            raise bad(where, f"[{lo:g}, {hi:g}] is not [min, max]", f"{where.split()[-1]} = {example}")
    for w in cfg.limits.windows:
        for t in (w.start, w.end):
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t):
                raise bad("[[limits.windows]]", f"{t!r} is not HH:MM", 'start = "08:00"')
    for name in cfg.operator_limits:
        if not re.fullmatch(r"\d{5,6}", name):
            raise bad(f"[operator_limits.{name}]", "an operator is its MCC+MNC", '[operator_limits."26001"]')
    if cfg.calls.on_answer not in ON_ANSWER:
        raise bad("[calls] on_answer", f"{cfg.calls.on_answer!r} is not known", f"on_answer = one of {', '.join(map(repr, ON_ANSWER))}")
    if cfg.calls.on_answer == "play" and cfg.calls.message is None:
        raise bad("[calls] message", 'on_answer = "play" needs the message to play',
                  f'message = "Dzień dobry, …" (at most {MAX_MESSAGE_LENGTH} characters), or on_answer = "hangup"')
    for key, known in (("on_machine", ON_MACHINE), ("on_human", ON_HUMAN), ("lang", MESSAGE_LANGS)):
        if getattr(cfg.calls, key) not in known:
            raise bad(f"[calls] {key}", f"{getattr(cfg.calls, key)!r} is not known", f"{key} = one of {', '.join(map(repr, known))}")
    if cfg.calls.on_human == "voicebot":
        raise bad("[calls] on_human", '"voicebot" needs each job\'s variables (the debtor, the debt)',
                  'on_human = "play" or "hangup" here, and "on_human": "voicebot" with its "voicebot" variables per job')
    if cfg.calls.message_wav is not None and not Path(cfg.calls.message_wav).is_file():
        raise bad("[calls] message_wav", f"{cfg.calls.message_wav!r} is not a file", 'message_wav = "/etc/simrotor/message.wav"')
    if cfg.calls.message is not None:
        problem = message_problem(cfg.calls.message)
        if problem:
            raise bad("[calls] message", problem, f'a shorter text, at most {MAX_MESSAGE_LENGTH} characters')


def callback_texts(section: CallbacksSection, lang: str | None = None) -> CallbackTexts:
    """The texts of ``lang`` (default: the section's): the shipped ones, each replaced by
    the config's where it gives one."""
    lang = lang or section.lang
    own = section.texts.get(lang)
    base = CALLBACK_TEXTS[lang]
    if own is None:
        return base
    return CallbackTexts(**{f: getattr(own, f) or getattr(base, f) for f in CallbackTexts.__struct_fields__})


def creditor_for(section: CallbacksSection, pools: tuple[str, ...], lang: str | None = None) -> str:
    """The creditor a callback to a SIM in ``pools`` names: the first pool's with one in
    ``[callbacks.creditors]``, else ``creditor``, else the language's unnamed client."""
    for pool in pools:
        name = section.creditors.get(pool)
        if name:
            return name
    return section.creditor or callback_texts(section, lang).client or ""


def _check_callbacks(cfg: ApplianceConfig, source: str) -> None:
    """[callbacks]: a known language, texts that name only {creditor}, creditors of pools
    some modem is in, and every message a modem's TTS can say (the fallback without an
    audio port)."""
    def bad(where: str, what: str, fix: str) -> ConfigError:
        return ConfigError(f"{source}: {where}: {what}; fix: {fix}")

    cb = cfg.callbacks
    langs = ", ".join(map(repr, MESSAGE_LANGS))
    if cb.lang not in MESSAGE_LANGS:
        raise bad("[callbacks] lang", f"{cb.lang!r} is not known", f"lang = one of {langs}")
    for lang in cb.texts:
        if lang not in MESSAGE_LANGS:
            raise bad(f"[callbacks.texts.{lang}]", f"{lang!r} is not a language the appliance speaks",
                      f"name the table after one of {langs}")
    pools = {p for m in cfg.modem for p in m.pools}
    for pool, name in cb.creditors.items():
        if pool not in pools:
            known = ", ".join(sorted(pools)) or "none: add pools = [\"…\"] to a [[modem]]"
            raise bad(f"[callbacks.creditors] {pool}", "no [[modem]] is in this pool",
                      f"use a pool of a [[modem]] (pools: {known}), or remove the key")
        if not name.strip():
            raise bad(f"[callbacks.creditors] {pool}", "the creditor's name is empty", f'{pool} = "Kredyt Plus"')
    if cb.creditor is not None and not cb.creditor.strip():
        raise bad("[callbacks] creditor", "the creditor's name is empty", 'creditor = "Kredyt Plus", or leave it out')
    names = {*cb.creditors.values(), cb.creditor} - {None}
    for lang in MESSAGE_LANGS:
        texts = callback_texts(cb, lang)
        where = f"[callbacks.texts.{lang}]" if lang in cb.texts else f"[callbacks] (the shipped {lang} texts)"
        for field in CallbackTexts.__struct_fields__:
            text = getattr(texts, field)
            try:
                fields = {f for _, f, _, _ in _formatter.parse(text) if f is not None}
            except ValueError as exc:
                raise bad(f"{where} {field}", f"a brace that is not {{creditor}} ({exc})",
                          "write {creditor} where the name goes, and no other brace") from None
            if fields - {"creditor"} or (field != "menu" and fields):
                allowed = "{creditor}" if field == "menu" else "no variable"
                raise bad(f"{where} {field}", f"names {', '.join(sorted(fields))}; it may name {allowed}",
                          "write {creditor} where the name goes in menu, and no other brace")
        if "creditor" not in {f for _, f, _, _ in _formatter.parse(texts.menu) if f is not None}:
            raise bad(f"{where} menu", "the menu does not name the creditor",
                      "put {creditor} where the creditor's name goes (the caller must hear who called him)")
        for name in sorted(names | {texts.client or ""}):
            for field in ("menu", "callback", "opt_out", "none"):
                said = getattr(texts, field).replace("{creditor}", name)
                problem = message_problem(said)
                if problem:
                    raise bad(f"{where} {field}", f"with the creditor {name!r}: {problem}",
                              "a shorter text, or a shorter creditor name")


def modems_from_emulator_state(path: Path, source: str = "config") -> list[ModemEntry]:
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{source}: emulator_state {str(path)!r} does not exist; fix: start `simrotor emulate --state-file {path}` first") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: emulator_state {str(path)!r} is not JSON ({exc})") from None
    out = []
    modems = state.get("modems") if isinstance(state, dict) else None
    if not isinstance(modems, list):
        raise ConfigError(f"{source}: emulator_state {str(path)!r} has no \"modems\" list; fix: point it at the "
                          f"--state-file that `simrotor emulate` wrote")
    for i, m in enumerate(modems):
        if not isinstance(m, dict) or "id" not in m or "port" not in m:
            raise ConfigError(f"{source}: emulator_state {str(path)!r}: modem #{i + 1} has no id or port; fix: "
                              f"rewrite the file with `simrotor emulate --state-file {path}`")
        audio = m.get("audio_port")
        out.append(ModemEntry(id=str(m["id"]), port=str(m["port"]), audio=str(audio) if audio else None,
                              slots=max(1, len(m.get("sims") or []) or 1)))
    return out


def load_config(path: str | Path) -> ApplianceConfig:
    p = Path(path)
    data = read_toml(p, ConfigError, "simrotor appliance run")
    return parse_config(data, source=str(p), base_dir=p.parent)
