"""The admin fixtures, for experiments tests."""

from tests.admin.conftest import admin, world

__all__ = ["admin", "world"]
