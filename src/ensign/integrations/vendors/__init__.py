"""The destinations: one package per vendor, named by its kind.

`<kind>/schema.py` holds its settings schema (`SCHEMA`), which the request path reads through
`integrations.catalog`, and imports nothing but `integrations.schema`; `<kind>/requests.py`
holds its `DESTINATION` (the `base.Destination` protocol: building requests, purely, and
reading the answers), which only the delivery process loads (`delivery.destinations`). The
import contracts keep the request path from everything here but the schemas.

So that importing a schema loads nothing else, the packages' `__init__` modules stay empty.
"""
