from tests.fakes.fixtures import connect, env, served, settings, vendors

__all__ = ["connect", "env", "served", "settings", "vendors"]
