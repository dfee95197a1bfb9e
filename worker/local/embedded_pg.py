"""A private PostgreSQL cluster with pg_cron, built from the machine's server binaries.

`make up`, `traderctl db …` and the test suite all use this; production points
``DATABASE_URL`` at Supabase (or any Postgres with pg_cron) instead.

Why it looks the way it does:

* ``initdb`` refuses to run as root, and CI runs as root, so as root every server
  command runs as the ``postgres`` system user (Debian's server package creates it) and
  the data directory is chowned to it.
* pg_cron's launcher opens libpq connections to run jobs. ``cron.host`` points at the
  cluster's private socket directory, and local connections are trusted, so no password
  is stored anywhere.
* The port is chosen at first start (a free loopback port unless TRADERCTL_PG_PORT is
  set) and remembered, so ``DATABASE_URL``-less commands find the cluster again; when the
  remembered port is taken by someone else, another free one is chosen.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from traderctl.worker.config import Settings
from traderctl.worker.errors import EmbeddedPostgresError, PgCronMissing

__all__ = [
    "ClusterStatus",
    "EmbeddedCluster",
    "embedded_cluster",
    "find_bindir",
    "resolve_database_url",
]

_SUPERUSER = "postgres"


def find_bindir() -> Path:
    """Directory holding initdb and pg_ctl: pg_config's bindir, Debian's layout, or PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in versions]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise EmbeddedPostgresError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin "
        "or on PATH; install the server, e.g. `apt-get install postgresql-15`."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dataclass(frozen=True, kw_only=True)
class ClusterStatus:
    """What `traderctl db status` reports."""

    initialized: bool
    running: bool
    port: int | None
    data_dir: Path
    url: str | None
    pid: int | None


class EmbeddedCluster:
    """Create, start, stop and reset one private cluster under ``data_dir``.

    ``fast=True`` (tests) turns off fsync and synchronous commit: a crash may lose the
    last transactions, which a throwaway test cluster does not care about.
    """

    def __init__(
        self, data_dir: Path, *, db_name: str = "traderctl", port: int = 0, fast: bool = False
    ) -> None:
        self.root = data_dir.absolute()
        self.db_name = db_name
        self.requested_port = port
        self.fast = fast
        self.bindir = find_bindir()
        self.pgdata = self.root / "pgdata"
        self.socket_dir = self.root / "run"
        self.log_file = self.root / "log" / "postgres.log"
        self.port_file = self.root / "port"

    # -- helpers -------------------------------------------------------------------------
    def _run_as(self) -> tuple[int, int] | None:
        """(uid, gid) of the postgres system user when we are root, else None."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(_SUPERUSER)
        except KeyError:
            raise EmbeddedPostgresError(
                "running as root but there is no 'postgres' system user to run the server as; "
                "install Debian's postgresql package or run traderctl as a normal user."
            ) from None
        return entry.pw_uid, entry.pw_gid

    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        ids = self._run_as()
        proc = subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            user=ids[0] if ids else None,
            group=ids[1] if ids else None,
            cwd=str(self.root),
        )
        if check and proc.returncode != 0:
            raise EmbeddedPostgresError(
                f"{tool} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}"
                f"; server log: {self.log_file}"
            )
        return proc

    def _chown(self, path: Path) -> None:
        ids = self._run_as()
        if ids:
            os.chown(path, *ids)

    def _check_reachable(self) -> None:
        """As root, the postgres user must be able to traverse every parent of the data dir."""
        ids = self._run_as()
        if not ids:
            return
        for parent in self.root.parents:
            st = parent.stat()
            if st.st_uid != ids[0] and not st.st_mode & 0o001:
                raise EmbeddedPostgresError(
                    f"the server runs as the 'postgres' user, which cannot enter {parent} "
                    f"(mode {oct(st.st_mode & 0o777)}); choose a TRADERCTL_DATA_DIR under "
                    "directories others may traverse, or `chmod o+x` that directory."
                )

    def _major(self) -> str:
        out = subprocess.run(
            [str(self.bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        return out.split()[-1].split(".")[0]

    def ensure_pg_cron(self) -> None:
        """Install pg_cron with apt-get when missing and we are root; otherwise explain."""
        pkglibdir = self.bindir.parent / "lib"
        if (pkglibdir / "pg_cron.so").exists():
            return
        package = f"postgresql-{self._major()}-cron"
        if os.geteuid() == 0 and shutil.which("apt-get"):
            proc = subprocess.run(
                ["apt-get", "install", "-y", "-q", package],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
            if proc.returncode != 0:
                subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
                proc = subprocess.run(
                    ["apt-get", "install", "-y", "-q", package],
                    capture_output=True,
                    text=True,
                    check=False,
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                )
            if proc.returncode == 0 and (pkglibdir / "pg_cron.so").exists():
                return
            raise PgCronMissing(f"installing {package} with apt-get failed: {proc.stderr.strip()}")
        raise PgCronMissing(
            f"pg_cron is not installed for PostgreSQL {self._major()}; "
            f"install the package {package} (as root: apt-get install {package})."
        )

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def url(self, db_name: str | None = None) -> str:
        """libpq URL of a database in this cluster (trust auth: no password)."""
        port = self.port
        if port is None:
            raise EmbeddedPostgresError(
                f"the embedded cluster in {self.root} has never been started; "
                "run `traderctl db start`."
            )
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{port}/{db_name or self.db_name}"

    def init(self) -> None:
        """initdb with our settings; a no-op when the cluster exists."""
        self.ensure_pg_cron()
        if self.initialized:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        for directory in (self.root, self.pgdata, self.socket_dir, self.log_file.parent):
            directory.mkdir(parents=True, exist_ok=True)
            self._chown(directory)
        self.pgdata.chmod(0o700)
        self._pg(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_preload_libraries": "'pg_cron'",
            "cron.database_name": f"'{self.db_name}'",
            # pg_cron connects through our private socket, trusted locally.
            "cron.host": f"'{self.socket_dir}'",
            "cron.timezone": "'UTC'",
            "timezone": "'UTC'",
            "wal_level": "logical",
            "max_connections": "200",
            "shared_buffers": "256MB",
        }
        if self.fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        conf = "\n".join(f"{k} = {v}" for k, v in settings.items())
        with (self.pgdata / "postgresql.conf").open("a") as fh:
            fh.write("\n# --- traderctl embedded settings ---\n" + conf + "\n")

    def running_pid(self) -> int | None:
        """PID of the postmaster if it is alive."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def start(self) -> bool:
        """Start (initializing first if needed); return False if it was already running."""
        self.init()
        if self.running_pid() is not None:
            return False
        port = self.requested_port or self.port or _free_port()
        if _port_in_use(port):
            if self.requested_port:
                raise EmbeddedPostgresError(
                    f"port {port} (TRADERCTL_PG_PORT) is already in use on 127.0.0.1; "
                    "free it or unset TRADERCTL_PG_PORT to pick a free port."
                )
            port = _free_port()
        self.port_file.write_text(f"{port}\n")
        self._pg(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_file),
            "-o",
            f"-p {port}",
            "-w",
            "-t",
            "60",
            "start",
        )
        self._create_database()
        return True

    def _create_database(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                    exists = conn.execute(
                        "select 1 from pg_database where datname = %s", (self.db_name,)
                    ).fetchone()
                    if not exists:
                        conn.execute(
                            sql.SQL("create database {}").format(sql.Identifier(self.db_name))
                        )
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> bool:
        """Stop a running cluster (fast shutdown); return False if it was not running."""
        if self.running_pid() is None:
            return False
        self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
        return True

    def reset(self) -> None:
        """Stop, delete every byte of data, and start a fresh cluster."""
        self.stop()
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.root)
        self.start()

    def status(self) -> ClusterStatus:
        pid = self.running_pid()
        return ClusterStatus(
            initialized=self.initialized,
            running=pid is not None,
            port=self.port,
            data_dir=self.root,
            url=self.url() if self.port is not None else None,
            pid=pid,
        )


def embedded_cluster(settings: Settings, *, fast: bool = False) -> EmbeddedCluster:
    """The embedded cluster these settings describe."""
    return EmbeddedCluster(
        settings.data_dir, db_name=settings.db_name, port=settings.pg_port, fast=fast
    )


def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL when set, else the embedded cluster's URL (development default)."""
    if settings.database_url:
        return settings.database_url
    return embedded_cluster(settings).url()
