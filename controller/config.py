"""The controller's TOML configuration, validated at start with errors that name the key
and the fix (msgspec, as appliance/config.py does).

Shape (every table optional; defaults beside each key)::

    [controller]
    listen = "127.0.0.1:8480"            # CRM API, reference page, fleet link
    store = "controller.db"              # SQLite file (WAL); or set [store] url
    durability = "normal"                # or "full": an fsync per transaction (power loss)
    region = "PL"                        # default region of national numbers in imports

    [store]                              # where the controller keeps its state (one of the two)
    url = "postgresql://simrotor@db.example/simrotor"   # or "sqlite:///var/lib/simrotor/controller.db"
    recordings = "/var/lib/simrotor/recordings"         # default: beside a SQLite file (controller.recordings),
                                         # or "controller.recordings" beside this file on PostgreSQL

    [dispatch]
    interval_seconds = 1.0               # dispatcher tick (also woken by hello/results)
    lease_seconds = 300.0                # a job not started by then is never started
    stranded_after_seconds = 900.0       # expired leases of an appliance gone this long go elsewhere
    queue_depth = 4                      # jobs beyond an appliance's free capacity

    [link]
    heartbeat_seconds = 15.0

    [webhooks]
    backoff_seconds = 10.0               # first retry; doubles up to an hour
    max_attempts = 10                    # then the delivery is dead-lettered
    timeout_seconds = 10.0
    allow_private = false                # true: targets on loopback/private ranges too (a receiver on the LAN)

    [inbound]
    stop_words = ["STOP", "NIE", "REZYGNUJĘ", "WYPISZ", …]

    [operator_prefixes]                  # callee prefix -> MCC+MNC, for on-net dispatch
    "+48600" = "26002"

    [log]
    format = "json"                      # one JSON object per line, or "text"
    level = "INFO"

Every number is checked against its bound (``_BOUNDS``, or ``common.configkit``'s
defaults: finite, not negative, seconds at most a week); the store's directory must
exist. ``SIMROTOR_STORE_URL`` in the environment (containers) overrides ``[store] url``
when the file is loaded; a relative SQLite path or recordings folder is taken from the
file's folder. After loading, ``[controller] store`` holds where the store is, whichever
key said it. The CRM's API keys and the appliances' credentials are generated (256-bit,
controller/auth.py), so no configured secret guards ``listen``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec

from common.configkit import MAX_SECONDS, WAIT, Bound, check_numbers, check_store_dir, explain
from common.files import read_toml
from common.logs import LogSection

from .dispatcher import DEFAULT_LEASE_SECONDS, DEFAULT_STRANDED_AFTER
from .link import HEARTBEAT_SECONDS
from .planner import DEFAULT_QUEUE_DEPTH
from .stopwords import DEFAULT_STOP_WORDS
from .store.backend import is_postgresql, masked, sqlite_path
from .webhooks import DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DELIVERY_TIMEOUT


class ConfigError(ValueError):
    """A configuration problem, with the file, the key and the fix in the message."""


class _Base(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class ControllerSection(_Base):
    listen: str = "127.0.0.1:8480"
    store: str = "controller.db"
    durability: str = "normal"
    region: str | None = None


class StoreSection(_Base):
    url: str | None = None
    recordings: str | None = None


class DispatchSection(_Base):
    interval_seconds: float = 1.0
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    stranded_after_seconds: float = DEFAULT_STRANDED_AFTER
    queue_depth: int = DEFAULT_QUEUE_DEPTH


class LinkSection(_Base):
    heartbeat_seconds: float = HEARTBEAT_SECONDS


class WebhooksSection(_Base):
    backoff_seconds: float = DEFAULT_BACKOFF
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout_seconds: float = DELIVERY_TIMEOUT
    # Webhook targets on loopback, private, link-local, … addresses are refused unless
    # this is true (server-side request forgery; controller/webhooks.py).
    allow_private: bool = False


class InboundSection(_Base):
    stop_words: tuple[str, ...] = DEFAULT_STOP_WORDS


class ControllerConfig(_Base):
    controller: ControllerSection = ControllerSection()
    store: StoreSection = StoreSection()
    dispatch: DispatchSection = DispatchSection()
    link: LinkSection = LinkSection()
    webhooks: WebhooksSection = WebhooksSection()
    inbound: InboundSection = InboundSection()
    operator_prefixes: dict[str, str] = {}
    log: LogSection = LogSection()


#: Bounds beyond configkit's defaults (finite, >= 0, ``…_seconds`` at most a week).
_BOUNDS: dict[str, Bound] = {
    "dispatch.interval_seconds": WAIT,
    # A batch crosses the link, is stored and acknowledged in well under a second; a
    # lease under 10 s would expire jobs before an appliance could start them.
    "dispatch.lease_seconds": Bound(10, MAX_SECONDS, "seconds an appliance may hold a job before starting it"),
    "link.heartbeat_seconds": WAIT,
    "webhooks.backoff_seconds": WAIT,
    "webhooks.max_attempts": Bound(1, None, "the first delivery counts: 1 means no retry"),
    "webhooks.timeout_seconds": WAIT,
}

_FIXES: dict[str, str] = {
    "controller.listen": 'listen = "127.0.0.1:8480"',
    "controller.store": 'store = "/var/lib/simrotor/controller.db"',
    "store.url": 'url = "postgresql://simrotor@db.example/simrotor" (or a SQLite file\'s path)',
    "dispatch.lease_seconds": "lease_seconds = 300.0",
    "dispatch.queue_depth": "queue_depth = 4",
    "inbound.stop_words": 'stop_words = ["STOP", "NIE"]',
    "log.format": 'format = "json" (one JSON object per line) or "text"',
    "log.level": 'level = "INFO" (or "DEBUG", "WARNING", "ERROR")',
}


def parse_config(data: dict[str, Any], *, source: str = "config") -> ControllerConfig:
    try:
        cfg = msgspec.convert(data, ControllerConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(explain(exc, source, ControllerConfig, data, _FIXES)) from None

    def bad(where: str, what: str, fix: str) -> ConfigError:
        return ConfigError(f"{source}: {where}: {what}; fix: {fix}")

    check_numbers(cfg, source, _BOUNDS, ConfigError)
    if cfg.store.url is not None:
        if "store" in (data.get("controller") or {}):
            raise bad("[store] url", "the store is named twice ([controller] store too)",
                      "keep [store] url and remove [controller] store")
        cfg = _with_store(cfg, cfg.store.url, source)
    if not re.fullmatch(r"[\w.\-\[\]:]+:\d{1,5}", cfg.controller.listen):
        raise bad("[controller] listen", f"{cfg.controller.listen!r} is not host:port", 'listen = "127.0.0.1:8480"')
    if cfg.controller.durability not in ("normal", "full"):
        raise bad("[controller] durability", f"{cfg.controller.durability!r} is not known", 'durability = "normal" or "full"')
    if cfg.controller.region is not None and not re.fullmatch(r"[A-Z]{2}", cfg.controller.region):
        raise bad("[controller] region", f"{cfg.controller.region!r} is not an ISO 3166 code", 'region = "PL"')
    if not cfg.inbound.stop_words:
        raise bad("[inbound] stop_words", "an empty list would ignore every STOP", 'stop_words = ["STOP", "NIE"]')
    for prefix, op in cfg.operator_prefixes.items():
        if not re.fullmatch(r"\+\d{1,14}", prefix) or not re.fullmatch(r"\d{5,6}", op):
            raise bad(f"[operator_prefixes] {prefix!r}", "a prefix is +digits and an operator MCC+MNC", '"+48600" = "26002"')
    return cfg


def _with_store(cfg: ControllerConfig, url: str, source: str) -> ControllerConfig:
    """``cfg`` with its store at ``url`` (checked: a PostgreSQL URL names a database)."""
    if is_postgresql(url):
        if not re.fullmatch(r"postgres(ql)?://[^/]*/[^/?\s]+(\?\S*)?", url):
            raise ConfigError(f"{source}: [store] url: {masked(url)!r} names no database; "
                              'fix: url = "postgresql://user@host/dbname"')
    else:
        url = sqlite_path(url)
    return msgspec.structs.replace(cfg, controller=msgspec.structs.replace(cfg.controller, store=url))


def recordings_dir(cfg: ControllerConfig) -> Path:
    """The folder of call recordings: ``[store] recordings``, else beside a SQLite store's
    file (controller.db -> controller.recordings/), else controller.recordings here."""
    if cfg.store.recordings is not None:
        return Path(cfg.store.recordings).resolve()
    if is_postgresql(cfg.controller.store):
        return Path("controller.recordings").resolve()
    return Path(cfg.controller.store).resolve().with_suffix(".recordings")


def load_config(path: str | Path, *, environ: dict[str, str] | None = None) -> ControllerConfig:
    p = Path(path)
    data = read_toml(p, ConfigError, "simrotor controller run")
    cfg = parse_config(data, source=str(p))
    env_url = (os.environ if environ is None else environ).get("SIMROTOR_STORE_URL", "").strip()
    if env_url:
        cfg = _with_store(cfg, env_url, "SIMROTOR_STORE_URL")
    store = cfg.controller.store
    if not is_postgresql(store) and not Path(store).is_absolute() and store != ":memory:":
        cfg = msgspec.structs.replace(cfg, controller=msgspec.structs.replace(cfg.controller, store=str(p.parent / store)))
    recordings = cfg.store.recordings
    if recordings is None and is_postgresql(store):
        recordings = "controller.recordings"
    if recordings is not None and not Path(recordings).is_absolute():
        cfg = msgspec.structs.replace(cfg, store=msgspec.structs.replace(cfg.store, recordings=str(p.parent / recordings)))
    if not is_postgresql(cfg.controller.store):
        check_store_dir(cfg.controller.store, str(p), "[controller] store", ConfigError)
    return cfg
