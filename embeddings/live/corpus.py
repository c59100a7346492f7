"""The live corpus: the published bundle with the acknowledged writes over it, swapped without a restart.

LiveCorpus
  .snapshot(catch_up)  what a request reads (Loaded); NotReadyError while there is none
  .behind()            whether a catch-up with other processes' writes has work to do (one cheap call)
  .ready()             the snapshot, if writes are possible too (the write log is sound)
  .write(writes)       log durably, then apply (Applied)
  .refresh()           load a newly published bundle (the watcher calls it every reload interval)
  .subscribe(f)        f(Change) after every change of the snapshot, under the write lock
  .mark_damaged(...)   stop serving a bundle whose files broke under a read
  .drain()             the process is shutting down: not ready any more
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from embeddings.errors import (
    NotReadyError,
    WriteLogError,
    WriteLogLostError,
    WriteLogUnavailableError,
)
from embeddings.index.bundle import Bundle, load_bundle
from embeddings.index.publish import current_target
from embeddings.live.binding import Binding, open_bound, published_stamp, write_binding
from embeddings.live.loaded import Loaded
from embeddings.live.overlay import Snapshot
from embeddings.live.writes import Write, WriteLog, puts
from embeddings.model.lexical import LexicalModel
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.finder import RelatedFinder
from embeddings.ranking.scorer import Scorer
from embeddings.settings import Settings
from embeddings.vectors import LEX

log = logging.getLogger(__name__)
CATCH_UP_RETRY = 1.0  # seconds between catch-ups that fail (the log's database away)
WRITE_WAIT = 30.0  # seconds a write waits for the one before it


@dataclass(frozen=True)
class Change:
    """The live snapshot moved from `old` to `new` (None: none served).

    `writes` made `new` from `old`; None when `new` was made otherwise (another bundle, a replay).
    """

    old: Snapshot | None
    new: Snapshot | None
    writes: tuple[Write, ...] | None


@dataclass(frozen=True)
class Applied:
    """Writes made live: the snapshot they went into, the writes as logged, whether each id existed."""

    loaded: Loaded
    logged: list[Write]
    existed: list[bool]


class LiveCorpus:
    """Holds the current snapshot; writes and newly published bundles swap in new ones.

    A swap replaces one reference: a request that already took the old `Loaded` finishes on it.
    Writes go to the write log first, then into a new snapshot, under one lock that bundle swaps
    also take, so a swap never drops a write. A bundle that fails to load is refused and the old
    one keeps serving; `last_error` says why. It is tried again once its files change.

    The write log must be the one the bundles directory is bound to (live/binding.py): otherwise
    nothing is served until it is restored or its loss accepted, and a log lost under the running
    service stops the writes and the readiness, while reads go on from memory.
    """

    def __init__(self, settings: Settings, encoders: SignalEncoders, scorer: Scorer) -> None:
        self._bundles = settings.bundles
        self._settings = settings
        self._encoders = encoders
        self._scorer = scorer
        self._interval = settings.reload_interval
        self._loaded: Loaded | None = None
        self._refused: tuple[Path, tuple[tuple[str, int, int], ...]] | None = None
        self.last_error: str | None = None
        self.log_error: str | None = None  # the write log is lost: no writes, not ready
        self._seen_version: int | None = None  # the log's data_version when last caught up
        self._retry_at = 0.0  # after a failed catch-up, when to try again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one bundle load at a time
        self._write_lock = threading.Lock()  # one change of the live snapshot at a time
        self._log: WriteLog | None = None
        self._pending: Bundle | None = None  # loaded, waiting for its replay to succeed
        self._listeners: list[Callable[[Change], None]] = []
        self._draining = False

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        """Call `listener` after every change of the live snapshot (under the write lock: keep it short)."""
        self._listeners.append(listener)

    def _swap(self, loaded: Loaded | None, writes: Sequence[Write] | None = None) -> None:
        """Serve `loaded` and tell the listeners (the caller holds the write lock)."""
        old = self._loaded.snapshot if self._loaded else None
        self._loaded = loaded
        change = Change(old, loaded.snapshot if loaded else None, None if writes is None else tuple(writes))
        for listener in self._listeners:
            listener(change)

    def snapshot(self, catch_up: bool = True) -> Loaded:
        """The current snapshot (other processes' writes applied first if `catch_up`), or NotReadyError."""
        loaded = self._caught_up() if catch_up else self._loaded
        if loaded is None:
            raise NotReadyError(self.log_error or self.last_error or "no bundle loaded yet")
        return loaded

    def drain(self) -> None:
        """The process is shutting down: readiness fails from now on, so balancers send no more requests."""
        self._draining = True

    def ready(self) -> Loaded:
        """The current snapshot if the service can do all its work (reads and writes), or NotReadyError."""
        if self._draining:
            raise NotReadyError("the service is shutting down")
        loaded = self.snapshot()
        if self._log is not None and not self.log_error:
            try:
                self._log.check()  # SQLite: two stats; PostgreSQL: one query
                if self._log.last_seq() < loaded.snapshot.last_seq:
                    raise WriteLogLostError(
                        f"the write log {self._log.name} ends at write #{self._log.last_seq()}, but this "
                        f"process applied writes through #{loaded.snapshot.last_seq} (a failover to a "
                        "standby that lagged behind?)"
                    )
            except WriteLogUnavailableError as exc:
                raise NotReadyError(str(exc)) from exc  # not for good: the next check tries again
            except WriteLogLostError as exc:
                self.log_error = f"{exc}: writes are refused; restart the service once the log is restored"
                log.error("%s", self.log_error)
        if self.log_error:
            raise NotReadyError(self.log_error)
        return loaded

    def _caught_up(self) -> Loaded | None:
        """The current snapshot, with the writes other processes logged since applied first.

        Several processes serve one bundles directory and agree through the write log: SQLite's
        `PRAGMA data_version` changes when another connection commits, so the check costs one call.
        """
        # A write of this process holds the lock for milliseconds; one retrying against a PostgreSQL
        # in recovery holds it for seconds, and reads go on from memory meanwhile.
        if self.behind() and self._write_lock.acquire(timeout=1.0):
            try:
                self._catch_up()
            except WriteLogError as exc:  # the log's database is away: reads go on from memory
                log.warning("cannot catch up with the write log: %s", exc)
            finally:
                self._write_lock.release()
        return self._loaded

    def behind(self) -> bool:
        """Whether another process committed writes this one has not applied (one cheap call)."""
        log_ = self._log
        if log_ is None or self._loaded is None or time.monotonic() < self._retry_at:
            return False
        return log_.data_version() != self._seen_version

    def _catch_up(self) -> None:
        """Apply the logged writes after the live snapshot's last (the caller holds the write lock)."""
        loaded, log_ = self._loaded, self._log
        if loaded is None or log_ is None:
            return
        version = log_.data_version()  # read first: a commit after it shows at the next check
        try:
            writes = log_.read(after=loaded.snapshot.last_seq)
        except WriteLogError:
            self._retry_at = time.monotonic() + CATCH_UP_RETRY  # not at every request meanwhile
            raise
        if writes:
            writes = self._current(writes)
            snapshot = loaded.snapshot.apply(writes)
            self._swap(replace(loaded, finder=self._finder(snapshot), snapshot=snapshot), writes)
        self._seen_version = version

    def refresh(self) -> bool:
        """Load the published bundle if it changed; return whether a new one was swapped in."""
        with self._lock:
            if self._log is None and not self._open_log():
                return False
            target = current_target(self._bundles)
            current = self._loaded.target if self._loaded else None
            if target is None:
                if current is None:
                    self.last_error = "no bundle published yet (run `related-articles build`)"
                return False
            if target == current:
                if self._refused is not None or self._pending is not None:
                    # `current` points back at the bundle served: what was refused is no longer news.
                    self._refused, self.last_error = None, None
                    self._drop_pending()
                return False
            if self._refused == (target, _fingerprint(target)):
                return False  # refused, and unchanged since
            bundle = self._pending if self._pending and self._pending.path == target else None
            if bundle is None:
                self._drop_pending()
                try:
                    needed = {n: self._encoders.encoders[n].spec.as_dict() for n in self._scorer.dense}
                    if LEX in self._scorer.signals:
                        needed[LEX] = LexicalModel.spec()
                    bundle = load_bundle(
                        target, self._encoders.main.spec, signals=needed, lexical=LEX in needed
                    )
                except Exception as exc:  # damaged files fail in many ways (OSError, sqlite3, faiss)
                    self._refused = (target, _fingerprint(target))
                    self.last_error = f"refused bundle {target.name}: {exc}"
                    log.error("%s", self.last_error)
                    return False
            with self._write_lock:
                if self._stop.is_set():
                    return False  # shutting down: the log may be closed already
                try:
                    snapshot = self._replay(bundle)
                except Exception as exc:
                    # Not refused: the bundle is fine. It is kept, and the next check retries the replay.
                    self._pending = bundle
                    self.last_error = f"cannot replay the write log over bundle {target.name}: {exc}"
                    log.exception("%s", self.last_error)
                    return False
                self._swap(Loaded(self._finder(snapshot), snapshot, target, datetime.now(UTC)))
            self._pending = None
            self._refused = None
            self.last_error = None
            log.info(
                "serving bundle %s (%d articles, %d writes replayed over it)",
                bundle.version,
                len(bundle.store),
                snapshot.pending,
            )
            return True

    def _open_log(self) -> bool:
        """Open the bound write log (the caller holds the load lock); False, with `log_error`, if lost."""
        try:
            self._log = open_bound(
                self._bundles,
                self._settings.resolved_write_log(),
                published_stamp(self._bundles),
                self._settings.accept_write_log_loss,
            )
        except (WriteLogLostError, WriteLogUnavailableError) as exc:  # tried again at the next check
            if str(exc) != self.log_error:
                log.error("not serving: %s", exc)
            self.log_error = str(exc)
            return False
        self.log_error = None
        return True

    def _bind(self, seq: int) -> None:
        """Record `seq` as acknowledged; a failure is logged, not raised: the write is durable already."""
        try:
            write_binding(self._bundles, Binding(str(self._log.log_id if self._log else ""), seq))
        except OSError as exc:  # a full disk: the binding lags behind the log, which is still accepted
            log.error("cannot record write #%d in the write log's binding: %s", seq, exc)

    def mark_damaged(self, loaded: Loaded, exc: Exception) -> None:
        """Stop serving `loaded`, whose files broke under it; the watcher loads it again once they change."""
        with self._lock, self._write_lock:
            if self._loaded is None or self._loaded.target != loaded.target:
                return
            self._swap(None)
            self._refused = (loaded.target, _fingerprint(loaded.target))
            version = loaded.bundle.version
            self.last_error = f"bundle {version} is damaged on disk ({exc}): restore or rebuild it"
            log.error("%s", self.last_error)

    def _drop_pending(self) -> None:
        if self._pending is not None:
            self._pending.close()
            self._pending = None

    def _finder(self, snapshot: Snapshot) -> RelatedFinder:
        return RelatedFinder.from_settings(snapshot, self._scorer, self._settings)

    def _replay(self, bundle: Bundle) -> Snapshot:
        """The bundle with every logged write it has not folded in (the caller holds the write lock)."""
        stamped = bundle.manifest.get("writes", {})
        folded = int(stamped.get("folded_through", 0))
        dims = {name: enc.spec.dimension for name, enc in self._encoders.encoders.items()}
        if self._log is None:
            return Snapshot.of(bundle, dims, folded)
        if folded and stamped.get("log_id") != self._log.log_id:
            # The bundle folded in another log (a log file replaced since): none of this one's writes
            # are in it, whatever their numbers.
            log.warning("bundle %s folded in another write log: replaying every write", bundle.version)
            folded = 0
        elif folded > self._log.last_seq():
            # This log never reached what the bundle folded: an older copy. Replaying it over the
            # bundle would serve a state that never was (open_bound refuses such a log at start).
            raise WriteLogLostError(
                f"bundle {bundle.version} folded writes through #{folded}, past the write log's last "
                f"#{self._log.last_seq()}: the log is older than the bundle"
            )
        dropped = self._log.compact()
        if dropped:
            log.info("write log: dropped %d writes superseded by later ones", dropped)
        return Snapshot.of(bundle, dims, folded).apply(self._current(self._log.read(after=folded)))

    def _current(self, writes: list[Write]) -> list[Write]:
        """The writes with vectors of the encoders in use: those logged by another model are re-embedded."""
        specs = self._encoders.specs()
        stale = [
            i
            for i, w in enumerate(writes)
            if w.article is not None and any(w.specs.get(name) != spec for name, spec in specs.items())
        ]
        if stale:
            log.warning("re-embedding %d logged writes made with other encoders", len(stale))
            fresh = puts([a for i in stale if (a := writes[i].article) is not None], self._encoders)
            for i, w in zip(stale, fresh, strict=True):
                writes[i] = replace(w, seq=writes[i].seq)
        return writes

    def write(self, writes: Sequence[Write]) -> Applied:
        """Log `writes` durably, then apply them to a new live snapshot."""
        # A write retrying against a PostgreSQL in recovery holds the lock for up to its 20 s: those
        # queued behind it wait that long at most, rather than filling the thread pool for good.
        if not self._write_lock.acquire(timeout=WRITE_WAIT):
            raise WriteLogUnavailableError("the write log is busy (a write is waiting for its database)")
        try:
            try:
                self._catch_up()  # `existed` as every process has it
            except WriteLogUnavailableError as exc:  # the append below waits for the database
                log.warning("cannot catch up with the write log before a write: %s", exc)
            loaded = self._loaded
            if loaded is None:
                raise NotReadyError(self.log_error or self.last_error or "no bundle loaded yet")
            if self._log is None:
                raise NotReadyError("the write log is not open")
            if self.log_error:
                raise WriteLogLostError(self.log_error)
            existed = [bool(loaded.snapshot.rowids_for([w.article_id])) for w in writes]
            try:
                logged = self._log.append(writes)
            except WriteLogLostError as exc:
                self.log_error = f"{exc}: writes are refused; restart the service once the log is restored"
                log.error("%s", self.log_error)
                raise WriteLogLostError(self.log_error) from exc
            if logged:
                self._bind(logged[-1].seq)
            applied: list[Write] | None = None
            try:
                # Other processes' writes numbered before these are applied first, in order.
                version = self._log.data_version()
                applied = self._current(self._log.read(after=loaded.snapshot.last_seq))
                snapshot = loaded.snapshot.apply(applied)
                self._seen_version = version
            except WriteLogUnavailableError as exc:
                # Durable, and applied once the log's database answers again (the listener's reconnection
                # changes data_version): serve the snapshot as it was meanwhile.
                log.warning("write #%d logged, not yet applied: %s", logged[-1].seq if logged else 0, exc)
                return Applied(loaded, logged, existed)
            except Exception:
                # Durable but not applied: serve what the log says, or nothing until a reload does.
                log.exception("applying logged writes failed: rebuilding the live state from the log")
                applied = None
                try:
                    snapshot = self._replay(loaded.bundle)
                except Exception as exc:
                    self._swap(None)  # the watcher reloads the bundle and replays the log
                    self.last_error = f"the live state lost track of the write log: {exc}"
                    raise
            loaded = replace(loaded, finder=self._finder(snapshot), snapshot=snapshot)
            self._swap(loaded, applied)
        finally:
            self._write_lock.release()
        return Applied(loaded, logged, existed)

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.refresh()
            except Exception:  # keep watching whatever one attempt did
                log.exception("bundle refresh failed")

    def start(self) -> None:
        """Open the bound write log, load what is published, and watch for new bundles."""
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name="bundle-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock, self._write_lock:
            self._drop_pending()
            if self._log is not None:
                self._log.close()
                self._log = None


def _fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of a bundle's files: they change when it is mended in place."""
    try:
        files = sorted(p for p in path.iterdir() if p.is_file())
        return tuple((p.name, (st := p.stat()).st_size, st.st_mtime_ns) for p in files)
    except OSError:
        return ()
