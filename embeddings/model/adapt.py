"""Adaptation to a publisher's archive without labels: a LoRA adapter trained on the archive's own texts.

Each article long enough gives one pair: its head (the title and lead, its first HEAD_WORDS words at most
half of it) and the rest of its text. MultipleNegativesRankingLoss pulls the two together and pushes each
head away from the other articles' rests in its batch (in-batch negatives), through sentence-transformers'
trainer and a peft LoRA on the attention of the default model (the shipped adapter merged in). The
adapter is written as `adapter.py` reads it, with the model it was trained on in its metadata (`base`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.errors import InputError, ModelError
from embeddings.model.adapter import adapter_fingerprint

log = logging.getLogger(__name__)

PREFIX = "query: "  # as the project embeds every text (E5_PREFIX), on both sides
HEAD_WORDS = 32  # a title and the lead's first sentence: about 40 to 60 tokens
MIN_WORDS = 32  # shorter texts give no pair: half of one is too little to stand for the article
MIN_PAIRS = 16  # fewer cannot fill the batches of one run; results need far more (see MANY_PAIRS)
MANY_PAIRS = 1000  # below this an adapter learns little that holds: adapt warns
LORA_TARGETS = ("query", "key", "value")  # the modules the shipped adapter adapts too
# CPU training is slow: on this project's 2 cores (torch 2.13), one step of 32 pairs, forward and backward
# through all 12 layers, takes 4.4 s with texts cut at 64 tokens when the cores are free, and 10 to 38 s
# beside other jobs (25 s at 64 tokens and 38 s at 128 beside one using a core). So the time budget, not
# the archive, sets how many articles are learnt from: adapt times one step where it runs and samples as
# many articles as fit (`plan_steps`), at 64 tokens: about 300 steps, 9,600 articles, on free cores.
SEQ_LENGTH = 64
BATCH_SIZE = 32
MAX_ARTICLES = 15_000
MINUTES = 25.0
BUDGET_SHARE = 0.9  # of the budget planned from the timed step; the rest absorbs a slower machine
# The first passes are slower (the first of 32 pairs at 64 tokens took 5.2 s, the next ones 4.4 s, with
# 1 to 6 times that for the trainer's first steps): the fastest of three is the step's time.
TIMED_PASSES = 3


@dataclass(frozen=True)
class AdaptOptions:
    """How one adaptation runs; by default it ends within 30 minutes, whatever the archive's size."""

    max_articles: int = MAX_ARTICLES
    minutes: float = MINUTES
    seq_length: int = SEQ_LENGTH
    batch_size: int = BATCH_SIZE
    learning_rate: float = 1e-4
    rank: int = 8
    epochs: float = 1.0
    max_steps: int = 0  # 0: the epochs decide
    seed: int = 13
    progress: bool = True  # the trainer's bar (a terminal); False: a log line every 5% of the steps


@dataclass(frozen=True)
class AdaptResult:
    """What `adapt` made: the adapter file and how its training went."""

    path: Path
    fingerprint: str
    pairs: int
    steps: int
    planned_steps: int
    seconds: float
    loss: float

    @property
    def stopped_early(self) -> bool:
        """Whether the time budget ended the training before its planned steps."""
        return self.steps < self.planned_steps


def text_pairs(texts: Sequence[str], max_articles: int, seed: int) -> list[tuple[str, str]]:
    """(head, rest) of a seeded sample of `max_articles` texts; short texts and repeated heads left out."""
    order = np.random.default_rng(seed).permutation(len(texts))
    pairs: list[tuple[str, str]] = []
    heads: set[str] = set()
    for index in order:
        words = texts[index].split()
        if len(words) < MIN_WORDS:
            continue
        cut = min(HEAD_WORDS, len(words) // 2)
        head, rest = " ".join(words[:cut]), " ".join(words[cut:])
        if head in heads:  # a republished copy: it would be its original's negative in a batch
            continue
        heads.add(head)
        pairs.append((head, rest))
        if len(pairs) == max_articles:
            break
    return pairs


def check_pairs(pairs: Sequence[tuple[str, str]]) -> None:
    """Raise InputError when too few articles can be learnt from."""
    if len(pairs) < MIN_PAIRS:
        raise InputError(
            f"{len(pairs)} article(s) long enough to learn from (at least {MIN_WORDS} words each, "
            f"repeated leads counted once); adapt needs at least {MIN_PAIRS}, and learns little below "
            f"{MANY_PAIRS}: give it the whole archive"
        )


def check_training_libraries() -> None:
    """Raise ModelError naming the install when the training libraries are missing."""
    missing = [name for name in ("peft", "datasets", "accelerate") if not _importable(name)]
    if missing:
        raise ModelError(
            f"adapt needs {', '.join(missing)} (the training libraries): "
            "pip install 'related-articles[adapt]' ('make install' installs them)"
        )


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def adapt(
    folder: Path,
    base: str,
    pairs: Sequence[tuple[str, str]],
    out_dir: Path,
    options: AdaptOptions,
    source: str = "",
) -> AdaptResult:
    """Train a LoRA adapter on `pairs` over the model in `folder` (named `base`); write it into `out_dir`."""
    check_pairs(pairs)
    check_training_libraries()
    import torch

    torch.manual_seed(options.seed)
    model = _load(folder)
    trainable = _add_lora(model, options.rank)
    log.info(
        "adapting %s: %d articles, %d trainable parameters, %d tokens, batch %d, at most %.0f minutes",
        base,
        len(pairs),
        trainable,
        options.seq_length,
        options.batch_size,
        options.minutes,
    )
    planned = plan_steps(len(pairs), options, _time_one_step(model, pairs, options))
    steps, seconds, loss = _train(model, pairs[: planned * options.batch_size], planned, options)
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = {
        "r": str(options.rank),
        "alpha": str(2 * options.rank),
        "base": base,
        "loss": "MultipleNegativesRankingLoss (head -> rest, in-batch negatives)",
        "source": source,
        "articles": str(min(len(pairs), steps * options.batch_size)),
        "steps": str(steps),
        "planned_steps": str(planned),
        "seconds": f"{seconds:.0f}",
        "train_seq": str(options.seq_length),
        "batch_size": str(options.batch_size),
        "lr": str(options.learning_rate),
        "seed": str(options.seed),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = _write_adapter(model, out_dir, metadata)
    learnt = min(len(pairs), steps * options.batch_size)
    return AdaptResult(path, adapter_fingerprint(path), learnt, steps, planned, seconds, loss)


def _load(folder: Path) -> Any:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return SentenceTransformer(str(folder), device="cpu")
    except Exception as exc:  # the library raises many kinds
        raise ModelError(f"cannot load the model to adapt from {folder}: {exc}") from exc


def _add_lora(model: Any, rank: int) -> int:
    """Freeze the model but new LoRA matrices on its attention; the number of trainable parameters."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=list(LORA_TARGETS))
    inject_adapter_in_model(config, model[0].auto_model)
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def plan_steps(pairs: int, options: AdaptOptions, step_seconds: float) -> int:
    """The steps to train: the epochs over `pairs`, fewer when they would not fit the time budget."""
    if options.max_steps:
        return options.max_steps
    wanted = max(1, math.ceil(pairs // options.batch_size * options.epochs))
    fitting = max(1, int(options.minutes * 60 * BUDGET_SHARE / max(step_seconds, 1e-3)))
    if fitting < wanted:
        log.info(
            "one step of %d articles takes %.1fs here: %d of the %d steps fit %.0f minutes "
            "(%d articles learnt from; --minutes for more)",
            options.batch_size,
            step_seconds,
            fitting,
            wanted,
            options.minutes,
            fitting * options.batch_size,
        )
    return min(wanted, fitting)


def _time_one_step(model: Any, pairs: Sequence[tuple[str, str]], options: AdaptOptions) -> float:
    """Seconds of one training step's forward and backward pass here (no weight changes)."""
    if options.max_steps:
        return 0.0  # a trial run: its steps are given
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model.max_seq_length = options.seq_length
    model.train()
    loss = MultipleNegativesRankingLoss(model)
    batch = pairs[: options.batch_size]
    timings = []
    for _ in range(TIMED_PASSES):
        start = time.monotonic()
        sides = zip(*batch, strict=True)
        loss([model.preprocess(inputs=[PREFIX + text for text in side]) for side in sides], None).backward()
        timings.append(time.monotonic() - start)
        model.zero_grad(set_to_none=True)
    return min(timings)


def _train(
    model: Any, pairs: Sequence[tuple[str, str]], planned: int, options: AdaptOptions
) -> tuple[int, float, float]:
    """Run the trainer for `planned` steps within the time budget: (steps done, seconds, mean loss)."""
    import io

    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers.trainer_callback import PrinterCallback

    data = {"anchor": [PREFIX + h for h, _ in pairs], "positive": [PREFIX + r for _, r in pairs]}
    dataset = Dataset.from_dict(data)
    model.max_seq_length = options.seq_length
    with tempfile.TemporaryDirectory(prefix="related-articles-adapt-") as workdir:
        args = SentenceTransformerTrainingArguments(
            output_dir=workdir,
            num_train_epochs=options.epochs,
            max_steps=planned,
            per_device_train_batch_size=options.batch_size,
            learning_rate=options.learning_rate,
            warmup_steps=max(1, planned // 10),
            weight_decay=0.0,
            save_strategy="no",
            logging_strategy="steps",
            logging_steps=max(1, planned // 20),
            report_to="none",
            use_cpu=True,
            seed=options.seed,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            dataloader_drop_last=True,
            dataloader_num_workers=0,
            disable_tqdm=not options.progress,
        )
        budget = _Budget(options.minutes * 60.0, planned, log_progress=not options.progress)
        with _quiet_libraries():
            # Without a terminal, the bar the trainer's model card opens would be a carriage-return frame.
            quiet = (
                contextlib.nullcontext() if options.progress else contextlib.redirect_stderr(io.StringIO())
            )
            with quiet:
                trainer = SentenceTransformerTrainer(
                    model=model,
                    args=args,
                    train_dataset=dataset,
                    loss=MultipleNegativesRankingLoss(model),
                    callbacks=[budget.callback()],
                )
            trainer.remove_callback(PrinterCallback)  # its dicts of figures: the budget's lines say more
            result = trainer.train()
    model.eval()
    return int(result.global_step), time.monotonic() - budget.start, float(result.training_loss)


class _Budget:
    """Stops the training at its time budget; without a terminal, logs progress and the ETA every 5%."""

    def __init__(self, seconds: float, planned: int, log_progress: bool) -> None:
        self.seconds = seconds
        self.planned = planned
        self.log_progress = log_progress
        self.every = max(1, planned // 20)
        self.start = time.monotonic()

    def callback(self) -> Any:
        """A transformers TrainerCallback bound to this budget."""
        from transformers import TrainerCallback

        budget = self

        class BudgetCallback(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                budget.start = time.monotonic()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                budget.step(state, control)

        return BudgetCallback()

    def step(self, state: Any, control: Any) -> None:
        """After each step: log progress (without a terminal), stop once the budget is spent."""
        elapsed = time.monotonic() - self.start
        done = int(state.global_step)
        if self.log_progress and (done % self.every == 0 or done == self.planned):
            eta = elapsed / done * (self.planned - done)
            left = max(0.0, self.seconds - elapsed)
            # A machine slower than timed (other jobs on its cores) ends at the budget, before the plan.
            ends = (
                f"about {_duration(eta)} left" if eta <= left else f"the budget ends it in {_duration(left)}"
            )
            losses = [e["loss"] for e in state.log_history if "loss" in e]
            loss = f", loss {losses[-1]:.3f}" if losses else ""
            log.info(
                "adapting: step %d of %d (%.0f%%), %s elapsed, %s%s",
                done,
                self.planned,
                100 * done / self.planned,
                _duration(elapsed),
                ends,
                loss,
            )
        if elapsed >= self.seconds and done < self.planned:
            log.warning(
                "adapting: the time budget (%s) is spent at step %d of %d: the adapter keeps what it learnt",
                _duration(self.seconds),
                done,
                self.planned,
            )
            control.should_training_stop = True


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Only the libraries' errors while training: not transformers' notes on the converted tokenizer's
    special tokens, nor datasets' bars (carriage-return frames in a log), which the trainer opens."""
    import datasets
    import transformers

    level = transformers.utils.logging.get_verbosity()
    bars = datasets.is_progress_bar_enabled()
    transformers.utils.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        transformers.utils.logging.set_verbosity(level)
        if bars:
            datasets.enable_progress_bars()


def _write_adapter(model: Any, out_dir: Path, metadata: dict[str, str]) -> Path:
    """Write the LoRA matrices of every adapted layer; the file is named by its fingerprint."""
    from safetensors.numpy import save_file

    tensors = {}
    for name, module in model[0].auto_model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            tensors[f"{name}.lora_A"] = module.lora_A["default"].weight.detach().numpy().astype(np.float32)
            tensors[f"{name}.lora_B"] = module.lora_B["default"].weight.detach().numpy().astype(np.float32)
    if not tensors:
        raise ModelError("the trained model holds no LoRA matrices to write")
    handle, name = tempfile.mkstemp(prefix=".adapter-", suffix=".safetensors", dir=out_dir)
    os.close(handle)
    tmp = Path(name)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        path = out_dir / f"{adapter_fingerprint(tmp)}.safetensors"
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
