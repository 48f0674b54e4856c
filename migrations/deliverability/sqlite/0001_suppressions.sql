-- mailroom deliverability on SQLite, version 1: the suppression list and the soft bounces
-- counted towards it. Its own tables and its own version table, beside the task tables.
-- `scope` is '' for a global suppression, else a list id. Times are microseconds since
-- the Unix epoch, as in the task tables.
CREATE TABLE mailroom_suppressions (
    address    TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (address, scope)
);
CREATE TABLE mailroom_soft_bounces (
    address TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX mailroom_soft_bounces_address ON mailroom_soft_bounces (address, at);
