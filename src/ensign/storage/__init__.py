"""Everything that talks to the database: models, sessions, migrations and queries."""
