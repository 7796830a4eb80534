-- revokd audit database, schema 3: actions held by the blast-radius breaker, and the read-back
-- that verifies a revoke.
--
-- Held actions. An action past the breaker's limit is stored with status `held` (not
-- `pending`, so the executor never picks it up) until an operator releases it with
-- `revokd resume`, which makes it `pending` and appends an `action.released` audit entry.
-- SQLite cannot change a CHECK constraint in place. Rebuilding `actions` would mean dropping
-- and re-creating every view that names it and switching foreign keys off, outside a
-- transaction. The constraint only widens (every stored row still satisfies it), which is the
-- case https://www.sqlite.org/lang_altertable.html#otheralter allows to be made by editing the
-- table's definition in sqlite_schema, inside this migration's transaction:
-- * the UPDATE rewrites only the status CHECK of `actions`;
-- * `writable_schema = RESET` turns editing off again and makes this connection re-read the
--   schema, so it sees the new constraint at once;
-- * the CREATE TABLE below changes the schema cookie, so every other connection re-reads it too.

PRAGMA writable_schema = ON;

UPDATE sqlite_schema
SET sql = replace(sql,
    '''succeeded'', ''failed'', ''skipped'')',
    '''succeeded'', ''failed'', ''skipped'', ''held'')')
WHERE type = 'table' AND name = 'actions';

PRAGMA writable_schema = RESET;

-- The read-back after a revoke: `GET /users/{id}?$select=userType,signInSessionsValidFromDateTime`.
-- One row per check; the action's own `detail` (which the audit chain covers) carries the same
-- outcome in words. outcome:
-- * confirmed: signInSessionsValidFromDateTime is at or after the revoke call;
-- * unconfirmed: it is older or absent, or the read failed: the effect could not be confirmed;
-- * guest_not_effective: the user is an external (B2B) guest, whose sessions a revoke in this
--   tenant does not end; block the guest's sign-in or remove the guest instead.
CREATE TABLE verifications (
    id                  INTEGER PRIMARY KEY,
    -- the action checked; no foreign key, so that retention can prune old actions without
    -- knowing this table (a check of a pruned action stays as a plain record)
    action_id           INTEGER NOT NULL,
    checked_at          TEXT NOT NULL,
    outcome             TEXT NOT NULL
        CHECK (outcome IN ('confirmed', 'unconfirmed', 'guest_not_effective')),
    -- when the revoke call was sent; the read-back must show a time at or after it
    revoked_at          TEXT NOT NULL,
    -- signInSessionsValidFromDateTime as read back, when Graph returned one
    sessions_valid_from TEXT,
    -- userType as read back: Member, Guest, or NULL when the read failed
    user_type           TEXT,
    -- the read's HTTP status, Graph request-id and the client-request-id revokd sent
    http_status         INTEGER,
    request_id          TEXT,
    client_request_id   TEXT,
    -- why the effect could not be confirmed, in words
    detail              TEXT
) STRICT;

CREATE INDEX verifications_by_action ON verifications (action_id);

CREATE TRIGGER verifications_no_change BEFORE UPDATE ON verifications
BEGIN
    SELECT RAISE(ABORT, 'verifications are written once');
END;

-- Revokes whose effect could not be confirmed, or that cannot work (guests): what an operator
-- must follow up by hand.
CREATE VIEW v_unverified_actions AS
SELECT
    v.action_id           AS action_id,
    d.id                  AS decision_id,
    d.tenant_id           AS tenant_id,
    d.user_id             AS user_id,
    d.user_principal_name AS user_principal_name,
    d.rule_id             AS rule_id,
    v.outcome             AS outcome,
    v.revoked_at          AS revoked_at,
    v.sessions_valid_from AS sessions_valid_from,
    v.user_type           AS user_type,
    v.detail              AS detail,
    v.checked_at          AS checked_at
FROM verifications AS v
JOIN actions AS a ON a.id = v.action_id
JOIN decisions AS d ON d.id = a.decision_id
WHERE v.outcome <> 'confirmed'
  AND v.id = (SELECT max(w.id) FROM verifications AS w WHERE w.action_id = v.action_id);
