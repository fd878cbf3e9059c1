"""Ensign: a Flagsmith-compatible feature-flag server that ships evaluations to analytics."""

__version__ = "0.1.0"
