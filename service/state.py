"""The live corpus: the published bundle with the acknowledged writes over it, swapped without a restart."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from embeddings.errors import BundleMismatchError, NotReadyError
from embeddings.index.bundle import Bundle, load_bundle
from embeddings.index.publish import current_target
from embeddings.live.overlay import Snapshot
from embeddings.live.write_log import Write, WriteLog, puts
from embeddings.model.lexical import LexicalModel
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.finder import RelatedFinder
from embeddings.ranking.scorer import Scorer
from embeddings.settings import Settings
from embeddings.vectors import LEX

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """One snapshot (a bundle and the writes over it) with its finder; a request holds it throughout."""

    finder: RelatedFinder
    snapshot: Snapshot
    target: Path
    loaded_at: datetime

    @property
    def bundle(self) -> Bundle:
        """The bundle under the snapshot."""
        return self.snapshot.bundle

    def lexical_model(self) -> LexicalModel:
        """The bundle's lexical model (its IDF), which weighs a text's lexical row."""
        model = self.snapshot.lexical_model
        if model is None:
            raise BundleMismatchError(f"bundle {self.bundle.version} has no lexical signal: rebuild it")
        return model


class LiveBundle:
    """Holds the current snapshot; writes and newly published bundles swap in new ones.

    A swap replaces one reference: a request that already took the old `Loaded` finishes on it.
    Writes go to the write log first, then into a new snapshot, under one lock that bundle swaps
    also take, so a swap never drops a write. A bundle that fails to load is refused and the old
    one keeps serving; `last_error` says why.
    """

    def __init__(self, settings: Settings, encoders: SignalEncoders, scorer: Scorer) -> None:
        self._bundles = settings.bundles
        self._settings = settings
        self._encoders = encoders
        self._scorer = scorer
        self._interval = settings.reload_interval
        self._loaded: Loaded | None = None
        self._refused: Path | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one bundle load at a time
        self._write_lock = threading.Lock()  # one change of the live snapshot at a time
        self._log: WriteLog | None = None
        self._pending: Bundle | None = None  # loaded, waiting for its replay to succeed

    def get(self) -> Loaded:
        """The current bundle, or NotReadyError."""
        loaded = self._loaded
        if loaded is None:
            raise NotReadyError(self.last_error or f"no bundle loaded yet from {self._bundles}")
        return loaded

    @property
    def loaded(self) -> Loaded | None:
        """The current bundle, or None."""
        return self._loaded

    def refresh(self) -> bool:
        """Load the published bundle if it changed; return whether a new one was swapped in."""
        with self._lock:
            target = current_target(self._bundles)
            current = self._loaded.target if self._loaded else None
            if target is None:
                if current is None:
                    self.last_error = f"no bundle published in {self._bundles}"
                return False
            if target in (current, self._refused):
                return False
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
                    self._refused = target
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
                self._loaded = Loaded(self._finder(snapshot), snapshot, target, datetime.now(UTC))
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
            # This log, restored from a backup older than the bundle: its later writes would reuse
            # numbers the bundle folded. Replay them all, and number new writes after the bundle's.
            log.warning("the write log is older than bundle %s: replaying every write", bundle.version)
            self._log.number_after(folded)
            folded = 0
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

    def write(self, writes: Sequence[Write]) -> tuple[Loaded, list[Write], list[bool]]:
        """Log `writes` durably, then apply them to a new live snapshot.

        Returns that snapshot, the logged writes and whether each id existed before.
        """
        with self._write_lock:
            loaded = self.get()
            if self._log is None:
                raise NotReadyError("the write log is not open")
            existed = [bool(loaded.snapshot.rowids_for([w.article_id])) for w in writes]
            logged = self._log.append(writes)
            try:
                snapshot = loaded.snapshot.apply(logged)
            except Exception:
                # Durable but not applied: serve what the log says, or nothing until a reload does.
                log.exception("applying logged writes failed: rebuilding the live state from the log")
                try:
                    snapshot = self._replay(loaded.bundle)
                except Exception as exc:
                    self._loaded = None  # the watcher reloads the bundle and replays the log
                    self.last_error = f"the live state lost track of the write log: {exc}"
                    raise
            loaded = replace(loaded, finder=self._finder(snapshot), snapshot=snapshot)
            self._loaded = loaded
        return loaded, logged, existed

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.refresh()
            except Exception:  # keep watching whatever one attempt did
                log.exception("bundle refresh failed")

    def start(self) -> None:
        """Open the write log, load what is published now and start watching for new bundles."""
        self._log = WriteLog(self._settings.resolved_write_log())
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
