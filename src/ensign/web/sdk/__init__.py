"""The Flagsmith-compatible SDK API, and the realtime stream its SDKs follow."""

from ensign.services.realtime import STREAM_PATH
from ensign.web.sdk import routes as api
from ensign.web.sdk import stream
from ensign.web.sdk.routes import EVENTS_PATHS

routes = [*stream.routes, *api.routes]
documented = [
    *api.documented,
    (STREAM_PATH, "GET", "Realtime updates of the environment document (Server-Sent Events)"),
]

__all__ = ["EVENTS_PATHS", "documented", "routes"]
