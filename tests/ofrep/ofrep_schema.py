"""The response schemas of OFREP v0.3.0 that Ensign answers with, as JSON Schema.

Written for these tests from the protocol's `service/openapi.yaml`, `info.version: 0.3.0`
(github.com/open-feature/protocol, commit 9183895, Apache-2.0): the fields, enums and
requirements of `evaluationSuccess`, `evaluationFailure`, `flagNotFound`,
`bulkEvaluationSuccess` (with `eventStream`), `bulkEvaluationFailure` and `metadata`. The
document itself is not vendored; this is the subset a server's answers are checked against.

One deliberate change: the document's `evaluationSuccess` requires its value to match `oneOf`
the typed flags, but its `codeDefaultFlag` constrains nothing and every integer is also a
`number`, so no answer could match exactly one; the value is checked with `anyOf` instead.
"""

from typing import Any

REASONS = ["STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"]
EVALUATION_ERROR_CODES = ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"]

_METADATA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [{"type": "boolean"}, {"type": "string"}, {"type": "number"}]
    },
}

EVALUATION_SUCCESS: dict[str, Any] = {
    "type": "object",
    "required": ["key", "reason"],
    "properties": {
        "key": {"type": "string"},
        "reason": {"type": "string", "enum": REASONS},
        "variant": {"type": "string"},
        "metadata": _METADATA,
    },
    "anyOf": [
        {"required": ["value"], "properties": {"value": {"type": kind}}}
        for kind in ("boolean", "string", "integer", "number", "object")
    ]
    # codeDefaultFlag: no value, the caller's code default applies.
    + [{"not": {"required": ["value"]}}],
}

EVALUATION_FAILURE: dict[str, Any] = {
    "type": "object",
    "required": ["key", "errorCode"],
    "properties": {
        "key": {"type": "string"},
        "errorCode": {"type": "string", "enum": EVALUATION_ERROR_CODES},
        "errorDetails": {"type": "string"},
        "metadata": _METADATA,
    },
}

FLAG_NOT_FOUND: dict[str, Any] = {
    "type": "object",
    "required": ["key", "errorCode"],
    "properties": {
        "key": {"type": "string"},
        "errorCode": {"type": "string", "enum": ["FLAG_NOT_FOUND"]},
        "errorDetails": {"type": "string"},
        "metadata": _METADATA,
    },
}

_EVENT_STREAM: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "oneOf": [
        {"required": ["url"], "not": {"required": ["endpoint"]}},
        {"required": ["endpoint"], "not": {"required": ["url"]}},
    ],
    "properties": {
        "type": {"type": "string"},
        "url": {"type": "string"},
        "endpoint": {
            "type": "object",
            "required": ["requestUri"],
            "properties": {
                "origin": {"type": "string"},
                "requestUri": {"type": "string", "pattern": "^/"},
            },
        },
        "inactivityDelaySec": {"type": "integer", "minimum": 1},
    },
}

BULK_EVALUATION_SUCCESS: dict[str, Any] = {
    "type": "object",
    "required": ["flags"],
    "properties": {
        "flags": {"type": "array", "items": {"oneOf": [EVALUATION_SUCCESS, EVALUATION_FAILURE]}},
        "metadata": _METADATA,
        "eventStreams": {"type": "array", "items": _EVENT_STREAM},
    },
}

BULK_EVALUATION_FAILURE: dict[str, Any] = {
    "type": "object",
    "required": ["errorCode"],
    "properties": {"errorCode": {"type": "string"}, "errorDetails": {"type": "string"}},
}
