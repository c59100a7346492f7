"""Fault cases past one machine: replicas sharing a PostgreSQL write log, killed, and its backends killed."""

from __future__ import annotations

import signal
import statistics
import time

import httpx

from tests.support.faults.harness import AUTH, Case, Lab, Outcome, Server, outcome
from tests.support.wait import poll

STORY = {"title": "تحقيق جديد في محاولة الاغتيال على طريق السدر", "lang": "ar"}


def replicas(lab: Lab, count: int = 2) -> tuple[list[Server], str]:
    """`count` ready servers on one bundles directory (as if shared), writing to one new database."""
    url = lab.postgresql().new_database()
    bundles = lab.copy()
    started = [lab.start(bundles, RELATED_WRITE_LOG=url) for _ in range(count)]
    return [s.ready() for s in started], url


def seen_after(server: Server, article_id: str, seconds: float = 10.0) -> float | None:
    """Milliseconds until `server` answers 200 for the article (None if it never does in `seconds`)."""
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        try:
            if server.client.get(f"/v1/articles/{article_id}").status_code == 200:
                return (time.perf_counter() - started) * 1000
        except httpx.TransportError:
            pass
        time.sleep(0.001)  # the lag is measured: a look every millisecond
    return None


def put(server: Server, article_id: str) -> bool:
    """Whether the put was acknowledged (a connection cut is not)."""
    try:
        return server.client.put(f"/v1/articles/{article_id}", json=STORY, headers=AUTH).status_code == 200
    except httpx.TransportError:
        return False


def replicas_share_postgresql(lab: Lab) -> Outcome:
    """Two replicas on one PostgreSQL log: each write through one is served by the other; a delete too."""
    (one, other), _ = replicas(lab)
    lags = []
    for i in range(20):
        writer, reader = (one, other) if i % 2 else (other, one)
        assert put(writer, f"rep-{i}")
        lags.append(seen_after(reader, f"rep-{i}"))
    deleted = one.client.delete("/v1/articles/rep-0", headers=AUTH).status_code
    answers = [0]

    def gone_there() -> bool:
        answers.append(other.client.get("/v1/articles/rep-0").status_code)
        return answers[-1] == 404

    poll(gone_there, 10)
    gone = answers[-1]
    seen = [lag for lag in lags if lag is not None]
    ok = len(seen) == 20 and deleted == 200 and gone == 404
    median = f"{statistics.median(seen):.1f}" if seen else "-"
    longest = max(seen, default=0)
    observed = f"{len(seen)} of 20 (lag median {median} ms, max {longest:.1f} ms); delete then {gone}"
    return outcome(
        "replicas_share_postgresql", "20 of 20 writes served by the other replica; delete gone", observed, ok
    )


def replica_killed(lab: Lab) -> Outcome:
    """kill -9 of a replica after acknowledged writes: the other serves them all, and so does its restart."""
    (one, other), url = replicas(lab)
    acknowledged = [f"rk-{i}" for i in range(10) if put(one, f"rk-{i}")]
    one.stop(signal.SIGKILL)
    acknowledged += [f"rk-{i}" for i in range(10, 15) if put(other, f"rk-{i}")]
    missing_other = [i for i in acknowledged if seen_after(other, i, 5) is None]
    again = lab.start(one.bundles, RELATED_WRITE_LOG=url).ready()
    missing_again = [i for i in acknowledged if seen_after(again, i, 5) is None]
    ok = len(acknowledged) == 15 and not missing_other and not missing_again
    observed = (
        f"{len(acknowledged)} acknowledged; missing from the other {len(missing_other)}, "
        f"from the restarted one {len(missing_again)}"
    )
    return outcome("replica_killed", "15 acknowledged, none missing from either replica", observed, ok)


def postgresql_backend_killed(lab: Lab) -> Outcome:
    """kill -9 of PostgreSQL's backends between writes: appends wait out its recovery; nothing is lost."""
    (one, other), url = replicas(lab)
    cluster = lab.postgresql()
    database = url.rsplit("/", 1)[1]
    acknowledged = [f"pk-{i}" for i in range(5) if put(one, f"pk-{i}")]
    killed = cluster.client_backends(database)
    if killed:
        cluster.kill_backend(killed[0])  # the postmaster then ends every session and recovers
    failed = 0
    for i in range(5, 15):
        writer = one if i % 2 else other
        if put(writer, f"pk-{i}"):
            acknowledged.append(f"pk-{i}")
        else:
            failed += 1
    missing = [i for i in acknowledged for s in (one, other) if seen_after(s, i, 10) is None]
    ready = [s.client.get("/readyz").status_code for s in (one, other)]
    ok = bool(killed) and not missing and failed == 0 and ready == [200, 200]
    observed = (
        f"backend killed: {bool(killed)}; {len(acknowledged)} acknowledged, {failed} failed, "
        f"{len(missing)} missing; /readyz {ready}"
    )
    return outcome(
        "postgresql_backend_killed", "every write acknowledged and served by both; both ready", observed, ok
    )


CASES: list[Case] = [replicas_share_postgresql, replica_killed, postgresql_backend_killed]
