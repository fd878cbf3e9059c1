"""The segment rule editor: any stored rule tree comes back unchanged from an untouched save,
editing works at every depth, errors land next to their field, forged forms stay bounded."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from ensign.web.dashboard import rule_editor
from tests.conftest import Organisation
from tests.dashboard.conftest import Browser, Seeded


class _FormFields(HTMLParser):
    """The fields a browser would submit from the form with id `form_id`, buttons aside."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, str] = {}
        self.select: str | None = None
        self.first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = found.get("id") == self.form_id
        if not self.inside:
            return
        if tag == "input" and "name" in found:
            if found.get("type") != "checkbox" or "checked" in found:
                self.fields[found["name"]] = found.get("value", "")
        elif tag == "select":
            self.select, self.first_option = found["name"], None
        elif tag == "option" and self.select is not None:
            if self.first_option is None:
                self.first_option = found["value"]
                self.fields[self.select] = found["value"]
            if "selected" in found:
                self.fields[self.select] = found["value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def _fields(html: str) -> dict[str, str]:
    parser = _FormFields("segment-form")
    parser.feed(html)
    return parser.fields


def _condition(operator: str, prop: str | None, value: str | None) -> dict[str, Any]:
    return {"operator": operator, "property": prop, "value": value}


def _rule(kind: str, conditions: list[Any], rules: list[Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "conditions": conditions, "rules": rules or []}


SHAPES = {
    "reference dashboard": [
        _rule("ALL", [], [_rule("ANY", [_condition("EQUAL", "plan", "gold")])]),
    ],
    "top rules of every kind, with conditions and groups": [
        _rule("ANY", [_condition("EQUAL", "plan", "gold")], [_rule("ALL", [])]),
        _rule("NONE", [_condition("IS_SET", "banned", None)]),
    ],
    "empty strings and nulls": [
        _rule(
            "ALL",
            [
                _condition("EQUAL", "nickname", ""),
                _condition("IS_SET", "email", ""),
                _condition("IS_NOT_SET", "phone", "ignored"),
                _condition("PERCENTAGE_SPLIT", None, "10"),
                _condition("PERCENTAGE_SPLIT", "", "20"),
                _condition("EQUAL", " padded ", " x "),
            ],
        )
    ],
    "six levels": [
        _rule(
            "ALL",
            [],
            [
                _rule(
                    "ANY",
                    [],
                    [
                        _rule(
                            "NONE",
                            [],
                            [
                                _rule(
                                    "ALL",
                                    [],
                                    [
                                        _rule(
                                            "ANY",
                                            [_condition("LESS_THAN", "age", "3")],
                                            [_rule("ALL", [_condition("IN", "c", "a,b")])],
                                        )
                                    ],
                                )
                            ],
                        )
                    ],
                )
            ],
        )
    ],
    "an empty group": [
        _rule("ALL", [], [_rule("ALL", []), _rule("ANY", [_condition("EQUAL", "x", "1")])])
    ],
}


@pytest.mark.parametrize("rules", SHAPES.values(), ids=SHAPES.keys())
def test_rule_editor__untouched_save__stores_the_same_rules(
    signed_in: Browser, seeded: Seeded, organisation: Organisation, rules: list[Any]
) -> None:
    # Given a segment made with the admin API
    api = f"/api/v1/projects/{seeded.project_id}/segments/"
    created = signed_in.client.post(
        api,
        json={"name": "shape", "rules": rules},
        headers=organisation.headers,
    ).json()
    stored = signed_in.client.get(f"{api}{created['id']}/", headers=organisation.headers).json()

    # When its editor is submitted as it was rendered
    url = f"/environments/{seeded.environment_id}/segments/{created['id']}"
    fields = _fields(signed_in.get(url).text)
    fields.pop("csrf_token")
    saved = signed_in.post(url, {**fields, "action": "save"})

    # Then the admin API returns exactly what it stored
    assert saved.status_code == 303, saved.text
    again = signed_in.client.get(f"{api}{created['id']}/", headers=organisation.headers).json()
    assert again["rules"] == stored["rules"]


def test_rule_editor__saved_segment__shows_no_blank_condition(
    signed_in: Browser, seeded: Seeded
) -> None:
    segment = signed_in.get(f"/environments/{seeded.environment_id}/segments").context["segments"][
        0
    ]
    page = signed_in.get(f"/environments/{seeded.environment_id}/segments/{segment.id}")
    conditions = [c for g in page.context["groups"] for c in g.conditions]
    assert len(conditions) == 1
    assert not conditions[0].is_blank()


def test_rule_editor__bad_regex_two_levels_down__message_next_to_its_field(
    signed_in: Browser, seeded: Seeded
) -> None:
    response = signed_in.post(
        f"/environments/{seeded.environment_id}/segments",
        {
            "name": "deep",
            "groups": "1",
            "g0_count": "1",
            "g0_c0_property": "plan",
            "g0_c0_value": "gold",
            "g0_groups": "1",
            "g0_g0_count": "2",
            "g0_g0_c0_property": "",
            "g0_g0_c0_value": "",
            "g0_g0_c1_property": "email",
            "g0_g0_c1_operator": "REGEX",
            "g0_g0_c1_value": "([",
        },
    )
    assert response.status_code == 400
    assert 'id="g0_g0_c1_value-error"' in response.text


def _editor() -> rule_editor.Editor:
    return rule_editor.from_rules(
        [_rule("ALL", [], [_rule("ANY", [_condition("EQUAL", "a", "1")], [_rule("NONE", [])])])]
    )


def test_rule_editor__actions__change_the_named_group() -> None:
    editor = _editor()
    rule_editor.apply(editor, "add_condition:g0_g0")
    rule_editor.apply(editor, "add_group:g0_g0")
    deepest = editor.groups[0].groups[0]
    assert (len(deepest.conditions), len(deepest.groups)) == (1, 1)
    rule_editor.apply(editor, "remove_condition:g0_c0")
    assert editor.groups[0].conditions == []
    rule_editor.apply(editor, "remove_group:g0_g0")
    assert editor.groups[0].groups == []
    for nonsense in ("remove_group:g9", "remove_condition:g0_c7", "add_group:x", "fly"):
        rule_editor.apply(editor, nonsense)
    assert len(editor.groups) == 1


def test_rule_editor__at_the_depth_limit__no_deeper_group() -> None:
    editor = rule_editor.Editor([rule_editor.Group()])
    gid = "g0"
    while rule_editor.can_nest(editor, gid):
        rule_editor.apply(editor, f"add_group:{gid}")
        gid += "_g0"
    rule_editor.apply(editor, f"add_group:{gid}")
    rules, _ = rule_editor.to_rules(editor)
    depth, node = 0, rules
    while node:
        depth, node = depth + 1, node[0].rules
    assert depth == 10


def test_rule_editor__forged_counts__build_a_bounded_tree() -> None:
    def every_count_is_huge(name: str, default: str) -> str:
        return "99999" if name == "groups" or name.endswith(("_groups", "_count")) else default

    editor = rule_editor.from_form(every_count_is_huge)

    def size(groups: list[rule_editor.Group]) -> int:
        return sum(1 + len(g.conditions) + size(g.groups) for g in groups)

    assert size(editor.groups) <= rule_editor.MAX_NODES
