"""The batch rebuild end to end: counts, rejects, the embedding cache, failures that leave the live bundle."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embeddings.cli import sample_corpus
from embeddings.errors import BuildError, CacheError, InvalidArticlesError
from embeddings.index.bundle import file_sha256
from embeddings.index.publish import current_target, load_current
from embeddings.model.encoders import SentenceTransformerEncoder
from embeddings.model.signals import UseEncoder
from embeddings.settings import Settings
from service.cli import main
from tests.support.corpus import build_with, write_jsonl
from tests.support.fakes import FailingEncoder, HashingEncoder

ROWS = [{"id": f"n{i}", "title": f"headline {i}", "body": f"body of story {i % 4}"} for i in range(600)]


def test_sample_build_with_the_real_model(
    sample_bundles: Path, encoder: SentenceTransformerEncoder, sample_rows: list[dict[str, object]]
) -> None:
    bundle = load_current(sample_bundles, encoder.spec)
    manifest = bundle.manifest
    assert manifest["counts"]["articles"] == len(sample_rows) == len(bundle.index) == len(bundle.store)
    assert manifest["counts"]["rejected"] == 0
    assert manifest["model"] == encoder.spec.as_dict()
    assert manifest["model"]["dimension"] == 384
    assert manifest["input"]["sha256"] == file_sha256(sample_corpus())
    assert {"faiss-cpu", "sentence-transformers", "torch", "numpy"} <= set(manifest["libraries"])
    stored = bundle.store.get(str(sample_rows[0]["id"]))
    assert stored is not None and stored.title == sample_rows[0]["title"]


def test_invalid_rows_fail_the_build_by_default(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    encoder = HashingEncoder()
    build_with(settings, write_jsonl(tmp_path / "good.jsonl", ROWS[:10]), encoder)
    live = current_target(settings.bundles)
    bad = write_jsonl(tmp_path / "bad.jsonl", [*ROWS[:10], {"id": "x", "title": ""}, "{oops"])
    with pytest.raises(InvalidArticlesError) as caught:
        build_with(settings, bad, encoder)
    assert [e.line for e in caught.value.errors] == [11, 12]
    assert "line 11" in str(caught.value)
    assert current_target(settings.bundles) == live


def test_skip_invalid_writes_rejects(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(skip_invalid=True)
    bad = write_jsonl(tmp_path / "bad.jsonl", [*ROWS[:10], {"id": "x", "title": ""}, "{oops"])
    report = build_with(settings, bad, HashingEncoder())
    assert (report.read, report.indexed, report.rejected) == (12, 10, 2)
    assert report.rejects_file is not None
    rejects = [
        json.loads(line) for line in Path(report.rejects_file).read_text(encoding="utf-8").splitlines()
    ]
    assert [r["line"] for r in rejects] == [11, 12]
    assert rejects[0]["row"] == {"id": "x", "title": ""}


def test_an_input_with_no_valid_rows_fails(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(skip_invalid=True)
    with pytest.raises(BuildError, match="no valid articles"):
        build_with(settings, write_jsonl(tmp_path / "bad.jsonl", ["{oops"]), HashingEncoder())
    assert current_target(settings.bundles) is None


def test_failed_build_leaves_the_live_bundle_untouched(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    source = write_jsonl(tmp_path / "a.jsonl", ROWS)
    build_with(settings, source, HashingEncoder())
    live = current_target(settings.bundles)
    assert live is not None
    before = {p.name: p.read_bytes() for p in live.iterdir()}
    changed = write_jsonl(tmp_path / "b.jsonl", [{**r, "body": "changed " + r["body"]} for r in ROWS])
    with pytest.raises(RuntimeError, match="simulated"):
        build_with(settings, changed, FailingEncoder(fail_on_call=2))
    assert current_target(settings.bundles) == live
    assert {p.name: p.read_bytes() for p in live.iterdir()} == before
    assert not [p for p in (settings.bundles / "versions").iterdir() if p.name.startswith(".tmp-")]
    # The chunk embedded before the failure is cached: the next build embeds only the rest.
    report = build_with(settings, changed, HashingEncoder())
    assert report.reused == 256 and report.embedded == len(ROWS) - 256


def test_rebuild_embeds_only_new_or_changed(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    first = build_with(settings, write_jsonl(tmp_path / "a.jsonl", ROWS[:20]), HashingEncoder())
    assert (first.embedded, first.reused) == (20, 0)
    rows = [*ROWS[:20], {"id": "new", "title": "brand new"}]
    rows[3] = {**rows[3], "title": "edited headline"}
    second = build_with(settings, write_jsonl(tmp_path / "b.jsonl", rows), HashingEncoder())
    assert (second.embedded, second.reused, second.indexed) == (2, 19, 21)


def test_identical_texts_are_embedded_once(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    rows = [{"id": "a", "title": "same", "body": "text"}, {"id": "b", "title": "same", "body": "text"}]
    report = build_with(make_settings(), write_jsonl(tmp_path / "a.jsonl", rows), HashingEncoder())
    assert (report.embedded, report.reused, report.indexed) == (1, 0, 2)


def test_cli_build_reports_errors_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "1", "title": "ok"}, {"id": "2"}])
    code = main(["build", "--input", str(bad), "--bundles", str(tmp_path / "b"), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "1 invalid row(s)" in err and "line 2: title" in err
    assert main(["build", "--input", str(tmp_path / "none.jsonl"), "--bundles", str(tmp_path / "b")]) == 1
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.model  # the real USE
def test_use_with_more_threads_makes_the_same_vectors() -> None:
    texts = ["خبر عن الطقس في الرياض", "Weather news from Riyadh", "x" * 1500]
    one, two = UseEncoder(1).encode(texts), UseEncoder(2).encode(texts)
    assert np.allclose(one, two, atol=1e-6) and one.shape == (3, 512)


def test_a_damaged_embedding_cache_fails_the_build_in_one_line(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"not a database " * 1000)
    settings = make_settings(embedding_cache=cache)
    with pytest.raises(CacheError, match="only a cache: delete it") as raised:
        build_with(settings, write_jsonl(tmp_path / "rows.jsonl", ROWS[:20]), HashingEncoder())
    assert "\n" not in str(raised.value) and current_target(settings.bundles) is None


def test_a_full_device_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "1", "title": "ok"}, {"id": "2"}])
    argv = ["build", "--input", str(bad), "--bundles", str(tmp_path / "b"), "--skip-invalid"]
    assert main([*argv, "--rejects", "/dev/full", "--no-progress"]) == 1  # /dev/full: ENOSPC
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "related-articles build: error: [Errno 28] No space left on device"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_bundle_that_does_not_fit_leaves_the_live_one(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    few = write_jsonl(tmp_path / "few.jsonl", ROWS[:20])
    sized = make_settings(bundles=tmp_path / "sized", embedding_cache=tmp_path / "cache.sqlite")
    size = sum(p.stat().st_size for p in Path(build_with(sized, few, HashingEncoder()).path).iterdir())
    small = tmp_path / "small"
    small.mkdir()
    # Room for the small bundle and 1 MB more: the 600-article one needs about 3 MB more.
    options = f"size={size + 1_048_576}"
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(small)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        settings = sized.model_copy(update={"bundles": small / "bundles"})
        build_with(settings, few, HashingEncoder())
        live = current_target(settings.bundles)
        with pytest.raises(BuildError, match=r"cannot write bundle .* bytes were left free") as raised:
            build_with(settings, write_jsonl(tmp_path / "many.jsonl", ROWS), HashingEncoder())
        assert "\n" not in str(raised.value)
        assert current_target(settings.bundles) == live
        assert not [p for p in (settings.bundles / "versions").iterdir() if p.name.startswith(".tmp-")]
    finally:
        subprocess.run(["umount", str(small)], check=True)
