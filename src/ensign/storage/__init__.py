"""Everything that talks to the database, and the only package that imports SQLAlchemy.

`base` and `models` hold the tables; `db` the engine, sessions and migrations. Each aggregate
has one query module holding its ORM and raw-driver paths side by side: `environments`,
`features`, `identities` (with `identity_pool`, the identify path's units of work), `outbox`,
`dispatch`, `integrations`, `cohorts`, `users` and `audit`. What differs between SQLite and
PostgreSQL is in `dialect`, listings page through `pagination`, and driver faults become
Ensign's errors in `faults`. Callers own the session and its transaction.
"""
