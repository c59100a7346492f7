"""Does an archive's adapter (`related-articles adapt`) help? The default model against the adapted one.

Both are measured on scored pairs as `benchmarks/finetune_e5.py` measures (torch, 256 tokens, "query: "):
the Pearson correlation of the main cosine with -Overall, over all pairs, by language relation (same
language or across languages) and by language pair; recall@1 among every text of the pairs (queries: each
side of each pair scored <= 1.5, the other side relevant), also by the query's relation. It adds the mean
cosine of same-story (Overall <= 1.5) and unrelated (>= 3.5) pairs: the shipped scorer's curves and
thresholds were fitted on the default model's cosines, and assume them.

    python -m benchmarks.adapted_model PAIRS.jsonl --adapter BUNDLES/adapters/FINGERPRINT.safetensors \
        [--json OUT.json] [--default-from EARLIER.json]

`--default-from` takes the default model's figures from an earlier run's JSON instead of measuring them
again (each model takes about 15 minutes on 2 shared cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.finetune_e5 import EVAL_SEQ, embed_texts, figures
from embeddings.evaluation.pairs import read_pairs

RELATIONS = ("same language", "across languages")


def relation(lang: str) -> str:
    """A pair's language relation: its language pair is one language ('es') or two ('de-en')."""
    return RELATIONS[1] if "-" in lang else RELATIONS[0]


def load(adapter: Path | None):
    """The default model (shipped adapter merged), with the archive's `adapter` merged too if given."""
    from sentence_transformers import SentenceTransformer

    from embeddings.model.encoders import default_model
    from embeddings.settings import load_settings

    folder, name = default_model(load_settings(model="default").model_copy(update={"adapter": adapter}))
    model = SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = EVAL_SEQ
    return model, name


def measure(model, pairs) -> dict:
    """Figures over all pairs and by relation, and the mean cosines of same-story and unrelated pairs."""
    row, vecs = embed_texts(model, pairs)
    out = {"all": figures(pairs, row, vecs, range(len(pairs)))}
    for rel in RELATIONS:
        out[rel] = figures(pairs, row, vecs, [i for i, p in enumerate(pairs) if relation(p.lang) == rel])
    cos = np.array([float(vecs[row[p.text1]] @ vecs[row[p.text2]]) for p in pairs])
    overall = np.array([p.overall for p in pairs])
    out["mean_cosine"] = {
        "same story": round(float(cos[overall <= 1.5].mean()), 4),
        "unrelated": round(float(cos[overall >= 3.5].mean()), 4),
    }
    return out


def show(base: dict, adapted: dict) -> None:
    """The two models side by side."""
    print(f"{'':44}{'default':>9}{'adapted':>9}{'delta':>9}")
    rows = []
    for part in ("all", *RELATIONS):
        b, a = base[part], adapted[part]
        rows.append((f"pearson, {part} ({b['pairs']} pairs)", b["pearson"], a["pearson"]))
        rows.append((f"recall@1, {part} ({b['recall_queries']} queries)", b["recall_at_1"], a["recall_at_1"]))
    rows += [
        (f"  pearson {lang} ({v['pairs']})", v["pearson"], adapted["all"]["by_lang"][lang]["pearson"])
        for lang, v in base["all"]["by_lang"].items()
    ]
    rows += [(f"mean cosine, {k}", v, adapted["mean_cosine"][k]) for k, v in base["mean_cosine"].items()]
    for name, x, y in rows:
        print(f"{name:44}{x:9.4f}{y:9.4f}{y - x:+9.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--adapter", type=Path, required=True, help="what `related-articles adapt` wrote")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--default-from", type=Path, help="the default model's figures from this JSON")
    args = parser.parse_args()
    pairs = read_pairs(args.pairs)
    report: dict = {"pairs": str(args.pairs.name), "models": {}}
    if args.default_from:
        report["models"]["default"] = json.loads(args.default_from.read_text(encoding="utf-8"))["models"][
            "default"
        ]
    for key, adapter in (("default", None), ("adapted", args.adapter)):
        if key in report["models"]:
            continue
        start = time.perf_counter()
        model, name = load(adapter)
        report["models"][key] = {"name": name, **measure(model, pairs)}
        print(f"{key}: {name}, measured in {time.perf_counter() - start:.0f}s")
    print(f"\n{len(pairs)} pairs, corpus {report['models']['default']['all']['corpus']} texts")
    show(report["models"]["default"], report["models"]["adapted"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
