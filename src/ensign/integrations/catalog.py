"""The one list of destinations: each vendor's settings schema, in the order the dashboard
and the reference show them.

A destination is a package `vendors/<kind>/`: `schema.py` (its `SCHEMA`, read here, by the
admin API, the dashboard, the audit log and the service that validates a configuration) and
`requests.py` (its `DESTINATION`, which builds requests and reads answers, loaded by kind by
`delivery.destinations`). Only the schemas are imported here, so the request path may import
this module; the import contracts keep it from the rest of `vendors`.
"""

from __future__ import annotations

from ensign.integrations.schema import Schema
from ensign.integrations.vendors.amplitude import schema as amplitude
from ensign.integrations.vendors.heap import schema as heap
from ensign.integrations.vendors.mixpanel import schema as mixpanel
from ensign.integrations.vendors.rudderstack import schema as rudderstack
from ensign.integrations.vendors.segment import schema as segment
from ensign.integrations.vendors.webhook import schema as webhook

SCHEMAS: dict[str, Schema] = {
    v.SCHEMA.kind: v.SCHEMA for v in (heap, mixpanel, amplitude, webhook, segment, rudderstack)
}
