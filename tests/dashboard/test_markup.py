"""Help text's `code` spans become <code>, and nothing else in the text becomes markup."""

from __future__ import annotations

from ensign.web.dashboard.markup import inline_code


def test_inline_code__backtick_spans__become_code_elements() -> None:
    shown = inline_code("Send `$ignore_time`, through `/import` instead of `/track`.")
    assert shown == (
        "Send <code>$ignore_time</code>, through <code>/import</code> instead of "
        "<code>/track</code>."
    )


def test_inline_code__markup_in_the_text__escaped_inside_and_outside_spans() -> None:
    shown = inline_code("<b>bold</b> and `<i>x</i>` and a lone ` tick")
    assert shown == (
        "&lt;b&gt;bold&lt;/b&gt; and <code>&lt;i&gt;x&lt;/i&gt;</code> and a lone ` tick"
    )
