"""The live bundle: loaded at start, swapped for a newly published one without a restart."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from embeddings import bundle as bundles_mod
from embeddings.errors import NotReadyError
from embeddings.related import RelatedFinder
from embeddings.scorer import Scorer
from embeddings.settings import Settings
from embeddings.signals import SignalEncoders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """One loaded bundle with its finder; requests hold it for their whole duration."""

    finder: RelatedFinder
    target: Path
    loaded_at: datetime


class LiveBundle:
    """Holds the current bundle; a watcher thread loads newly published ones and swaps them in.

    A swap replaces one reference: a request that already took the old `Loaded` finishes on it.
    A bundle that fails to load is refused and the old one keeps serving; `last_error` says why.
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
        self._lock = threading.Lock()

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
            target = bundles_mod.current_target(self._bundles)
            current = self._loaded.target if self._loaded else None
            if target is None:
                if current is None:
                    self.last_error = f"no bundle published in {self._bundles}"
                return False
            if target in (current, self._refused):
                return False
            try:
                needed = {name: self._encoders.encoders[name].spec.as_dict() for name in self._scorer.signals}
                bundle = bundles_mod.load_bundle(target, self._encoders.main.spec, signals=needed)
            except Exception as exc:  # damaged files fail in many ways (OSError, sqlite3, faiss)
                self._refused = target
                self.last_error = f"refused bundle {target.name}: {exc}"
                log.error("%s", self.last_error)
                return False
            finder = RelatedFinder.from_settings(bundle, self._scorer, self._settings)
            self._loaded = Loaded(finder, target, datetime.now(UTC))
            self._refused = None
            self.last_error = None
            log.info("serving bundle %s (%d articles)", bundle.version, len(bundle.store))
            return True

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.refresh()
            except Exception:  # keep watching whatever one attempt did
                log.exception("bundle refresh failed")

    def start(self) -> None:
        """Load what is published now and start watching for new bundles."""
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name="bundle-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
