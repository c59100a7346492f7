"""LoRA adapters of e5-small: low-rank updates of its attention, merged in at conversion.

Two kinds: the shipped one, which `benchmarks/finetune_e5.py --save-adapter` trains with
sentence-transformers' trainer (CoSENT loss on the SemEval development pairs), and an archive's own, which
`related-articles adapt` trains on top of it (`embeddings/model/adapt.py`). Both hold, for each adapted
linear layer `<module>`, the matrices `<module>.lora_A` (r x in) and `<module>.lora_B` (out x r), with `r`
and `alpha` in the file's metadata (an archive's adapter also names the model it was trained on, `base`).
Merging adds alpha / r * B @ A to `<module>.weight`, so the converted model needs no adapter code.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

import numpy as np

ADAPTER_FILE = "e5-lora.safetensors"


def shipped_adapter() -> Path | None:
    """The adapter shipped in the package, if it is there."""
    path = Path(str(importlib.resources.files("embeddings") / "data" / ADAPTER_FILE))
    return path if path.is_file() else None


def adapter_fingerprint(path: Path) -> str:
    """A short hash of the adapter's bytes: part of the converted model's name and spec."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def adapter_metadata(path: Path) -> dict[str, str]:
    """The metadata of an adapter file (r, alpha, and what its trainer recorded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error type for a file that is not one
        raise ValueError(f"{path}: not a safetensors file ({exc})") from exc


def merge_lora(state: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """`state` with the adapter's low-rank updates added to the weights it names."""
    from safetensors import safe_open

    merged = dict(state)
    with safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata() or {}
        try:
            scale = float(meta["alpha"]) / float(meta["r"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: the adapter's metadata lacks r or alpha") from exc
        keys = set(handle.keys())
        modules = sorted(k[: -len(".lora_A")] for k in keys if k.endswith(".lora_A"))
        if not modules or any(f"{m}.lora_B" not in keys for m in modules):
            raise ValueError(f"{path}: not a LoRA adapter (lora_A and lora_B matrices per module)")
        for module in modules:
            weight = f"{module}.weight"
            if weight not in merged:
                raise ValueError(f"{path}: the adapter updates {weight}, which the model lacks")
            a, b = handle.get_tensor(f"{module}.lora_A"), handle.get_tensor(f"{module}.lora_B")
            update = scale * (b.astype(np.float64) @ a.astype(np.float64))
            if update.shape != merged[weight].shape:
                raise ValueError(
                    f"{path}: the update of {weight} is {update.shape}, not {merged[weight].shape}"
                )
            merged[weight] = (merged[weight] + update).astype(np.float32)
    return merged
