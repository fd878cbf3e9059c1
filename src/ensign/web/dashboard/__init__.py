"""The dashboard: server-rendered pages (Jinja2, htmx) for running Ensign from a browser."""

from ensign.web.dashboard.routes import router

__all__ = ["router"]
