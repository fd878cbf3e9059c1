"""RudderStack's HTTP API (analytics-apis.md §4.3): Segment's protocol, sent to the customer's
own data plane, with RudderStack's limits and answers.

The messages, the batching and the Basic authentication are Segment's
(`vendors/segment/requests.py`); only the limits and the reading of the answer differ. The
write key always comes from the integration being delivered, never from anything shared, so
two environments cannot send with each other's key.
"""

from __future__ import annotations

from collections.abc import Mapping

from ensign.integrations.base import DeliveryOutcome, Outcome, classify_http
from ensign.integrations.vendors.rudderstack.schema import SCHEMA
from ensign.integrations.vendors.segment.requests import Limits, SegmentCompatible

# The gateway refuses requests over its `MaxReqSizeInKB`, 4000 KB by default, and takes
# messages as large as that. It documents no count limit: Segment's 2500 keeps a batch of
# ordinary flag sets well under the size limit anyway.
RUDDERSTACK_LIMITS = Limits(message_bytes=4000 * 1024, batch_bytes=4000 * 1024, messages=2500)


def classify_rudderstack(
    status_code: int, headers: Mapping[str, str], body: bytes
) -> DeliveryOutcome:
    """200 (the text `OK`) delivered; 408, 429 and 5xx retried, after `Retry-After` when
    given; any other 4xx (a bad write key, a refused payload) failed."""
    outcome = classify_http(status_code, headers, body)
    if outcome.outcome is Outcome.FAILED:
        return DeliveryOutcome(
            Outcome.FAILED, status_code, f"RudderStack refused the batch: {outcome.message}"
        )
    return outcome


DESTINATION = SegmentCompatible(SCHEMA, RUDDERSTACK_LIMITS, classify_rudderstack)
