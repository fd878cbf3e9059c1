"""Sizes the admin API accepts, shared by its request schemas and by the document import, so
that nothing can be stored through one door that the other would refuse."""

from __future__ import annotations

ID_MAX = 2**31 - 1
NAME_LENGTH = 200  # project, environment, key and organisation names
LONG_NAME_LENGTH = 2000  # feature and segment names
TEXT_LENGTH = 100_000  # descriptions, condition values
PROPERTY_LENGTH = 1000  # a condition's trait key
OPTION_KEY_LENGTH = 200
RULES_PER_LIST = 100  # a segment's rules, and the rules nested in one rule
CONDITIONS_PER_RULE = 1000
