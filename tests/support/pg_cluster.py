"""A throwaway PostgreSQL cluster for tests and benchmarks: `initdb`, `pg_ctl` on a free port, in a temp dir.

    with Cluster() as pg:
        url = pg.new_database()

Uses the server binaries of Debian's `postgresql` package (or any on PATH). PostgreSQL refuses to run
as root: as root, the cluster runs as the `postgres` user that package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tests.support.net import free_port


def server_bin() -> Path | None:
    """The directory of `initdb` and `pg_ctl` (the newest Debian version first), or None."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def unavailable() -> str | None:
    """Why no cluster can be made here (None when one can)."""
    if server_bin() is None:
        return "PostgreSQL's server is not installed (Debian: apt-get install postgresql; .ci/run does it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run PostgreSQL as"
    return None


class Cluster:
    """One PostgreSQL server of its own, with trust authentication on 127.0.0.1 only."""

    def __init__(self) -> None:
        why = unavailable()
        if why:
            raise RuntimeError(why)
        self.bin = server_bin() or Path()
        self.root = Path(tempfile.mkdtemp(prefix="related-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = "related"
        self._databases = 0
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self.root)

    def start(self) -> Cluster:
        """initdb (once) and start the server; wait until it accepts connections."""
        if not self.data.exists():
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8"
            )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        log = str(self.root / "log")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        """The URL of `database` on this server."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        self._databases += 1
        name = f"t{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def client_backends(self, database: str | None = None) -> list[int]:
        """The pids of the backends serving clients (of `database`), this query's own excepted."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
                " AND pid <> pg_backend_pid() AND (%s::text IS NULL OR datname = %s)",
                (database, database),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def kill_backend(self, pid: int) -> None:
        """SIGKILL one backend: the postmaster then ends every session and recovers from its WAL."""
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop the server (immediately) and remove its files."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                cwd=self.root,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
