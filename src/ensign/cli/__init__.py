"""The `ensign` command and the other entry points an operator runs. The top layer: it
composes the others, and nothing imports it."""

from ensign.cli.main import app

__all__ = ["app"]
