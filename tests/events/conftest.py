from tests.fakes.fixtures import env, settings, vendors

__all__ = ["env", "settings", "vendors"]
