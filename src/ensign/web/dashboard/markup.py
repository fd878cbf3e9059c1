"""Template filters for text written for people: help text keeps its `code` spans (as the
destination schemas write them, for the generated Markdown docs too) and shows them as code."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def inline_code(text: str) -> Markup:
    """`text` escaped, its backtick spans as <code>: escaping first, so nothing in the text
    can become markup but the <code> elements added here."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))
