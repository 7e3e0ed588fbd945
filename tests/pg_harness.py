"""A private PostgreSQL server for the tests: Debian's ``postgresql`` package (installed by
./scripts/test), ``initdb`` into a temporary folder and the ``postgres`` server on a free
port and a socket folder of its own, stopped at the end of the session; every test that
asks gets a database of its own, dropped after it.

The server is a child of the test process, not daemonised by ``pg_ctl``: ``setpriv
--pdeathsig QUIT`` has the kernel stop it (immediate shutdown) when the test process dies
however it dies (a CI timeout, kill -9), so no server outlives its run.

Why not pytest-postgresql: it runs the server as the user running the tests, and CI runs
them as root, which ``initdb`` refuses. Here a root run hands the server to ``nobody``
(``setpriv``, util-linux), whose folder is made outside pytest's root-only tmp tree.

The server is tuned for throw-away data (``fsync = off``: PostgreSQL docs, "Non-Durable
Settings"), so a test's commits cost no disk flush.

A test's "database" is a schema of its own in one database made at start, reached through
the URL's ``options=-csearch_path=…``: ``CREATE SCHEMA`` takes milliseconds where ``CREATE
DATABASE`` copies a template (0.2 s idle, 0.5-1.8 s on a busy 2-core machine, per test).
What a store does is the same in either: its tables, sequences and advisory locks; only a
query of the catalogue must name ``current_schema()``.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

#: Debian's binaries (not the /usr/bin wrappers of postgresql-common, which want a cluster
#: of theirs); the newest installed major version.
BIN_ROOT: Final = Path("/usr/lib/postgresql")
#: The superuser the tests connect as (trust auth on the private socket and loopback only).
USER: Final = "simrotor"
#: The database the tests' schemas are made in.
TEST_DB: Final = "simrotor_tests"
#: Seconds the harness waits for the server to accept connections (a cold start takes ~1 s).
START_TIMEOUT: Final = 60


class PgServerError(RuntimeError):
    pass


def pg_bin() -> Path:
    """The newest installed ``/usr/lib/postgresql/<major>/bin``."""
    found = sorted((p for p in BIN_ROOT.glob("*/bin") if (p / "initdb").exists()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise PgServerError(f"no PostgreSQL server under {BIN_ROOT}: install Debian's postgresql package "
                            "(./scripts/test does)")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A running server: ``url(dbname)`` to reach it, ``database()`` for a fresh database."""

    def __init__(self, root: Path, port: int, bindir: Path, switch: list[str]) -> None:
        # switch: setpriv's options that make root the server's user (empty when not root)
        self.root, self.port, self.bindir, self._switch = root, port, bindir, switch
        self.data, self.sockets = root / "data", root / "sockets"
        self._names = itertools.count(1)
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str = "postgres", schema: str | None = None) -> str:
        path = f"postgresql://{USER}@/{dbname}?host={self.sockets}&port={self.port}"
        return path if schema is None else f"{path}&options=-csearch_path%3D{schema}"

    def _run(self, *argv: str) -> None:
        as_user = ["setpriv", *self._switch, "--"] if self._switch else []
        done = subprocess.run([*as_user, *argv], capture_output=True, text=True, cwd=self.root, check=False)
        if done.returncode != 0:
            raise PgServerError(f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                                f"; server log: {self.root / 'server.log'}")

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        self._serve()
        self._admin(f"CREATE DATABASE {TEST_DB}")

    def restart(self) -> None:
        """Stop the server (fast shutdown: what it committed is kept; an immediate one
        could lose the last commits under ``synchronous_commit = off``) and start it again
        on the same data: clients lose their connections, as in a database restart."""
        self.stop(signal.SIGINT)
        self._serve()

    def _serve(self) -> None:
        settings = ("listen_addresses=127.0.0.1", "fsync=off", "synchronous_commit=off", "full_page_writes=off",
                    "max_connections=300", "shared_buffers=32MB")
        with open(self.root / "server.log", "wb") as log:
            self._proc = subprocess.Popen(
                ["setpriv", "--pdeathsig", "QUIT", *self._switch, "--", str(self.bindir / "postgres"),
                 "-D", str(self.data), "-p", str(self.port), "-k", str(self.sockets),
                 *(a for kv in settings for a in ("-c", kv))],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:  # polled, every 0.1 s: the server says nothing else when it is ready
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PgServerError(f"postgres exited ({self._proc.returncode}) at start; server log: {self.root / 'server.log'}")
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PgServerError(f"postgres not ready after {START_TIMEOUT} s ({exc}); "
                                        f"server log: {self.root / 'server.log'}") from None
            time.sleep(0.1)

    def stop(self, how: signal.Signals = signal.SIGQUIT) -> None:
        """Immediate shutdown by default (SIGQUIT: the data is thrown away anyway); SIGINT
        for a fast one that keeps what was committed (PostgreSQL docs, 19.5)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(how)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def _admin(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(sql)

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database for one test (a schema of its own, see the module's
        docstring), its URL; dropped with all it holds afterwards."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self._admin(f"CREATE SCHEMA {name}", TEST_DB)
        try:
            yield self.url(TEST_DB, name)
        finally:
            self._admin(f"DROP SCHEMA IF EXISTS {name} CASCADE", TEST_DB)


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """A started server in a new temporary folder, stopped and removed afterwards. As root,
    the server runs as ``nobody`` (initdb refuses root) from a folder it owns."""
    bindir = pg_bin()
    root = Path(tempfile.mkdtemp(prefix="simrotor-pg-"))
    switch: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        switch = [f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        os.chmod(root, 0o755)
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
    server = PgServer(root, _free_port(), bindir, switch)
    server.sockets.mkdir()
    if switch:
        os.chown(server.sockets, nobody.pw_uid, nobody.pw_gid)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
