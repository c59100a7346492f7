"""The SQLite write log, the embedded default: `<bundles>/writes.sqlite` beside the bundles.

One row per write in the order it was applied (`seq`), with the article and its signal vectors for a
put, so a restart replays writes without embedding anything. SQLite runs in WAL mode with
`synchronous=FULL`: a commit returns once the log is fsynced. Processes on one machine share it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import sqlite3
import stat
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from embeddings.errors import WriteLogAccessError, WriteLogError, WriteLogLostError
from embeddings.live.writes import (
    LAST_OF_EACH,
    SAME_KIND,
    Write,
    decode,
    encode_payload,
    encode_signature,
    encode_vectors,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS writes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('put', 'delete', 'rules')),
    id TEXT NOT NULL,
    article TEXT,                   -- JSON of the article for a put, of the rules for rules
    signature BLOB,                 -- its reprint signature (uint32), for a put
    written_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS writes_id ON writes(id, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS write_vectors (
    seq INTEGER NOT NULL REFERENCES writes(seq),
    signal TEXT NOT NULL,
    spec TEXT NOT NULL,             -- JSON of the encoder spec that made the vector
    vector BLOB NOT NULL,           -- float32
    PRIMARY KEY (seq, signal)
) WITHOUT ROWID;
"""


class SqliteWriteLog:
    """The SQLite write log (one machine): append durably, read back in order.

    `create=False` opens it read-only (a build); `new_ok=False` opens a log that must exist already and
    never starts a new one (a service bound to it).
    """

    def __init__(self, path: Path, create: bool = True, new_ok: bool = True) -> None:
        self.path = path
        self.name = path.name
        self._lock = threading.Lock()
        self._probe: sqlite3.Connection | None = None
        self._probe_lock = threading.Lock()
        try:
            if create and new_ok:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.is_file():
                raise WriteLogError(f"no write log at {path}")
            target = str(path) if new_ok or not create else path.resolve().as_uri() + "?mode=rw"
            self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None, uri=not new_ok)
            if create:
                if not new_ok and not self._holds_log():  # checked before anything is written to it
                    raise WriteLogError(f"{path.name} holds no write log (emptied or replaced)")
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(SCHEMA)
                self._allow_rules()
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('log_id', ?)", (uuid.uuid4().hex,))
            else:
                self._db.execute("PRAGMA query_only=ON")  # a build only reads the service's log
            found = self._db.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()
            self.log_id: str | None = found[0] if found else None
        except (OSError, sqlite3.Error) as exc:
            denied = _denied(exc) and not_writable(_nearest(path.parent), *_files(path))
            if denied:  # an intact log this process may not write: no loss, and never one to accept
                raise WriteLogAccessError(f"cannot open the write log {path}: {denied} ({exc})") from exc
            raise WriteLogError(f"cannot open the write log {path}: {exc}") from exc
        self._files = self._identity()

    def _allow_rules(self) -> None:
        """Let a log made before rules writes existed take them (its CHECK constraint names two ops).

        SQLite's recipe for a changed CHECK constraint (lang_altertable.html, "Making Other Kinds Of
        Table Schema Changes"): the schema's text is edited in place; no row on disk changes.
        """
        (sql,) = self._db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'writes'"
        ).fetchone()
        if "'rules'" in sql:
            return
        (version,) = self._db.execute("PRAGMA schema_version").fetchone()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("PRAGMA writable_schema = ON")
            self._db.execute(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'writes'",
                (sql.replace("IN ('put', 'delete')", "IN ('put', 'delete', 'rules')"),),
            )
            self._db.execute(f"PRAGMA schema_version = {int(version) + 1}")
            self._db.execute("PRAGMA writable_schema = OFF")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _holds_log(self) -> bool:
        found = self._db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('writes', 'meta')"
        ).fetchone()
        return bool(found[0] == 2)

    def _identity(self) -> dict[str, tuple[int, int, int]]:
        """Device, inode and size of the log's files as they are now (its `-wal` once it exists)."""
        out = {}
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                info = path.stat()
                out[path.name] = (info.st_dev, info.st_ino, info.st_size)
        return out

    def check(self) -> None:
        """Raise WriteLogLostError if the log's files were removed, replaced or truncated since opened."""
        with self._lock:
            self._check_files()

    def _check_files(self) -> None:
        """check, the caller holding the lock.

        SQLite keeps writing through its open descriptors into a deleted or emptied file, and every
        such write would be gone at the next start: the database file and its `-wal` only grow
        between checkpoints (the database never shrinks: no VACUUM), and keep their inodes.
        """
        now = self._identity()
        for name, (dev, ino, size) in self._files.items():
            seen = now.get(name)
            if seen is None:
                raise WriteLogLostError(f"the write log's file {name} was removed under the service")
            if seen[:2] != (dev, ino):
                raise WriteLogLostError(f"the write log's file {name} was replaced under the service")
            if seen[2] < size:  # neither file shrinks: no VACUUM, no journal_size_limit, no TRUNCATE
                raise WriteLogLostError(f"the write log's file {name} was truncated under the service")
        self._files = now

    def append(self, writes: Sequence[Write]) -> list[Write]:
        """Write `writes` in one transaction; return them with their sequence numbers once on disk."""
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        out: list[Write] = []
        with self._lock:
            self._check_files()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for w in writes:
                    article = encode_payload(w)
                    cursor = self._db.execute(
                        "INSERT INTO writes (op, id, article, signature, written_at) VALUES (?,?,?,?,?)",
                        (w.op, w.article_id, article, encode_signature(w), now),
                    )
                    seq = int(cursor.lastrowid or 0)
                    self._db.executemany(
                        "INSERT INTO write_vectors VALUES (?,?,?,?)",
                        [(seq, *row) for row in encode_vectors(w)],
                    )
                    out.append(Write(w.op, w.article_id, w.article, w.vectors, w.specs, w.signature, seq))
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise WriteLogError(f"cannot write to the write log {self.path}: {exc}") from exc
                raise
            self._files = self._identity()  # the -wal may have just been made; the file grown
        return out

    def data_version(self) -> int:
        """SQLite's `PRAGMA data_version` on a connection of its own: it changes at every commit.

        Its own connection and lock, so that the check never waits for an append (a busy wait on
        another process's lock, an fsync): a request asks it on the event loop.
        """
        with self._probe_lock:
            if self._probe is None:
                target = self.path.resolve().as_uri() + "?mode=rw"
                self._probe = sqlite3.connect(target, uri=True, check_same_thread=False)
            return int(self._probe.execute("PRAGMA data_version").fetchone()[0])

    def last_seq(self) -> int:
        """The highest sequence number the log has given (0 when none): compaction never lowers it."""
        with self._lock:
            (seq,) = self._db.execute(
                "SELECT max(coalesce((SELECT max(seq) FROM writes), 0),"
                " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'writes'), 0))"
            ).fetchone()
        return int(seq)

    def number_after(self, seq: int) -> None:
        """Number the next writes after `seq` at least (sequence numbers are never reused)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                updated = self._db.execute(
                    "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'writes'", (seq,)
                ).rowcount
                if not updated:
                    self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('writes', ?)", (seq,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def folding(self) -> tuple[int, list[Write]]:
        """The last sequence number and the last write of each id (and of its rules) up to it, at once."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                (through,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM writes").fetchone()
                latest = self._latest(int(through))
            finally:
                self._db.execute("COMMIT")
        return int(through), latest

    def read(self, after: int = 0) -> list[Write]:
        """The writes after sequence number `after`, in order."""
        with self._lock:
            self._db.execute("BEGIN")  # both tables as of one moment (another process may compact)
            try:
                return self._rows("seq > ?", (after,))
            finally:
                self._db.execute("COMMIT")

    def _latest(self, through: int) -> list[Write]:
        return self._rows(f"seq IN ({LAST_OF_EACH.format(writes='writes', through='?')})", (through,))

    def _rows(self, where: str, params: tuple[object, ...]) -> list[Write]:
        """The writes matching `where` (the caller holds the lock)."""
        rows = self._db.execute(
            f"SELECT seq, op, id, article, signature FROM writes WHERE {where} ORDER BY seq", params
        ).fetchall()
        vector_rows = self._db.execute(
            f"SELECT seq, signal, spec, vector FROM write_vectors WHERE {where}", params
        ).fetchall()
        return decode(rows, vector_rows)

    def compact(self) -> int:
        """Drop the writes a later write of the same id supersedes; return how many.

        Always safe: a replay or fold that would read a dropped write reads the later one too, and
        the last write of an id decides its state.
        """
        superseded = (
            "SELECT seq FROM writes w"
            f" WHERE EXISTS (SELECT 1 FROM writes l WHERE l.id = w.id AND l.seq > w.seq AND {SAME_KIND})"
        )
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(f"DELETE FROM write_vectors WHERE seq IN ({superseded})")
                dropped = self._db.execute(f"DELETE FROM writes WHERE seq IN ({superseded})").rowcount
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return int(dropped)

    def close(self) -> None:
        """Close the database."""
        with self._lock, self._probe_lock:
            self._db.close()
            if self._probe is not None:
                self._probe.close()


# What a lack of access shows as: SQLite's SQLITE_PERM, SQLITE_READONLY and SQLITE_CANTOPEN, the OS's
# EACCES, EPERM and EROFS. Only then is the directory's or the files' access looked at.
_SQLITE_DENIED = frozenset({3, 8, 14})
_OS_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def _denied(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_DENIED
    return isinstance(exc, OSError) and exc.errno in _OS_DENIED


def _files(path: Path) -> list[Path]:
    """The log's file and its companions (`-wal`, `-shm`)."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _nearest(directory: Path) -> Path:
    """`directory`, or its nearest ancestor that exists (where it would be made)."""
    return next((p for p in (directory, *directory.parents) if _stat(p) is not None), directory)


def _stat(path: Path) -> os.stat_result | None:
    """`path`'s status, None when it does not exist or cannot be reached (the directory above says why)."""
    try:
        return path.stat()
    except OSError:
        return None


def user_name() -> str:
    """The name of the user this process runs as (its uid when it has none)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def not_writable(*paths: Path) -> str | None:
    """Why this process may not write `paths` (a directory: make files in it), with the fix; None if it may.

    Paths that do not exist, or cannot be reached, are passed over: give their directory first.
    """
    for path in paths:
        info = _stat(path)
        if info is None:
            continue
        with contextlib.suppress(OSError):
            if os.statvfs(path).f_flag & os.ST_RDONLY:
                return f"{path} is on a read-only file system: mount it read-write"
        mode = os.W_OK | os.X_OK if stat.S_ISDIR(info.st_mode) else os.R_OK | os.W_OK
        if not os.access(path, mode):
            return f"the service's user ({user_name()}) may not write {path}: give it write access"
    return None


def set_aside(path: Path) -> str:
    """Rename an unusable log and its companions out of the way (kept for a post-mortem); the new name."""
    suffix = ".lost-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            part.rename(part.with_name(part.name + suffix))
    return path.name + suffix
