"""What every table group of the store shares: the connection (raw SQL, for the hot
path), the sqlite-utils view of it (schema and look-ups), and the write transaction."""
from __future__ import annotations

import sqlite3

import sqlite_utils


class Tx:
    """``BEGIN IMMEDIATE … COMMIT``, rolled back on error (the connection is in autocommit
    mode). IMMEDIATE takes the write lock at BEGIN, so a busy database is waited for
    there (busy timeout) rather than failing at the first write of a transaction that
    has already read; sqlite-utils' ``atomic()`` begins DEFERRED, so it is not used for
    the writes the appliance acts on."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


class Rows:
    """Base of the table groups that make up ``Store``."""

    conn: sqlite3.Connection
    db: sqlite_utils.Database

    def _tx(self) -> Tx:
        return Tx(self.conn)
