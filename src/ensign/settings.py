"""Every setting Ensign reads, from `ENSIGN_*` environment variables or an optional `.env` file.

Settings are built once at start-up and passed down; nothing else reads the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Ensign's configuration. Each field is the variable `ENSIGN_<FIELD NAME>`."""

    model_config = SettingsConfigDict(env_prefix="ENSIGN_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///ensign.sqlite3",
        description="SQLAlchemy URL of the database. A SQLite file in the working directory by "
        "default; `postgresql://user@host/db` for production.",
    )
    host: str = Field(default="127.0.0.1", description="Address `ensign serve` binds to.")
    port: int = Field(default=8000, description="Port `ensign serve` listens on.")
    workers: int = Field(default=1, description="Worker processes for `ensign serve`.")
    header_timeout_seconds: float = Field(
        default=10.0,
        description="How long `ensign serve` waits for a request's line and headers, from the "
        "connection's opening or the request's first byte, before closing the connection; it "
        "bounds how long slow or stalled clients can hold connections. 0 waits for ever.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        description="Largest request body accepted; larger bodies get 413.",
    )
    max_identifier_length: int = Field(
        default=2000, description="Longest identity identifier accepted, in characters."
    )
    max_trait_key_length: int = Field(
        default=200, description="Longest trait key accepted, in characters."
    )
    max_trait_value_length: int = Field(
        default=2000, description="Longest string trait value accepted, in characters."
    )
    max_traits_per_request: int = Field(
        default=200, description="Most traits one identify or bulk-traits request may carry."
    )
    max_events_per_request: int = Field(
        default=1000,
        description="Most events one `POST /v1/events` batch may carry (the SDKs' buffer).",
    )
    max_events_body_bytes: int = Field(
        default=5 * 1_048_576,
        description="Largest `POST /v1/events` body; larger bodies get 413. Larger than "
        "`max_body_bytes` because a full SDK buffer (1,000 events with traits) can pass 1 MiB.",
    )
    experiment_min_users: int = Field(
        default=100,
        ge=1,
        description="Users per variant below which an experiment's metric figures are marked "
        "`insufficient_data` in its results.",
    )
    events_per_second: int = Field(
        default=5000,
        ge=0,
        description="Events each environment key may send to `POST /v1/events` per second on "
        "average (per server process); a batch over the limit gets 429 with `Retry-After` and "
        "nothing of it is stored. 0: no limit.",
    )
    events_burst: int = Field(
        default=20_000,
        ge=1,
        description="Most events one environment key may send in a burst: at most this many in "
        "any `events_burst / events_per_second` seconds.",
    )
    events_dedupe_hours: float = Field(
        default=48.0,
        description="How long the key of each event received is kept, so that an SDK "
        "re-sending a batch within this time stores nothing twice.",
    )
    max_flag_value_bytes: int = Field(
        default=20_000, description="Largest feature or multivariate value, in UTF-8 bytes."
    )
    cache_poll_interval_seconds: float = Field(
        default=0.5,
        description="How often each process checks the database for environment changes made by "
        "other processes; cached flags are at most this stale across processes.",
    )
    realtime_max_connections: int = Field(
        default=500,
        description="Most realtime update streams (`/sse/environments/<key>/stream`) one "
        "process holds open; one more gets 503 with `Retry-After`. Each stream holds a socket, "
        "so keep it well below the process's open-file limit (`ulimit -n`); with several "
        "workers the limit applies per worker. 0 refuses every stream.",
    )
    realtime_keepalive_seconds: float = Field(
        default=15.0,
        description="How often an idle realtime stream sends a keep-alive comment, so that "
        "proxies and load balancers do not close it and a vanished client is noticed.",
    )
    cors_allow_origins: str = Field(
        default="*",
        description="Comma-separated origins allowed by CORS on the SDK API; `*` allows any.",
    )
    admin_page_size: int = Field(default=10, description="Default page size of admin lists.")
    admin_max_page_size: int = Field(default=1000, description="Largest admin page size.")

    allow_private_destinations: bool = Field(
        default=False,
        description="Allow integration `base_url`s that use plain http or reach addresses that "
        "are not globally routable (private, loopback, link-local, shared, and their IPv6 "
        "forms). Checked when an integration is saved and again at every connection, so "
        "turning it off stops such integrations from sending. Local development and tests only.",
    )
    delivery_in_serve: bool = Field(
        default=True,
        description="`ensign serve` starts one delivery process (an `ensign worker`) beside its "
        "web processes; turn off when separate `ensign worker` processes deliver.",
    )
    delivery_timeout_seconds: float = Field(
        default=10.0, description="Timeout of each request to an analytics vendor."
    )
    test_event_wait_seconds: float | None = Field(
        default=None,
        ge=0,
        description='How long "Send test event" (admin API and dashboard) waits for the '
        "vendor's answer before answering that the event stays queued. Unset: the delivery "
        "timeout plus 5 seconds.",
    )
    delivery_max_age_hours: float = Field(
        default=24.0,
        description="Evaluations not delivered this long after they were recorded stop "
        "retrying and are marked given up.",
    )
    delivery_backoff_base_seconds: float = Field(
        default=2.0, description="First retry delay after a vendor failure; it doubles per failure."
    )
    delivery_backoff_cap_seconds: float = Field(
        default=60.0, description="Longest retry delay (before jitter and `Retry-After`)."
    )
    delivery_poll_interval_seconds: float = Field(
        default=0.5, description="How often an idle dispatcher looks for evaluations to send."
    )
    delivery_batch_size: int = Field(
        default=1000,
        description="Most evaluations claimed and sent in one vendor request (each vendor's own "
        "limit also applies); bounds the dispatcher's memory.",
    )

    outbox_retention_hours: float = Field(
        default=72.0,
        description="Outbox rows that are finished (failed, given up, or a delivered test "
        "event) are deleted this long after they were recorded, with the evaluations no "
        "other row needs; delivered rows go at once. The integrations' delivered, failed and "
        "given-up counters keep counting them.",
    )
    outbox_max_backlog: int = Field(
        default=100_000,
        description="Most evaluations one integration may have waiting for delivery; beyond "
        "it the oldest are given up first (counted as given up), so a long vendor outage "
        "cannot fill the disk. Checked every 30 seconds.",
    )
    delivery_attempts_kept: int = Field(
        default=1000,
        description="Newest attempts kept in each integration's attempt log; older ones are "
        "deleted (the counters keep counting them).",
    )
    sqlite_wal_max_mb: float = Field(
        default=64.0,
        description="SQLite only: when the write-ahead log (`*.sqlite3-wal`) grows past this "
        "size, it is truncated after a checkpoint, as soon as no reader or writer holds it "
        "(the attempt is skipped, never waited for, while the database is busy).",
    )

    secret_key: str = Field(
        default="",
        description="Secret that signs dashboard session cookies. When unset, Ensign generates "
        "one and keeps it in the database, so restarts and other processes keep sessions.",
    )

    metrics_token: str = Field(
        default="",
        description="When set, `/metrics` answers only requests carrying "
        "`Authorization: Bearer <this token>`, and 401 otherwise. Empty by default: `/metrics` "
        "is open, so set it when anything but a local scraper can reach the server.",
    )

    signin_attempts_per_account: int = Field(
        default=10,
        description="Most dashboard sign-in attempts for one email address within "
        "`ENSIGN_SIGNIN_WINDOW_SECONDS`; further attempts get 429 with `Retry-After` and no "
        "password check. A successful sign-in clears the email's count. Counted in each "
        "process (with several workers the limit applies per worker). 0 turns it off.",
    )
    signin_attempts_per_address: int = Field(
        default=50,
        description="Most dashboard sign-in attempts from one client address (an IPv6 client "
        "counts by its /64) within `ENSIGN_SIGNIN_WINDOW_SECONDS`, successful ones included; "
        "further attempts get 429 with `Retry-After`. Behind a reverse proxy, the address is "
        "the proxy's unless uvicorn trusts its `X-Forwarded-For` (`FORWARDED_ALLOW_IPS`). "
        "Counted in each process. 0 turns it off.",
    )
    signin_window_seconds: int = Field(
        default=300,
        description="The moving window, in seconds, over which sign-in attempts are counted.",
    )

    password_hash_profile: Literal["RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY", "CHEAPEST"] = (
        Field(
            default="RFC_9106_LOW_MEMORY",
            description="The Argon2 parameters that hash dashboard passwords, one of argon2-cffi's "
            "profiles: `RFC_9106_LOW_MEMORY` (3 passes over 64 MiB, a large part of a second "
            "of CPU), `RFC_9106_HIGH_MEMORY` (1 pass over 2 GiB), or `CHEAPEST`, which makes "
            "passwords easy to crack and exists for the test suite only. A password hashed "
            "under other parameters is hashed again at its next sign-in.",
        )
    )

    cohort_session_expiry_minutes: float = Field(
        default=360.0,
        description="A full cohort sync (Mixpanel `members`) whose pages have not all arrived "
        "this long after its first page expires: it removes no one, and a late page starts it "
        "again.",
    )
    cohort_sync_max_members: int = Field(
        default=10_000,
        description="Most members (Mixpanel), users (Amplitude) or identifiers (webhook) one "
        "cohort-sync request may carry; more get 400.",
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def test_event_wait(self) -> float:
        """The seconds a test send waits for the dispatcher's answer: long enough, unless set,
        for one request to the vendor to time out."""
        if self.test_event_wait_seconds is not None:
            return self.test_event_wait_seconds
        return self.delivery_timeout_seconds + 5
