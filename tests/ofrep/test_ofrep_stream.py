"""The realtime stream that OFREP's bulk answer advertises in `eventStreams`: each change must
read as `refetchEvaluation` to OFREP providers and as `updated_at` to the Flagsmith SDKs."""

from __future__ import annotations

from typing import Any

import orjson
from flagsmith.mappers import map_sse_event_to_stream_event
from sseclient import Event

from ensign.web.sdk.stream import event, ofrep_event


def sse_events(raw: bytes) -> list[tuple[str, Any]]:
    """(event type, decoded data) per event, as an EventSource dispatches them."""
    events = []
    for block in raw.decode().split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((name, orjson.loads("\n".join(data))))
    return events


def test_change__ofrep_providers_refetch_and_sdks_read_updated_at() -> None:
    moment = 1_790_000_000.123456
    events = sse_events(event(moment) + ofrep_event(moment))
    # OFREP providers listen to `message` events and act on `type`.
    messages = [data for name, data in events if name == "message"]
    assert messages == [
        {"type": "refetchEvaluation", "lastModified": 1_790_000_000, "updated_at": moment}
    ]
    # The Python SDK reads every event: each must carry the document's `updated_at`.
    for _, data in events:
        parsed = map_sse_event_to_stream_event(Event(data=orjson.dumps(data).decode()))
        assert parsed["updated_at"].timestamp() == moment
    # The JS SDK listens to `environment_updated`.
    assert [name for name, _ in events].count("environment_updated") == 1
