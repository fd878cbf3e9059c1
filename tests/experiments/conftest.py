"""Fixtures for experiments tests: the admin API's, and the fake vendors with a configured
environment."""

from tests.admin.conftest import admin, world
from tests.fakes.fixtures import connect, env, served, settings, vendors

__all__ = ["admin", "connect", "env", "served", "settings", "vendors", "world"]
