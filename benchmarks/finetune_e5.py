"""Does contrastive fine-tuning of the project's e5-small on CPU help? Base against fine-tuned, held-out fold.

Trains a small part of the model (LoRA adapters on the attention projections via peft, or only the top
encoder layer(s)) with sentence-transformers' own trainer, on the scored pairs of every fold but the
held-out one: CoSENTLoss with label (4 - Overall) / 3, or MultipleNegativesRankingLoss on pairs with
Overall <= 1.5. Texts are embedded as the project embeds them: "query: " + article_text(title, body),
evaluated at max_seq_length 256 (training may cut shorter to save time).

Figures on the held-out fold, for the base and the fine-tuned model:
  * Pearson of cos(text1, text2) with -Overall, over all pairs and per language pair;
  * recall@1 of retrieval: corpus = every distinct text of the held-out pairs, queries = each side of
    each pair with Overall <= 1.5, relevant = the other side, the query itself excluded.

    python -m benchmarks.finetune_e5 PAIRS.jsonl OUT.json [--test-folds 0 1] [--train-seq 128]
    python -m benchmarks.finetune_e5 PAIRS.jsonl OUT.json --test-folds --train-seq 128 \
        --save-adapter embeddings/data/e5-lora.safetensors      # the shipped adapter

Needs the `adapt` extra (peft, datasets, accelerate), which `make install` installs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from embeddings.evaluation.pairs import fold_of, pearson, read_pairs

PREFIX = "query: "  # the project's E5_PREFIX, on both sides
EVAL_SEQ = 256  # the project's max_seq_length


def base_model_folder() -> Path:
    """The bundled e5-small, converted without any adapter (in the configured cache directory)."""
    from embeddings.model.encoders import default_model
    from embeddings.settings import load_settings

    return default_model(load_settings(fine_tuned=False))[0]


def load_model():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base_model_folder()), device="cpu")
    model.max_seq_length = EVAL_SEQ
    return model


def evaluate(model, pairs, batch_size: int = 32) -> dict:
    """Pearson (all, per language) and recall@1 on `pairs`, texts embedded once at EVAL_SEQ tokens."""
    row, vecs = embed_texts(model, pairs, batch_size)
    return figures(pairs, row, vecs, range(len(pairs)))


def embed_texts(model, pairs, batch_size: int = 32) -> tuple[dict[str, int], np.ndarray]:
    """Each distinct text of `pairs` (its row) and its vector, embedded as the project embeds it."""
    model.max_seq_length = EVAL_SEQ
    texts = list(dict.fromkeys([p.text1 for p in pairs] + [p.text2 for p in pairs]))
    vecs = model.encode(
        [PREFIX + t.strip() for t in texts],
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return {t: i for i, t in enumerate(texts)}, vecs


def figures(pairs, row: dict[str, int], vecs: np.ndarray, chosen) -> dict:
    """`evaluate`'s figures over the pairs numbered `chosen`; recall@1 still among every text of `pairs`."""
    chosen = list(chosen)
    pairs = [pairs[i] for i in chosen]
    a, b = np.array([row[p.text1] for p in pairs]), np.array([row[p.text2] for p in pairs])
    cos = np.einsum("ij,ij->i", vecs[a], vecs[b])
    neg = -np.array([p.overall for p in pairs])
    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_lang[p.lang].append(i)
    out = {
        "pairs": len(pairs),
        "pearson": round(pearson(cos, neg), 4),
        "by_lang": {
            lang: {"pairs": len(ix), "pearson": round(pearson(cos[ix], neg[ix]), 4)}
            for lang, ix in sorted(by_lang.items())
            if len(ix) >= 3
        },
    }
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -np.inf)  # the query itself is excluded
    queries = [
        (q, r)
        for i, p in enumerate(pairs)
        if p.overall <= 1.5
        for q, r in ((a[i], b[i]), (b[i], a[i]))
        if q != r
    ]
    hits = [int(np.argmax(sims[q]) == r) for q, r in queries]
    out["recall_at_1"] = round(float(np.mean(hits)), 4) if hits else float("nan")
    out["recall_queries"], out["corpus"] = len(queries), len(vecs)
    return out


def make_trainable(model, args) -> int:
    """Freeze the model but a small part; the number of trainable parameters."""
    if args.method == "lora":
        from peft import LoraConfig, inject_adapter_in_model  # transformers' add_adapter wants peft>=0.22

        config = LoraConfig(
            r=args.lora_r,
            lora_alpha=2 * args.lora_r,
            lora_dropout=0.1,
            target_modules=["query", "key", "value"],
        )
        inject_adapter_in_model(config, model[0].auto_model)
        for name, param in model.named_parameters():
            param.requires_grad = "lora_" in name
    else:
        for param in model.parameters():
            param.requires_grad = False
        for layer in model[0].auto_model.encoder.layer[-args.top_layers :]:
            for param in layer.parameters():
                param.requires_grad = True
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train(model, pairs, args) -> dict:
    """One run of SentenceTransformerTrainer on `pairs`; its wall time and step count."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.losses import CoSENTLoss, MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers

    rng = np.random.default_rng(args.seed)
    if args.loss == "cosent":
        chosen = list(pairs)
        data = {
            "sentence1": [PREFIX + p.text1.strip() for p in chosen],
            "sentence2": [PREFIX + p.text2.strip() for p in chosen],
            "score": [(4.0 - p.overall) / 3.0 for p in chosen],
        }
        loss, sampler = CoSENTLoss(model), BatchSamplers.BATCH_SAMPLER
    else:
        chosen = [p for p in pairs if p.overall <= 1.5]
        data = {
            "anchor": [PREFIX + p.text1.strip() for p in chosen],
            "positive": [PREFIX + p.text2.strip() for p in chosen],
        }
        loss, sampler = MultipleNegativesRankingLoss(model), BatchSamplers.NO_DUPLICATES
    dataset = Dataset.from_dict(data).shuffle(seed=args.seed)
    if args.max_train_pairs and len(dataset) > args.max_train_pairs:
        dataset = dataset.select(sorted(rng.choice(len(dataset), args.max_train_pairs, replace=False)))
    model.max_seq_length = args.train_seq
    with tempfile.TemporaryDirectory() as tmp:
        targs = SentenceTransformerTrainingArguments(
            output_dir=tmp,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr,
            warmup_ratio=0.1,
            weight_decay=0.0,
            save_strategy="no",
            logging_steps=10,
            report_to="none",
            use_cpu=True,
            seed=args.seed,
            batch_sampler=sampler,
            max_steps=args.max_steps or -1,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=dataset, loss=loss)
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
    model.eval()
    model.max_seq_length = EVAL_SEQ
    return {
        "seconds": round(seconds, 1),
        "steps": int(result.global_step),
        "train_pairs": len(dataset),
        "train_loss": round(float(result.training_loss), 4),
    }


def save_adapter(model, path: Path, args, pairs: int, training: dict) -> None:
    """Write the LoRA matrices of every adapted layer as embeddings/model/adapter.py reads them."""
    from safetensors.numpy import save_file

    tensors = {}
    for name, module in model[0].auto_model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            tensors[f"{name}.lora_A"] = module.lora_A["default"].weight.detach().numpy().astype(np.float32)
            tensors[f"{name}.lora_B"] = module.lora_B["default"].weight.detach().numpy().astype(np.float32)
    meta = {"r": str(args.lora_r), "alpha": str(2 * args.lora_r), "loss": args.loss, "pairs": str(pairs)}
    meta |= {"epochs": str(args.epochs), "lr": str(args.lr), "train_seq": str(args.train_seq)}
    meta |= {"seed": str(args.seed), "steps": str(training["steps"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    print(f"adapter ({len(tensors)} matrices) written to {path}")


def show(fold: int, base: dict, tuned: dict) -> None:
    print(
        f"\n== held-out fold {fold}: {base['pairs']} pairs, {base['recall_queries']} recall queries, "
        f"corpus {base['corpus']} =="
    )
    print(f"{'':14}{'base':>9}{'tuned':>9}{'delta':>9}")
    rows = [
        ("pearson all", base["pearson"], tuned["pearson"]),
        ("recall@1", base["recall_at_1"], tuned["recall_at_1"]),
    ]
    rows += [
        (f"  {lang} ({v['pairs']})", v["pearson"], tuned["by_lang"][lang]["pearson"])
        for lang, v in base["by_lang"].items()
    ]
    for name, x, y in rows:
        print(f"{name:14}{x:9.4f}{y:9.4f}{y - x:+9.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--test-folds", type=int, nargs="*", default=[0], help="none: train on every pair")
    parser.add_argument("--save-adapter", type=Path, help="train on every pair, write the LoRA adapter here")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--method", choices=["lora", "top"], default="lora")
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--top-layers", type=int, default=1)
    parser.add_argument("--loss", choices=["cosent", "mnrl"], default="cosent")
    parser.add_argument("--lr", type=float, default=None, help="default 1e-4 (lora), 2e-5 (top)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--train-seq", type=int, default=256, help="max_seq_length while training")
    parser.add_argument("--max-train-pairs", type=int, default=0, help="0 = all")
    parser.add_argument("--max-steps", type=int, default=0, help="0 = the epochs")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    args.lr = args.lr or (1e-4 if args.method == "lora" else 2e-5)
    import torch

    torch.manual_seed(args.seed)
    pairs = read_pairs(args.pairs)
    fold = [fold_of(p.group, args.folds) for p in pairs]
    report = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "model": str(base_model_folder()),
        "torch_threads": torch.get_num_threads(),
        "runs": [],
    }
    print(f"{len(pairs)} pairs; torch threads {torch.get_num_threads()}; nice {os.nice(0)}")
    for test in args.test_folds:
        held = [p for p, f in zip(pairs, fold, strict=True) if f == test]
        rest = [p for p, f in zip(pairs, fold, strict=True) if f != test]
        model = load_model()
        start = time.perf_counter()
        base = evaluate(model, held)
        base_seconds = time.perf_counter() - start
        trainable = make_trainable(model, args)
        mb = trainable * 4 / 1e6
        size = f"trainable {trainable} params = {mb:.2f} MB fp32"
        print(f"fold {test}: base evaluated in {base_seconds:.0f}s; {size}")
        training = train(model, rest, args)
        print(f"fold {test}: trained {training}")
        tuned = evaluate(model, held)
        show(test, base, tuned)
        report["runs"].append(
            {
                "test_fold": test,
                "trainable_params": trainable,
                "trainable_mb_fp32": round(mb, 3),
                "training": training,
                "base": base,
                "tuned": tuned,
            }
        )
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.save_adapter:
        if args.method != "lora":
            raise SystemExit("--save-adapter needs --method lora")
        model = load_model()
        make_trainable(model, args)
        training = train(model, pairs, args)
        print(f"all pairs: trained {training}")
        save_adapter(model, args.save_adapter, args, len(pairs), training)
        report["adapter"] = {"path": str(args.save_adapter), "training": training}
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
