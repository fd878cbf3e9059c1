"""The Flagsmith-compatible SDK API."""

from ensign.web.sdk.routes import documented, routes

__all__ = ["documented", "routes"]
