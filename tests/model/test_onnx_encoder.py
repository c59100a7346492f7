"""The int8 ONNX backend: exported once from the real model, close to torch, order-independent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings.errors import ModelError
from embeddings.model.encoders import Encoder, SentenceTransformerEncoder, default_model, load_encoder
from embeddings.model.onnx_encoder import BACKEND, EXPORT_VERSION, export, export_dir
from embeddings.settings import Settings


@pytest.fixture(scope="session")
def onnx_encoder(model_cache: Path, encoder: SentenceTransformerEncoder) -> Encoder:
    """The real default model run by ONNX Runtime (exported once per session's cache)."""
    return load_encoder(Settings(cache_dir=model_cache, backend=BACKEND))


def test_vectors_are_close_to_torch_and_keep_their_order(
    onnx_encoder: Encoder, encoder: SentenceTransformerEncoder, sample_rows: list[dict[str, Any]]
) -> None:
    texts = [f"{r['title']}\n{r['body']}" for r in sample_rows[:40]] + ["x", "  padded  ", "عنوان"]
    ours, torch = onnx_encoder.encode(texts, batch_size=8), encoder.encode(texts, batch_size=8)
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = (ours * torch).sum(axis=1)
    assert cosine.min() > 0.98 and np.median(cosine) > 0.99
    # Other batches: the order is kept. Dynamic int8 scales activations per batch, so a text's vector
    # moves a little with its batch-mates (a write embeds alone, a build in batches).
    backwards = onnx_encoder.encode(texts[::-1], batch_size=5)[::-1]
    alone = np.stack([onnx_encoder.encode([t])[0] for t in texts[:5]])
    assert (backwards * ours).sum(axis=1).min() > 0.995 and (alone * ours[:5]).sum(axis=1).min() > 0.995
    assert onnx_encoder.encode([]).shape == (0, 384)


def test_the_spec_names_the_backend_and_a_head_view_cuts_shorter(
    onnx_encoder: Encoder, sample_rows: list[dict[str, Any]]
) -> None:
    assert onnx_encoder.spec.name.endswith(f"[{BACKEND} v{EXPORT_VERSION}]")
    head = onnx_encoder.with_max_seq_length(8)  # type: ignore[attr-defined]
    assert head.spec.max_seq_length == 8 and head.spec.name == onnx_encoder.spec.name
    long = sample_rows[0]["title"] + " " + sample_rows[0]["body"]
    cut = head.encode([long])[0]
    assert float(cut @ onnx_encoder.encode([long])[0]) < 0.99  # the body counts only in the long view
    assert np.allclose(cut, head.encode([long + " more words at the end"])[0], atol=1e-5)


def test_an_arabic_headline_is_nearest_its_english_translation(onnx_encoder: Encoder) -> None:
    arabic = "نجاة محافظ وادي صفا من محاولة اغتيال على طريق السدر"
    others = ["Wadi Safa governor survives assassination attempt", "Central bank raises interest rates"]
    vectors = onnx_encoder.encode([arabic, *others])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_the_export_is_made_once_and_refuses_other_poolings(
    onnx_encoder: Encoder, model_cache: Path, tmp_path: Path
) -> None:
    folder = default_model(Settings(cache_dir=model_cache))[0]
    target = export_dir(model_cache, folder.name)
    model_file = export(folder, target)
    assert model_file.parent == target and not list(target.parent.glob(f".{target.name}-*"))
    assert export(folder, target).stat().st_mtime == model_file.stat().st_mtime
    other = tmp_path / "cls-model"
    (other / "1_Pooling").mkdir(parents=True)
    (other / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    (other / "modules.json").write_text('[{"type": "sentence_transformers.models.Transformer"}]')
    with pytest.raises(ModelError, match="mean pooling"):
        export(other, tmp_path / "out")
