"""The controller's store: every SQL statement of the controller lives in this package, one
module per table group, each with its own job:

* ``schema``    the tables and indexes by group, versioned migrations run at open;
* ``base``      the connection and ``tx()``, the per-state contact counts;
* ``fleet``     API keys, enrollment, appliances and their SIMs;
* ``campaigns`` campaigns and contacts (import, due contacts, a contact's cursor);
* ``jobs``      claims, leases, acknowledgements, withdrawals;
* ``results``   results and inbound events, the contact rules' history;
* ``optouts``   the do-not-call list;
* ``webhooks``  webhook targets, deliveries, dead letters;
* ``recordings`` call recordings sent by the appliances, until their retention ends;
* ``reporting`` a campaign report's aggregates and the results export's pages;
* ``idempotency`` the first answers to POSTs sent with an Idempotency-Key, kept 24 h;
* ``gauges``    counts by state and a liveness read for /metrics and /healthz.

``Store`` joins the groups into the one object the rest of the controller is handed. It
takes and returns plain values; times are epoch seconds (UTC) passed in by the caller (the
injected clock). A PostgreSQL store (issue 18) is a second set of these modules behind the
same methods, nothing else:

* only portable SQL: ``INSERT … ON CONFLICT … DO NOTHING / DO UPDATE``, partial indexes,
  no ``INSERT OR REPLACE``, no ``rowid`` tricks, times as epoch seconds (REAL, UTC);
* correctness never rests on an in-process lock: claims and leases are conditional
  updates (``UPDATE … WHERE state = 'waiting'``) inside ``BEGIN IMMEDIATE`` transactions,
  so two controller processes over one database cannot both take a contact or a job;
* deduplication is a unique key (results by ``(appliance_id, app_seq)`` and by
  ``job_id|attempt|final``; inbound events by id), not a check-then-insert.

Raw SQL everywhere rows are read or written (the hot paths — import, claims, ingest — and
the cold ones alike, so one dialect is kept portable); sqlite-utils where the database is
described rather than used: the schema script and its version at open (``schema``).
"""
from __future__ import annotations

from .base import CHUNK, Conflict, StoreError
from .campaigns import Campaigns, contacts_copy_text
from .fleet import Fleet
from .gauges import Gauges
from .idempotency import IdempotencyKeys
from .jobs import Jobs
from .optouts import OptOuts
from .recordings import RecordingRows
from .reporting import ReportRows
from .results import Results
from .schema import SCHEMA_VERSION
from .webhooks import Webhooks

__all__ = ["CHUNK", "SCHEMA_VERSION", "Conflict", "Store", "StoreError", "contacts_copy_text"]


class Store(Fleet, Campaigns, Jobs, Results, OptOuts, Webhooks, RecordingRows, ReportRows, IdempotencyKeys,
            Gauges):
    """All persistence of the controller: the table groups over one connection."""
