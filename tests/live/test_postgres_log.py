"""The PostgreSQL write log on a real server: order, notifications, killed or stopped backends, loss."""

from __future__ import annotations

import os
import signal
import socket
import threading

import psutil
import psycopg
import pytest

from embeddings.errors import WriteLogLostError, WriteLogUnavailableError
from embeddings.live.binding import Binding, open_bound, write_binding
from embeddings.live.postgres_log import (
    HEARTBEAT,
    HEARTBEAT_DEADLINE,
    LISTENER_NAME,
    SCHEMA,
    PostgresWriteLog,
)
from embeddings.live.write_log import log_exists, log_name, open_log
from embeddings.live.writes import delete
from tests.support.pg_cluster import Cluster
from tests.support.wait import wait_for


def test_replicas_append_in_number_order_and_a_reader_misses_none(postgresql: Cluster) -> None:
    url = postgresql.new_database()
    replicas = [open_log(url), open_log(url)]
    reader = open_log(url, create=False)
    seen: list[int] = []
    done = threading.Event()

    def follow() -> None:  # reads only what is after the last number it has seen, as a service does
        while not done.is_set() or reader.last_seq() > (seen[-1] if seen else 0):
            seen.extend(w.seq for w in reader.read(after=seen[-1] if seen else 0))

    def write(log_index: int) -> None:
        for i in range(40):
            replicas[log_index].append([delete(f"r{log_index}-{i}"), delete(f"r{log_index}-{i}-b")])

    follower = threading.Thread(target=follow)
    follower.start()
    writers = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    follower.join()
    assert seen == sorted(seen) and len(seen) == 160 == len(set(seen))
    for log in (*replicas, reader):
        log.close()


def test_another_replica_hears_of_a_write_at_once(postgresql: Cluster) -> None:
    url = postgresql.new_database()
    one, other = open_log(url), open_log(url)
    # Each listener counts its connection once it listens (see data_version).
    wait_for(lambda: one.data_version() > 0 and other.data_version() > 0, 10, "both listening")
    before = other.data_version()
    one.append([delete("x")])
    wait_for(lambda: other.data_version() != before, 5, "the notification")
    assert [w.article_id for w in other.read()] == ["x"]
    one.close()
    other.close()


def test_an_append_survives_its_backend_killed_and_is_logged_once(postgresql: Cluster) -> None:
    url = postgresql.new_database()
    log = open_log(url)
    log.append([delete("before")])
    database = url.rsplit("/", 1)[1]
    for pid in postgresql.client_backends(database):
        postgresql.kill_backend(pid)  # the postmaster ends every session and recovers
    logged = log.append([delete("after-1"), delete("after-2")])  # retried until it is back
    ids = [w.article_id for w in log.read()]
    assert ids == ["before", "after-1", "after-2"]
    assert [w.seq for w in logged] == sorted(w.seq for w in logged)
    log.close()


def test_a_dropped_schema_is_a_lost_log_and_a_missing_one_is_refused(postgresql: Cluster, tmp_path) -> None:
    url = postgresql.new_database()
    log = open_log(url)
    log.append([delete("a")])
    write_binding(tmp_path, Binding(str(log.log_id), 1))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    with pytest.raises(WriteLogLostError):
        log.check()
    log.close()
    assert not log_exists(url)
    with pytest.raises(WriteLogLostError, match=f"the write log {log_name(url)} is missing"):
        open_bound(tmp_path, url, {}, accept_loss=False)
    accepted = open_bound(tmp_path, url, {}, accept_loss=True)  # a new log, numbered after #1
    assert [w.seq for w in accepted.append([delete("b")])] == [2]
    accepted.close()


def test_an_unreachable_database_is_no_loss(postgresql: Cluster, tmp_path) -> None:
    url = f"postgresql://related@127.0.0.1:{postgresql.port + 1}/nowhere"  # nobody listens there
    assert "password" not in log_name("postgresql://u:password@h:1/db")
    with pytest.raises(WriteLogUnavailableError):
        open_bound(tmp_path, url, {}, accept_loss=True)


def test_a_commit_that_outlives_its_connection_is_not_logged_again(postgresql: Cluster) -> None:
    url = postgresql.new_database()
    log = PostgresWriteLog(url)
    result: list[list[int]] = []
    with psycopg.connect(postgresql.url(), autocommit=True) as admin:

        def sessions(condition: str) -> list[tuple[int, int]]:
            """(pid, client port) of the log database's sessions meeting `condition`."""
            query = "SELECT pid, client_port FROM pg_stat_activity WHERE datname = %s AND " + condition
            return admin.execute(query, (url.rsplit("/", 1)[1],)).fetchall()

        # The COMMIT waits for a standby that never comes (as for a slow fsync), holding the lock.
        admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        admin.execute("SELECT pg_reload_conf()")
        try:
            wait_for(
                lambda: admin.execute("SHOW synchronous_standby_names").fetchone() == ("nobody",),
                10,
                "the setting reloaded",
            )
            writer = threading.Thread(
                target=lambda: result.append([w.seq for w in log.append([delete("x")])])
            )
            writer.start()
            ((_, port),) = wait_for(lambda: sessions("wait_event = 'SyncRep'"), 10, "the COMMIT waiting")
            # The connection breaks under the waiting COMMIT: its socket, found by the port it uses.
            (fd,) = [c.fd for c in psutil.Process().net_connections("tcp") if c.laddr.port == port]
            with socket.socket(fileno=os.dup(fd)) as cut:
                cut.shutdown(socket.SHUT_RDWR)
            # The retry finds no commit yet, and waits for the lock the first COMMIT still holds.
            wait_for(lambda: sessions("wait_event = 'advisory'"), 30, "the retry waiting for the lock")
        finally:
            admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
            admin.execute("SELECT pg_reload_conf()")
        writer.join(30)
    assert [w.article_id for w in log.read()] == ["x"] and len(result) == 1
    log.close()


def _listening(postgresql: Cluster, database: str) -> list[int]:
    """The pids of the write log listeners' backends on `database`."""
    with psycopg.connect(postgresql.url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (database, LISTENER_NAME),
        ).fetchall()
    return [int(r[0]) for r in rows]


def _fails(log: PostgresWriteLog) -> bool:
    try:
        log.check()
    except WriteLogUnavailableError:
        return True
    return False


def test_a_listener_whose_backend_stops_answering_is_not_ready_until_replaced(postgresql: Cluster) -> None:
    url = postgresql.new_database()
    database = url.rsplit("/", 1)[1]
    replica = PostgresWriteLog(url)
    wait_for(lambda: bool(_listening(postgresql, database)), 10, "the listener's connection")
    [listener] = _listening(postgresql, database)
    other = PostgresWriteLog(url)  # its listener opens after the one found above
    with psycopg.connect(postgresql.url(), autocommit=True) as admin:
        # TCP stays up and the kernel acknowledges every byte, but the backend answers nothing.
        os.kill(listener, signal.SIGSTOP)
        # No new connection until check() has been seen failing: the replacement is held back.
        admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
        try:
            wait_for(lambda: _fails(replica), HEARTBEAT + HEARTBEAT_DEADLINE + 10, "check() to fail")
            admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
            wait_for(lambda: not _fails(replica), 15, "the listener's connection to be replaced")
            before = replica.data_version()
            other.append([delete("heard")])  # the old backend is still stopped: the new one hears it
            wait_for(lambda: replica.data_version() != before, 10, "the write to be heard")
        finally:
            admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
            os.kill(listener, signal.SIGCONT)
    assert [w.article_id for w in replica.read()] == ["heard"]
    replica.close()
    other.close()
