"""Admin use cases: organisations, projects, environments, features, segments, overrides,
identities and the audit log. Plain functions taking a session; they flush, never commit."""
