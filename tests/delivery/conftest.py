from tests.fakes.fixtures import env, segment_vendors, settings, vendors

__all__ = ["env", "segment_vendors", "settings", "vendors"]
