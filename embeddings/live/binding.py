"""Which write log a bundles directory is bound to, so that a lost or older log is never served.

`<bundles>/write-log.json` names the log (its id) and the last write it acknowledged; the service
rewrites it, atomically, after every append. A log that is missing, emptied, replaced by another one
or shorter (an older copy restored) than that, or than what the published bundle folded in, is
refused: serving it would bring deleted articles back, and the next build would drop acknowledged
writes. Accepting the loss is explicit (`--accept-write-log-loss`), and binds to the log as it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embeddings.errors import (
    BundleError,
    WriteLogAccessError,
    WriteLogError,
    WriteLogLostError,
    WriteLogUnavailableError,
)
from embeddings.index.bundle import read_manifest
from embeddings.index.publish import current_target
from embeddings.live.sqlite_log import user_name
from embeddings.live.write_log import LogLocation, is_url, log_exists, log_name, open_log, set_aside
from embeddings.live.writes import WriteLog

BINDING_FILE = "write-log.json"
ACCEPT = "related-articles serve --accept-write-log-loss (RELATED_ACCEPT_WRITE_LOG_LOSS=true)"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Binding:
    """A log's id and the last sequence number acknowledged in it."""

    log_id: str
    last_seq: int


def read_binding(bundles: Path) -> Binding | None:
    """The bundles directory's binding, or None when it has none yet."""
    path = bundles / BINDING_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Binding(str(data["log_id"]), int(data["last_seq"]))
    except FileNotFoundError:
        return None
    except PermissionError as exc:  # an intact binding this process may not read: no loss to accept
        raise WriteLogAccessError(
            f"{BINDING_FILE} in the bundles directory cannot be read: the service's user ({user_name()}) may "
            f"not read {path}: give it read and write access to the bundles directory and its files"
        ) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WriteLogLostError(
            f"{BINDING_FILE} in the bundles directory is unreadable ({exc}): restore it, or accept the "
            f"loss once: {ACCEPT}"
        ) from exc


def write_binding(bundles: Path, binding: Binding, rebind: bool = False) -> None:
    """Replace the binding atomically and durably (a new file renamed over the old one).

    Several processes write it: under a lock, and never backwards for the same log (a process that
    acknowledged #9 after another's #10 leaves #10). `rebind` names another log, or a lower number.
    """
    path = bundles / BINDING_FILE
    with (bundles / f".{BINDING_FILE}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not rebind:
            with contextlib.suppress(WriteLogLostError):
                now = read_binding(bundles)
                if now is not None and now.log_id == binding.log_id and now.last_seq >= binding.last_seq:
                    return
        _replace(path, json.dumps({"log_id": binding.log_id, "last_seq": binding.last_seq}).encode())


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file of this process, fsync it, rename it over `path`, fsync the dir."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    bundles = path.parent
    fd = os.open(bundles, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def expected(bundles: Path, stamp: Mapping[str, Any], accept_loss: bool = False) -> Binding | None:
    """What the directory has acknowledged: its binding, and what the published bundle folded in.

    `stamp` is that bundle's manifest `writes` entry. Without a binding (deleted, or made by an older
    version) the bundle's stamp alone still tells which log it folded, and how far. An unreadable
    binding is refused, or left aside when the loss is accepted.
    """
    try:
        bound = read_binding(bundles)
    except WriteLogLostError:
        if not accept_loss:
            raise
        log.warning("%s is unreadable: going by the published bundle alone (loss accepted)", BINDING_FILE)
        bound = None
    folded_id, folded = stamp.get("log_id"), int(stamp.get("folded_through") or 0)
    if bound is None:
        return Binding(str(folded_id), folded) if folded_id else None
    if folded_id == bound.log_id and folded > bound.last_seq:
        return Binding(bound.log_id, folded)
    return bound


def published_stamp(bundles: Path) -> Mapping[str, Any]:
    """The published bundle's manifest `writes` entry: which log it folded, and how far ({} if none).

    A damaged manifest gives {}: the binding alone then tells what was acknowledged.
    """
    target = current_target(bundles)
    try:
        return dict(read_manifest(target).get("writes", {})) if target is not None else {}
    except BundleError:
        return {}


def problem(location: LogLocation, found: WriteLog | None, want: Binding) -> str | None:
    """Why `found` (the log at `location`, None when missing) cannot be `want`'s log; None when it is."""
    name = log_name(location)
    if found is None:
        return f"the write log {name} is missing"
    if found.log_id != want.log_id:
        return f"the write log {name} is another log than the one this bundles directory is bound to"
    last = found.last_seq()
    if last < want.last_seq:
        how = (
            "a failover to a standby that lagged"
            if is_url(location)
            else "an older copy, or its -wal file lost"
        )
        return (
            f"the write log {name} ends at write #{last}, but writes through #{want.last_seq} were "
            f"acknowledged ({how})"
        )
    return None


def _open(location: LogLocation) -> tuple[WriteLog | None, str | None]:
    """The existing log at `location` opened for writing, or None and why it cannot be.

    A database that cannot be reached, or a log this process may not write (WriteLogAccessError: a
    lack of permission, a read-only file system), raises WriteLogUnavailableError: no loss to accept.
    """
    if not log_exists(location):
        return None, None
    try:
        return open_log(location, new_ok=False), None
    except WriteLogUnavailableError:
        raise
    except WriteLogError as exc:
        return None, str(exc)


def open_bound(bundles: Path, location: LogLocation, stamp: Mapping[str, Any], accept_loss: bool) -> WriteLog:
    """Open the log the bundles directory is bound to (a new one on a first start), and bind it.

    Raises WriteLogLostError, naming what is wrong and the command that accepts the loss, unless
    `accept_loss`: then the log is taken as it is (a new one if it is missing or unusable), and new
    writes are numbered after every number acknowledged before.
    """
    want = expected(bundles, stamp, accept_loss)
    if want is None:
        fresh = open_log(location)
        write_binding(bundles, Binding(str(fresh.log_id), fresh.last_seq()))
        return fresh
    found, unusable = _open(location)
    try:
        return _bound(bundles, location, found, unusable, want, accept_loss)
    except BaseException:
        if found is not None:
            found.close()  # its connections, its listener thread
        raise


def _bound(
    bundles: Path,
    location: LogLocation,
    found: WriteLog | None,
    unusable: str | None,
    want: Binding,
    accept_loss: bool,
) -> WriteLog:
    """open_bound, once the log is opened (or not): bind to it, accept its loss, or raise why not."""
    name = log_name(location)
    why = f"the write log {name} is unusable: {unusable}" if unusable else problem(location, found, want)
    if why is None and found is not None:
        if found.last_seq() > want.last_seq:  # writes logged after the last binding: it is longer
            write_binding(bundles, Binding(want.log_id, found.last_seq()))
        return found
    if not accept_loss:
        restore = "the log's database" if is_url(location) else "the log (with its -wal file)"
        raise WriteLogLostError(
            f"{why}: serving it would lose acknowledged writes and bring deleted articles back. Restore "
            f"{restore}, or accept the loss once: {ACCEPT}"
        )
    log.warning("accepting the loss of acknowledged writes: %s", why)
    if found is None:
        if log_exists(location):
            log.warning("set the unusable write log aside as %s", set_aside(location))
        found = open_log(location)
    found.number_after(want.last_seq)  # never reuse a number a bundle may have folded
    write_binding(bundles, Binding(str(found.log_id), found.last_seq()), rebind=True)
    return found


def accept_loss_once(bundles: Path, location: LogLocation, stamp: Mapping[str, Any]) -> None:
    """Take the write log as it is and bind the directory to it, before any worker starts.

    Workers then open the bound log as usual: none of them accepts a loss by itself, twice, or again
    when it is started anew.
    """
    open_bound(bundles, location, stamp, accept_loss=True).close()


def check_for_build(
    bundles: Path, location: LogLocation, stamp: Mapping[str, Any], accept_loss: bool
) -> None:
    """Refuse to fold a log that is not the one the bundles directory is bound to (unless accepted)."""
    if accept_loss:
        return
    want = expected(bundles, stamp)
    if want is None:
        return
    found = open_log(location, create=False) if log_exists(location) else None
    try:
        why = problem(location, found, want)
    finally:
        if found is not None:
            found.close()
    if why is not None:
        raise WriteLogLostError(
            f"{why}: a build would drop acknowledged writes. Restore the log, or accept the loss with "
            "--accept-write-log-loss"
        )
