"""The Ray engine of the build: Ray Data actors embed the texts, streamed from and to Parquet shards.

The driver (the build) writes the chunks it would embed itself as Parquet shards, one row per chunk;
`read_parquet` streams them to a pool of actors, each loading the signal's model once; the actors'
vectors stream to Parquet shards through `write_parquet`, which the driver reads back into the
embedding cache. An actor embeds a whole chunk with the same encoder call as the local engine, so the
vectors, and the bundle written from them, are the same.

On a cluster every node needs this package (the same version, with its model) and a work directory it
can reach: `RELATED_RAY_WORK_DIR`, a shared mount or an object-store URI.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType, TracebackType
from typing import Any

import numpy as np

from embeddings.build import ChunkEmbedder
from embeddings.errors import BuildError, ModelError
from embeddings.model import Encoder
from embeddings.settings import Settings
from embeddings.signals import load_signal_encoder

log = logging.getLogger(__name__)

SHARD_CHUNKS = 4  # chunks per input shard: a shard is one read task, so several keep the actors busy


def _import_ray() -> ModuleType:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise BuildError(
            f"the Ray engine needs Ray Data: pip install 'related-articles[ray]' ({exc})"
        ) from exc
    return ray


class EmbedChunks:
    """A Ray Data actor: the signal's model, loaded once, embedding one chunk of texts per row."""

    def __init__(
        self, settings: Settings, signal: str, spec: dict[str, Any], threads: int, batch_size: int
    ) -> None:
        if settings.backend == "torch":
            import torch

            torch.set_num_threads(threads)
        self._encoder = load_signal_encoder(settings, signal, threads)
        if self._encoder.spec.as_dict() != spec:
            raise ModelError(
                f"a Ray worker loaded {self._encoder.spec.as_dict()} for signal {signal!r}, but the build "
                f"embeds with {spec}: install the same package, model and versions on every node"
            )
        self._batch_size = batch_size

    def __call__(self, batch: Any) -> Any:
        """Embed each row's texts; the vectors go out as little-endian float32 bytes."""
        import pyarrow as pa

        texts: list[list[str]] = batch.column("texts").to_pylist()
        vectors = [
            self._encoder.encode(chunk, batch_size=self._batch_size).astype("<f4").tobytes()
            for chunk in texts
        ]
        return pa.table(
            {
                "chunk": batch.column("chunk"),
                "count": pa.array([len(chunk) for chunk in texts], pa.int64()),
                "vectors": pa.array(vectors, pa.large_binary()),
            }
        )


class RayEngine:
    """Joins (or starts) Ray for one build, and embeds each signal with a Ray Data pipeline."""

    def __init__(self, settings: Settings, version: str, progress: bool) -> None:
        self._settings = settings
        self._progress = progress
        self._uri = f"{settings.resolved_ray_work_dir().rstrip('/')}/{version}"
        self._ray = _import_ray()
        self._started = False

    def __enter__(self) -> RayEngine:
        ray = self._ray
        if not ray.is_initialized():
            address = self._settings.ray_address
            ray.init(address=address, include_dashboard=False, configure_logging=False)
            self._started = True
            log.info(
                "ray: %s, %s",
                "joined " + address if address else "started a local instance",
                ray.cluster_resources(),
            )
        ray.data.DataContext.get_current().enable_progress_bars = self._progress
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            fs, path = _filesystem(self._uri)
            fs.delete_dir(path)
        except (OSError, FileNotFoundError):
            pass
        if self._started:
            self._ray.shutdown()

    def _actors(self) -> int:
        if self._settings.ray_actors:
            return self._settings.ray_actors
        cpus = float(self._ray.cluster_resources().get("CPU", 1))
        return max(1, int(cpus // self._settings.ray_cpus_per_actor))

    def embedder(self, signal: str, encoder: Encoder) -> ChunkEmbedder:
        """Embed chunks of texts with `signal`'s model on the Ray actors."""

        def embed(chunks: Iterable[Sequence[str]]) -> Iterator[tuple[int, np.ndarray]]:
            started = time.monotonic()
            shards = f"{self._uri}/{signal}/in"
            written = f"{self._uri}/{signal}/out"
            if not _write_shards(shards, chunks):
                return
            cpus = self._settings.ray_cpus_per_actor
            actors = self._actors()
            # Reading and writing shards is I/O: those tasks take no CPU from the actors' budget, or a
            # pool holding every CPU would leave none to feed it.
            dataset = self._ray.data.read_parquet(shards, num_cpus=0).map_batches(
                EmbedChunks,
                batch_size=1,
                batch_format="pyarrow",
                # A pool that grows from one actor: a fixed pool holding every CPU at the start would
                # leave none for the task listing the shards, and never start.
                compute=self._ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
                num_cpus=cpus,
                fn_constructor_kwargs={
                    "settings": self._settings,
                    "signal": signal,
                    "spec": encoder.spec.as_dict(),
                    "threads": cpus,
                    "batch_size": self._settings.batch_size,
                },
            )
            dataset.write_parquet(written, ray_remote_args={"num_cpus": 0})
            log.info(
                "ray: signal %s embedded by %d actors of %d CPUs in %.1fs",
                signal,
                actors,
                cpus,
                time.monotonic() - started,
            )
            yield from _read_vectors(written, encoder.spec.dimension)

        return embed


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)  # type: ignore[no-any-return]


def _write_shards(uri: str, chunks: Iterable[Sequence[str]]) -> int:
    """Write the chunks as Parquet shards of SHARD_CHUNKS rows (chunk number, texts); return the count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, path = _filesystem(uri)
    fs.create_dir(path, recursive=True)
    numbers: list[int] = []
    texts: list[list[str]] = []
    count = 0

    def flush() -> None:
        table = pa.table(
            {"chunk": pa.array(numbers, pa.int64()), "texts": pa.array(texts, pa.list_(pa.large_string()))}
        )
        pq.write_table(table, f"{path}/shard-{numbers[0]:08d}.parquet", filesystem=fs)
        numbers.clear()
        texts.clear()

    for number, chunk in enumerate(chunks):
        numbers.append(number)
        texts.append(list(chunk))
        count += 1
        if len(numbers) == SHARD_CHUNKS:
            flush()
    if numbers:
        flush()
    return count


def _read_vectors(uri: str, dimension: int) -> Iterator[tuple[int, np.ndarray]]:
    """The (chunk number, vectors) rows of the actors' output shards."""
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs

    fs, path = _filesystem(uri)
    files = sorted(
        info.path
        for info in fs.get_file_info(pafs.FileSelector(path, recursive=True))
        if info.type == pafs.FileType.File and info.path.endswith(".parquet")
    )
    for file in files:
        with fs.open_input_file(file) as handle:
            for batch in pq.ParquetFile(handle).iter_batches():
                for number, count, blob in zip(
                    batch.column("chunk").to_pylist(),
                    batch.column("count").to_pylist(),
                    batch.column("vectors").to_pylist(),
                    strict=True,
                ):
                    vectors = np.frombuffer(blob, dtype="<f4").reshape(count, dimension)
                    yield number, vectors.astype(np.float32)
