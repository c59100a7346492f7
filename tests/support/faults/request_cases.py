"""Fault cases of request validation: URLs, list caps, dates, numbers, media types, ids and log lines."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.support.faults.harness import AUTH, Case, Lab, Outcome, Server, outcome
from tests.support.wait import poll

STORY = {"title": "req: harbour strike dockers walk out", "body": "harbour strike dockers news", "lang": "en"}


def _answer(response: httpx.Response) -> str:
    """Status and error code of a response ("200" when it is not an error)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body["error"]["code"] if isinstance(body, dict) and isinstance(body.get("error"), dict) else ""
    shaped = "" if response.status_code < 400 or code else " (not the JSON shape)"
    return f"{response.status_code} {code}".strip() + shaped


def _raw(server: Server, method: str, target: str, body: bytes = b"", **headers: str) -> tuple[int, str]:
    """Send a request target as it is (no client re-encodes it): the status and the error code."""
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: faults",
        "Connection: close",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    answer = server.raw("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)
    head, _, payload = answer.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    try:
        code = str(json.loads(payload)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        code = ""
    return status, code


def _refusals(case: str, expected: str, answers: list[str]) -> Outcome:
    """One line for several requests that must each get `expected`."""
    observed = "; ".join(answers) if len(set(answers)) > 1 else f"{answers[0]} x{len(answers)}"
    return outcome(case, expected, observed, all(a == expected for a in answers))


def _cleanup(server: Server, ids: list[str]) -> None:
    """Delete what a case wrote when the service took a write it should have refused."""
    for ident in ids:
        if server.client.get(f"/v1/articles/{ident}").status_code == 200:
            server.client.delete(f"/v1/articles/{ident}", headers=AUTH)


def req_invalid_utf8_path(lab: Lab) -> Outcome:
    """Ids with %FF, %FE and %ED%A0%80: all were written as the same U+FFFD id, overwriting each other."""
    server = lab.server
    body = json.dumps(STORY).encode()
    answers = []
    for encoded in ("%FF", "%FE", "%ED%A0%80"):
        status, code = _raw(
            server, "PUT", f"/v1/articles/req-{encoded}", body, Content_Type="application/json", **AUTH
        )
        answers.append(f"{status} {code}")
        status, code = _raw(server, "GET", f"/v1/articles/req-{encoded}")
        answers.append(f"{status} {code}")
    _cleanup(server, ["req-\ufffd", "req-\ufffd\ufffd\ufffd"])
    return _refusals("req_invalid_utf8_path", "400 invalid_url", answers)


def req_95000_sections(lab: Lab) -> Outcome:
    """A preview (no key needed) filtered by 95,000 sections: 1.2-7.2 s of CPU each before the caps."""
    client = lab.server.client
    request: dict[str, Any] = {"title": "harbour strike", "section": [f"s{i}" for i in range(95_000)]}
    started = time.perf_counter()
    listed = client.post("/v1/related", json=request)
    seconds = time.perf_counter() - started
    joined = client.post("/v1/related", json={**request, "section": ",".join(request["section"])})
    query = client.get("/v1/articles/ar-0001/related", params={"section": ",".join(request["section"][:101])})
    answers = [_answer(listed), _answer(joined), _answer(query)]
    observed = f"{'; '.join(answers)}; the list in {seconds:.2f} s"
    passed = all(a.startswith("422 invalid_") and "not the JSON" not in a for a in answers)
    return outcome("req_95000_sections", "422 invalid_request/invalid_query", observed, passed)


def req_dates_and_numbers(lab: Lab) -> Outcome:
    """Epoch numbers and years outside 1000-9998 as preview dates and filters; `k: true` taken as 1."""
    client = lab.server.client
    bodies: list[dict[str, Any]] = [
        {"published_at": 1700000000},
        {"since": 1700000000},
        {"until": "0999-12-31"},
        {"k": True},
        {"diversity": True},
    ]
    answers = [_answer(client.post("/v1/related", json={"title": "harbour strike", **b})) for b in bodies]
    for params in ({"since": "1700000000"}, {"until": "9999-12-31T23:59:59-05:00"}):
        answers.append(_answer(client.get("/v1/articles/ar-0001/related", params=params)))
    return _refusals("req_dates_and_numbers", "422 invalid_request", answers)


def req_keyword_caps(lab: Lab) -> Outcome:
    """A written article with a keyword of 201 characters, or 101 keywords."""
    server = lab.server
    answers = []
    for keywords in (["k" * 201], ["k"] * 101):
        put = server.client.put("/v1/articles/req-kw", json={**STORY, "keywords": keywords}, headers=AUTH)
        answers.append(_answer(put))
    _cleanup(server, ["req-kw"])
    return _refusals("req_keyword_caps", "422 invalid_request", answers)


def req_zero_width_title(lab: Lab) -> Outcome:
    """Titles of zero-width characters only (U+200B, U+2060, U+FEFF): refused like an empty one."""
    server = lab.server
    answers = []
    for title in ("\u200b\u200c\u200d", "\u2060", "\ufeff \u200f"):
        put = server.client.put("/v1/articles/req-zw", json={"title": title}, headers=AUTH)
        answers += [_answer(put), _answer(server.client.post("/v1/related", json={"title": title}))]
    _cleanup(server, ["req-zw"])
    return _refusals("req_zero_width_title", "422 invalid_request", answers)


def req_not_json(lab: Lab) -> Outcome:
    """A JSON body sent without Content-Type, or as text/plain (FastAPI's answer was 422)."""
    server = lab.server
    body = json.dumps({"title": "harbour strike"}).encode()
    answers = []
    for headers in ({}, {"Content_Type": "text/plain"}):
        status, code = _raw(server, "POST", "/v1/related", body, **headers)
        answers.append(f"{status} {code}")
        status, code = _raw(server, "PUT", "/v1/articles/req-ct", body, **headers, **AUTH)
        answers.append(f"{status} {code}")
    _cleanup(server, ["req-ct"])
    return _refusals("req_not_json", "415 unsupported_media_type", answers)


def req_deep_json(lab: Lab) -> Outcome:
    """100,000 nested `[` as a preview's body, alone or as a field (its message said "not valid UTF-8")."""
    client = lab.server.client
    answers = []
    for body in (b"[" * 100_000, b'{"title": ' + b"[" * 100_000):
        response = client.post("/v1/related", content=body, headers={"Content-Type": "application/json"})
        nested = "nested too deeply" in response.text
        answers.append(_answer(response) + (", nested too deeply" if nested else f": {response.text[:80]}"))
    return _refusals("req_deep_json", "400 invalid_body, nested too deeply", answers)


def req_head_health(lab: Lab) -> Outcome:
    """HEAD on /healthz and /readyz, as load balancers probe (405 before)."""
    client = lab.server.client
    answers = [_answer(client.head(path)) for path in ("/healthz", "/readyz")]
    return _refusals("req_head_health", "200", answers)


def req_id_with_slash(lab: Lab) -> Outcome:
    """Ids ending in /related: one path segment when `/` is sent as %2F; the raw path is the list's route."""
    client = lab.server.client
    answers = [_answer(client.put("/v1/articles/req-x/related", json=STORY, headers=AUTH))]  # 405
    batch = {"upsert": [{"id": "req-y/related", **STORY}]}
    answers.append(_answer(client.put("/v1/articles/req-x%2Frelated", json=STORY, headers=AUTH)))
    answers.append(_answer(client.post("/v1/articles/batch", json=batch, headers=AUTH)))
    for ident in ("req-x%2Frelated", "req-y%2Frelated"):
        read = client.get(f"/v1/articles/{ident}")
        listed = client.get(f"/v1/articles/{ident}/related")
        answers.append(f"{_answer(read)} {read.json().get('id')}, list {listed.json()['article']['id']}")
        client.delete(f"/v1/articles/{ident}", headers=AUTH)
    expected = ["405 method_not_allowed", "200", "200", "200 req-x/related, list req-x/related"]
    expected.append("200 req-y/related, list req-y/related")
    observed = "; ".join(answers)
    return outcome("req_id_with_slash", "; ".join(expected), observed, answers == expected)


def req_log_line_forged(lab: Lab) -> Outcome:
    """A %0A in a path under RELATED_LOG_FORMAT=text: the access log printed a line the client wrote."""
    server = lab.start(lab.copy(), RELATED_LOG_FORMAT="text", RELATED_LOG_LEVEL="info").ready()
    try:
        status, _ = _raw(server, "GET", "/v1/articles/req-x%0D%0AWARNING%20forged:%20req-line/related")
        poll(lambda: "req-line" in server.log_text(), 10)  # the access log line, forged or escaped
        lines = server.log_text().splitlines()
    finally:
        server.stop()
    forged = [line for line in lines if line.startswith("WARNING forged")]
    escaped = [line for line in lines if "req-x\\r\\nWARNING forged" in line]
    observed = f"{status}; forged lines {len(forged)}, escaped lines {len(escaped)}"
    passed = status == 422 and not forged and len(escaped) == 1  # 422: an id holds no control character
    return outcome("req_log_line_forged", "422; forged lines 0, escaped lines 1", observed, passed)


CASES: list[Case] = [
    req_invalid_utf8_path,
    req_95000_sections,
    req_dates_and_numbers,
    req_keyword_caps,
    req_zero_width_title,
    req_not_json,
    req_deep_json,
    req_head_health,
    req_id_with_slash,
    req_log_line_forged,
]
SLOW_CASES: list[Case] = []
