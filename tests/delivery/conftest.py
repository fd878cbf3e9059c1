from tests.fakes.fixtures import connect, env, segment_vendors, served, settings, vendors

__all__ = ["connect", "env", "segment_vendors", "served", "settings", "vendors"]
