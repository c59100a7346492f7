"""Where the write log lives: a SQLite file (the embedded default) or a PostgreSQL database.

`RELATED_WRITE_LOG` is a path (unset: `<bundles>/writes.sqlite`), which processes on one machine
share, or a `postgresql://` URL, which replicas on several machines share. Both keep every
acknowledged write, durable before it is acknowledged, and number them in commit order. A build folds
the log in (the last write of each id wins over the input archive) and records the log's id and the
last sequence number it read in its manifest; the service replays only the writes after it.
"""

from __future__ import annotations

from pathlib import Path

from embeddings.live.writes import WriteLog
from embeddings.settings import LOG_URL_SCHEMES

LogLocation = Path | str


def is_url(location: LogLocation) -> bool:
    """Whether `location` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(LOG_URL_SCHEMES)


def log_name(location: LogLocation) -> str:
    """The log's name for messages: a file's name, or a URL's host, port and database (no password)."""
    if not is_url(location):
        return Path(location).name
    from embeddings.live.postgres_log import url_name

    return url_name(str(location))


def open_log(location: LogLocation, create: bool = True, new_ok: bool = True) -> WriteLog:
    """Open the log: `create=False` read-only (a build), `new_ok=False` only one that exists already."""
    if is_url(location):
        from embeddings.live.postgres_log import PostgresWriteLog

        return PostgresWriteLog(str(location), create=create, new_ok=new_ok)
    from embeddings.live.sqlite_log import SqliteWriteLog

    return SqliteWriteLog(Path(location), create=create, new_ok=new_ok)


def log_exists(location: LogLocation) -> bool:
    """Whether anything is there to open (a file; a schema); WriteLogUnavailableError if unreachable."""
    if is_url(location):
        from embeddings.live.postgres_log import schema_exists

        return schema_exists(str(location))
    return Path(location).exists()


def set_aside(location: LogLocation) -> str:
    """Move an unusable log out of the way, kept for a post-mortem; return where it went."""
    if is_url(location):
        from embeddings.live.postgres_log import set_aside as set_aside_schema

        return set_aside_schema(str(location))
    from embeddings.live.sqlite_log import set_aside as set_aside_file

    return set_aside_file(Path(location))
