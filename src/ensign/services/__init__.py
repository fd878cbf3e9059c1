"""Use cases: plain functions taking a session and collaborators. They never commit."""
