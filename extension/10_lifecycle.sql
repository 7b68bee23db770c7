/* extension/10_lifecycle.sql: the incident lifecycle of the playbook.
 *
 * Severities and checklists seeded from the playbook; incidents, their
 * append-only timeline and checklist ticks; the lifecycle functions
 * (declare, acknowledge, update, set severity, assign, note, resolve, close,
 * tick a checklist item), each of which writes a timeline event and notifies
 * pg_incident in the caller's transaction; the dashboard, timeline and
 * checklist views. Clocks come from incident__deadline (30_sla.sql) and
 * severities of automatic declarations from incident__choose_severity
 * (20_classify.sql).
 */

------------------------------------------------------------------------------
-- Severities
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_severity (
    severity        text PRIMARY KEY CHECK (severity IN ('P1', 'P2', 'P3', 'P4')),
    name            text NOT NULL UNIQUE
                    CONSTRAINT incident_severity_name_check
                    CHECK (name = pg_catalog.lower(name) AND name <> '' AND name <> 'auto' AND name !~ '^p[0-9]'),
    response_time   interval NOT NULL
                    CONSTRAINT incident_severity_response_time_check
                    CHECK (response_time > interval '0' AND response_time <= interval '366 days'),
    update_every    interval NOT NULL
                    CONSTRAINT incident_severity_update_every_check
                    CHECK (update_every > interval '0' AND update_every <= interval '366 days'),
    pir_due         interval NOT NULL
                    CONSTRAINT incident_severity_pir_due_check
                    CHECK (pir_due > interval '0' AND pir_due <= interval '366 days'),
    page            boolean NOT NULL,
    examples        text[] NOT NULL DEFAULT '{}',
    impact          text NOT NULL DEFAULT '',
    is_default      boolean NOT NULL DEFAULT false
);

COMMENT ON TABLE @extschema@.incident_severity IS
'The playbook''s severity levels P1 (critical) to P4 (low): response time, status-update cadence, post-incident review deadline, whether to page, examples and impact. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_severity.name IS 'Word that may stand for the level in incident_declare and incident_set_severity (critical, high, medium, low).';
COMMENT ON COLUMN @extschema@.incident_severity.response_time IS 'Time from declaration within which the incident must be acknowledged.';
COMMENT ON COLUMN @extschema@.incident_severity.update_every IS 'Status update cadence: the next update is due this long after the declaration or the last update.';
COMMENT ON COLUMN @extschema@.incident_severity.pir_due IS 'Time after resolution within which the post-incident review is due.';
COMMENT ON COLUMN @extschema@.incident_severity.page IS 'Whether the on-call engineer is paged at once (P1/P2) rather than ticketed (P3/P4).';
COMMENT ON COLUMN @extschema@.incident_severity.examples IS 'The playbook''s examples of incidents of this level.';
COMMENT ON COLUMN @extschema@.incident_severity.impact IS 'The playbook''s description of the business impact at this level.';
COMMENT ON COLUMN @extschema@.incident_severity.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

INSERT INTO @extschema@.incident_severity
    (severity, name, response_time, update_every, pir_due, page, examples, impact, is_default)
VALUES
    ('P1', 'critical', '15 minutes', '15 minutes', '48 hours', true,
     ARRAY['Complete website outage', 'Database unavailable', 'Security breach or data leak',
           'Payment system failure', 'Admin panel completely inaccessible'],
     'Complete business disruption, revenue loss, security risk', true),
    ('P2', 'high', '1 hour', '30 minutes', '48 hours', true,
     ARRAY['Major functionality broken (lead submission fails)',
           'Significant performance degradation (>10 second load times)',
           'Admin panel partially accessible', 'Email/WhatsApp integration failures',
           'Availability status not updating'],
     'Major business functionality impaired, user experience severely degraded', true),
    ('P3', 'medium', '4 hours', '2 hours', '7 days', false,
     ARRAY['Minor functionality issues', 'Moderate performance issues (3-5 second load times)',
           'Non-critical features not working', 'Cosmetic display issues',
           'Individual user account issues'],
     'Limited business impact, some users affected', true),
    ('P4', 'low', '24 hours', '1 day', '7 days', false,
     ARRAY['Cosmetic issues', 'Documentation errors', 'Minor UI inconsistencies',
           'Non-urgent feature requests'],
     'Minimal or no business impact', true);

SELECT @extschema@.incident__seeded_table('@extschema@.incident_severity', 'severity');
SELECT @extschema@.incident__checked_table('@extschema@.incident_severity', 'name:lower');

COMMENT ON CONSTRAINT incident_severity_severity_check ON @extschema@.incident_severity IS
'The levels are P1, P2, P3 and P4.';
COMMENT ON CONSTRAINT incident_severity_name_check ON @extschema@.incident_severity IS
'A name is a lower-case word such as critical; it may not be "auto" or look like a level (p1), which incident_declare reads otherwise.';
COMMENT ON CONSTRAINT incident_severity_response_time_check ON @extschema@.incident_severity IS
'Give a positive interval of at most 366 days, such as ''15 minutes'' or ''4 hours''.';
COMMENT ON CONSTRAINT incident_severity_update_every_check ON @extschema@.incident_severity IS
'Give a positive interval of at most 366 days, such as ''30 minutes'' or ''1 day''.';
COMMENT ON CONSTRAINT incident_severity_pir_due_check ON @extschema@.incident_severity IS
'Give a positive interval of at most 366 days, such as ''48 hours'' or ''7 days''.';

CREATE FUNCTION @extschema@.incident_severity_normalize(severity text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
    valid text;
BEGIN
    IF severity IS NULL THEN
        RAISE EXCEPTION 'severity must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a severity: P1, P2, P3 or P4, or its name (see incident_severity).';
    END IF;
    SELECT s.severity INTO result
      FROM @extschema@.incident_severity s
     WHERE s.severity = pg_catalog.upper(pg_catalog.btrim($1))
        OR s.name = pg_catalog.lower(pg_catalog.btrim($1));
    IF result IS NULL THEN
        SELECT pg_catalog.format('Valid severities are %s, or %s.',
                                 pg_catalog.string_agg(s.severity, ', ' ORDER BY s.severity),
                                 pg_catalog.string_agg(s.name, ', ' ORDER BY s.severity))
          INTO valid FROM @extschema@.incident_severity s;
        RAISE EXCEPTION 'invalid severity "%"', @extschema@.incident__quote(severity)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = valid;
    END IF;
    RETURN result;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_severity_normalize(text) IS
'Turns a severity as a user types it (P1..P4 or critical/high/medium/low, any letter case) into P1..P4; an error for anything else.';

------------------------------------------------------------------------------
-- Checklist templates, seeded from every checklist of the playbook
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_checklist_template (
    checklist       text PRIMARY KEY CHECK (checklist ~ '^[a-z][a-z0-9_]*$'),
    title           text NOT NULL,
    phase           text NOT NULL CHECK (phase IN ('detection', 'response', 'resolution', 'post_incident')),
    sort_order      int NOT NULL,
    severities      text[] NOT NULL DEFAULT '{P1,P2,P3,P4}'
                    CHECK (severities <@ ARRAY['P1', 'P2', 'P3', 'P4'] AND severities <> '{}'),
    enabled         boolean NOT NULL DEFAULT true,
    is_default      boolean NOT NULL DEFAULT false
);

COMMENT ON TABLE @extschema@.incident_checklist_template IS
'Checklists of the playbook (initial assessment, team assembly, P1 response, investigation, root cause analysis, fix, recovery verification, closure): which severities get each one when an incident is declared. Editable by incident_admin; disable a checklist rather than deleting it so that pg_dump keeps the choice.';
COMMENT ON COLUMN @extschema@.incident_checklist_template.phase IS 'Playbook phase the checklist belongs to: detection, response, resolution or post_incident.';
COMMENT ON COLUMN @extschema@.incident_checklist_template.enabled IS 'Whether new incidents get this checklist; disable rather than delete so that pg_dump keeps the choice.';
COMMENT ON COLUMN @extschema@.incident_checklist_template.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';
COMMENT ON COLUMN @extschema@.incident_checklist_template.severities IS 'Severities whose incidents get this checklist.';
COMMENT ON COLUMN @extschema@.incident_checklist_template.sort_order IS 'Order of the checklist in an incident''s checklist listing.';

CREATE TABLE @extschema@.incident_checklist_template_item (
    checklist       text NOT NULL REFERENCES @extschema@.incident_checklist_template ON UPDATE CASCADE,
    item_no         int NOT NULL CHECK (item_no > 0),
    item            text NOT NULL CHECK (pg_catalog.btrim(item) <> ''),
    severities      text[] CHECK (severities <@ ARRAY['P1', 'P2', 'P3', 'P4'] AND severities <> '{}'),
    enabled         boolean NOT NULL DEFAULT true,
    is_default      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (checklist, item_no)
);

COMMENT ON TABLE @extschema@.incident_checklist_template_item IS
'Items of each checklist template, in order. An item with severities set applies only to those (the playbook''s "Get approval from IC for P1/P2").';
COMMENT ON COLUMN @extschema@.incident_checklist_template_item.enabled IS 'Whether new incidents get this item; disable rather than delete so that pg_dump keeps the choice.';
COMMENT ON COLUMN @extschema@.incident_checklist_template_item.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';
COMMENT ON COLUMN @extschema@.incident_checklist_template_item.severities IS 'NULL: every severity of the checklist; otherwise only these.';

INSERT INTO @extschema@.incident_checklist_template
    (checklist, title, phase, sort_order, severities, is_default)
VALUES
    ('initial_assessment', 'Initial assessment (5 minutes)', 'detection', 10, '{P1,P2,P3,P4}', true),
    ('team_assembly', 'Team assembly (within response time)', 'response', 20, '{P1,P2,P3,P4}', true),
    ('p1_response', 'P1 incident response', 'response', 30, '{P1}', true),
    ('investigation', 'Investigation', 'response', 40, '{P1,P2,P3,P4}', true),
    ('root_cause_analysis', 'Root cause analysis', 'resolution', 50, '{P1,P2,P3,P4}', true),
    ('fix', 'Fix implementation', 'resolution', 60, '{P1,P2,P3,P4}', true),
    ('recovery_verification', 'Recovery verification', 'resolution', 70, '{P1,P2,P3,P4}', true),
    ('closure', 'Incident closure', 'post_incident', 80, '{P1,P2,P3,P4}', true);

INSERT INTO @extschema@.incident_checklist_template_item
    (checklist, item_no, item, severities, is_default)
VALUES
    ('initial_assessment', 1, 'Confirm incident is real (not false positive)', NULL, true),
    ('initial_assessment', 2, 'Determine initial severity level', NULL, true),
    ('initial_assessment', 3, 'Check if incident is ongoing', NULL, true),
    ('initial_assessment', 4, 'Identify affected systems/users', NULL, true),
    ('initial_assessment', 5, 'Gather initial evidence', NULL, true),
    ('team_assembly', 1, 'Page on-call engineer immediately', '{P1,P2}', true),
    ('team_assembly', 2, 'Notify Incident Commander', '{P1,P2}', true),
    ('team_assembly', 3, 'Assemble response team', '{P1,P2}', true),
    ('team_assembly', 4, 'Create incident war room (Slack channel)', '{P1,P2}', true),
    ('team_assembly', 5, 'Create incident ticket', '{P3,P4}', true),
    ('team_assembly', 6, 'Assign to appropriate team member', '{P3,P4}', true),
    ('team_assembly', 7, 'Set expected resolution time', '{P3,P4}', true),
    ('p1_response', 1, 'Acknowledge incident in monitoring system', NULL, true),
    ('p1_response', 2, 'Create incident war room (#incident-YYYY-MM-DD-HH-MM)', NULL, true),
    ('p1_response', 3, 'Notify stakeholders', NULL, true),
    ('p1_response', 4, 'Begin investigation', NULL, true),
    ('p1_response', 5, 'Implement immediate mitigation if possible', NULL, true),
    ('p1_response', 6, 'Update status page', NULL, true),
    ('investigation', 1, 'Check system health dashboard', NULL, true),
    ('investigation', 2, 'Review recent deployments', NULL, true),
    ('investigation', 3, 'Check error logs', NULL, true),
    ('investigation', 4, 'Verify external service status', NULL, true),
    ('investigation', 5, 'Check database performance', NULL, true),
    ('investigation', 6, 'Review security logs', NULL, true),
    ('investigation', 7, 'Test affected functionality', NULL, true),
    ('root_cause_analysis', 1, 'Timeline reconstruction', NULL, true),
    ('root_cause_analysis', 2, 'Change analysis (code, config, infrastructure)', NULL, true),
    ('root_cause_analysis', 3, 'Log analysis', NULL, true),
    ('root_cause_analysis', 4, 'Performance metrics review', NULL, true),
    ('root_cause_analysis', 5, 'External dependency check', NULL, true),
    ('root_cause_analysis', 6, 'Security assessment', NULL, true),
    ('fix', 1, 'Identify root cause', NULL, true),
    ('fix', 2, 'Develop fix plan', NULL, true),
    ('fix', 3, 'Test fix in staging (if time permits)', NULL, true),
    ('fix', 4, 'Get approval from IC for P1/P2', '{P1,P2}', true),
    ('fix', 5, 'Implement fix', NULL, true),
    ('fix', 6, 'Monitor for improvement', NULL, true),
    ('fix', 7, 'Verify fix effectiveness', NULL, true),
    ('recovery_verification', 1, 'All affected systems operational', NULL, true),
    ('recovery_verification', 2, 'Performance metrics normal', NULL, true),
    ('recovery_verification', 3, 'Error rates back to baseline', NULL, true),
    ('recovery_verification', 4, 'User functionality restored', NULL, true),
    ('recovery_verification', 5, 'Monitoring alerts cleared', NULL, true),
    ('recovery_verification', 6, 'Stakeholder confirmation', NULL, true),
    ('closure', 1, 'Confirm full resolution', NULL, true),
    ('closure', 2, 'Update incident status', NULL, true),
    ('closure', 3, 'Notify all stakeholders', NULL, true),
    ('closure', 4, 'Update status page', NULL, true),
    ('closure', 5, 'Close incident war room', NULL, true),
    ('closure', 6, 'Schedule post-incident review', NULL, true);

SELECT @extschema@.incident__seeded_table('@extschema@.incident_checklist_template', 'checklist');
SELECT @extschema@.incident__seeded_table('@extschema@.incident_checklist_template_item', 'checklist', 'item_no');

------------------------------------------------------------------------------
-- Checklist sets: what an incident's checklists are
------------------------------------------------------------------------------

-- An incident's checklists are the templates for its severity as they stood
-- when it was declared. Such a set of checklists is stored once, keyed by a
-- hash of its content, and incidents refer to it: declaring writes no
-- checklist rows at all, and later template edits do not change the
-- checklists of incidents already declared. Ticks are rows of their own.

CREATE TABLE @extschema@.incident_checklist_set (
    id          text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    checklists  jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(checklists) = 'array'),
    items       jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(items) = 'array'),
    created_at  timestamptz NOT NULL DEFAULT @extschema@.incident_now()
);

COMMENT ON TABLE @extschema@.incident_checklist_set IS
'Immutable sets of checklists as copied from the templates, shared by the incidents declared while the templates stood so: checklists is a JSON array of {checklist, title, phase, sort_order}, items one of {checklist, item_no, item}; id is the md5 of the content. Read them through incident_checklist_items or incident_checklist(code).';

CREATE FUNCTION @extschema@.incident__keep_existing_set()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the key is a hash of the content: a set that exists is this very set
    IF EXISTS (SELECT FROM @extschema@.incident_checklist_set s WHERE s.id = NEW.id) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__keep_existing_set() IS
'Internal trigger: inserting a checklist set that exists already (same content, same key) is a no-op, which is how pg_dump restores sets that CREATE EXTENSION made again.';

CREATE TRIGGER incident_checklist_set_dedup
    BEFORE INSERT ON @extschema@.incident_checklist_set
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__keep_existing_set();

CREATE FUNCTION @extschema@.incident__store_set(checklists jsonb, items jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    set_id text := pg_catalog.md5(pg_catalog.jsonb_build_array(checklists, items)::text);
BEGIN
    INSERT INTO @extschema@.incident_checklist_set (id, checklists, items)
    VALUES (set_id, checklists, items)
    ON CONFLICT (id) DO NOTHING;
    RETURN set_id;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__store_set(jsonb, jsonb) IS
'Internal: stores a set of checklists unless it exists and returns its key.';

CREATE TABLE @extschema@.incident_checklist_cache (
    severity    text PRIMARY KEY REFERENCES @extschema@.incident_severity ON UPDATE CASCADE ON DELETE CASCADE,
    set_id      text NOT NULL REFERENCES @extschema@.incident_checklist_set
);

COMMENT ON TABLE @extschema@.incident_checklist_cache IS
'Internal: the checklist set that a declaration of each severity gets now; rebuilt whenever the templates change.';

CREATE FUNCTION @extschema@.incident__template_items(severity text, OUT checklists jsonb, OUT items jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH applicable AS (
        SELECT t.checklist, t.title, t.phase, t.sort_order, i.item_no, i.item
          FROM @extschema@.incident_checklist_template t
          JOIN @extschema@.incident_checklist_template_item i USING (checklist)
         WHERE t.enabled AND i.enabled
           AND incident__template_items.severity = ANY (t.severities)
           AND (i.severities IS NULL OR incident__template_items.severity = ANY (i.severities))
    )
    SELECT (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                'checklist', c.checklist, 'title', c.title, 'phase', c.phase, 'sort_order', c.sort_order)
                ORDER BY c.sort_order, c.checklist), '[]')
              FROM (SELECT DISTINCT a.checklist, a.title, a.phase, a.sort_order FROM applicable a) c),
           (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                'checklist', a.checklist, 'item_no', a.item_no, 'item', a.item)
                ORDER BY a.sort_order, a.checklist, a.item_no), '[]')
              FROM applicable a)
$$;

COMMENT ON FUNCTION @extschema@.incident__template_items(text) IS
'Internal: the enabled checklist templates and items that apply to a severity, as the JSON arrays of a checklist set.';

CREATE FUNCTION @extschema@.incident__rebuild_checklist_cache()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.incident_checklist_cache AS c (severity, set_id)
    SELECT s.severity, @extschema@.incident__store_set(t.checklists, t.items)
      FROM @extschema@.incident_severity s, @extschema@.incident__template_items(s.severity) t
    ON CONFLICT (severity) DO UPDATE SET set_id = excluded.set_id;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__rebuild_checklist_cache() IS
'Internal trigger: points incident_checklist_cache at the current checklist set of each severity after any change to the checklist templates.';

CREATE TRIGGER incident_checklist_template_cache
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_checklist_template
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__rebuild_checklist_cache();
CREATE TRIGGER incident_checklist_template_item_cache
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_checklist_template_item
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__rebuild_checklist_cache();

INSERT INTO @extschema@.incident_checklist_cache (severity, set_id)
SELECT s.severity, @extschema@.incident__store_set(t.checklists, t.items)
  FROM @extschema@.incident_severity s, @extschema@.incident__template_items(s.severity) t;

------------------------------------------------------------------------------
-- Incidents and their timeline
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident (
    id                  bigserial PRIMARY KEY,
    code                text NOT NULL UNIQUE CHECK (code ~ '^INC-[0-9]{4}-[0-9]{4}-[0-9]{3,}$'),
    day                 date NOT NULL,
    day_seq             int NOT NULL CHECK (day_seq > 0),
    severity            text NOT NULL REFERENCES @extschema@.incident_severity,
    status              text NOT NULL DEFAULT 'declared'
                        CHECK (status IN ('declared', 'acknowledged', 'investigating', 'identified',
                                          'mitigating', 'monitoring', 'resolved', 'closed')),
    title               text NOT NULL CHECK (pg_catalog.btrim(title) <> '' AND pg_catalog.length(title) <= 200),
    description         text,
    declared_by         text NOT NULL,
    started_at          timestamptz NOT NULL,
    declared_at         timestamptz NOT NULL,
    acknowledged_at     timestamptz,
    acknowledged_by     text,
    last_update_at      timestamptz,
    resolved_at         timestamptz,
    resolved_by         text,
    root_cause          text,
    closed_at           timestamptz,
    closed_by           text,
    incident_commander  text,
    technical_lead      text,
    communications_lead text,
    response_due        timestamptz NOT NULL,
    next_update_due     timestamptz,
    pir_due             timestamptz,
    checklist_set       text NOT NULL REFERENCES @extschema@.incident_checklist_set,
    UNIQUE (day, day_seq),
    CHECK (started_at <= declared_at),
    CHECK ((status = 'declared') = (acknowledged_at IS NULL AND status NOT IN ('resolved', 'closed'))
           OR status IN ('resolved', 'closed')),
    CHECK ((resolved_at IS NOT NULL) = (status IN ('resolved', 'closed'))),
    CHECK ((closed_at IS NOT NULL) = (status = 'closed'))
);

COMMENT ON TABLE @extschema@.incident IS
'One row per incident: its code, severity, status, title, the time and author of each step, the three playbook roles and its clocks. Written only by the lifecycle functions.';
COMMENT ON COLUMN @extschema@.incident.code IS 'INC-YYYY-MMDD-NNN: the day of declaration in pg_incident.timezone and that day''s running number (001 first, gap-free).';
COMMENT ON COLUMN @extschema@.incident.day IS 'The day part of the code.';
COMMENT ON COLUMN @extschema@.incident.day_seq IS 'The number part of the code.';
COMMENT ON COLUMN @extschema@.incident.status IS 'declared, acknowledged, investigating, identified, mitigating, monitoring, resolved or closed.';
COMMENT ON COLUMN @extschema@.incident.declared_by IS 'The role that called incident_declare().';
COMMENT ON COLUMN @extschema@.incident.started_at IS 'When the impact began, if known to be before the declaration (for time to detection); else the declaration time.';
COMMENT ON COLUMN @extschema@.incident.last_update_at IS 'Time of the last status update (incident_update).';
COMMENT ON COLUMN @extschema@.incident.response_due IS 'Acknowledgement deadline: declared_at plus the severity''s response time.';
COMMENT ON COLUMN @extschema@.incident.next_update_due IS 'When the next status update is due (cadence by severity, restarted by each update); NULL once resolved.';
COMMENT ON COLUMN @extschema@.incident.checklist_set IS 'The incident''s checklists: the set copied from the templates for its severity when declared, grown when its severity changed.';
COMMENT ON COLUMN @extschema@.incident.pir_due IS 'When the post-incident review is due: resolution plus 48 hours (P1/P2) or 1 week (P3/P4).';

CREATE TABLE @extschema@.incident_day_counter (
    day         date PRIMARY KEY,
    last_seq    int NOT NULL CHECK (last_seq > 0)
);

COMMENT ON TABLE @extschema@.incident_day_counter IS
'Last incident number given out per day. Declarations of the same day queue on its row, which keeps codes unique and gap-free: a rolled-back declaration gives its number back.';
COMMENT ON COLUMN @extschema@.incident_day_counter.last_seq IS 'The NNN of the day''s last committed incident code.';

CREATE TABLE @extschema@.incident_event (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES @extschema@.incident,
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('declared', 'acknowledged', 'status_update', 'severity_changed', 'assigned', 'note',
                                              'checklist', 'resolved', 'closed', 'escalated', 'reminder', 'probe')),
    actor       text NOT NULL,
    status      text NOT NULL,
    message     text,
    details     jsonb NOT NULL DEFAULT '{}',
    recorded_by text NOT NULL
);

CREATE INDEX incident_event_incident_idx ON @extschema@.incident_event (incident_id, id);

COMMENT ON TABLE @extschema@.incident_event IS
'The append-only timeline: every state change, assignment, status update, note and checklist tick, with who and when. UPDATE, DELETE and TRUNCATE are refused.';
COMMENT ON COLUMN @extschema@.incident_event.kind IS
'declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated, reminder or probe (a probe went down, changed its failure or recovered).';
COMMENT ON COLUMN @extschema@.incident_event.actor IS 'Who the event is about: the responder named in the call (acknowledge and tick may name someone else), else the role that made it.';
COMMENT ON COLUMN @extschema@.incident_event.recorded_by IS 'The role that made the call, whoever it named as actor: the login that is accountable for the record.';
COMMENT ON COLUMN @extschema@.incident_event.at IS 'When the act happened: the clock time of the call (not the start of its transaction), never before the incident''s previous event.';
COMMENT ON COLUMN @extschema@.incident_event.status IS 'The incident''s status after the event.';
COMMENT ON COLUMN @extschema@.incident_event.message IS 'Human text of the event: the title, the update or note, the root cause, the assignment, the checklist item.';
COMMENT ON COLUMN @extschema@.incident_event.details IS 'Facts of the event as JSON: for example {"from": "P3", "to": "P1"} for a severity change.';

CREATE FUNCTION @extschema@.incident__refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'cannot % %: pg_incident''s incidents and timeline are an audit record', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = pg_catalog.format('%s on %s is refused whatever the role, also in replication mode.', TG_OP, TG_TABLE_NAME),
              HINT = 'Correct the record with a new event, such as incident_note(); drop the extension to remove everything.';
END
$$;

COMMENT ON FUNCTION @extschema@.incident__refuse_change() IS
'Internal trigger: refuses UPDATE, DELETE and TRUNCATE on the timeline and on checklist ticks, and DELETE and TRUNCATE on incidents.';

CREATE TRIGGER incident_event_append_only
    BEFORE UPDATE OR DELETE ON @extschema@.incident_event
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__refuse_change();
CREATE TRIGGER incident_event_no_truncate
    BEFORE TRUNCATE ON @extschema@.incident_event
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__refuse_change();
CREATE TRIGGER incident_no_delete
    BEFORE DELETE ON @extschema@.incident
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__refuse_change();
CREATE TRIGGER incident_no_truncate
    BEFORE TRUNCATE ON @extschema@.incident
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__refuse_change();
-- Fire these also under session_replication_role = replica, so that
-- replication-mode sessions cannot rewrite the record either.
ALTER TABLE @extschema@.incident_event ENABLE ALWAYS TRIGGER incident_event_append_only;
ALTER TABLE @extschema@.incident_event ENABLE ALWAYS TRIGGER incident_event_no_truncate;
ALTER TABLE @extschema@.incident ENABLE ALWAYS TRIGGER incident_no_delete;
ALTER TABLE @extschema@.incident ENABLE ALWAYS TRIGGER incident_no_truncate;

CREATE TABLE @extschema@.incident_checklist_tick (
    incident_id bigint NOT NULL REFERENCES @extschema@.incident,
    checklist   text NOT NULL,
    item_no     int NOT NULL,
    done_at     timestamptz NOT NULL,
    done_by     text NOT NULL,
    PRIMARY KEY (incident_id, checklist, item_no)
);

COMMENT ON TABLE @extschema@.incident_checklist_tick IS
'Who ticked which checklist item of which incident, and when (written by incident_checklist_tick). Like the timeline, UPDATE, DELETE and TRUNCATE are refused.';
COMMENT ON COLUMN @extschema@.incident_checklist_tick.done_by IS 'The responder named in the call (the calling role by default).';

CREATE TRIGGER incident_checklist_tick_append_only
    BEFORE UPDATE OR DELETE ON @extschema@.incident_checklist_tick
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__refuse_change();
CREATE TRIGGER incident_checklist_tick_no_truncate
    BEFORE TRUNCATE ON @extschema@.incident_checklist_tick
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__refuse_change();
ALTER TABLE @extschema@.incident_checklist_tick ENABLE ALWAYS TRIGGER incident_checklist_tick_append_only;
ALTER TABLE @extschema@.incident_checklist_tick ENABLE ALWAYS TRIGGER incident_checklist_tick_no_truncate;

------------------------------------------------------------------------------
-- Internal helpers of the lifecycle functions
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__require_text(value text, what text, max_length int)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trimmed text := pg_catalog.regexp_replace(value, '^\s+|\s+$', '', 'g');
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be null', what
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = pg_catalog.format('Give a %s.', what);
    END IF;
    -- spaces, zero-width and other invisible format characters do not count
    IF pg_catalog.regexp_replace(trimmed, '[\s\u00a0\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufeff\uffa0]', '', 'g') = '' THEN
        RAISE EXCEPTION '% must not be empty', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = pg_catalog.format('Give a %s with at least one visible character.', what);
    END IF;
    IF pg_catalog.length(trimmed) > max_length THEN
        RAISE EXCEPTION '% is too long (% characters)', what, pg_catalog.length(trimmed)
            USING ERRCODE = 'string_data_right_truncation',
                  DETAIL = pg_catalog.format('A %s has at most %s characters.', what, max_length),
                  HINT = 'Shorten it; put the rest in the description or a note.';
    END IF;
    RETURN trimmed;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_text(text, text, int) IS
'Internal: the trimmed text, or an error if it is null, has no visible character (spaces and zero-width characters do not count) or is longer than max_length.';

CREATE FUNCTION @extschema@.incident__find(code text, for_update boolean)
RETURNS @extschema@.incident
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted text := pg_catalog.upper(pg_catalog.btrim(code));
    found @extschema@.incident;
BEGIN
    IF code IS NULL THEN
        RAISE EXCEPTION 'incident code must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a code such as INC-2026-0115-001, as returned by incident_declare().';
    END IF;
    IF wanted !~ '^INC-[0-9]{4}-[0-9]{4}-[0-9]{3,}$' THEN
        RAISE EXCEPTION 'invalid incident code "%"', @extschema@.incident__quote(code)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Incident codes have the form INC-YYYY-MMDD-NNN.',
                  HINT = 'Give a code such as INC-2026-0115-001, as returned by incident_declare().';
    END IF;
    IF for_update THEN
        IF pg_catalog.pg_is_in_recovery() THEN
            RAISE EXCEPTION 'cannot change incident "%" on a standby server', @extschema@.incident__quote(wanted)
                USING ERRCODE = 'read_only_sql_transaction',
                      HINT = 'Run lifecycle functions on the primary; standbys can read the views.';
        END IF;
        SELECT * INTO found FROM @extschema@.incident i WHERE i.code = wanted FOR UPDATE;
    ELSE
        SELECT * INTO found FROM @extschema@.incident i WHERE i.code = wanted;
    END IF;
    IF found.id IS NULL THEN
        RAISE EXCEPTION 'incident "%" does not exist', @extschema@.incident__quote(wanted)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_dashboard for open incidents or the incident table for all of them.';
    END IF;
    RETURN found;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__find(text, boolean) IS
'Internal: the incident with this code (any letter case), locked against concurrent changes if for_update; an error if the code is malformed or unknown.';

CREATE FUNCTION @extschema@.incident__refuse(inc @extschema@.incident, action text, hint text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    facts text;
BEGIN
    facts := CASE
        WHEN inc.status = 'closed' THEN pg_catalog.format('It was closed by %s at %s.', inc.closed_by, inc.closed_at)
        WHEN inc.status = 'resolved' THEN pg_catalog.format('It was resolved by %s at %s.', inc.resolved_by, inc.resolved_at)
        WHEN inc.status = 'declared' THEN pg_catalog.format('It was declared by %s at %s and nobody has acknowledged it.', inc.declared_by, inc.declared_at)
        ELSE pg_catalog.format('It was acknowledged by %s at %s.', inc.acknowledged_by, inc.acknowledged_at)
    END;
    RAISE EXCEPTION 'cannot % incident "%" because it is %', action, inc.code, inc.status
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = facts,
              HINT = hint;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__refuse(@extschema@.incident, text, text) IS
'Internal: the error for a transition the state machine does not allow, with the facts of the incident''s state as detail and hint as the suggestion.';

CREATE FUNCTION @extschema@.incident__act_time(inc @extschema@.incident)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz;
BEGIN
    -- the real time of the act, not the start of a transaction that may have
    -- been open for minutes; the superuser-only test clock aside
    t := @extschema@.incident__act_now();
    -- the caller holds the incident's row lock, so its events are written one
    -- after the other; they stay in order even if the system clock steps back
    IF inc.id IS NOT NULL THEN
        t := greatest(t, (SELECT pg_catalog.max(e.at) FROM @extschema@.incident_event e WHERE e.incident_id = inc.id));
    END IF;
    RETURN t;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__act_time(@extschema@.incident) IS
'Internal: the time a lifecycle call records for its act: the clock time (pg_incident.clock when a superuser set the test clock), never before the incident''s last event. The caller has locked the incident.';

CREATE FUNCTION @extschema@.incident__event(inc @extschema@.incident, kind text, actor text,
                                            message text DEFAULT NULL, details jsonb DEFAULT '{}',
                                            at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event_at timestamptz := coalesce(incident__event.at, @extschema@.incident__act_time(inc));
    event_id bigint;
BEGIN
    INSERT INTO @extschema@.incident_event AS e (incident_id, at, kind, actor, status, message, details, recorded_by)
    VALUES (inc.id, event_at, incident__event.kind, incident__event.actor, inc.status,
            incident__event.message, coalesce(incident__event.details, '{}'), @extschema@.incident_invoker())
    RETURNING e.id INTO event_id;

    -- Any login may LISTEN: the payload carries no names and no text users
    -- typed, only what identifies the event; listeners read the rest through
    -- the views their role may read.
    PERFORM pg_catalog.pg_notify('pg_incident', pg_catalog.json_build_object(
        'event_id', event_id, 'incident_id', inc.id, 'code', inc.code, 'event', incident__event.kind)::text);
END
$$;

COMMENT ON FUNCTION @extschema@.incident__event(@extschema@.incident, text, text, text, jsonb, timestamptz) IS
'Internal: appends a timeline event for the incident as it now stands, at the time of the act (at, or incident__act_time()), with the calling role as recorded_by, and sends NOTIFY pg_incident with {"event_id", "incident_id", "code", "event"}, in the caller''s transaction.';

CREATE FUNCTION @extschema@.incident__merge_checklists(current_set text, severity text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    have @extschema@.incident_checklist_set;
    add_ @extschema@.incident_checklist_set;
BEGIN
    SELECT * INTO have FROM @extschema@.incident_checklist_set s WHERE s.id = current_set;
    SELECT s.* INTO add_ FROM @extschema@.incident_checklist_cache c
      JOIN @extschema@.incident_checklist_set s ON s.id = c.set_id
     WHERE c.severity = incident__merge_checklists.severity;
    RETURN @extschema@.incident__store_set(
        have.checklists || coalesce((
            SELECT pg_catalog.jsonb_agg(n.c ORDER BY n.ord)
              FROM pg_catalog.jsonb_array_elements(add_.checklists) WITH ORDINALITY AS n(c, ord)
             WHERE NOT EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(have.checklists) AS o(c)
                                WHERE o.c->'checklist' = n.c->'checklist')), '[]'),
        have.items || coalesce((
            SELECT pg_catalog.jsonb_agg(n.item ORDER BY n.ord)
              FROM pg_catalog.jsonb_array_elements(add_.items) WITH ORDINALITY AS n(item, ord)
             WHERE NOT EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(have.items) AS o(item)
                                WHERE o.item->'checklist' = n.item->'checklist'
                                  AND o.item->'item_no' = n.item->'item_no')), '[]'));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__merge_checklists(text, text) IS
'Internal: the key of the checklist set that holds everything of current_set plus what the current templates of severity bring that it lacks.';


------------------------------------------------------------------------------
-- Lifecycle
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident_declare(severity text, title text, description text DEFAULT NULL,
                                             started_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sev @extschema@.incident_severity;
    inc @extschema@.incident;
    now_ timestamptz := @extschema@.incident__act_time(NULL);
    actor text := @extschema@.incident_invoker();
    code_day date;
    seq int;
    checklist_set_id text;
    choice record;
    response_due timestamptz;
    update_due timestamptz;
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE EXCEPTION 'cannot declare an incident on a standby server'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Run lifecycle functions on the primary; standbys can read the views.';
    END IF;
    title := @extschema@.incident__require_text(title, 'title', 200);
    IF title ~ '[\n\r\u2028\u2029]' THEN
        RAISE EXCEPTION 'invalid title "%"', @extschema@.incident__quote(title)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A title is one line: it is shown in lists, subjects and chat messages.',
                  HINT = 'Put the title on one line and the rest in the description.';
    END IF;
    SELECT * INTO choice FROM @extschema@.incident__choose_severity(incident_declare.severity, title, description);
    SELECT * INTO sev FROM @extschema@.incident_severity s WHERE s.severity = choice.chosen;
    SELECT c.set_id INTO checklist_set_id FROM @extschema@.incident_checklist_cache c WHERE c.severity = choice.chosen;
    IF started_at IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION 'invalid start time "%"', started_at
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The start of an incident is a definite time.',
                  HINT = 'Give the time the impact began, or leave started_at out.';
    END IF;
    IF started_at > now_ THEN
        RAISE EXCEPTION 'invalid start time "%"', started_at
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The incident is being declared at %s; it cannot have started later.', now_),
                  HINT = 'Give the time the impact began, or leave started_at out.';
    END IF;
    IF started_at < now_ - interval '366 days' THEN
        RAISE EXCEPTION 'invalid start time "%"', started_at
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The incident is being declared at %s; an impact that began more than 366 days earlier is not an incident to respond to.', now_),
                  HINT = 'Give the time the impact began, or leave started_at out.';
    END IF;

    -- everything that needs no number is worked out before taking one
    response_due := @extschema@.incident__deadline(sev.severity, 'response', now_);
    update_due := @extschema@.incident__deadline(sev.severity, 'update', now_);
    code_day := (now_ AT TIME ZONE @extschema@.incident_timezone())::date;
    -- Same-day declarations queue here until this transaction ends; a rollback
    -- gives the number back, so codes stay gap-free.
    INSERT INTO @extschema@.incident_day_counter AS c (day, last_seq) VALUES (code_day, 1)
    ON CONFLICT (day) DO UPDATE SET last_seq = c.last_seq + 1
    RETURNING c.last_seq INTO seq;

    INSERT INTO @extschema@.incident
        (code, day, day_seq, severity, status, title, description, declared_by,
         started_at, declared_at, response_due, next_update_due, checklist_set)
    VALUES
        ('INC-' || pg_catalog.to_char(code_day, 'YYYY-MMDD') || '-'
               || CASE WHEN seq < 1000 THEN pg_catalog.lpad(seq::text, 3, '0') ELSE seq::text END,
         code_day, seq, sev.severity, 'declared', title, nullif(pg_catalog.regexp_replace(description, '^\s+|\s+$', '', 'g'), ''), actor,
         coalesce(started_at, now_), now_, response_due, update_due, checklist_set_id)
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'declared', actor, title,
        pg_catalog.jsonb_build_object('severity', inc.severity, 'response_due', inc.response_due,
                                      'next_update_due', inc.next_update_due)
        || CASE WHEN choice.why IS NULL THEN '{}' ELSE pg_catalog.jsonb_build_object('classified', choice.why) END,
        now_);
    -- what changed in the hours before: the first lead for the root cause (82_health.sql)
    PERFORM @extschema@.incident__note_recent_changes(inc, now_);
    RETURN inc.code;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_declare(text, text, text, timestamptz) IS
'Declares an incident and returns its code INC-YYYY-MMDD-NNN. severity: P1..P4 or critical/high/medium/low; title: up to 200 characters; started_at: when the impact began, if earlier. Starts the response and update clocks, copies the checklists for the severity, writes the "declared" event and notifies pg_incident.';

CREATE FUNCTION @extschema@.incident_acknowledge(code text, responder text DEFAULT current_user)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    now_ timestamptz := @extschema@.incident__act_time(inc);
BEGIN
    responder := @extschema@.incident__require_text(responder, 'responder', 200);
    IF inc.status <> 'declared' THEN
        PERFORM @extschema@.incident__refuse(inc, 'acknowledge',
            CASE WHEN inc.status IN ('resolved', 'closed')
                 THEN 'Add a note with incident_note() instead.'
                 ELSE 'Post progress with incident_update() instead.' END);
    END IF;

    UPDATE @extschema@.incident i
       SET status = 'acknowledged', acknowledged_at = now_, acknowledged_by = responder
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'acknowledged', responder, NULL,
        pg_catalog.jsonb_build_object('response_due', inc.response_due,
                                      'on_time', now_ <= inc.response_due),
        now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_acknowledge(text, text) IS
'Acknowledges a declared incident on behalf of responder (default: the calling role), which stops its response clock. Returns the new status.';

CREATE FUNCTION @extschema@.incident_update(code text, status text, message text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    now_ timestamptz := @extschema@.incident__act_time(inc);
    new_status text := pg_catalog.lower(@extschema@.incident__require_text(incident_update.status, 'status', 100));
BEGIN
    IF new_status NOT IN ('investigating', 'identified', 'mitigating', 'monitoring') THEN
        RAISE EXCEPTION 'invalid status "%"', @extschema@.incident__quote(incident_update.status)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid statuses are investigating, identified, mitigating and monitoring; use incident_resolve() to resolve and incident_acknowledge() to acknowledge.';
    END IF;
    message := @extschema@.incident__require_text(message, 'message', 10000);
    IF inc.status = 'declared' THEN
        PERFORM @extschema@.incident__refuse(inc, 'update', 'Acknowledge it first with incident_acknowledge().');
    ELSIF inc.status IN ('resolved', 'closed') THEN
        PERFORM @extschema@.incident__refuse(inc, 'update', 'Add a note with incident_note() instead.');
    END IF;

    UPDATE @extschema@.incident i
       SET status = new_status, last_update_at = now_,
           next_update_due = @extschema@.incident__deadline(i.severity, 'update', now_)
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'status_update', @extschema@.incident_invoker(), message,
        pg_catalog.jsonb_build_object('next_update_due', inc.next_update_due), now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_update(text, text, text) IS
'Posts a status update on an acknowledged, open incident: status is investigating, identified, mitigating or monitoring; message says what is happening. Restarts the update clock. Returns the new status.';

CREATE FUNCTION @extschema@.incident_set_severity(code text, severity text, reason text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    sev @extschema@.incident_severity;
    old_severity text := inc.severity;
BEGIN
    SELECT * INTO sev FROM @extschema@.incident_severity s
     WHERE s.severity = (SELECT @extschema@.incident_severity_normalize(incident_set_severity.severity));
    reason := @extschema@.incident__require_text(reason, 'reason', 10000);
    IF inc.status = 'closed' THEN
        PERFORM @extschema@.incident__refuse(inc, 'change the severity of', 'A closed incident is final; add a note with incident_note() to correct the record.');
    END IF;
    IF sev.severity = old_severity THEN
        RAISE EXCEPTION 'incident "%" is already %', inc.code, old_severity
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a different severity.';
    END IF;

    UPDATE @extschema@.incident i
       SET severity = sev.severity,
           response_due = @extschema@.incident__deadline(sev.severity, 'response', i.declared_at),
           next_update_due = CASE WHEN i.status IN ('resolved', 'closed') THEN NULL
                                  ELSE @extschema@.incident__deadline(sev.severity, 'update',
                                                                     coalesce(i.last_update_at, i.declared_at)) END,
           pir_due = @extschema@.incident__deadline(sev.severity, 'pir', i.resolved_at),
           checklist_set = @extschema@.incident__merge_checklists(i.checklist_set, sev.severity)
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'severity_changed', @extschema@.incident_invoker(), reason,
        pg_catalog.jsonb_build_object('from', old_severity, 'to', inc.severity,
                                      'response_due', inc.response_due, 'next_update_due', inc.next_update_due,
                                      'pir_due', inc.pir_due));
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_set_severity(text, text, text) IS
'Changes the severity of an incident that is not closed, with a reason. Recomputes its clocks from the new severity, adds the checklists the new severity brings and records both severities. Returns the status.';

CREATE FUNCTION @extschema@.incident_assign(code text, role text, responder text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    wanted_role text := pg_catalog.lower(@extschema@.incident__require_text(incident_assign.role, 'role', 100));
    previous text;
BEGIN
    IF wanted_role NOT IN ('incident_commander', 'technical_lead', 'communications_lead') THEN
        RAISE EXCEPTION 'invalid incident role "%"', @extschema@.incident__quote(incident_assign.role)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid roles are incident_commander, technical_lead and communications_lead.';
    END IF;
    responder := @extschema@.incident__require_text(responder, 'responder', 200);
    IF inc.status = 'closed' THEN
        PERFORM @extschema@.incident__refuse(inc, 'assign roles on', 'A closed incident is final; add a note with incident_note() to correct the record.');
    END IF;

    previous := CASE wanted_role WHEN 'incident_commander' THEN inc.incident_commander
                                 WHEN 'technical_lead' THEN inc.technical_lead
                                 ELSE inc.communications_lead END;
    IF previous IS NOT DISTINCT FROM responder THEN
        RAISE EXCEPTION '% is already the % of incident "%"', @extschema@.incident__quote(responder), pg_catalog.replace(wanted_role, '_', ' '), inc.code
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Nothing to change: every assignment is an event, so give someone else.';
    END IF;

    UPDATE @extschema@.incident i
       SET incident_commander = CASE WHEN wanted_role = 'incident_commander' THEN responder ELSE i.incident_commander END,
           technical_lead = CASE WHEN wanted_role = 'technical_lead' THEN responder ELSE i.technical_lead END,
           communications_lead = CASE WHEN wanted_role = 'communications_lead' THEN responder ELSE i.communications_lead END
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'assigned', @extschema@.incident_invoker(),
        pg_catalog.format('%s is %s', responder, pg_catalog.replace(wanted_role, '_', ' ')),
        pg_catalog.jsonb_build_object('role', wanted_role, 'from', previous, 'to', responder));
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_assign(text, text, text) IS
'Gives one of the playbook''s roles (incident_commander, technical_lead, communications_lead) on an incident that is not closed to a responder; records who held it before. Returns the status.';

CREATE FUNCTION @extschema@.incident_note(code text, message text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
BEGIN
    message := @extschema@.incident__require_text(message, 'message', 10000);
    PERFORM @extschema@.incident__event(inc, 'note', @extschema@.incident_invoker(), message);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_note(text, text) IS
'Adds a note to the timeline of any incident, open or not (findings, decisions, corrections). Does not touch the update clock. Returns the status.';

CREATE FUNCTION @extschema@.incident_resolve(code text, root_cause text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    now_ timestamptz := @extschema@.incident__act_time(inc);
    actor text := @extschema@.incident_invoker();
BEGIN
    IF root_cause IS NOT NULL THEN
        root_cause := @extschema@.incident__require_text(root_cause, 'root cause', 10000);
    END IF;
    IF inc.status IN ('resolved', 'closed') THEN
        PERFORM @extschema@.incident__refuse(inc, 'resolve',
            CASE WHEN inc.status = 'resolved'
                 THEN 'Add a note with incident_note(), or close it with incident_close().'
                 ELSE 'Add a note with incident_note() instead.' END);
    END IF;

    UPDATE @extschema@.incident i
       SET status = 'resolved', resolved_at = now_, resolved_by = actor,
           root_cause = coalesce(incident_resolve.root_cause, i.root_cause),
           next_update_due = NULL, pir_due = @extschema@.incident__deadline(i.severity, 'pir', now_)
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'resolved', actor, inc.root_cause,
        pg_catalog.jsonb_build_object('pir_due', inc.pir_due,
                                      'duration_seconds', pg_catalog.date_part('epoch', inc.resolved_at - inc.declared_at)::bigint),
        now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_resolve(text, text) IS
'Resolves an open incident (from any state before resolved, so a false alarm can be resolved unacknowledged), with an optional root cause. Stops the update clock and starts the post-incident review clock. Returns the new status.';

CREATE FUNCTION @extschema@.incident_close(code text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    actor text := @extschema@.incident_invoker();
    now_ timestamptz := @extschema@.incident__act_time(inc);
BEGIN
    IF inc.status <> 'resolved' THEN
        PERFORM @extschema@.incident__refuse(inc, 'close',
            CASE WHEN inc.status = 'closed'
                 THEN 'A closed incident is final; add a note with incident_note() to correct the record.'
                 ELSE 'Resolve it first with incident_resolve().' END);
    END IF;

    UPDATE @extschema@.incident i
       SET status = 'closed', closed_at = now_, closed_by = actor
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'closed', actor, NULL, '{}', now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_close(text) IS
'Closes a resolved incident; a closed incident is final. Returns the new status.';

------------------------------------------------------------------------------
-- Checklists of an incident
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_checklist_items AS
SELECT i.code,
       x.checklist,
       c.title AS checklist_title,
       c.phase,
       c.sort_order,
       x.item_no,
       x.item,
       t.done_at IS NOT NULL AS done,
       t.done_at,
       t.done_by
  FROM @extschema@.incident i
  JOIN @extschema@.incident_checklist_set s ON s.id = i.checklist_set
 CROSS JOIN LATERAL pg_catalog.jsonb_to_recordset(s.items) AS x(checklist text, item_no int, item text)
  LEFT JOIN LATERAL pg_catalog.jsonb_to_recordset(s.checklists) AS c(checklist text, title text, phase text, sort_order int)
         ON c.checklist = x.checklist
  LEFT JOIN @extschema@.incident_checklist_tick t
         ON t.incident_id = i.id AND t.checklist = x.checklist AND t.item_no = x.item_no;

COMMENT ON VIEW @extschema@.incident_checklist_items IS
'One row per checklist item of every incident: the item as copied at declaration, and whether, when and by whom it was ticked.';
COMMENT ON COLUMN @extschema@.incident_checklist_items.checklist_title IS 'The checklist''s title as it was when copied.';
COMMENT ON COLUMN @extschema@.incident_checklist_items.sort_order IS 'Order of the checklist among the incident''s checklists.';
COMMENT ON COLUMN @extschema@.incident_checklist_items.item_no IS 'Number of the item within its checklist, as incident_checklist_tick() takes it.';
COMMENT ON COLUMN @extschema@.incident_checklist_items.done_by IS 'The responder who ticked the item.';

CREATE FUNCTION @extschema@.incident_checklist(code text)
RETURNS TABLE (checklist text, checklist_title text, phase text, item_no int, item text,
               done boolean, done_at timestamptz, done_by text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.checklist, c.checklist_title, c.phase, c.item_no, c.item, c.done, c.done_at, c.done_by
      FROM @extschema@.incident_checklist_items c
     -- a scalar subquery, so that the lookup runs once and the filter uses the index on code
     WHERE c.code = (SELECT (@extschema@.incident__find(incident_checklist.code, false)).code)
     ORDER BY c.sort_order, c.checklist, c.item_no
$$;

COMMENT ON FUNCTION @extschema@.incident_checklist(text) IS
'The checklist items of an incident in playbook order, with whether, when and by whom each was ticked.';

CREATE FUNCTION @extschema@.incident_checklist_tick(code text, checklist text, item int,
                                                    responder text DEFAULT current_user)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    wanted text := pg_catalog.lower(@extschema@.incident__require_text(incident_checklist_tick.checklist, 'checklist', 100));
    item_text text;
    tick @extschema@.incident_checklist_tick;
    now_ timestamptz := @extschema@.incident__act_time(inc);
BEGIN
    responder := @extschema@.incident__require_text(responder, 'responder', 200);
    IF inc.status = 'closed' THEN
        PERFORM @extschema@.incident__refuse(inc, 'tick checklist items of', 'A closed incident is final; add a note with incident_note() to correct the record.');
    END IF;
    SELECT x.item INTO item_text
      FROM @extschema@.incident_checklist_set s,
           pg_catalog.jsonb_to_recordset(s.items) AS x(checklist text, item_no int, item text)
     WHERE s.id = inc.checklist_set AND x.checklist = wanted AND x.item_no = incident_checklist_tick.item;
    IF item_text IS NULL THEN
        RAISE EXCEPTION 'incident "%" has no item % in checklist "%"', inc.code, coalesce(incident_checklist_tick.item::text, 'NULL'), @extschema@.incident__quote(wanted)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = pg_catalog.format('See SELECT * FROM incident_checklist(%L) for its checklists and item numbers.', inc.code);
    END IF;
    SELECT * INTO tick FROM @extschema@.incident_checklist_tick t
     WHERE t.incident_id = inc.id AND t.checklist = wanted AND t.item_no = incident_checklist_tick.item;
    IF tick.incident_id IS NOT NULL THEN
        RAISE EXCEPTION 'item % in checklist "%" of incident "%" is already ticked', incident_checklist_tick.item, @extschema@.incident__quote(wanted), inc.code
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('%s ticked it at %s.', tick.done_by, tick.done_at);
    END IF;

    INSERT INTO @extschema@.incident_checklist_tick (incident_id, checklist, item_no, done_at, done_by)
    VALUES (inc.id, wanted, incident_checklist_tick.item, now_, responder);

    PERFORM @extschema@.incident__event(inc, 'checklist', responder, item_text,
        pg_catalog.jsonb_build_object('checklist', wanted, 'item_no', incident_checklist_tick.item), now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_checklist_tick(text, text, int, text) IS
'Ticks item number item of a checklist of an incident, as done by responder (default: the calling role) now, and records it in the timeline. Returns the status.';

------------------------------------------------------------------------------
-- Views for dashboards
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident_clock_state(due timestamptz, span interval, met_at timestamptz DEFAULT NULL,
                                                 at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    now_ timestamptz := coalesce(at, @extschema@.incident_now());
BEGIN
    IF due IS NULL THEN
        RETURN NULL;
    END IF;
    IF span IS NULL OR span < interval '0' THEN
        RAISE EXCEPTION 'invalid span "%" of a clock due at %', coalesce(span::text, 'NULL'), due
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The span is the clock''s length, from its start to its due time; due_soon is its last quarter.',
                  HINT = 'Give the length of the clock as a positive interval, such as response_due - declared_at.';
    END IF;
    IF met_at IS NOT NULL THEN
        RETURN CASE WHEN met_at <= due THEN 'ok' ELSE 'breached' END;
    END IF;
    RETURN CASE WHEN now_ > due THEN 'breached'
                WHEN due - now_ <= span / 4 THEN 'due_soon'
                ELSE 'ok' END;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_clock_state(timestamptz, interval, timestamptz, timestamptz) IS
'State of a deadline: ok, due_soon (the last quarter of span remains) or breached; a clock met (met_at) is ok if met in time and breached if late. at defaults to incident_now(); a NULL due gives NULL, a NULL or negative span an error.';

CREATE VIEW @extschema@.incident_dashboard AS
SELECT i.code,
       i.severity,
       s.name AS severity_name,
       i.status,
       i.title,
       i.declared_at,
       @extschema@.incident_now() - i.declared_at AS age,
       i.acknowledged_at,
       i.acknowledged_by,
       coalesce(i.incident_commander, i.acknowledged_by) AS owner,
       i.incident_commander,
       i.technical_lead,
       i.communications_lead,
       i.response_due,
       -- a clock's span is its start to its due time, which on a business
       -- calendar is longer than the severity's interval
       @extschema@.incident_clock_state(i.response_due, i.response_due - i.declared_at, i.acknowledged_at) AS response_state,
       i.last_update_at,
       i.next_update_due,
       @extschema@.incident_clock_state(i.next_update_due,
                                        i.next_update_due - coalesce(i.last_update_at, i.declared_at)) AS update_state
  FROM @extschema@.incident i
  JOIN @extschema@.incident_severity s USING (severity)
 WHERE i.status NOT IN ('resolved', 'closed')
 ORDER BY i.severity, i.declared_at, i.id;

COMMENT ON VIEW @extschema@.incident_dashboard IS
'Open incidents (not resolved), most severe and oldest first: severity, status, age, owner and roles, and each clock with its due time and state (ok, due_soon, breached).';
COMMENT ON COLUMN @extschema@.incident_dashboard.severity_name IS 'The severity''s name from incident_severity (critical, high, medium, low).';
COMMENT ON COLUMN @extschema@.incident_dashboard.age IS 'Time since the declaration, by incident_now().';
COMMENT ON COLUMN @extschema@.incident_dashboard.owner IS 'The incident commander, or whoever acknowledged the incident while there is none.';
COMMENT ON COLUMN @extschema@.incident_dashboard.response_state IS 'Acknowledgement clock: ok, due_soon or breached; once acknowledged, ok if in time and breached if late.';
COMMENT ON COLUMN @extschema@.incident_dashboard.update_state IS 'Status update clock: ok, due_soon or breached.';

CREATE VIEW @extschema@.incident_timeline AS
SELECT i.code,
       e.id AS event_id,
       e.at,
       e.kind,
       e.actor,
       e.status,
       e.message,
       e.details,
       i.severity,
       i.title,
       e.recorded_by
  FROM @extschema@.incident_event e
  JOIN @extschema@.incident i ON i.id = e.incident_id
 ORDER BY i.id, e.id;

COMMENT ON VIEW @extschema@.incident_timeline IS
'Every timeline event of every incident, in order, with the incident''s code, current severity and title.';
COMMENT ON COLUMN @extschema@.incident_timeline.event_id IS 'The event''s id: events of an incident are in this order.';
COMMENT ON COLUMN @extschema@.incident_timeline.kind IS
'declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated, reminder or probe (a probe went down, changed its failure or recovered).';
COMMENT ON COLUMN @extschema@.incident_timeline.actor IS 'Who the event is about: the responder named in the call, else the role that made it.';
COMMENT ON COLUMN @extschema@.incident_timeline.recorded_by IS 'The role that made the call (the accountable login), also when it named someone else as actor.';
COMMENT ON COLUMN @extschema@.incident_timeline.status IS 'The incident''s status after the event.';
COMMENT ON COLUMN @extschema@.incident_timeline.details IS 'Facts of the event as JSON, such as {"from": "P3", "to": "P1"} for a severity change.';
COMMENT ON COLUMN @extschema@.incident_timeline.severity IS 'The incident''s current severity, not the one at the time of the event (see severity_changed events).';

------------------------------------------------------------------------------
-- pg_dump keeps users' data
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_day_counter', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_event', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_checklist_set', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_checklist_tick', '');

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

GRANT SELECT ON @extschema@.incident, @extschema@.incident_event, @extschema@.incident_severity,
                @extschema@.incident_checklist_template, @extschema@.incident_checklist_template_item,
                @extschema@.incident_checklist_set, @extschema@.incident_checklist_tick,
                @extschema@.incident_checklist_cache, @extschema@.incident_day_counter,
                @extschema@.incident_dashboard, @extschema@.incident_timeline, @extschema@.incident_checklist_items
   TO incident_viewer;
GRANT EXECUTE ON FUNCTION @extschema@.incident_severity_normalize(text),
                          @extschema@.incident_clock_state(timestamptz, interval, timestamptz, timestamptz),
                          @extschema@.incident__find(text, boolean),
                          @extschema@.incident_checklist(text)
   TO incident_viewer;

GRANT EXECUTE ON FUNCTION @extschema@.incident_declare(text, text, text, timestamptz),
                          @extschema@.incident_acknowledge(text, text),
                          @extschema@.incident_update(text, text, text),
                          @extschema@.incident_set_severity(text, text, text),
                          @extschema@.incident_assign(text, text, text),
                          @extschema@.incident_note(text, text),
                          @extschema@.incident_resolve(text, text),
                          @extschema@.incident_close(text),
                          @extschema@.incident_checklist_tick(text, text, int, text)
   TO incident_responder;

GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_severity, @extschema@.incident_checklist_template,
                                @extschema@.incident_checklist_template_item
   TO incident_admin;
