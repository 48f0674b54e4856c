-- mailroom deliverability on PostgreSQL, version 1: the suppression list and the soft
-- bounces counted towards it. Its own tables and its own version table, beside the task
-- tables. `{schema}` is replaced by the schema the task backend was opened with. `scope`
-- is '' for a global suppression, else a list id.
CREATE TABLE {schema}.mailroom_suppressions (
    address    TEXT        NOT NULL,
    scope      TEXT        NOT NULL,
    reason     TEXT        NOT NULL,
    source     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (address, scope)
);
CREATE TABLE {schema}.mailroom_soft_bounces (
    address TEXT        NOT NULL,
    status  TEXT        NOT NULL,
    at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX mailroom_soft_bounces_address ON {schema}.mailroom_soft_bounces (address, at);
