from tests.fakes.fixtures import env, served, settings, vendors

__all__ = ["env", "served", "settings", "vendors"]
