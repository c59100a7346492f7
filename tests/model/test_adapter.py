"""The LoRA adapter: merged into the weights it names, fingerprinted into the model's name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from embeddings.model.adapter import adapter_fingerprint, merge_lora, shipped_adapter
from embeddings.model.encoders import DEFAULT_MODEL_NAME, default_model
from embeddings.settings import Settings


def _adapter(path: Path, r: int = 2, alpha: int = 4, **extra: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    tensors = {
        "layer.query.lora_A": rng.normal(size=(r, 3)).astype(np.float32),
        "layer.query.lora_B": rng.normal(size=(5, r)).astype(np.float32),
        **extra,
    }
    save_file(tensors, str(path), metadata={"r": str(r), "alpha": str(alpha)})
    return path


def test_merge_adds_the_scaled_low_rank_update(tmp_path: Path) -> None:
    path = _adapter(tmp_path / "a.safetensors")
    state = {"layer.query.weight": np.ones((5, 3), dtype=np.float32), "layer.key.weight": np.zeros((5, 3))}
    merged = merge_lora(state, path)
    raw = load_file(str(path))
    expected = 1.0 + 2.0 * raw["layer.query.lora_B"] @ raw["layer.query.lora_A"]
    np.testing.assert_allclose(merged["layer.query.weight"], expected, rtol=1e-5)
    assert merged["layer.key.weight"] is state["layer.key.weight"]  # untouched
    assert np.all(state["layer.query.weight"] == 1.0)  # the input is not changed


def test_bad_adapters_are_refused(tmp_path: Path) -> None:
    state = {"layer.query.weight": np.ones((5, 3), dtype=np.float32)}
    with pytest.raises(ValueError, match="lacks"):
        merge_lora({}, _adapter(tmp_path / "a.safetensors"))
    wrong = _adapter(tmp_path / "b.safetensors", r=2)
    with pytest.raises(ValueError, match="not"):
        merge_lora({"layer.query.weight": np.ones((4, 3), dtype=np.float32)}, wrong)
    one = {"x.lora_A": np.ones((1, 1), dtype=np.float32)}
    save_file(one, str(tmp_path / "c.safetensors"), {"r": "1", "alpha": "1"})
    with pytest.raises(ValueError, match="not a LoRA adapter"):
        merge_lora(state, tmp_path / "c.safetensors")
    save_file(one, str(tmp_path / "d.safetensors"))
    with pytest.raises(ValueError, match="metadata"):
        merge_lora(state, tmp_path / "d.safetensors")


@pytest.mark.model  # converts the real model's weights
def test_the_shipped_adapter_names_the_default_model(tmp_path: Path) -> None:
    adapter = shipped_adapter()
    assert adapter is not None and adapter.stat().st_size < 10_000_000
    tuned_folder, tuned_name = default_model(Settings(cache_dir=tmp_path, fine_tuned=True))
    base_folder, base_name = default_model(Settings(cache_dir=tmp_path, fine_tuned=False))
    assert (
        base_name == DEFAULT_MODEL_NAME
        and tuned_name == f"{DEFAULT_MODEL_NAME} + LoRA {adapter_fingerprint(adapter)}"
    )
    assert tuned_folder != base_folder and adapter_fingerprint(adapter) in tuned_folder.name
    from safetensors.numpy import load_file

    tuned, base = (
        load_file(str(tuned_folder / "model.safetensors")),
        load_file(str(base_folder / "model.safetensors")),
    )
    changed = {k for k in base if not np.array_equal(base[k], tuned[k])}
    assert changed and all(k.endswith(("query.weight", "key.weight", "value.weight")) for k in changed)
