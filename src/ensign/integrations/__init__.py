"""Analytics vendors: one pure module each, building requests and classifying responses.

Nothing here touches the database or the web; the delivery worker hands these modules data
and sends what they build.
"""

from __future__ import annotations

from ensign.integrations.amplitude import AMPLITUDE
from ensign.integrations.base import (
    DeliveryOutcome,
    Destination,
    Evaluation,
    OutboundRequest,
    Outcome,
    PreparedBatch,
    Target,
)
from ensign.integrations.heap import HEAP
from ensign.integrations.mixpanel import MIXPANEL
from ensign.integrations.rudderstack import RUDDERSTACK
from ensign.integrations.segment import SEGMENT
from ensign.integrations.values import property_value
from ensign.integrations.webhook import WEBHOOK

DESTINATIONS: dict[str, Destination] = {
    HEAP.kind: HEAP,
    MIXPANEL.kind: MIXPANEL,
    AMPLITUDE.kind: AMPLITUDE,
    WEBHOOK.kind: WEBHOOK,
    SEGMENT.kind: SEGMENT,
    RUDDERSTACK.kind: RUDDERSTACK,
}

__all__ = [
    "AMPLITUDE",
    "DESTINATIONS",
    "HEAP",
    "MIXPANEL",
    "RUDDERSTACK",
    "SEGMENT",
    "WEBHOOK",
    "DeliveryOutcome",
    "Destination",
    "Evaluation",
    "OutboundRequest",
    "Outcome",
    "PreparedBatch",
    "Target",
    "property_value",
]
