"""Everything that talks to the database: the tables (`models`), sessions and migrations
(`db`), and one query module per aggregate (`environments`, `features`, `identities`,
`outbox`, `dispatch`, `integrations`, `cohorts`, `users`, `audit`), with what differs between
SQLite and PostgreSQL in `dialect` and driver faults translated in `faults`."""
