"""All configuration in one pydantic-settings class (the tipg shape).

Values come from the environment (``ANTT_*``; ``DATABASE_URL`` unprefixed, as every
PostgreSQL tool expects) or from a ``.env`` file. Nothing else reads the environment.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANTT_", env_file=".env", extra="ignore")

    # --- database -------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "ANTT_DATABASE_URL"),
        description="External PostGIS server. Unset: the embedded cluster under .antt/ is used.",
    )
    home: Path = Field(default=PROJECT_ROOT / ".antt", description="Embedded cluster and state.")
    pg_port: int | None = Field(
        default=None, description="Port of the embedded cluster; chosen once and kept in .antt/port."
    )
    pg_os_user: str = Field(default="postgres", description="OS user running postgres when root.")
    pg_bindir: Path | None = Field(default=None, description="PostgreSQL binaries (pg_ctl, initdb).")
    db_name: str = "antt"
    read_database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("READ_DATABASE_URL", "ANTT_READ_DATABASE_URL"),
        description="Read replicas (streaming standbys), comma-separated. Read-only requests "
                    "read from one of them unless it is down, lags, or has not replayed the "
                    "caller's last write (api/readroute.py); unset: everything on the primary.",
    )
    replica_max_lag_s: float = Field(
        default=5.0, gt=0,
        description="A replica further behind the primary than this is not read from.",
    )
    replica_check_s: float = Field(
        default=1.0, gt=0,
        description="How often each worker re-measures a replica's replay position and lag.",
    )
    replica_down_s: float = Field(
        default=5.0, gt=0,
        description="A replica that failed is left alone this long before it is tried again.",
    )
    replica_port: int | None = Field(
        default=None,
        description="Port of `antt db replica`; chosen once and kept in .antt/replica/port.",
    )
    statement_timeout_s: float = Field(
        default=300.0, ge=0,
        description="Longest statement the API's pools run (PostgreSQL statement_timeout); "
                    "past it the request gets 503 problem+json. 0 = no limit.",
    )
    connect_timeout_s: int = Field(
        default=5, ge=1, description="How long the API waits to open a database connection.",
    )

    # --- data -----------------------------------------------------------------------------
    boundaries: Path | None = Field(
        default=None, description="Boundary files for `antt demo` (ANTT_BOUNDARIES)."
    )

    # --- web server -----------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Proxies whose X-Forwarded-For is trusted (comma-separated IPs, '*' for any): "
                    "behind a proxy the failed-login limit per IP needs the client's address.",
    )
    keep_alive_s: int = Field(
        default=75,
        description="How long an idle HTTP connection is kept open (uvicorn's default is 5 s). "
                    "Longer than a proxy's idle timeout (nginx: 60 s), and long enough that a "
                    "busy server's event loop, seconds behind, does not close a connection the "
                    "client has just sent its next request on (a POST lost that way cannot be "
                    "sent again safely).",
    )
    secret_key: str | None = Field(default=None, description="Token signing key; generated once.")
    token_minutes: int = 8 * 60
    basemap_url: str | None = Field(
        default=None,
        description="Optional raster/vector tile URL template for users who have a tile server.",
    )
    login_rate_limit: int = Field(default=10, description="Failed logins per minute per user/IP.")
    tile_cache_mb: float = Field(
        default=256.0, ge=0,
        description="Size bound of the tile cache shared by all workers (table tile_cache on "
                    "the primary); 0 turns it off.",
    )
    tile_memo_mb: float = Field(
        default=64.0, ge=0,
        description="Size bound of each worker's in-process memo of tiles (api/tiles.py): a "
                    "repeated tile is served without touching the database while no write to "
                    "its tables has been notified; 0 turns it off.",
    )
    result_cache_mb: float = Field(
        default=256.0, ge=0,
        description="Size bound of the analysis result cache shared by all workers (table "
                    "result_cache on the primary: coverage, heatmaps, hot spots); 0 turns it off.",
    )
    auth_cache_seconds: float = Field(
        default=5.0, ge=0,
        description="How long a checked bearer token or API key is trusted without reloading its "
                    "account (api.deps.PrincipalCache); 0 reloads on every request.",
    )

    # --- jobs (antt.jobs) --------------------------------------------------------------------
    job_threads: int = Field(default=2, ge=1, description="Jobs run at once per process.")
    job_heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a running job proves its worker is alive.")
    job_stale_seconds: float = Field(
        default=60.0, gt=0,
        description="An unfinished job silent this long belonged to a dead worker: failed, 'lost'.")

    # --- limits ---------------------------------------------------------------------------
    items_default_limit: int = 10
    items_max_limit: int = 10_000
    incident_query_cap: int = Field(
        default=100_000, description="Queries matching more incidents than this answer 413."
    )
    suppress_below: int = Field(default=3, description="Aggregate counts under this are hidden.")
    min_public_hex_m: float = Field(default=250.0, description="Smallest hexagon for non-police.")

    def read_database_urls(self) -> list[str]:
        return [u.strip() for u in (self.read_database_url or "").split(",") if u.strip()]

    def signing_key(self) -> str:
        """The token key: from the environment, else generated once and kept in .antt/.

        Every worker must sign with the same key (a token issued by one is checked by
        another): several hosts set ANTT_SECRET_KEY alike; workers of one checkout share the
        file, which is created atomically (O_EXCL), so two workers starting at once cannot
        each write a different key."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".secret_key.{os.getpid()}")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)  # atomic: fails if another process made the key first
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
