"""Generates the references: `make docs` writes the settings to docs/settings.md
(`python -m ensign.cli.docs`) and the destinations' settings to docs/destinations.md
(`python -m ensign.cli.docs destinations`).

A test checks that the committed files match, so no setting and no destination goes
undocumented.
"""

from __future__ import annotations

import sys

from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.common import DEFAULTS
from ensign.integrations.schema import BOOL
from ensign.settings import Settings


def settings_table() -> str:
    lines = [
        "| Variable | Default | Meaning |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default is None else f"`{default}`"
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `ENSIGN_{name.upper()}` | {shown} | {description} |")
    return "\n".join(lines) + "\n"


def settings_page() -> str:
    return (
        "# Settings\n\n"
        "Ensign reads these `ENSIGN_*` environment variables (or a `.env` file in the working "
        "directory). Generated from `src/ensign/settings.py` by `make docs`.\n\n" + settings_table()
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _flag(value: bool) -> str:
    return "true" if value else "false"


# The settings every destination shares (the admin API's common fields), with their defaults
# (`integrations.common`).
COMMON_FIELDS = (
    ("base_url", "text", "A custom endpoint (https), instead of a region."),
    ("region", "text", "One of the destination's data regions (the first is the default)."),
    ("enabled", "bool", f"Send at all (default {_flag(DEFAULTS.enabled)})."),
    ("feature_names", "list", "Send only these features (default: all)."),
    ("tag", "text", "Or only the features with this tag label."),
    ("deliver", "text", f'`"{DEFAULTS.deliver}"` (default) or `"every_evaluation"`.'),
    (
        "resend_after_hours",
        "int",
        "With `changes`, send unchanged flags again after this long "
        f"(default {DEFAULTS.resend_after_hours}, 0: never).",
    ),
    ("exposures", "bool", f"Send experiment exposures (default {_flag(DEFAULTS.exposures)})."),
    ("events", "bool", f"Send the SDKs' custom events (default {_flag(DEFAULTS.events)})."),
)


def destinations_page() -> str:
    """Every destination in `integrations.catalog`: its API path, regions and settings."""
    parts = [
        "# Destinations\n\n"
        "Every analytics destination Ensign sends to, with the settings its admin API takes at "
        "`/api/v1/environments/{env_key}/integrations/{kind}/`. Generated from "
        "`src/ensign/integrations/catalog.py` by `make docs`; what each one receives is in the "
        "README's integrations section.\n\n"
        "Every destination takes these settings, and its own below.\n\n"
        "| Setting | Type | Meaning |\n|---|---|---|\n"
        + "".join(f"| `{name}` | {kind} | {meaning} |\n" for name, kind, meaning in COMMON_FIELDS)
    ]
    for schema in SCHEMAS.values():
        lines = [f"\n## {schema.label} (`{schema.kind}`)\n"]
        if schema.regions:
            regions = ", ".join(f"`{r}` = {url}" for r, url in schema.regions.items())
            lines.append(f"Regions: {regions}; or `base_url`.\n")
        else:
            lines.append("No regions: `base_url` (the endpoint URL) is required.\n")
        lines += ["| Setting | Type | Default | Meaning |", "|---|---|---|---|"]
        if schema.key_required:
            lines.append(f"| `api_key` | text | (required) | {_cell(schema.key_label)}. |")
        for alias, target in schema.aliases.items():
            lines.append(f"| `{alias}` | text | | The same as `{target}`. |")
        for option in schema.options:
            kind = "bool" if option.type == BOOL else f"text (≤ {option.max_chars})"
            default = (
                "(required)"
                if option.required
                else ("" if option.default is None else f"`{option.default}`")
            )
            meaning = _cell(option.description)
            if option.secret:
                meaning += " Write-only: reads show `" + option.name + "_set`."
            lines.append(f"| `{option.name}` | {kind} | {default} | {meaning} |")
        parts.append("\n".join(lines) + "\n")
    return "".join(parts)


if __name__ == "__main__":
    if sys.argv[1:] == ["destinations"]:
        print(destinations_page(), end="")
    else:
        print(settings_page(), end="")
