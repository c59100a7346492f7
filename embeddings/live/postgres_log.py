"""The PostgreSQL write log: replicas on several machines share it and learn of new writes by LISTEN/NOTIFY.

Its tables live in the schema `related_write_log` of the database the URL names (one database per
bundles directory). Appends take a transaction-level advisory lock, so writes commit in the order of
their numbers: a reader that has read through #n never misses a later commit numbered below it.
Each append notifies the channel `related_write_log` at commit; a listener thread counts the
notifications, and `data_version` is that count, so a request asks it for free.

A connection lost mid-append (PostgreSQL restarted, its backend killed) is opened again and the
append retried for `retry_seconds` (recovery after a backend's `kill -9` took 3 to 6 s here); the
batch's id tells whether the lost commit had happened, so a write is never logged twice and never
acknowledged unless committed.

A listener whose backend stops answering while TCP stays up (a stopped or wedged backend process: the
kernel acknowledges every byte, so keepalives see nothing) would hear nothing forever; its heartbeat
has a deadline, past which the connection is cut and replaced, and `check()` fails meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from embeddings.errors import WriteLogError, WriteLogLostError, WriteLogUnavailableError
from embeddings.live.writes import (
    LAST_OF_EACH,
    SAME_KIND,
    Write,
    decode,
    encode_payload,
    encode_signature,
    encode_vectors,
)

SCHEMA = "related_write_log"
CHANNEL = "related_write_log"
LOCK_KEY = 0x72656C61  # the advisory lock of appends and of creating the schema
T = TypeVar("T")
log = logging.getLogger(__name__)

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE SEQUENCE IF NOT EXISTS {SCHEMA}.seq;
CREATE TABLE IF NOT EXISTS {SCHEMA}.writes (
    seq BIGINT PRIMARY KEY,
    op TEXT NOT NULL CHECK (op IN ('put', 'delete', 'rules')),
    id TEXT NOT NULL,
    article TEXT,
    signature BYTEA,
    written_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    batch UUID NOT NULL,
    pos INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS writes_id ON {SCHEMA}.writes (id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS writes_batch ON {SCHEMA}.writes (batch, pos);
CREATE TABLE IF NOT EXISTS {SCHEMA}.write_vectors (
    seq BIGINT NOT NULL REFERENCES {SCHEMA}.writes (seq) ON DELETE CASCADE,
    signal TEXT NOT NULL,
    spec TEXT NOT NULL,
    vector BYTEA NOT NULL,
    PRIMARY KEY (seq, signal)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
LAST_NUMBER = f"(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {SCHEMA}.seq)"


# A dead peer or a half-open connection (a network cut, a failover behind one address) shows as an
# error within about 10 s instead of a query or a LISTEN that waits forever; commits are synchronous
# whatever the database's or the role's own setting.
CONNECT_TIMEOUT = 5
CONNECTION: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": CONNECT_TIMEOUT,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "options": "-c synchronous_commit=on",
}
HEARTBEAT = 2.0  # seconds of silence after which the listener asks its connection whether it lives
# A live backend answers the heartbeat's `SELECT 1` in about a millisecond; one silent for 3 s is
# stopped or wedged. Past it the listener cuts its connection and opens another, and `check()` (readiness)
# fails until the new one listens: meanwhile this replica would miss other replicas' writes.
HEARTBEAT_DEADLINE = 3.0
LISTENER_NAME = "related-articles write log listener"  # its pg_stat_activity.application_name


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, **CONNECTION)
    except psycopg.OperationalError as exc:
        raise WriteLogUnavailableError(f"cannot reach the write log's database: {_first_line(exc)}") from exc


def url_name(url: str) -> str:
    """A URL's hosts, ports and database, for messages (never its user or password)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an unparsable URL)"
    host, port = info.get("host") or "localhost", info.get("port")
    hosts = ",".join(f"{h}:{p}" for h, p in zip(str(host).split(","), str(port).split(","), strict=False))
    return f"postgresql://{hosts if port else host}/{info.get('dbname') or ''}"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def schema_exists(url: str) -> bool:
    """Whether the database holds a write log's schema."""
    with _connect(url) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone()
    return found is not None


def set_aside(url: str) -> str:
    """Rename the schema out of the way (kept for a post-mortem); return its new name."""
    aside = f"{SCHEMA}_lost_" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with _connect(url) as conn:
        conn.execute(f"ALTER SCHEMA {SCHEMA} RENAME TO {aside}")
    return aside


class PostgresWriteLog:
    """The write log in PostgreSQL: `create=False` reads only (a build), `new_ok=False` never creates it."""

    def __init__(
        self, url: str, create: bool = True, new_ok: bool = True, retry_seconds: float = 20.0
    ) -> None:
        self.url = url
        self.name = url_name(url)
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._version = 0
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None
        self._heard_at = time.monotonic()  # when the listener last knew its connection alive
        self._listen_error: str | None = None  # why the listener has no connection, while it has none
        try:
            if create and new_ok:
                self._transaction(self._create_schema)
            elif create and not self._transaction(_holds_log):
                raise WriteLogError(f"{self.name} holds no write log (its tables were dropped or replaced)")
            found = self._transaction(
                lambda c: c.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'log_id'").fetchone()
            )
        except BaseException:
            self._drop()
            raise
        self.log_id: str | None = found[0] if found else None
        if create:
            self._listener = threading.Thread(target=self._listen, name="write-log-listener", daemon=True)
            self._listener.start()

    @staticmethod
    def _create_schema(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))  # two replicas starting at once
        conn.execute(DDL)
        conn.execute(
            f"INSERT INTO {SCHEMA}.meta VALUES ('log_id', %s) ON CONFLICT DO NOTHING", (uuid.uuid4().hex,)
        )

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = _connect(self.url)
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _transaction(self, work: Callable[[psycopg.Connection[Any]], T], retry: bool = True) -> T:
        """`work` in one repeatable-read transaction, again on a new connection if the first was lost."""
        with self._lock:
            for attempt in range(2 if retry else 1):
                try:
                    conn = self._connection()
                    with conn.transaction():
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        return work(conn)
                except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName) as exc:
                    raise WriteLogLostError(
                        f"the write log's tables in {self.name} are gone: {_first_line(exc)}"
                    ) from exc
                except psycopg.OperationalError as exc:
                    self._drop()
                    if attempt or not retry:
                        raise WriteLogUnavailableError(
                            f"cannot reach the write log {self.name}: {_first_line(exc)}"
                        ) from exc
                except psycopg.Error as exc:
                    raise WriteLogError(f"the write log {self.name} failed: {_first_line(exc)}") from exc
        raise AssertionError("unreachable")

    def check(self) -> None:
        """Raise WriteLogLostError if the log was dropped or replaced (Unavailable if out of reach)."""
        found = self._transaction(
            lambda c: c.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'log_id'").fetchone()
        )
        if found is None or found[0] != self.log_id:
            raise WriteLogLostError(f"the write log in {self.name} was replaced under the service")
        if self._listener is not None:
            silent = time.monotonic() - self._heard_at
            if self._listen_error or silent > HEARTBEAT + HEARTBEAT_DEADLINE:
                why = self._listen_error or f"its connection has not answered for {silent:.0f} s"
                raise WriteLogUnavailableError(
                    f"the write log {self.name}'s listener is not listening ({why}): writes of other"
                    " replicas are not heard until its connection is replaced"
                )

    def append(self, writes: Sequence[Write]) -> list[Write]:
        """Write `writes` in one transaction; return them with their sequence numbers once committed."""
        batch = uuid.uuid4()
        deadline = time.monotonic() + self.retry_seconds
        lost = False
        while True:
            try:
                if lost:  # the connection broke: did the commit happen before it did?
                    done = self._transaction(lambda c: self._committed(c, batch, writes), retry=False)
                    if done is not None:
                        return done
                return self._transaction(lambda c: self._insert(c, batch, writes), retry=False)
            except WriteLogUnavailableError:
                lost = True
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
            except WriteLogError as exc:
                # The lost connection's commit finished after the check above (it held the lock until
                # then): the batch is in, once, and the unique (batch, pos) refused it a second time.
                if not lost or not isinstance(exc.__cause__, pg_errors.UniqueViolation):
                    raise

    @staticmethod
    def _insert(conn: psycopg.Connection[Any], batch: uuid.UUID, writes: Sequence[Write]) -> list[Write]:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))  # commits in the order of numbers
        out = []
        for pos, w in enumerate(writes):
            article = encode_payload(w)
            row = conn.execute(
                f"INSERT INTO {SCHEMA}.writes (seq, op, id, article, signature, batch, pos)"
                f" VALUES (nextval('{SCHEMA}.seq'), %s, %s, %s, %s, %s, %s) RETURNING seq",
                (w.op, w.article_id, article, encode_signature(w), batch, pos),
            ).fetchone()
            seq = int(row[0]) if row else 0
            vectors = encode_vectors(w)
            if vectors:
                with conn.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO {SCHEMA}.write_vectors VALUES (%s, %s, %s, %s)",
                        [(seq, *v) for v in vectors],
                    )
            out.append(replace(w, seq=seq))
        if out:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(out[-1].seq)))
        return out

    @staticmethod
    def _committed(
        conn: psycopg.Connection[Any], batch: uuid.UUID, writes: Sequence[Write]
    ) -> list[Write] | None:
        """The batch's writes with their numbers if it was committed, else None."""
        rows = conn.execute(f"SELECT pos, seq FROM {SCHEMA}.writes WHERE batch = %s", (batch,)).fetchall()
        if not rows:
            return None
        seqs = {int(pos): int(seq) for pos, seq in rows}
        last = max(seqs.values())  # a write missing was superseded (compacted) since: any number will do
        return [replace(w, seq=seqs.get(i, last)) for i, w in enumerate(writes)]

    def data_version(self) -> int:
        """How many notifications (and reconnections) the listener has seen: it changes at every commit."""
        return self._version

    def _listen(self) -> None:
        """Count the channel's notifications; a new connection counts too (some may have been missed)."""
        warned = False
        while not self._closing.is_set():
            try:
                with psycopg.connect(self.url, **CONNECTION, application_name=LISTENER_NAME) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._version += 1
                    self._heard_at, self._listen_error = time.monotonic(), None
                    warned = False
                    while not self._closing.is_set():
                        heard = False
                        for _ in conn.notifies(timeout=HEARTBEAT):
                            self._version += 1
                            self._heard_at = time.monotonic()
                            heard = True
                        if not heard:
                            _heartbeat(conn)  # a connection cut without a word fails here
                            self._heard_at = time.monotonic()
            except psycopg.Error as exc:
                self._listen_error = _first_line(exc)
                if not warned:
                    log.warning("write log %s: listening again after %s", self.name, _first_line(exc))
                    warned = True
                self._closing.wait(0.2)

    def last_seq(self) -> int:
        """The highest sequence number the log has given (0 when none): compaction never lowers it."""
        row = self._transaction(
            lambda c: c.execute(
                f"SELECT greatest(coalesce((SELECT max(seq) FROM {SCHEMA}.writes), 0), {LAST_NUMBER})"
            ).fetchone()
        )
        return int(row[0]) if row else 0

    def number_after(self, seq: int) -> None:
        """Number the next writes after `seq` at least (sequence numbers are never reused)."""

        def bump(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            conn.execute(f"SELECT setval('{SCHEMA}.seq', greatest(%s, {LAST_NUMBER}, 1), true)", (seq,))

        if seq > 0:
            self._transaction(bump)

    def folding(self) -> tuple[int, list[Write]]:
        """The last sequence number and the last write of each id (and of its rules) up to it, at once."""

        def read(conn: psycopg.Connection[Any]) -> tuple[int, list[Write]]:
            row = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {SCHEMA}.writes").fetchone()
            through = int(row[0]) if row else 0
            last = LAST_OF_EACH.format(writes=f"{SCHEMA}.writes", through="%s")
            return through, _rows(conn, f"seq IN ({last})", (through,))

        return self._transaction(read)

    def read(self, after: int = 0) -> list[Write]:
        """The writes after sequence number `after`, in order."""
        return self._transaction(lambda c: _rows(c, "seq > %s", (after,)))

    def compact(self) -> int:
        """Drop the writes a later write of the same id supersedes (their vectors go with them)."""
        return self._transaction(
            lambda c: (
                c.execute(
                    f"DELETE FROM {SCHEMA}.writes w WHERE EXISTS"
                    f" (SELECT 1 FROM {SCHEMA}.writes l WHERE l.id = w.id AND l.seq > w.seq AND {SAME_KIND})"
                ).rowcount
            )
        )

    def close(self) -> None:
        """Stop listening and close the connection."""
        self._closing.set()
        if self._listener is not None:
            self._listener.join(timeout=CONNECT_TIMEOUT + HEARTBEAT + HEARTBEAT_DEADLINE + 1)
        with self._lock:
            self._drop()


def _heartbeat(conn: psycopg.Connection[Any]) -> None:
    """`SELECT 1` on `conn`; past HEARTBEAT_DEADLINE its socket is shut, so that the query fails."""
    cut = threading.Timer(HEARTBEAT_DEADLINE, _cut, args=(conn,))
    cut.daemon = True
    cut.start()
    asked = time.monotonic()
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        if time.monotonic() - asked >= HEARTBEAT_DEADLINE:
            raise psycopg.OperationalError(
                f"no answer to a heartbeat within {HEARTBEAT_DEADLINE:g} s"
            ) from exc
        raise
    finally:
        cut.cancel()
        cut.join()  # never cut a socket whose number may be reused once `conn` is closed


def _cut(conn: psycopg.Connection[Any]) -> None:
    """Shut `conn`'s socket (from another thread): a read blocked on it returns, as at a connection lost."""
    with (
        contextlib.suppress(OSError, psycopg.Error),
        socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock,
    ):
        sock.shutdown(socket.SHUT_RDWR)


def _holds_log(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name IN"
        " ('writes', 'meta', 'write_vectors')",
        (SCHEMA,),
    ).fetchone()
    return bool(row and row[0] == 3)


def _rows(conn: psycopg.Connection[Any], where: str, params: tuple[object, ...]) -> list[Write]:
    rows = conn.execute(
        f"SELECT seq, op, id, article, signature FROM {SCHEMA}.writes WHERE {where} ORDER BY seq", params
    ).fetchall()
    vector_rows = conn.execute(
        f"SELECT seq, signal, spec, vector FROM {SCHEMA}.write_vectors WHERE {where}", params
    ).fetchall()
    return decode(rows, vector_rows)
