"""The embedded PostGIS cluster under ``.antt/``.

Why: a fresh clone must run with no server set up by hand. The cluster binds 127.0.0.1 on a
private port (never 5432), keeps its socket in ``.antt/run`` (so it does not depend on
/run/postgresql), and, because postgres refuses to run as root, runs as an unprivileged OS user
when we are root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

PORT_RANGE = (54330, 54999)


class ClusterError(RuntimeError):
    """The embedded cluster could not be started or reached."""


def find_bindir(explicit: Path | None = None) -> Path:
    """Locate pg_ctl/initdb: setting, then ``pg_config --bindir``, then the newest Debian one."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for c in candidates:
        if (c / "pg_ctl").exists() and (c / "initdb").exists():
            return c
    raise ClusterError(
        "Không tìm thấy PostgreSQL (pg_ctl/initdb) / PostgreSQL binaries not found: "
        "run `make setup` or install postgresql-15-postgis-3."
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class EmbeddedCluster:
    """A PostgreSQL cluster owned by this checkout (or by a test session)."""

    home: Path
    port: int | None = None
    os_user: str = "postgres"
    bindir: Path | None = None
    dbname: str = "antt"
    fast: bool = False  # fsync off: for throwaway test clusters only
    options: str = ""  # more server options (`-c name=value ...`), e.g. for fault tests

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.datadir = self.home / "pgdata"
        self.rundir = self.home / "run"
        self.logfile = self.home / "postgres.log"
        self.portfile = self.home / "port"

    # -- helpers ------------------------------------------------------------------------
    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        if self.as_root:
            argv = ["runuser", "-u", self.os_user, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def _bin(self, name: str) -> str:
        if self.bindir is None:
            self.bindir = find_bindir()
        return str(Path(self.bindir) / name)

    def _prepare_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.rundir.mkdir(exist_ok=True)
        if not self.as_root:
            return
        try:
            pw = pwd.getpwnam(self.os_user)
        except KeyError as exc:
            raise ClusterError(
                f"OS user {self.os_user!r} missing; install postgresql-common "
                "(it creates 'postgres') or set ANTT_PG_OS_USER."
            ) from exc
        for d in (self.home, self.rundir):
            os.chown(d, pw.pw_uid, pw.pw_gid)
        if self.datadir.exists():
            os.chown(self.datadir, pw.pw_uid, pw.pw_gid)
        # postgres must be able to traverse every parent of .antt/ (e.g. a clone under /root).
        parent = self.home.parent
        while parent != parent.parent:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
            parent = parent.parent

    def choose_port(self) -> int:
        """A port kept in .antt/port; first time, a free one derived from the checkout path."""
        if self.port:
            return self.port
        if self.portfile.exists():
            self.port = int(self.portfile.read_text().strip())
            return self.port
        lo, hi = PORT_RANGE
        start = lo + zlib.crc32(str(self.home).encode()) % (hi - lo)
        for i in range(hi - lo):
            port = lo + (start - lo + i) % (hi - lo)
            if _port_free(port):
                self.home.mkdir(parents=True, exist_ok=True)
                self.portfile.write_text(str(port))
                self.port = port
                return port
        raise ClusterError("No free port for the embedded cluster in 54330-54999.")

    # -- lifecycle ----------------------------------------------------------------------
    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        return self._run([self._bin("pg_ctl"), "-D", str(self.datadir), "status"], False).returncode == 0

    def url(self, dbname: str | None = None) -> str:
        port = self.choose_port()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{dbname or self.dbname}"

    def up(self) -> str:
        """Initialise if needed, start if stopped, ensure the database and PostGIS exist.

        A port chosen just now can be taken by another process before the server binds it
        (two clusters starting at once); then one more free port is tried. A kept port is
        never changed silently."""
        fresh_port = self.port is None and not self.portfile.exists()
        try:
            return self._up()
        except ClusterError:
            if not fresh_port or self.port is None or _port_free(self.port) or self.running():
                raise
            self.portfile.unlink(missing_ok=True)
            self.port = None
            return self._up()

    def _up(self) -> str:
        self._prepare_dirs()
        port = self.choose_port()
        if not self.initialised():
            self._run([
                self._bin("initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--locale=C.UTF-8",
            ])
        if not self.running():
            if not _port_free(port):
                raise ClusterError(
                    f"Cổng {port} đang bận / port {port} is taken by another program; "
                    f"delete {self.portfile} to pick a new one."
                )
            opts = (
                f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.rundir}"
                " -c max_connections=200 -c shared_buffers=256MB -c work_mem=32MB"
            )
            if self.fast:
                opts += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            if self.options:
                opts += " " + self.options
            self._run([
                self._bin("pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile), "-w",
                "-t", "60", "-o", opts, "start",
            ])
        self._ensure_database()
        return self.url()

    def _ensure_database(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                        dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (self.dbname,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{self.dbname}"')
        conn.close()
        if self.dbname != "postgres":  # the project database gets PostGIS straight away
            conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                    dbname=self.dbname)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("create extension if not exists postgis")
            conn.close()

    def down(self) -> None:
        if self.running():
            self._run([self._bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"])

    def destroy(self) -> None:
        self.down()
        shutil.rmtree(self.home, ignore_errors=True)

    def status(self) -> dict[str, object]:
        return {
            "home": str(self.home),
            "initialised": self.initialised(),
            "running": self.running(),
            "port": self.choose_port(),
            "url": self.url(),
        }


@dataclass
class EmbeddedReplica(EmbeddedCluster):
    """A streaming read replica of an embedded cluster, on loopback and its own port.

    Built by `pg_basebackup` from the running primary (`-X stream -R`: WAL streamed during
    the copy, then ``standby.signal`` and ``primary_conninfo`` written), fed through a
    physical replication slot (``slot``) so the primary keeps the WAL the replica has not
    received yet, even while it is stopped. ``remove()`` drops the slot: a slot left behind
    would keep WAL on the primary forever.
    """

    primary: EmbeddedCluster | None = None
    slot: str = "antt_replica"

    def _ensure_database(self) -> None:
        """A standby is read-only: wait until it accepts connections, create nothing."""
        import psycopg2

        deadline = time.monotonic() + 60
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                        dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn.cursor() as cur:
            cur.execute("select pg_is_in_recovery()")
            in_recovery = cur.fetchone()[0]
        conn.close()
        if not in_recovery:
            raise ClusterError(f"{self.datadir} is not a standby (no standby.signal)")

    def _primary_sql(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg2

        assert self.primary is not None
        conn = psycopg2.connect(host="127.0.0.1", port=self.primary.choose_port(), user="postgres",
                                dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def up(self) -> str:
        """Copy the primary (first time), then start streaming from it; returns the URL."""
        if self.primary is None or not self.primary.running():
            raise ClusterError("Cụm chính chưa chạy / the primary cluster is not running: "
                               "`antt db up` first")
        self._prepare_dirs()
        self.choose_port()
        if not self.initialised():
            self._primary_sql(
                "SELECT pg_create_physical_replication_slot(%s) WHERE NOT EXISTS "
                "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (self.slot, self.slot))
            self._run([self._bin("pg_basebackup"), "-h", "127.0.0.1", "-p",
                       str(self.primary.choose_port()), "-U", "postgres", "-D", str(self.datadir),
                       "-X", "stream", "-S", self.slot, "-R", "--checkpoint=fast", "--no-sync"])
        return self._up()

    def remove(self) -> None:
        """Stop, delete the copy and drop the slot on the primary."""
        self.destroy()
        if self.primary is None or not self.primary.running():
            return
        deadline = time.monotonic() + 10  # the walsender may outlive the standby a moment
        while self._primary_sql("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s "
                                "AND active", (self.slot,)) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._primary_sql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                          "WHERE slot_name = %s AND NOT active", (self.slot,))

    def status(self) -> dict[str, object]:
        info = super().status()
        info["slot"] = self.slot
        if self.running():
            import psycopg2

            conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                    dbname="postgres")
            with conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
                            "extract(epoch FROM now() - pg_last_xact_replay_timestamp())")
                rec, lsn, age = cur.fetchone()
            conn.close()
            info |= {"in_recovery": rec, "replay_lsn": lsn,
                     "last_replayed_commit_age_s": None if age is None else round(float(age), 3)}
        if self.primary is not None and self.primary.running():
            rows = self._primary_sql(
                "SELECT s.active, r.state, pg_current_wal_lsn() - r.replay_lsn, "
                "extract(epoch FROM r.replay_lag) FROM pg_replication_slots s "
                "LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = %s",
                (self.slot,))
            if rows:
                active, state, lag_bytes, lag_s = rows[0]
                info |= {"slot_active": active, "streaming": state == "streaming",
                         "lag_bytes": None if lag_bytes is None else int(lag_bytes),
                         "replay_lag_s": None if lag_s is None else float(lag_s)}
        return info


def default_replica() -> EmbeddedReplica:
    from antt.settings import get_settings

    s = get_settings()
    return EmbeddedReplica(home=s.home / "replica", port=s.replica_port, os_user=s.pg_os_user,
                           bindir=s.pg_bindir, dbname=s.db_name, primary=default_cluster())


def default_cluster() -> EmbeddedCluster:
    from antt.settings import get_settings

    s = get_settings()
    return EmbeddedCluster(home=s.home, port=s.pg_port, os_user=s.pg_os_user, bindir=s.pg_bindir,
                           dbname=s.db_name)
