"""Lists over written articles: template follow-ups listed, republished copies named, the floor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals

KEY = "list-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(tmp_path: Path, make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """A running app over a fake-encoder bundle of the test corpus, taking writes with KEY."""
    settings = make_settings(api_keys=KEY, window_days=None)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())
    with TestClient(create_app(settings, fake_signals(HashingEncoder()))) as client:
        yield client


def _flood_follow_up(n: int) -> dict[str, Any]:
    """A follow-up on one template: shared opening and closing, its own district, detail and figure."""
    district, detail = FLOOD_DISTRICTS[n]
    body = (
        "فرق الدفاع المدني تواصل أعمال الإنقاذ والإخلاء منذ ساعات الصباح الباكر "
        f"في حي {district} حيث {detail} وبلغ عدد المتضررين {40 + 37 * n} أسرة بحسب الحصر الأولي "
        "للجنة الميدانية ودعت الجهات المختصة السكان إلى الابتعاد عن مجاري الأودية وعدم المجازفة "
        "بعبور الطرق المغمورة"
    )
    return {
        "id": f"flood-{n}",
        "title": f"سيول جدة: الإنقاذ مستمر في حي {district}",
        "body": body,
        "lang": "ar",
    }


FLOOD_DISTRICTS = [
    ("الصفا", "غمرت المياه الطوابق الأرضية لعشرات المنازل وانقطعت الكهرباء عن شارع التحلية"),
    ("قويزة", "انهار جسر صغير فوق مجرى السيل وتعطلت حركة المرور على طريق الحرمين"),
    ("الحرازات", "علقت سيارات عدة في نفق الطريق الدائري الشرقي ونقل سائقان إلى المستشفى"),
    ("الروابي", "تصدعت جدران مدرسة ابتدائية وعلقت الدراسة في المدارس المجاورة ثلاثة أيام"),
    ("النسيم", "تجمعت المياه في الميدان الرئيسي وأغلقت المحلات التجارية أبوابها منذ الظهر"),
    ("المنتزهات", "جرفت السيول خزانات المياه وانقطعت شبكة الاتصالات عن أجزاء واسعة من الحي"),
]


def test_template_follow_ups_list_each_other_and_a_copy_is_named(client: TestClient) -> None:
    stories = [_flood_follow_up(n) for n in range(len(FLOOD_DISTRICTS))]
    copy = {**stories[0], "id": "flood-0-copy", "title": "عاجل: " + stories[0]["title"]}
    batch = client.post("/v1/articles/batch", json={"upsert": [*stories, copy]}, headers=AUTH)
    assert batch.status_code == 200, batch.text
    response = client.get("/v1/articles/flood-0/related", params={"k": 10, "lang_policy": "any"})
    listed = [r["id"] for r in response.json()["related"]]
    # Each follow-up has its own facts: every one is listed, none taken for a reprint.
    assert {s["id"] for s in stories[1:]} <= set(listed)
    # The republished copy is named as the article's own copy, and left out of its list.
    assert "flood-0-copy" not in listed
    assert response.json()["article"]["copies"] == ["flood-0-copy"]
    for item in response.json()["related"]:
        assert "flood-0-copy" not in item["copies"]


def test_the_relatedness_floor_shortens_lists_rather_than_pad_them(client: TestClient) -> None:
    def listed(**params: Any) -> list[dict[str, Any]]:
        response = client.get("/v1/articles/a00/related", params={"k": 10, "explain": "true", **params})
        assert response.status_code == 200, response.text
        return list(response.json()["related"])

    everything = listed(min_score=-1)
    assert len(everything) == 10  # k is met whenever enough articles pass
    relatedness = sorted((r["explain"]["relatedness"] for r in everything), reverse=True)
    floor = (relatedness[2] + relatedness[3]) / 2
    above = listed(min_score=floor)
    assert 3 <= len(above) < 10 and all(r["explain"]["relatedness"] >= floor for r in above)
    assert client.get("/v1/articles/a00/related", params={"min_score": 2}).status_code == 422
    preview = client.post("/v1/related", json={"title": "dockers walk out", "min_score": 1.0, "k": 5})
    assert preview.status_code == 200 and preview.json()["related"] == []
