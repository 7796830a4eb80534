-- revokd audit database, schema 2: the `suppressed` decision mode, indexes for reviewing, and
-- views for the questions asked after an incident (docs/audit.md shows them at work).
--
-- `suppressed` is a match that one of the rule's exceptions excused: recorded, never acted on.
-- SQLite cannot change a CHECK constraint in place. The constraint only widens (every stored
-- row still satisfies it), which https://www.sqlite.org/lang_altertable.html#otheralter allows
-- to be made by editing the table's definition in sqlite_schema, inside this migration's
-- transaction; rebuilding `decisions` instead would need foreign keys off, outside any
-- transaction, and every view that names it dropped and made again.
-- * the UPDATE rewrites only the mode CHECK of `decisions`;
-- * `writable_schema = RESET` turns editing off again and makes this connection re-read the
--   schema, so it sees the new constraint at once;
-- * the CREATE INDEX below changes the schema cookie, so every other connection re-reads it too.

PRAGMA writable_schema = ON;

UPDATE sqlite_schema
SET sql = replace(sql,
    '''cooldown'', ''held'')',
    '''cooldown'', ''held'', ''suppressed'')')
WHERE type = 'table' AND name = 'decisions';

PRAGMA writable_schema = RESET;

-- `revokd audit list --since/--until`, stats per hour and the timeline read decisions by time.
CREATE INDEX decisions_by_time ON decisions (decided_at);
-- "Everything about this user": by object id, or by sign-in name whatever its case.
CREATE INDEX decisions_by_user ON decisions (user_id);
CREATE INDEX decisions_by_upn ON decisions (lower(user_principal_name));

-- One row per decision with how its actions ended: succeeded, failed, skipped (not run: the
-- safety gate recorded the match without acting), held (waiting for `revokd resume` behind the
-- blast-radius breaker) or open (pending or in flight). `contained` is 1 when at least one of
-- its actions on the tenant (not `notify`) succeeded: Graph accepted the call. An action only
-- succeeds by being run, so a held decision an operator released counts once its action does.
CREATE VIEW v_decisions AS
SELECT
    d.id                  AS decision_id,
    d.decided_at          AS decided_at,
    d.tenant_id           AS tenant_id,
    d.source              AS source,
    d.user_id             AS user_id,
    d.user_principal_name AS user_principal_name,
    d.rule_id             AS rule_id,
    d.rule_hash           AS rule_hash,
    d.mode                AS mode,
    d.reason              AS reason,
    d.operator            AS operator,
    count(a.id)                                              AS actions,
    count(a.id) FILTER (WHERE a.status = 'succeeded')        AS succeeded,
    count(a.id) FILTER (WHERE a.status = 'failed')           AS failed,
    count(a.id) FILTER (WHERE a.status = 'skipped')          AS skipped,
    count(a.id) FILTER (WHERE a.status = 'held')             AS held,
    count(a.id) FILTER (WHERE a.status IN ('pending', 'in_flight')) AS open,
    (count(a.id) FILTER (WHERE a.status = 'succeeded' AND a.kind <> 'notify') > 0) AS contained,
    max(a.completed_at)   AS completed_at
FROM decisions AS d
LEFT JOIN actions AS a ON a.decision_id = d.id
GROUP BY d.id;

-- One row per user: how often rules matched, how often they were contained, by which rules,
-- and when first and last.
CREATE VIEW v_actions_per_user AS
SELECT
    tenant_id,
    user_id,
    max(user_principal_name)                       AS user_principal_name,
    count(*)                                       AS decisions,
    count(*) FILTER (WHERE mode = 'enforce')       AS enforced,
    sum(contained)                                 AS contained,
    sum(succeeded)                                 AS actions_succeeded,
    sum(failed)                                    AS actions_failed,
    sum(skipped)                                   AS actions_skipped,
    sum(held)                                      AS actions_held,
    sum(open)                                      AS actions_open,
    group_concat(DISTINCT rule_id)                 AS rules,
    min(decided_at)                                AS first_decided_at,
    max(decided_at)                                AS last_decided_at
FROM v_decisions
GROUP BY tenant_id, user_id;

-- Actions the blast-radius breaker holds until an operator releases them (`revokd resume`).
CREATE VIEW v_held_actions AS
SELECT * FROM v_contained WHERE status = 'held';

-- Actions a rule asked for that were recorded and never run, with why: the safety gate's mode
-- (dry_run, suppressed, protected, cooldown) and reason, or the action's own detail.
CREATE VIEW v_not_actioned AS
SELECT * FROM v_contained WHERE status = 'skipped';

-- Everything that happened, one row per event, for reading an incident in order:
-- `SELECT * FROM v_timeline WHERE at BETWEEN ... ORDER BY at, step`. Decisions, each Graph
-- call as it started and as it answered, each enforced action as it ended, held actions an
-- operator released, the daemon's own events (start, stop, reload, breaker), and retention
-- prunes. `step` orders events of the same instant: daemon, decision, call, answer, outcome.
CREATE VIEW v_timeline AS
SELECT d.decided_at AS at, 1 AS step, 'decision.' || d.mode AS event, d.tenant_id,
       d.user_id, d.user_principal_name, d.rule_id, d.id AS decision_id,
       NULL AS action_id, NULL AS attempt_id,
       coalesce(d.reason, 'rule matched; actions queued') AS detail
FROM decisions AS d
UNION ALL
SELECT t.started_at, 2, 'call.started', d.tenant_id, d.user_id, d.user_principal_name,
       d.rule_id, d.id, a.id, t.id,
       a.kind || ' attempt ' || t.attempt_no || ': ' || t.endpoint
           || coalesce(' (retry: ' || t.retry_reason || ')', '')
FROM attempts AS t
JOIN actions AS a ON a.id = t.action_id
JOIN decisions AS d ON d.id = a.decision_id
UNION ALL
SELECT t.finished_at, 3, 'call.finished', d.tenant_id, d.user_id, d.user_principal_name,
       d.rule_id, d.id, a.id, t.id,
       a.kind || ' attempt ' || t.attempt_no || ': HTTP '
           || coalesce(t.http_status, 'none')
           || coalesce(' ' || t.graph_error_code, '')
           || coalesce(' request-id ' || t.request_id, '')
           || coalesce(' in ' || t.latency_ms || ' ms', '')
FROM attempts AS t
JOIN actions AS a ON a.id = t.action_id
JOIN decisions AS d ON d.id = a.decision_id
WHERE t.finished_at IS NOT NULL
UNION ALL
SELECT a.completed_at, 4, 'action.' || a.status, d.tenant_id, d.user_id,
       d.user_principal_name, d.rule_id, d.id, a.id, NULL,
       a.kind || coalesce(': ' || a.detail, '')
FROM actions AS a
JOIN decisions AS d ON d.id = a.decision_id
WHERE a.completed_at IS NOT NULL AND (a.status <> 'skipped' OR d.mode = 'enforce')
UNION ALL
SELECT e.at, 0, 'daemon.' || e.kind, NULL, NULL, NULL, NULL, NULL, NULL, NULL, e.detail_json
FROM daemon_events AS e
UNION ALL
SELECT l.at, 4, l.kind, d.tenant_id, d.user_id, d.user_principal_name, d.rule_id, d.id,
       l.action_id, NULL, 'released by an operator'
FROM audit_log AS l
JOIN decisions AS d ON d.id = l.decision_id
WHERE l.kind = 'action.released'
UNION ALL
SELECT l.at, 0, l.kind, NULL, NULL, NULL, NULL, NULL, NULL, NULL, l.payload
FROM audit_log AS l
WHERE l.kind = 'audit.pruned';
