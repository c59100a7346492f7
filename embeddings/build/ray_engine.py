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

import itertools
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from embeddings.build.embed import ChunkEmbedder
from embeddings.errors import BuildError, ModelError
from embeddings.model.encoders import Encoder
from embeddings.model.signals import load_signal_encoder
from embeddings.settings import Settings

log = logging.getLogger(__name__)

SHARD_CHUNKS = 4  # chunks per input shard: a shard is one read task, so several keep the actors busy
_VERSION = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{6}")  # a bundle version: a build's work directory
ACTOR_WAIT_SECONDS = 600  # a pool that cannot start one actor in this time fails the build


def _import_ray() -> ModuleType:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise BuildError(
            f"the Ray engine needs Ray Data: pip install 'related-articles[ray]' ({exc})"
        ) from exc
    return ray


def join_uri(base: str, *parts: str) -> str:
    """`base` (a path or a URI, a query string kept last) with `parts` appended to its path."""
    split = urlsplit(base)
    if not split.scheme:
        return str(Path(base, *parts))
    path = "/".join([split.path.rstrip("/"), *parts])
    return urlunsplit(split._replace(path=path))


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
        vectors = [self._encoder.encode(chunk, batch_size=self._batch_size) for chunk in texts]
        return pa.table(
            {
                "chunk": batch.column("chunk"),
                "rows": pa.array([len(v) for v in vectors], pa.int64()),
                "vectors": pa.array([v.astype("<f4").tobytes() for v in vectors], pa.large_binary()),
                "worker": pa.array([os.getpid()] * len(texts), pa.int64()),
            }
        )


class RayEngine:
    """Joins (or starts) Ray for one build, and embeds each signal with a Ray Data pipeline.

    Ray starts at the first signal with texts to embed: a build served from the cache needs none.
    """

    def __init__(self, settings: Settings, version: str, progress: bool) -> None:
        self._settings = settings
        self._progress = progress
        self._version = version
        self._root = settings.resolved_ray_work_dir()
        self._uri = join_uri(self._root, version)
        self._ray = _import_ray()
        self._connected = False
        self._started = False
        # What the workers get: the service's API keys stay here, the model cache is an absolute path.
        self._worker_settings = settings.model_copy(
            update={"api_keys": [], "cache_dir": settings.cache_dir.expanduser().resolve()}
        )

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._connected:
                fs, path = _filesystem(self._uri)
                if fs.get_file_info(path).type != _file_types().NotFound:
                    fs.delete_dir(path)
        except (OSError, ValueError) as error:
            log.warning("ray: could not delete the work directory %s: %s", self._uri, error)
        finally:
            if self._started:
                self._ray.shutdown()

    def _connect(self) -> None:
        """Join the configured cluster, or start a local instance for this build alone."""
        if self._connected:
            return
        ray = self._ray
        address = self._settings.ray_address
        if address and address.startswith("ray://"):
            raise BuildError(
                "Ray Client addresses (ray://) are not supported: the driver writes the shards, so run "
                "the build on a node of the cluster, with RELATED_RAY_ADDRESS=auto"
            )
        if ray.is_initialized():
            log.info("ray: using the instance this process had already joined")
        else:
            try:
                # "local": a fresh instance, never a cluster found through RAY_ADDRESS or an earlier start.
                ray.init(address=address or "local", include_dashboard=False, configure_logging=False)
            except Exception as exc:  # ConnectionError, RuntimeError, ValueError ... by Ray's version
                raise BuildError(
                    f"cannot {'join Ray at ' + address if address else 'start Ray'}: {exc}"
                ) from exc
            self._started = True
            log.info(
                "ray: %s, %s",
                f"joined {address}" if address else "started a local instance",
                ray.cluster_resources(),
            )
        self._connected = True
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        if len(nodes) > 1 and not self._settings.ray_work_dir:
            raise BuildError(
                f"the Ray cluster has {len(nodes)} nodes: set RELATED_RAY_WORK_DIR to storage they all "
                "reach (a shared mount or an s3://, gs:// ... URI)"
            )
        largest = max((n.get("Resources", {}).get("CPU", 0) for n in nodes), default=0)
        if self._settings.ray_cpus_per_actor > largest:
            raise BuildError(
                f"RELATED_RAY_CPUS_PER_ACTOR={self._settings.ray_cpus_per_actor}, but no node of the Ray "
                f"cluster has more than {largest:g} CPUs"
            )
        if not self._settings.ray_work_dir:  # the default directory is this bundles directory's alone
            _clear_stale(Path(self._root), self._version)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = self._progress
        context.wait_for_min_actors_s = ACTOR_WAIT_SECONDS

    def _actors(self) -> int:
        if self._settings.ray_actors:
            return self._settings.ray_actors
        cpus = float(self._ray.cluster_resources().get("CPU", 1))
        return max(1, int(cpus // self._settings.ray_cpus_per_actor))

    def embedder(self, signal: str, encoder: Encoder) -> ChunkEmbedder:
        """Embed chunks of texts with `signal`'s model on the Ray actors."""

        def embed(chunks: Iterable[Sequence[str]]) -> Iterator[tuple[int, np.ndarray]]:
            chunks = iter(chunks)
            first = next(chunks, None)
            if first is None:
                return
            self._connect()
            started = time.monotonic()
            shards = join_uri(self._uri, signal, "in")
            written = join_uri(self._uri, signal, "out")
            cpus = self._settings.ray_cpus_per_actor
            try:
                count, files = _write_shards(shards, itertools.chain([first], chunks))
                # Reading and writing shards is I/O: those tasks take no CPU from the actors' budget,
                # or a pool holding every CPU would leave none to feed it.
                dataset = self._ray.data.read_parquet(shards, num_cpus=0).map_batches(
                    EmbedChunks,
                    batch_size=1,
                    batch_format="pyarrow",
                    # A pool that grows from one actor: a fixed pool holding every CPU at the start
                    # would leave none for the task listing the shards, and never start.
                    compute=self._ray.data.ActorPoolStrategy(min_size=1, max_size=self._actors()),
                    num_cpus=cpus,
                    fn_constructor_kwargs={
                        "settings": self._worker_settings,
                        "signal": signal,
                        "spec": encoder.spec.as_dict(),
                        "threads": cpus,
                        "batch_size": self._settings.batch_size,
                    },
                )
                dataset.write_parquet(written, ray_remote_args={"num_cpus": 0})
            except Exception as exc:  # Ray wraps the workers' errors in kinds of its own
                raise BuildError(f"the Ray engine failed on signal {signal!r}: {exc}") from exc
            workers: set[int] = set()
            for number, vectors, worker in _read_vectors(written, encoder.spec.dimension):
                workers.add(worker)
                yield number, vectors
            log.info(
                "ray: signal %s: %d chunks in %d shards, embedded by %d actors of %d CPUs in %.1fs",
                signal,
                count,
                files,
                len(workers),
                cpus,
                time.monotonic() - started,
            )

        return embed


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)  # type: ignore[no-any-return]


def _file_types() -> Any:
    from pyarrow import fs

    return fs.FileType


def _clear_stale(root: Path, version: str) -> None:
    """Remove the work directories that builds which died left in `root` (the caller holds the build lock)."""
    if root.is_dir():
        for stale in root.iterdir():
            if stale.name != version and _VERSION.fullmatch(stale.name):
                shutil.rmtree(stale, ignore_errors=True)


def _write_shards(uri: str, chunks: Iterable[Sequence[str]]) -> tuple[int, int]:
    """Write chunks as Parquet shards of SHARD_CHUNKS rows (chunk number, texts): (chunks, shards)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, path = _filesystem(uri)
    fs.create_dir(path, recursive=True)
    numbers: list[int] = []
    texts: list[list[str]] = []
    count = files = 0

    def flush() -> None:
        nonlocal files
        table = pa.table(
            {"chunk": pa.array(numbers, pa.int64()), "texts": pa.array(texts, pa.list_(pa.large_string()))}
        )
        pq.write_table(table, f"{path}/shard-{numbers[0]:08d}.parquet", filesystem=fs)
        numbers.clear()
        texts.clear()
        files += 1

    for number, chunk in enumerate(chunks):
        numbers.append(number)
        texts.append(list(chunk))
        count += 1
        if len(numbers) == SHARD_CHUNKS:
            flush()
    if numbers:
        flush()
    return count, files


def _read_vectors(uri: str, dimension: int) -> Iterator[tuple[int, np.ndarray, int]]:
    """The (chunk number, vectors, worker pid) rows of the actors' output shards."""
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
                for number, rows, blob, worker in zip(
                    batch.column("chunk").to_pylist(),
                    batch.column("rows").to_pylist(),
                    batch.column("vectors").to_pylist(),
                    batch.column("worker").to_pylist(),
                    strict=True,
                ):
                    if len(blob) != rows * dimension * 4:
                        raise BuildError(
                            f"chunk {number} came back with {len(blob)} bytes, not {rows} vectors of "
                            f"{dimension} float32"
                        )
                    vectors = np.frombuffer(blob, dtype="<f4").reshape(rows, dimension)
                    yield number, vectors.astype(np.float32), worker
