"""The one settings class: every field can come from the environment with the prefix `RELATED_`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "default"
LangPolicy = Literal["same", "same_then_other", "any"]
# Values of an earlier scheme, refused with the value nearest to each (not mapped: none means the same).
RETIRED_LANG_POLICIES = {"same_first": "same_then_other", "same_only": "same", "others_first": "any"}


def current_lang_policy(value: object) -> object:
    """Refuse a retired `lang_policy` value, naming the current ones (a pydantic before-validator)."""
    if isinstance(value, str) and value in RETIRED_LANG_POLICIES:
        raise ValueError(
            f"lang_policy {value!r} is no longer a value: use same, same_then_other or any "
            f"(the nearest is {RETIRED_LANG_POLICIES[value]})"
        )
    return value


LangPolicyValue = Annotated[LangPolicy, BeforeValidator(current_lang_policy)]
# The relatedness floor, on the scorer's 0 (unrelated) to 1 (same story) scale. On the SemEval
# development pairs (the shipped scorer, cross-validated), 0.15 keeps out 63% of the unrelated pairs
# (Overall >= 3.5) and loses 2.6% of the same-story ones; 0.10 keeps out 39% (1.8% lost), 0.20 75% (3.3%).
MIN_SCORE = 0.15


def _default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/related-articles`, else `~/.cache/related-articles`"""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "related-articles"


LOG_URL_SCHEMES = ("postgresql://", "postgres://")  # a write log in PostgreSQL


class Settings(BaseSettings):
    """Configuration of the build and the service (env prefix `RELATED_`)."""

    # hide_input_in_errors: a bad value may be a URL with its password in it.
    model_config = SettingsConfigDict(
        env_prefix="RELATED_", extra="forbid", validate_default=True, hide_input_in_errors=True
    )

    bundles: Path = Field(Path("var/bundles"), description="Directory holding the published bundles.")
    model: str = Field(
        DEFAULT_MODEL,
        description="'default' (the bundled multilingual-e5-small), a local sentence-transformers "
        "folder, or a Hugging Face hub id (needs the hub).",
    )
    # int8 ONNX: 2.5 times torch's speed on articles, 3.1 times on headlines, at a cost of 0.003 in
    # Pearson on the SemEval development pairs (0.7344 against 0.7377).
    backend: Literal["torch", "onnx-int8"] = Field(
        "onnx-int8",
        description="How the model runs: 'onnx-int8' (exported once, int8 weights, ONNX Runtime) or "
        "'torch' (float32); their vectors differ slightly, so build and serve with the same one.",
    )
    fine_tuned: bool = Field(
        True,
        description="Merge the shipped LoRA adapter (fine-tuned on the SemEval development pairs) into the "
        "default model; false: the bundled e5-small as it is. Bundles record which, and refuse the other.",
    )
    adapter: Path | None = Field(
        None,
        description="A LoRA adapter made by `related-articles adapt` for your archive (a .safetensors file, "
        "written under <bundles>/adapters/), merged into the default model after the shipped one; the build "
        "and the service must both set it. Bundles record it, and refuse a model with another or none.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where the converted default model and its ONNX export live, and the evaluation's "
        "embedding cache.",
    )
    text_prefix: str | None = Field(
        None, description="Prefix put before every text; unset: 'query: ' for e5 models, else none."
    )
    max_seq_length: int = Field(256, ge=16, le=8192, description="Tokens per text; longer texts are cut.")
    batch_size: int = Field(32, ge=1, le=4096, description="Texts per encoding batch.")
    embedding_cache: Path | None = Field(
        None,
        description="Embedding cache (SQLite) by model and content; unset: <bundles>/embedding-cache.sqlite.",
    )
    index_kind: Literal["auto", "flat", "hnsw"] = Field(
        "auto",
        description="Build: 'flat' (exact search), 'hnsw' (approximate graph) or 'auto' (exact up to "
        "50,000 articles, HNSW beyond).",
    )
    keep_bundles: int = Field(3, ge=1, description="Published bundle versions kept on disk.")
    engine: Literal["local", "ray"] = Field(
        "local",
        description="Build: who embeds: 'local' (this process) or 'ray' (Ray Data actors, on a local Ray "
        "instance or the cluster at RELATED_RAY_ADDRESS).",
    )
    ray_address: str | None = Field(
        None, description="Ray engine: the cluster to join ('auto', 'host:6379'); unset: a local instance."
    )
    ray_actors: int | None = Field(
        None, ge=1, description="Ray engine: embedding actors (one model each); unset: as many as CPUs allow."
    )
    ray_cpus_per_actor: int = Field(1, ge=1, le=256, description="Ray engine: CPUs (and threads) per actor.")
    ray_work_dir: str | None = Field(
        None,
        description="Ray engine: where the Parquet shards go, a path or URI every node can reach "
        "(s3://..., a shared mount); unset: <bundles>/ray-work, enough for a local instance.",
    )
    skip_invalid: bool = Field(
        False, description="Build: skip bad rows (written to the rejects file) instead of failing."
    )
    rejects: Path | None = Field(
        None, description="Build: where skipped rows go; unset: <bundles>/rejects/<version>.jsonl."
    )
    host: str = Field("127.0.0.1", description="Address the service listens on.")
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Worker processes of `serve` on one port (a worker that dies is restarted); unset: "
        "one per core. They agree through the write log.",
    )
    port: int = Field(8000, ge=1, le=65535, description="Port the service listens on.")
    default_k: int = Field(4, ge=1, le=50, description="Related articles returned when k is not given.")
    # On the sample corpus republished copies score >= 0.995 with their original and distinct
    # articles of one story at most 0.968 (e5-small): 0.985 sits between.
    duplicate_threshold: float = Field(
        0.985, gt=0.0, le=1.0, description="Cosine at or above which a result counts as a republished copy."
    )
    # A republished copy holds nearly all of the shorter text: the sample's six copies (a word or a
    # phrase changed, "عاجل:" added) hold 0.93-1.0 of their original's word pairs. Follow-ups written on
    # one template (shared opening and closing, each with its own facts: 76% of words in common in the
    # tests' flood story) hold 0.69 of each other's.
    reprint_containment: float = Field(
        0.85,
        gt=0.0,
        le=1.0,
        description="Share of the shorter article's word shingles found in the other at or above which "
        "it is a republished copy (left out of lists, named in copies).",
    )
    response_cache: int = Field(
        10_000,
        ge=0,
        description="Rendered related lists of indexed articles kept in memory (0: none); a write drops "
        "only those it can change.",
    )
    reload_interval: float = Field(
        2.0, gt=0.0, description="Seconds between checks for a newly published bundle."
    )
    search_threads: int = Field(
        1, ge=1, description="FAISS threads per search (one query at a time is fastest)."
    )
    log_level: str = Field(
        "info", description="Log level of the service and the build: debug, info, warning, error or critical."
    )
    read_timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Seconds a client has to send a whole request (head and body); slower ones are closed.",
    )
    max_header_bytes: int = Field(
        32_768,
        ge=4096,
        le=1_048_576,
        description="Largest request line and headers together; larger ones get 431.",
    )
    max_request_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body the service reads; larger ones get 413."
    )
    # A batch of 1,000 Arabic articles of a few thousand characters each is several megabytes.
    max_write_bytes: int = Field(
        16 * 1_048_576,
        ge=1024,
        description="Largest body of a write that carries a valid API key (a batch); larger ones get 413.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys that may write (comma-separated, several so they can be rotated); none: no "
        "writes are accepted.",
    )
    write_log: str | None = Field(
        None,
        description="The write log: a SQLite file (unset: <bundles>/writes.sqlite), which the processes of "
        "one machine share, or a postgresql:// URL, which replicas on several machines share.",
    )
    accept_write_log_loss: bool = Field(
        False,
        description="Start (or build) even when the write log is missing, emptied, replaced or older than "
        "the one the bundles directory is bound to, and bind to it: the writes it lacks are lost. Once only.",
    )
    max_batch: int = Field(1000, ge=1, le=100_000, description="Most writes in one batch request.")
    log_format: Literal["text", "json"] | None = Field(
        None, description="'text' or 'json' lines; unset: JSON for the service, text for the batch commands."
    )
    console: bool = Field(
        False,
        description="Serve the console at /: a page to search titles and see an article's list, the parts "
        "of its scores and its story (read-only, no key).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins whose browsers may call the API (comma-separated); none by default.",
    )
    scorer: str = Field(
        "default",
        description="Relatedness scorer: 'default' (the shipped mix: e5 and shared character n-grams for "
        "articles in one language; e5, multilingual USE and n-grams across languages), 'cosine' (plain "
        "e5 cosine) or a scorer JSON file.",
    )
    rerank_depth: int = Field(
        50, ge=1, le=1000, description="Candidates FAISS retrieves for the scorer to rank."
    )
    # List policies: the defaults of every related list; requests may override some of them.
    lang_policy: LangPolicyValue = Field(
        "same_then_other",
        description="Languages of a list: same (only the article's language, or the request's `lang`); "
        "same_then_other (those first; other languages fill the list, marked, only when fewer than k of "
        "its own pass min_score); any (every language alike). An article without a language gets any.",
    )
    diversity: float = Field(
        0.05, ge=0, le=1, description="MMR trade-off: 0 ranks by score alone, 1 by novelty alone."
    )
    window_days: float | None = Field(
        365.0,
        gt=0,
        le=36500,
        description="Only articles published within this many days of the query's date ('none': no window).",
    )
    past_only: bool = Field(False, description="Only articles published before the query (archives).")
    min_score: float = Field(
        MIN_SCORE,
        ge=-1.0,
        le=1.0,
        description="Relatedness floor: an article whose relatedness is below it is not listed (a list "
        "comes back short rather than padded with unrelated articles).",
    )
    freshness_half_life_days: float = Field(
        14.0, gt=0, description="Date gap at which half the freshness penalty applies."
    )
    freshness_weight: float = Field(
        0.2, ge=0, description="Largest score taken off for a date gap (0 turns the decay off)."
    )

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @field_validator("window_days", mode="before")
    @classmethod
    def _no_window(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in {"", "none", "null"} else value

    @field_validator("write_log", mode="before")
    @classmethod
    def _log_path_or_postgresql(cls, value: object) -> object:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, str) and "://" in value and not value.startswith(LOG_URL_SCHEMES):
            raise ValueError("a SQLite file's path or a postgresql:// URL")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    def resolved_write_log(self) -> Path | str:
        """The write log: a PostgreSQL URL as given, or a path (by default a file beside the bundles)."""
        if not self.write_log:
            return self.bundles / "writes.sqlite"
        location = str(self.write_log)  # a Path too, from model_copy (which does not validate)
        return location if location.startswith(LOG_URL_SCHEMES) else Path(location).expanduser()

    def resolved_ray_work_dir(self) -> str:
        """Where the Ray engine's shards go, defaulting to a directory beside the bundles."""
        if self.ray_work_dir and "://" in self.ray_work_dir:
            return self.ray_work_dir
        return str(Path(self.ray_work_dir or self.bundles / "ray-work").expanduser().resolve())

    def resolved_embedding_cache(self) -> Path:
        """The embedding cache path, defaulting to a file beside the bundles."""
        return self.embedding_cache or self.bundles / "embedding-cache.sqlite"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (None values are ignored)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
