"""Analytics destinations: each vendor's settings schema and its requests, built and read
purely (`vendors`), the one list of them (`catalog`), the settings they share (`common`),
what they share to build requests (`base`) and the value rule (`values`).

Nothing here touches the database or the web; the delivery process hands the vendors data and
sends what they build. This module imports nothing, so that the request path, which reads the
catalog, never loads a vendor's request code.
"""
