"""Every setting Ensign reads, from `ENSIGN_*` environment variables or an optional `.env` file.

Settings are built once at start-up and passed down; nothing else reads the environment.
"""

from __future__ import annotations

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
    max_flag_value_bytes: int = Field(
        default=20_000, description="Largest feature or multivariate value, in UTF-8 bytes."
    )
    cache_poll_interval_seconds: float = Field(
        default=0.5,
        description="How often each process checks the database for environment changes made by "
        "other processes; cached flags are at most this stale across processes.",
    )
    cors_allow_origins: str = Field(
        default="*",
        description="Comma-separated origins allowed by CORS on the SDK API; `*` allows any.",
    )
    admin_page_size: int = Field(default=10, description="Default page size of admin lists.")
    admin_max_page_size: int = Field(default=1000, description="Largest admin page size.")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
