-- revokd audit database, schema 1.
--
-- Written only by the `store` crate (crates/store). Conventions:
-- * ids are INTEGER PRIMARY KEY;
-- * timestamps are TEXT, RFC 3339 in UTC with nine fractional digits and a `Z`
--   (2026-11-24T10:31:00.123456789Z): fixed width, so text order is time order;
-- * enumerations are snake_case TEXT guarded by CHECK constraints;
-- * tables are STRICT, so a value of the wrong type is refused rather than coerced.
--
-- Every write to decisions, actions, attempts and daemon_events appends an audit_log entry in
-- the same transaction; `Store::verify_chain` recomputes the chain and checks each row against
-- its latest entry. The triggers below make accidental edits fail loudly; they do not stop a
-- determined attacker, which is what the hash chain and an externally recorded head are for.

-- One row per rule match the safety gate judged, whatever the verdict. Written once, before any
-- Graph call is made for it (the outbox), and never updated.
CREATE TABLE decisions (
    id                  INTEGER PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    -- risky_users | risk_detections | sign_ins | manual
    source              TEXT NOT NULL,
    -- identifies the triggering record; re-evaluating it must not decide twice
    trigger_key         TEXT NOT NULL,
    rule_id             TEXT NOT NULL,
    -- hash of the rule text that decided, so a later rule edit does not rewrite history
    rule_hash           TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    user_principal_name TEXT,
    mode                TEXT NOT NULL
        CHECK (mode IN ('enforce', 'dry_run', 'protected', 'cooldown', 'held')),
    -- why the decision was not enforced, in words an operator reads
    reason              TEXT,
    -- the triggering Graph record exactly as received
    record_json         TEXT NOT NULL,
    -- how the rule matched
    explanation_json    TEXT NOT NULL,
    -- who asked, for manual actions
    operator            TEXT,
    decided_at          TEXT NOT NULL,
    UNIQUE (tenant_id, rule_id, trigger_key)
) STRICT;

-- Cooldown look-up: was this user enforced by this rule since a time?
CREATE INDEX decisions_cooldown ON decisions (tenant_id, rule_id, user_id, decided_at);

-- One row per action a decision asked for: the outbox the executor drains.
CREATE TABLE actions (
    id           INTEGER PRIMARY KEY,
    decision_id  INTEGER NOT NULL REFERENCES decisions (id),
    kind         TEXT NOT NULL
        CHECK (kind IN ('revoke_sessions', 'confirm_compromised', 'disable_account', 'notify')),
    status       TEXT NOT NULL
        CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed', 'skipped')),
    -- attempts begun so far
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- why it was skipped or how it ended
    detail       TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    -- set when the status becomes succeeded, failed or skipped
    completed_at TEXT,
    UNIQUE (decision_id, kind)
) STRICT;

-- The outbox scan after a start or a restart: only unfinished actions, oldest first.
CREATE INDEX actions_open ON actions (created_at, id) WHERE status IN ('pending', 'in_flight');

-- One row per Graph call: written before the call, completed after it.
CREATE TABLE attempts (
    id                INTEGER PRIMARY KEY,
    action_id         INTEGER NOT NULL REFERENCES actions (id),
    -- 1 for the first attempt of the action, 2 for the next, ...
    attempt_no        INTEGER NOT NULL CHECK (attempt_no >= 1),
    endpoint          TEXT NOT NULL,
    -- the GUID revokd sent, to correlate with Microsoft's logs
    client_request_id TEXT NOT NULL,
    -- why this attempt is a retry, e.g. "429 retry-after 1s"
    retry_reason      TEXT,
    started_at        TEXT NOT NULL,
    -- NULL while the call is in flight, or when the process died during it
    finished_at       TEXT,
    http_status       INTEGER,
    graph_error_code  TEXT,
    error_message     TEXT,
    -- Graph's request-id, for Microsoft support
    request_id        TEXT,
    latency_ms        INTEGER
) STRICT;

CREATE INDEX attempts_by_action ON attempts (action_id);

-- How far each feed of each tenant has been evaluated. Not audited: a cursor is an optimisation,
-- and re-reading a window only finds decisions that already exist.
CREATE TABLE cursors (
    tenant_id  TEXT NOT NULL,
    feed       TEXT NOT NULL,
    watermark  TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, feed)
) STRICT;

-- Daemon lifecycle: start, stop, reload, breaker trips, operator resumes.
CREATE TABLE daemon_events (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    detail_json TEXT NOT NULL
) STRICT;

-- Append-only, hash-chained record of every write above.
-- hash = hex(sha256(prev_hash || "\n" || seq || "\n" || kind || "\n" || payload)); the first
-- entry's prev_hash is 64 zeros. payload is the canonical JSON (sorted keys, no spaces) of the
-- row as written. `at` and the id columns are for querying; the hash covers kind and payload.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    tenant_id   TEXT,
    decision_id INTEGER,
    action_id   INTEGER,
    attempt_id  INTEGER,
    payload     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
) STRICT;

CREATE INDEX audit_log_by_decision ON audit_log (decision_id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'decisions are written once');
END;

CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'decisions are written once');
END;

CREATE TRIGGER actions_no_delete BEFORE DELETE ON actions
BEGIN
    SELECT RAISE(ABORT, 'actions are never deleted');
END;

CREATE TRIGGER attempts_no_delete BEFORE DELETE ON attempts
BEGIN
    SELECT RAISE(ABORT, 'attempts are never deleted');
END;

CREATE TRIGGER daemon_events_no_change BEFORE UPDATE ON daemon_events
BEGIN
    SELECT RAISE(ABORT, 'daemon_events are written once');
END;

CREATE TRIGGER daemon_events_no_delete BEFORE DELETE ON daemon_events
BEGIN
    SELECT RAISE(ABORT, 'daemon_events are written once');
END;

-- One row per action of every decision: who was (or would have been) contained, when, by which
-- rule, how it ended, and the last call's status and ids. `mode = 'enforce' AND status =
-- 'succeeded'` is "contained".
CREATE VIEW v_contained AS
SELECT
    d.id                   AS decision_id,
    a.id                   AS action_id,
    d.tenant_id            AS tenant_id,
    d.user_id              AS user_id,
    d.user_principal_name  AS user_principal_name,
    d.rule_id              AS rule_id,
    d.source               AS source,
    d.mode                 AS mode,
    d.reason               AS reason,
    a.kind                 AS action,
    a.status               AS status,
    a.detail               AS detail,
    a.attempts             AS attempts,
    last.http_status       AS last_http_status,
    last.graph_error_code  AS last_graph_error_code,
    last.error_message     AS last_error_message,
    last.request_id        AS last_request_id,
    last.client_request_id AS last_client_request_id,
    d.decided_at           AS decided_at,
    a.completed_at         AS completed_at
FROM actions AS a
JOIN decisions AS d ON d.id = a.decision_id
LEFT JOIN attempts AS last
    ON last.id = (SELECT max(t.id) FROM attempts AS t WHERE t.action_id = a.id);

-- Actions that ended in failure, with the last call's error.
CREATE VIEW v_failed_actions AS
SELECT * FROM v_contained WHERE status = 'failed';

-- One row per Graph call, with the decision it served.
CREATE VIEW v_action_attempts AS
SELECT
    t.id                  AS attempt_id,
    t.attempt_no          AS attempt_no,
    a.id                  AS action_id,
    d.id                  AS decision_id,
    d.tenant_id           AS tenant_id,
    d.user_id             AS user_id,
    d.user_principal_name AS user_principal_name,
    d.rule_id             AS rule_id,
    d.mode                AS mode,
    a.kind                AS action,
    a.status              AS action_status,
    t.endpoint            AS endpoint,
    t.retry_reason        AS retry_reason,
    t.started_at          AS started_at,
    t.finished_at         AS finished_at,
    t.latency_ms          AS latency_ms,
    t.http_status         AS http_status,
    t.graph_error_code    AS graph_error_code,
    t.error_message       AS error_message,
    t.request_id          AS request_id,
    t.client_request_id   AS client_request_id
FROM attempts AS t
JOIN actions AS a ON a.id = t.action_id
JOIN decisions AS d ON d.id = a.decision_id;
