"""Generates the settings reference: `make docs` writes it to docs/settings.md by running
`python -m ensign.cli.docs`.

A test checks that the committed file matches, so no setting goes undocumented.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    print(settings_page(), end="")
