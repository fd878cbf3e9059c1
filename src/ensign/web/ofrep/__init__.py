"""OpenFeature Remote Evaluation Protocol (OFREP v0.3.0): any OFREP provider, no Flagsmith SDK."""

from ensign.web.ofrep.routes import documented, routes

__all__ = ["documented", "routes"]
