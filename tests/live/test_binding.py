"""The binding of a bundles directory to its write log: what it expects, and that it never goes back."""

from __future__ import annotations

from pathlib import Path

from embeddings.live.binding import Binding, expected, read_binding, write_binding


def test_the_binding_never_goes_back_for_the_same_log(tmp_path: Path) -> None:
    write_binding(tmp_path, Binding("a", 10))
    write_binding(tmp_path, Binding("a", 9))  # a process that acknowledged #9 after another's #10
    assert read_binding(tmp_path) == Binding("a", 10)
    write_binding(tmp_path, Binding("b", 1))  # another log (after an accepted loss) replaces it
    assert read_binding(tmp_path) == Binding("b", 1)
    write_binding(tmp_path, Binding("b", 0), rebind=True)
    assert read_binding(tmp_path) == Binding("b", 0)
    assert not list(tmp_path.glob(".write-log.json.*.tmp"))


def test_the_published_bundle_counts_beside_the_binding(tmp_path: Path) -> None:
    assert expected(tmp_path, {}) is None  # a first start
    assert expected(tmp_path, {"log_id": "a", "folded_through": 7}) == Binding("a", 7)
    write_binding(tmp_path, Binding("a", 5))
    assert expected(tmp_path, {"log_id": "a", "folded_through": 7}) == Binding("a", 7)
    assert expected(tmp_path, {"log_id": "a", "folded_through": 3}) == Binding("a", 5)
    (tmp_path / "write-log.json").write_text("{", encoding="utf-8")
    assert expected(tmp_path, {"log_id": "a", "folded_through": 3}, accept_loss=True) == Binding("a", 3)
