"""Reading and validating archives: every bad row is reported with its line number."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from embeddings.articles.readers import parse_field_map, read_articles
from embeddings.errors import InputError
from tests.support.corpus import write_jsonl

GOOD = {
    "id": "a1",
    "title": "عنوان الخبر",
    "body": "نص الخبر.",
    "lang": "AR",
    "published_at": "2026-03-01T09:00:00+03:00",
}


def test_reads_valid_rows_and_normalizes_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [GOOD, {"id": "a2", "title": "  Only a title  ", "extra": 1}])
    result = read_articles(path)
    assert result.errors == []
    first, second = result.articles
    assert first.lang == "ar"
    assert first.published_at is not None and first.published_at.utcoffset() is not None
    assert second.title == "Only a title"
    assert second.body == ""


def test_each_bad_row_is_reported_with_its_line(tmp_path: Path) -> None:
    rows = [
        GOOD,  # 1 ok
        "{not json",  # 2
        "[1, 2]",  # 3
        {"id": "a3"},  # 4 no title
        {"id": "a4", "title": "   "},  # 5 empty title
        {"id": "a5", "title": "t", "lang": "arabic"},  # 6
        {"id": "a6", "title": "t", "published_at": "yesterday"},  # 7
        {"id": "a1", "title": "again"},  # 8 duplicate id
        {"id": "bad\nid", "title": "t"},  # 9
        {"id": "x" * 300, "title": "t"},  # 10
    ]
    result = read_articles(write_jsonl(tmp_path / "a.jsonl", rows))
    assert [a.id for a in result.articles] == ["a1"]
    by_line = {e.line: e.message for e in result.errors}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "not valid JSON" in by_line[2]
    assert "JSON object" in by_line[3]
    assert by_line[4].startswith("title")
    assert by_line[5].startswith("title")
    assert "ISO 639-1" in by_line[6]
    assert by_line[7].startswith("published_at")
    assert "duplicate id 'a1' (first at a.jsonl:line 1)" in by_line[8]
    assert "control characters" in by_line[9]
    assert by_line[10].startswith("id")
    assert result.rows_read == 10
    assert len(result.rejected_rows) == 9


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n" + json.dumps(GOOD) + "\n\n", encoding="utf-8")
    result = read_articles(path)
    assert len(result.articles) == 1 and result.rows_read == 1


def test_csv_with_keywords_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "id,title,body,keywords\n"
        'c1,"Title, with comma","Body\nover two lines","gold; oil"\n'
        "c2,,missing title,\n"
        'c3,Fine,body,"[""a"", ""b""]",surplus\n'
        "c4,Good,body,\n",
        encoding="utf-8",
    )
    result = read_articles(path)
    assert [a.id for a in result.articles] == ["c1", "c4"]
    assert result.articles[0].keywords == ("gold", "oil")
    assert result.articles[0].body == "Body\nover two lines"
    assert [e.line for e in result.errors] == [4, 5]
    assert "more cell" in result.errors[1].message


def test_gzip_and_field_map(tmp_path: Path) -> None:
    path = tmp_path / "archive.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(
            json.dumps({"id": "g1", "title": "T", "content": "C", "date_extracted": "2015-08-01 10:00:00"})
            + "\n"
        )
    result = read_articles(path, parse_field_map("body=content,published_at=date_extracted"))
    (article,) = result.articles
    assert article.body == "C"
    assert (
        article.published_at is not None and article.published_at.isoformat() == "2015-08-01T10:00:00+00:00"
    )


def test_bad_field_map_is_refused() -> None:
    with pytest.raises(InputError, match="not one of"):
        parse_field_map("headline=title")
    with pytest.raises(InputError, match="FIELD=COLUMN"):
        parse_field_map("body")


def test_not_utf8_and_unknown_format_are_input_errors(tmp_path: Path) -> None:
    latin = tmp_path / "a.jsonl"
    latin.write_bytes(b'{"id": "1", "title": "caf\xe9"}\n')
    with pytest.raises(InputError, match="not UTF-8"):
        read_articles(latin)
    with pytest.raises(InputError, match="unknown input format"):
        read_articles(tmp_path / "a.xml")
    with pytest.raises(InputError, match="cannot read"):
        read_articles(tmp_path / "missing.jsonl")


def test_reads_the_saudinewsnet_archive_with_a_field_map(shared_data: Path) -> None:
    path = shared_data / "saudinewsnet" / "saudinewsnet_2015-08-01_to_08-11.jsonl.gz"
    result = read_articles(
        path, parse_field_map("body=content,published_at=date_extracted,section=section_from_url")
    )
    assert result.rows_read == 15_624
    assert len(result.articles) == 15_623
    (error,) = result.errors  # one row of the archive has an empty title
    assert error.message.startswith("title")
    assert all(a.lang == "ar" and a.published_at is not None for a in result.articles)


def test_csv_with_bom_and_blank_lines_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("\ufeffid,title\n\nb1,First\n\n\nb2,\nb3,Third\n".encode())
    result = read_articles(path)
    assert [a.id for a in result.articles] == ["b1", "b3"]
    assert [e.line for e in result.errors] == [6]


def test_numbers_are_not_dates(tmp_path: Path) -> None:
    rows = [
        {"id": "1", "title": "t", "published_at": "2026"},
        {"id": "2", "title": "t", "published_at": 1700000000},
    ]
    result = read_articles(write_jsonl(tmp_path / "a.jsonl", rows))
    assert [e.line for e in result.errors] == [1, 2]
    assert all("ISO 8601" in e.message for e in result.errors)


def test_field_map_naming_a_missing_column_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "title": "t", "body": "kept"}])
    with pytest.raises(InputError, match="no row has: content"):
        read_articles(path, parse_field_map("body=content"))


def test_rejected_unparsable_rows_keep_their_text(tmp_path: Path) -> None:
    result = read_articles(write_jsonl(tmp_path / "a.jsonl", ["{oops", "[1]"]))
    assert [r["raw"] for r in result.rejected_rows] == ["{oops", "[1]"]


def test_a_directory_of_files_is_one_input(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    write_jsonl(archive / "2026-03.jsonl", [GOOD])
    (archive / "2026-04.csv").write_text("id,title\nb1,Second\na1,Duplicate\n", encoding="utf-8")
    (archive / "SOURCE.md").write_text("not data", encoding="utf-8")
    result = read_articles(archive)
    assert [a.id for a in result.articles] == ["a1", "b1"]
    (error,) = result.errors
    assert (
        str(error) == f"{archive / '2026-04.csv'}:line 3: duplicate id 'a1' (first at 2026-03.jsonl:line 1)"
    )
    with pytest.raises(InputError, match=r"no \.jsonl"):
        read_articles(_empty_dir(tmp_path))


def _empty_dir(tmp_path: Path) -> Path:
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty
