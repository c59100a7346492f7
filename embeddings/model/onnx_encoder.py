"""The int8 ONNX Runtime backend: the model exported once from its sentence-transformers folder.

The transformer is exported to ONNX with torch (once, into the cache directory), its weights quantized
to int8 (dynamic quantization of the matrix products, one scale per output channel), and run by ONNX
Runtime. Tokenization is the folder's own `tokenizer.json`. Texts are sorted by length, so that padding
costs little, and batched by a token budget (`batch_size` is a ceiling). Pooling is the mean over
tokens, then L2 normalization (what the folder's modules must declare, or the load fails).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.errors import ModelError
from embeddings.vectors import ModelSpec

log = logging.getLogger(__name__)

BACKEND = "onnx-int8"
# Tokens per batch: on 2 cores int8 ONNX ran 256-token articles fastest 4 at a time (45/s against 29/s
# 32 at a time), and headlines fastest about 32 at a time.
TOKENS_PER_BATCH = 1024
EXPORT_VERSION = 2  # bump when the export changes: a new folder, and a new name in the model spec


def export_dir(cache_dir: Path, name: str) -> Path:
    """Where the int8 export of the model folder known as `name` lives in the cache directory."""
    return cache_dir / "models" / f"{name}-{BACKEND}-v{EXPORT_VERSION}"


def _check_mean_pooling(folder: Path) -> None:
    try:
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"{folder}: not a sentence-transformers folder the ONNX backend can run ({exc})"
        ) from exc
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens"):
        raise ModelError(
            f"{folder}: the ONNX backend runs mean pooling then normalization only (modules {kinds}); "
            "use RELATED_BACKEND=torch for this model"
        )


def _export_int8(folder: Path, float_file: Path, int8_file: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    # Eager attention and a padded example: the exported graph then keeps the attention mask path.
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 10:] = 0
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        LastHiddenState(model),
        (ids, mask),
        str(float_file),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
        opset_version=17,
        dynamo=False,
    )
    # Per-channel scales: cosine to float32 0.997 (median, SaudiNewsNet articles) against 0.984
    # with one scale per tensor, at the same speed.
    quantize_dynamic(str(float_file), str(int8_file), weight_type=QuantType.QInt8, per_channel=True)


def export(folder: Path, target: Path) -> Path:
    """Export and quantize the transformer of `folder` into `target` once; return the int8 model file.

    Processes starting together on one cache directory take turns on a lock: the first exports,
    the others find its result. A finished export appears by one rename, never half-written.
    """
    model_file = target / "model-int8.onnx"
    if model_file.exists():
        return model_file
    _check_mean_pooling(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if model_file.exists():  # exported by another process while this one waited
            return model_file
        log.info("exporting %s to int8 ONNX in %s (once)", folder.name, target)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
        try:
            with warnings.catch_warnings():
                # The tracer's and the legacy exporter's warnings are about shapes this model does not
                # vary, and the quantizer logs a line per tensor (and advice) on the root logger.
                warnings.simplefilter("ignore")
                logging.disable(logging.WARNING)
                try:
                    _export_int8(folder, staging / "model.onnx", staging / model_file.name)
                finally:
                    logging.disable(logging.NOTSET)
            (staging / "model.onnx").unlink()  # only the int8 model is used
            shutil.copy(folder / "tokenizer.json", staging / "tokenizer.json")
            staging.rename(target)
        except Exception as exc:  # torch, onnxruntime and the file system raise many kinds
            raise ModelError(f"cannot export {folder} to ONNX: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return model_file


class OnnxEncoder:
    """An Encoder running an int8 ONNX export with ONNX Runtime."""

    def __init__(self, session: Any, tokenizer_json: str, spec: ModelSpec, lock: threading.Lock) -> None:
        from tokenizers import Tokenizer

        self._session = session
        self._tokenizer_json = tokenizer_json
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(spec.max_seq_length)
        self._spec = spec
        self._lock = lock  # ONNX Runtime runs concurrent calls, but two at once only share the cores

    def with_max_seq_length(self, max_seq_length: int) -> OnnxEncoder:
        """A view of the same model that cuts texts at another token count."""
        spec = dataclasses.replace(self._spec, max_seq_length=max_seq_length)
        return OnnxEncoder(self._session, self._tokenizer_json, spec, self._lock)

    @property
    def spec(self) -> ModelSpec:
        """The identity of this encoder's embeddings."""
        return self._spec

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed `texts` (the prefix is added here) into unit-norm float32 vectors."""
        out = np.zeros((len(texts), self._spec.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch([self._spec.text_prefix + t.strip() for t in texts])
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")  # little padding per batch
        start = 0
        while start < len(order):
            width = len(encodings[order[start]].ids)  # the longest of the batch: the order is descending
            rows = order[start : start + max(1, min(batch_size, TOKENS_PER_BATCH // width))]
            start += len(rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[j, :n] = encodings[i].ids
                mask[j, :n] = 1
            with self._lock:
                (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            summed = (hidden * mask[:, :, None]).sum(axis=1)
            pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def load_onnx_encoder(folder: Path, target: Path, spec: ModelSpec, threads: int | None = None) -> OnnxEncoder:
    """The int8 ONNX encoder of the sentence-transformers `folder`, exported into `target` on first use."""
    model_file = export(folder, target)
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        tokenizer_json = (model_file.parent / "tokenizer.json").read_text(encoding="utf-8")
    except Exception as exc:  # onnxruntime raises its own kinds
        raise ModelError(f"cannot load the ONNX model {model_file}: {exc}") from exc
    named = dataclasses.replace(spec, name=f"{spec.name} [{BACKEND} v{EXPORT_VERSION}]")
    return OnnxEncoder(session, tokenizer_json, named, threading.Lock())
