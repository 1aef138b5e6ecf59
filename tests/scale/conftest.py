"""Real processes for the scale-out tests: API workers (`antt serve`) on free loopback ports.

Each server is a subprocess with its own environment (DATABASE_URL, READ_DATABASE_URL, ...),
its log kept under the test's tmp dir, and is always stopped (SIGTERM, then SIGKILL) at the
end. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

SECRET = "antt-scale-test-signing-key-of-at-least-32-bytes"
PASSWORD = "mat-khau-thu-nghiem"
START_TIMEOUT_S = 90

# One synthetic commune (a 4 km square in Hải Phòng) is all the writes need.
SEED = """
INSERT INTO admin_unit (level, code, kind, name, name_search, province_code, valid_from, is_synthetic, geom)
VALUES ('province', '31', 'thành phố', 'Hải Phòng', 'hai phong', '31', '2025-07-01', true,
        ST_Multi(ST_MakeEnvelope(106.60, 20.80, 106.70, 20.90, 4326))),
       ('commune', '99901', 'xã', 'Thử Nghiệm', 'thu nghiem', '31', '2025-07-01', true,
        ST_Multi(ST_MakeEnvelope(106.62, 20.82, 106.66, 20.86, 4326)));
UPDATE admin_unit c SET parent_id = p.id FROM admin_unit p WHERE c.code = '99901' AND p.code = '31'
"""


def incident_feature(i: int) -> dict:
    """The i-th incident of a burst, inside the SEED commune (GeoJSON for the editing API)."""
    lonlat = [106.63 + (i % 30) * 0.001, 20.83 + (i // 30 % 30) * 0.001]
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": lonlat},
            "properties": {"category_code": "crime/theft", "occurred_at": "2025-08-20T10:00:00"}}


def seed(url: str, users: dict[str, str]) -> None:
    """SEED plus accounts {username: role} on a migrated database."""
    from sqlalchemy import text

    from antt.accounts import create_user
    from antt.db import make_engine

    eng = make_engine(url)
    with eng.begin() as conn:
        for statement in SEED.split(";\n"):
            conn.execute(text(statement))
        for name, role in users.items():
            create_user(conn, name, PASSWORD, role)
    eng.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `antt serve` process (one or more uvicorn workers) on 127.0.0.1:port."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 1,
                 command: list[str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("ANTT_") and k not in ("DATABASE_URL", "READ_DATABASE_URL")}
        full_env |= env
        argv = ([a.replace("{port}", str(self.port)) for a in command] if command else
                [sys.executable, "-m", "antt.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", str(workers)])
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not up in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, **kw)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (uvicorn's workers too)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: start `antt serve` with the given environment (started in parallel by the
    caller, then `wait_ready()`); all are stopped at the end of the test."""
    started: list[Server] = []

    def start(env: dict[str, str], workers: int = 1, command: list[str] | None = None) -> Server:
        env = {"ANTT_SECRET_KEY": SECRET, "ANTT_HOME": str(tmp_path / "home"), **env}
        server = Server(env, tmp_path / f"server{len(started)}.log", workers, command)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/auth/token", data={"username": username, "password": password})
