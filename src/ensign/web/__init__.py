"""HTTP surfaces: the Flagsmith-compatible SDK API, the admin API and the dashboard."""
