from tests.fakes.fixtures import env, segment_vendors, served, settings, vendors

__all__ = ["env", "segment_vendors", "served", "settings", "vendors"]
