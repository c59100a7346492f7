"""`related-articles adapt`: pairs from an archive's own texts, a LoRA adapter trained on them and stored
beside the bundles, named in the model's spec so that bundles built without it are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from embeddings.errors import BundleMismatchError, ModelError
from embeddings.index.publish import load_current
from embeddings.model.adapt import HEAD_WORDS, MIN_PAIRS, MIN_WORDS, AdaptOptions, plan_steps, text_pairs
from embeddings.model.adapter import adapter_fingerprint, adapter_metadata
from embeddings.model.encoders import ADAPTED, default_model, load_sentence_transformer
from embeddings.settings import Settings
from service.cli import main
from tests.support.corpus import write_jsonl


def _words(prefix: str, n: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


def test_each_long_enough_text_gives_its_head_and_its_rest() -> None:
    texts = [_words("a", 200), _words("b", 40), _words("c", MIN_WORDS - 1)]
    pairs = dict(text_pairs(texts, max_articles=10, seed=0))
    assert len(pairs) == 2  # the short one gives none
    long_head = _words("a", HEAD_WORDS)
    assert pairs[long_head] == " ".join(f"a{i}" for i in range(HEAD_WORDS, 200))
    short_head = _words("b", 20)  # at most half of a text is its head
    assert pairs[short_head] == " ".join(f"b{i}" for i in range(20, 40))


def test_pairs_are_a_seeded_sample_without_repeated_heads() -> None:
    texts = [f"{_words('lead', HEAD_WORDS)} {_words(f'rest{n}-', 60)}" for n in range(3)]
    texts += [f"{_words(f'story{n}-', HEAD_WORDS)} {_words('x', 60)}" for n in range(30)]
    pairs = text_pairs(texts, max_articles=1000, seed=1)
    assert len(pairs) == 31  # three reprints of one lead count once
    sample = text_pairs(texts, max_articles=10, seed=1)
    assert len(sample) == 10 and sample == text_pairs(texts, max_articles=10, seed=1)
    assert sample != text_pairs(texts, max_articles=10, seed=2)


def test_the_time_budget_decides_how_many_steps_run() -> None:
    options = AdaptOptions(batch_size=32, minutes=25.0)
    assert plan_steps(15_000, options, step_seconds=1.0) == 468  # one epoch fits
    assert plan_steps(15_000, options, step_seconds=4.5) == 300  # 90% of 25 minutes at 4.5 s a step
    assert plan_steps(15_000, AdaptOptions(max_steps=7), step_seconds=100.0) == 7
    assert plan_steps(100, AdaptOptions(batch_size=32, epochs=2.0), step_seconds=1.0) == 6


def test_adapt_tells_a_newcomer_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapt", "--bundles", str(tmp_path)]) == 1
    assert "--input FILE" in capsys.readouterr().err
    assert main(["adapt", "--input", str(tmp_path / "nowhere.jsonl"), "--bundles", str(tmp_path)]) == 1
    assert "no such file" in capsys.readouterr().err
    rows = [{"id": f"s{i}", "title": f"short {i}", "body": _words("w", 50)} for i in range(MIN_PAIRS - 1)]
    small = write_jsonl(tmp_path / "small.jsonl", rows)
    assert main(["adapt", "--input", str(small), "--bundles", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"at least {MIN_PAIRS}" in err and "give it the whole archive" in err
    assert not (tmp_path / "adapters").exists()
    with pytest.raises(SystemExit):
        main(["adapt", "--input", str(small), "--max-articles", "0"])
    assert "at least 1" in capsys.readouterr().err


def test_a_wrong_adapter_setting_is_refused_before_any_conversion(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path / "cache", adapter=tmp_path / "missing.safetensors")
    with pytest.raises(ModelError, match="no such file"):
        default_model(settings)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"m.lora_A": np.ones((1, 2), np.float32)}, str(foreign), {"r": "1", "alpha": "1"})
    with pytest.raises(ModelError, match="not an adapter made by `related-articles adapt`"):
        default_model(settings.model_copy(update={"adapter": foreign}))
    other = tmp_path / "other.safetensors"
    save_file({"m.lora_A": np.ones((1, 2), np.float32)}, str(other), {"r": "1", "alpha": "1", "base": "x"})
    with pytest.raises(ModelError, match="was trained on 'x'"):
        default_model(settings.model_copy(update={"adapter": other}))
    with pytest.raises(ModelError, match="default model only"):
        load_sentence_transformer(settings.model_copy(update={"adapter": other, "model": str(tmp_path)}))
    assert not (tmp_path / "cache").exists()


@pytest.mark.model  # trains the real model (a few steps) and builds with it
@pytest.mark.slow
def test_adapt_stores_an_adapter_that_renames_the_model_and_refuses_older_bundles(
    tmp_path: Path,
    model_cache: Path,
    sample_rows: list[dict[str, object]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = write_jsonl(tmp_path / "archive.jsonl", sample_rows[:40])
    bundles = tmp_path / "bundles"
    common = ["--bundles", str(bundles), "--cache-dir", str(model_cache)]
    build = ["build", "--input", str(archive), "--scorer", "cosine", "--backend", "torch", "--no-progress"]
    assert main([*build, *common]) == 0
    trial = ["--max-seq-length", "32", "--batch-size", "16", "--no-progress"]  # 2 steps of the 40
    assert main(["adapt", "--input", str(archive), *trial, *common]) == 0
    out = capsys.readouterr().out

    (adapter,) = (bundles / "adapters").glob("*.safetensors")
    fingerprint = adapter_fingerprint(adapter)
    assert adapter.name == f"{fingerprint}.safetensors"
    assert f"export RELATED_ADAPTER={adapter}" in out and "related-articles build" in out
    base = Settings(bundles=bundles, cache_dir=model_cache, backend="torch")
    base_folder, base_name = default_model(base)
    meta = adapter_metadata(adapter)
    assert meta["base"] == base_name and meta["steps"] == "2" and int(meta["articles"]) >= MIN_PAIRS

    adapted = base.model_copy(update={"adapter": adapter})
    folder, name = default_model(adapted)
    assert name == f"{base_name} + {ADAPTED} {fingerprint}" and folder != base_folder
    tuned, plain = (
        load_file(str(folder / "model.safetensors")),
        load_file(str(base_folder / "model.safetensors")),
    )
    changed = {k for k in plain if not np.array_equal(plain[k], tuned[k])}
    assert changed and all(k.endswith(("query.weight", "key.weight", "value.weight")) for k in changed)

    encoder = load_sentence_transformer(adapted)
    assert encoder.spec.name == name
    with pytest.raises(BundleMismatchError, match="RELATED_ADAPTER"):
        load_current(bundles, encoder.spec)
    load_current(bundles, load_sentence_transformer(base).spec).close()  # without it, as it was built
