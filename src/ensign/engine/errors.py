"""The one exception the engine raises: a context whose structure it cannot evaluate."""


class EngineError(ValueError):
    """A structurally invalid evaluation context or environment document.

    Bad *data* never raises (a malformed condition simply does not match); this is only for
    shapes the engine cannot read at all, such as a missing ``environment`` or a feature
    without a ``name``. The message names the offending field.
    """
