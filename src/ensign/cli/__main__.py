"""`python -m ensign.cli`: the `ensign` command without the installed script."""

from ensign.cli.main import app

app()
