"""The Flagsmith-compatible SDK API."""

from ensign.web.sdk.routes import router

__all__ = ["router"]
