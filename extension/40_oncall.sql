/* extension/40_oncall.sql: on-call rotations and escalation policies.
 *
 * Responders and their contacts, rotations of responders with overrides, the
 * playbook's three incident roles with a primary and a backup, and
 * escalation policies: who is paged, and when, while an incident stays
 * unacknowledged. incident_oncall() says who is on call at a time;
 * incident_escalations shows the next escalation of every unacknowledged
 * incident and incident_escalate() performs it by hand; the background
 * worker fires each level on time through the same code (incident__sweep,
 * extension/70_notify.sql).
 *
 * Time arithmetic:
 *  - a rotation's handoffs are counted in its own time zone's wall clock:
 *    handoff k is (starts_at in local time) + k * shift, read back in that
 *    zone, so a Monday 09:00 handoff stays at 09:00 across daylight saving;
 *  - escalation delays are elapsed time (a '1 day' delay is 24 hours), so a
 *    schedule does not depend on the session's TimeZone.
 */

------------------------------------------------------------------------------
-- Responders
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_responder (
    name    text PRIMARY KEY CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 200),
    phone   text,
    email   text CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    chat    text
);

COMMENT ON TABLE @extschema@.incident_responder IS
'People who can be paged: their name (as used in rotations, overrides, incident roles and escalation levels) and how to reach them. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_responder.name IS 'The responder''s name; use the same name as in incident_acknowledge(code, responder).';
COMMENT ON COLUMN @extschema@.incident_responder.phone IS 'Phone number for pages and calls (free text, such as +966-5X-XXX-XXXX).';
COMMENT ON COLUMN @extschema@.incident_responder.email IS 'Email address.';
COMMENT ON COLUMN @extschema@.incident_responder.chat IS 'Chat handle, such as @john on Slack.';

------------------------------------------------------------------------------
-- Rotations, their members and overrides
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_rotation (
    name        text PRIMARY KEY CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 100),
    shift       interval NOT NULL DEFAULT '1 week'
                CONSTRAINT incident_rotation_shift_check
                CHECK (shift > interval '0' AND shift <= interval '366 days'
                       AND pg_catalog.date_part('year', shift) * 12 + pg_catalog.date_part('month', shift) >= 0
                       AND pg_catalog.date_part('day', shift) >= 0
                       AND shift - pg_catalog.date_trunc('day', shift) >= interval '0'),
    starts_at   timestamptz NOT NULL CONSTRAINT incident_rotation_starts_at_check CHECK (pg_catalog.isfinite(starts_at)),
    time_zone   text NOT NULL DEFAULT 'UTC'
                CONSTRAINT incident_rotation_time_zone_check CHECK (@extschema@.incident_timezone_valid(time_zone)),
    description text
);

COMMENT ON TABLE @extschema@.incident_rotation IS
'On-call rotations: members (incident_rotation_member) take turns in position order, one shift each, starting with the first member at starts_at. Editable by incident_admin; incident_oncall() says who is on call.';
COMMENT ON COLUMN @extschema@.incident_rotation.shift IS 'Length of one member''s turn on the wall clock of time_zone (default 1 week): handoffs keep their local time of day across daylight-saving changes.';
COMMENT ON COLUMN @extschema@.incident_rotation.starts_at IS 'The first handoff, to the member at the lowest position; its local time in time_zone is the handoff time of every shift. Before it the rotation has nobody on call.';
COMMENT ON COLUMN @extschema@.incident_rotation.time_zone IS 'IANA time zone of the handoffs, such as Asia/Riyadh or Europe/Berlin.';

CREATE TABLE @extschema@.incident_rotation_member (
    rotation    text NOT NULL REFERENCES @extschema@.incident_rotation ON UPDATE CASCADE ON DELETE CASCADE,
    position    int NOT NULL CHECK (position > 0),
    responder   text NOT NULL REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    backup      text REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    PRIMARY KEY (rotation, position),
    UNIQUE (rotation, responder),
    CHECK (backup <> responder)
);

COMMENT ON TABLE @extschema@.incident_rotation_member IS
'Members of each rotation in turn order (position ascending; gaps allowed). During a member''s shift the member is primary; the backup is the member''s own backup if set, else the next member in order (the first after the last); a one-member rotation without a backup has none.';
COMMENT ON COLUMN @extschema@.incident_rotation_member.position IS 'Turn order within the rotation: the member at the lowest position takes the shift that begins at starts_at.';
COMMENT ON COLUMN @extschema@.incident_rotation_member.responder IS 'The primary responder during this member''s shifts.';
COMMENT ON COLUMN @extschema@.incident_rotation_member.backup IS 'Who backs this member up during their shifts (pairs that rotate together, as in the playbook); NULL: the next member in order.';

CREATE TABLE @extschema@.incident_rotation_override (
    id          bigserial PRIMARY KEY,
    rotation    text NOT NULL REFERENCES @extschema@.incident_rotation ON UPDATE CASCADE ON DELETE CASCADE,
    slot        text NOT NULL DEFAULT 'primary' CHECK (slot IN ('primary', 'backup')),
    responder   text NOT NULL REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text,
    created_by  text NOT NULL DEFAULT current_user,
    CHECK (ends_at > starts_at)
);

CREATE INDEX incident_rotation_override_rotation_idx
    ON @extschema@.incident_rotation_override (rotation, slot, starts_at);

COMMENT ON TABLE @extschema@.incident_rotation_override IS
'Someone covers the primary or the backup slot of a rotation from starts_at until ends_at (exclusive), whoever the rotation says. Overrides of the same rotation and slot may not overlap. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_rotation_override.slot IS 'primary or backup.';
COMMENT ON COLUMN @extschema@.incident_rotation_override.ends_at IS 'End of the cover, exclusive: at ends_at the rotation (or the next override) takes over.';
COMMENT ON COLUMN @extschema@.incident_rotation_override.created_by IS 'The role that inserted the override.';

------------------------------------------------------------------------------
-- The playbook's incident roles
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_team_role (
    role                text PRIMARY KEY CHECK (role IN ('incident_commander', 'technical_lead', 'communications_lead')),
    title               text NOT NULL,
    responsibilities    text[] NOT NULL DEFAULT '{}',
    primary_title       text,
    backup_title        text,
    primary_responder   text REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    backup_responder    text REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    is_default          boolean NOT NULL DEFAULT false
);

COMMENT ON TABLE @extschema@.incident_team_role IS
'The playbook''s Incident Response Team: the three incident roles (incident_commander, technical_lead, communications_lead), their responsibilities, and who fills each as primary and backup. Seeded with the playbook''s job titles; incident_admin sets the people.';
COMMENT ON COLUMN @extschema@.incident_team_role.role IS 'The role as incident_assign() takes it.';
COMMENT ON COLUMN @extschema@.incident_team_role.title IS 'The role''s name in the playbook.';
COMMENT ON COLUMN @extschema@.incident_team_role.primary_title IS 'The playbook''s job title of the primary (such as System Administrator).';
COMMENT ON COLUMN @extschema@.incident_team_role.backup_title IS 'The playbook''s job title of the backup (such as DevOps Engineer).';
COMMENT ON COLUMN @extschema@.incident_team_role.primary_responder IS 'The responder who fills the role; NULL until an admin sets it.';
COMMENT ON COLUMN @extschema@.incident_team_role.backup_responder IS 'The responder who fills the role when the primary cannot; NULL until an admin sets it.';
COMMENT ON COLUMN @extschema@.incident_team_role.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

INSERT INTO @extschema@.incident_team_role
    (role, title, responsibilities, primary_title, backup_title, is_default)
VALUES
    ('incident_commander', 'Incident Commander (IC)',
     ARRAY['Overall incident coordination', 'Decision making authority',
           'Communication with stakeholders', 'Resource allocation'],
     'System Administrator', 'DevOps Engineer', true),
    ('technical_lead', 'Technical Lead',
     ARRAY['Technical investigation and resolution', 'Implementation of fixes',
           'Technical communication to IC'],
     'Lead Developer', 'Senior Developer', true),
    ('communications_lead', 'Communications Lead',
     ARRAY['Internal team communication', 'Customer communication', 'Status page updates',
           'Documentation'],
     'Business Owner', 'Project Manager', true);

SELECT @extschema@.incident__seeded_table('@extschema@.incident_team_role', 'role');

------------------------------------------------------------------------------
-- Escalation policies
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_escalation_policy (
    name            text PRIMARY KEY CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 100),
    description     text,
    repeat_every    interval CONSTRAINT incident_escalation_policy_repeat_every_check
                    CHECK (repeat_every > interval '0' AND repeat_every <= interval '30 days'),
    repeat_limit    int CHECK (repeat_limit > 0),
    is_default      boolean NOT NULL DEFAULT false,
    CHECK (repeat_limit IS NULL OR repeat_every IS NOT NULL)
);

COMMENT ON TABLE @extschema@.incident_escalation_policy IS
'Escalation policies: ordered levels (incident_escalation_level) that page someone when an incident is still unacknowledged a delay after its declaration, optionally repeated. A severity''s escalation_policy says which applies. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_escalation_policy.repeat_every IS 'NULL: the levels run once. Otherwise the whole policy runs again, this long after its last level, for as long as the incident stays unacknowledged (elapsed time).';
COMMENT ON COLUMN @extschema@.incident_escalation_policy.repeat_limit IS 'How many times the policy repeats after its first run; NULL with repeat_every set: until the incident is acknowledged.';
COMMENT ON COLUMN @extschema@.incident_escalation_policy.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

CREATE TABLE @extschema@.incident_escalation_level (
    policy          text NOT NULL REFERENCES @extschema@.incident_escalation_policy ON UPDATE CASCADE ON DELETE CASCADE,
    level           int NOT NULL CHECK (level > 0),
    delay           interval NOT NULL
                    CONSTRAINT incident_escalation_level_delay_check
                    CHECK (delay >= interval '0' AND delay <= interval '30 days'),
    target_type     text NOT NULL CHECK (target_type IN ('rotation_primary', 'rotation_backup', 'responder',
                                                         'role_primary', 'role_backup')),
    target          text NOT NULL,
    note            text,
    is_default      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (policy, level),
    CONSTRAINT incident_escalation_level_role_target_check
        CHECK (target_type NOT IN ('role_primary', 'role_backup')
               OR target IN ('incident_commander', 'technical_lead', 'communications_lead'))
);

COMMENT ON TABLE @extschema@.incident_escalation_level IS
'Levels of each escalation policy, in level order: level n is due delay after the declaration if the incident is still unacknowledged, and pages its target. Delays may not decrease from one level to the next.';
COMMENT ON COLUMN @extschema@.incident_escalation_level.level IS 'Order of the level within its policy (1 first; gaps allowed).';
COMMENT ON COLUMN @extschema@.incident_escalation_level.delay IS 'Elapsed time after the declaration when the level is due (0: at once; ''1 day'' is 24 hours).';
COMMENT ON COLUMN @extschema@.incident_escalation_level.target_type IS 'rotation_primary or rotation_backup (target names a rotation), responder (target names a responder), role_primary or role_backup (target names an incident role).';
COMMENT ON COLUMN @extschema@.incident_escalation_level.target IS 'The rotation, responder or incident role paged; resolved to a responder when the level is due. A rotation or responder may be created after the level that names it; until then the level pages nobody.';
COMMENT ON COLUMN @extschema@.incident_escalation_level.note IS 'What the level is for, shown in the escalation event.';
COMMENT ON COLUMN @extschema@.incident_escalation_level.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

-- The playbook, Phase 2.1, for P1/P2: "Page on-call engineer immediately;
-- notify Incident Commander". The rotation "on-call" and the people of the
-- roles are the users' to create; until then these levels page nobody, and
-- incident_escalations says why.
INSERT INTO @extschema@.incident_escalation_policy (name, description, repeat_every, repeat_limit, is_default)
VALUES ('page-on-call',
        'P1/P2 (playbook 2.1): page the on-call engineer and notify the Incident Commander at once; page the on-call backup if nobody has acknowledged after 10 minutes; repeat every 20 minutes, 3 times.',
        '20 minutes', 3, true);

INSERT INTO @extschema@.incident_escalation_level (policy, level, delay, target_type, target, note, is_default)
VALUES ('page-on-call', 1, '0', 'rotation_primary', 'on-call', 'Page on-call engineer immediately', true),
       ('page-on-call', 2, '0', 'role_primary', 'incident_commander', 'Notify Incident Commander', true),
       ('page-on-call', 3, '10 minutes', 'rotation_backup', 'on-call', 'Still unacknowledged: page the on-call backup', true);

SELECT @extschema@.incident__seeded_table('@extschema@.incident_escalation_policy', 'name');
SELECT @extschema@.incident__seeded_table('@extschema@.incident_escalation_level', 'policy', 'level');

-- Which policy applies: per severity. Seeded P1 and P2 rows get the seeded
-- policy without counting as edited (an upgrade also gives it to P1/P2 rows
-- a user edited).
ALTER TABLE @extschema@.incident_severity
    ADD COLUMN escalation_policy text REFERENCES @extschema@.incident_escalation_policy ON UPDATE CASCADE;

COMMENT ON COLUMN @extschema@.incident_severity.escalation_policy IS
'The escalation policy for unacknowledged incidents of this severity; NULL: they do not escalate.';

ALTER TABLE @extschema@.incident_severity DISABLE TRIGGER incident_severity_edited;
UPDATE @extschema@.incident_severity SET escalation_policy = 'page-on-call'
 WHERE severity IN ('P1', 'P2') AND escalation_policy IS NULL;
ALTER TABLE @extschema@.incident_severity ENABLE TRIGGER incident_severity_edited;

------------------------------------------------------------------------------
-- What each constraint asks for (the hints of incident__validate_row)
------------------------------------------------------------------------------

COMMENT ON CONSTRAINT incident_responder_name_check ON @extschema@.incident_responder IS
'A responder''s name has 1 to 200 characters; use the same name as in incident_acknowledge(code, responder).';
COMMENT ON CONSTRAINT incident_responder_email_check ON @extschema@.incident_responder IS
'Give an address such as jane@example.com, or NULL.';
COMMENT ON CONSTRAINT incident_rotation_name_check ON @extschema@.incident_rotation IS
'A rotation''s name has 1 to 100 characters, such as "on-call".';
COMMENT ON CONSTRAINT incident_rotation_shift_check ON @extschema@.incident_rotation IS
'Give a shift length such as ''1 week'' (the default), ''1 day'' or ''12 hours'': longer than zero, at most 366 days, with no negative part.';
COMMENT ON CONSTRAINT incident_rotation_starts_at_check ON @extschema@.incident_rotation IS
'Give the first handoff with its time zone, such as ''2026-03-02 09:00 Europe/Berlin''.';
COMMENT ON CONSTRAINT incident_rotation_time_zone_check ON @extschema@.incident_rotation IS
'Give a name from pg_timezone_names, such as "Europe/Berlin" or "UTC".';
COMMENT ON CONSTRAINT incident_rotation_member_rotation_fkey ON @extschema@.incident_rotation_member IS
'Create the rotation in incident_rotation first.';
COMMENT ON CONSTRAINT incident_rotation_member_position_check ON @extschema@.incident_rotation_member IS
'Positions are whole numbers from 1 up, in turn order.';
COMMENT ON CONSTRAINT incident_rotation_member_responder_fkey ON @extschema@.incident_rotation_member IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_rotation_member_backup_fkey ON @extschema@.incident_rotation_member IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_rotation_member_check ON @extschema@.incident_rotation_member IS
'Name someone else as backup, or leave it NULL so that the next member backs up.';
COMMENT ON CONSTRAINT incident_rotation_override_rotation_fkey ON @extschema@.incident_rotation_override IS
'Create the rotation in incident_rotation first.';
COMMENT ON CONSTRAINT incident_rotation_override_slot_check ON @extschema@.incident_rotation_override IS
'Valid slots are primary and backup.';
COMMENT ON CONSTRAINT incident_rotation_override_responder_fkey ON @extschema@.incident_rotation_override IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_rotation_override_check ON @extschema@.incident_rotation_override IS
'ends_at must be after starts_at, such as starts_at ''2026-03-05 09:00 Asia/Riyadh'' and ends_at ''2026-03-06 09:00 Asia/Riyadh''.';
COMMENT ON CONSTRAINT incident_team_role_primary_responder_fkey ON @extschema@.incident_team_role IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_team_role_backup_responder_fkey ON @extschema@.incident_team_role IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_escalation_policy_name_check ON @extschema@.incident_escalation_policy IS
'A policy''s name has 1 to 100 characters, such as "page-on-call".';
COMMENT ON CONSTRAINT incident_escalation_policy_repeat_every_check ON @extschema@.incident_escalation_policy IS
'Give a positive interval of at most 30 days such as ''30 minutes'', or NULL to run the levels once.';
COMMENT ON CONSTRAINT incident_escalation_policy_repeat_limit_check ON @extschema@.incident_escalation_policy IS
'repeat_limit counts repeats after the first run: 1 or more; NULL repeats until acknowledged.';
COMMENT ON CONSTRAINT incident_escalation_policy_check ON @extschema@.incident_escalation_policy IS
'A repeat_limit needs repeat_every: set both, or leave repeat_limit NULL.';
COMMENT ON CONSTRAINT incident_escalation_level_policy_fkey ON @extschema@.incident_escalation_level IS
'Create the policy in incident_escalation_policy first.';
COMMENT ON CONSTRAINT incident_escalation_level_level_check ON @extschema@.incident_escalation_level IS
'Levels are whole numbers from 1 up, in escalation order.';
COMMENT ON CONSTRAINT incident_escalation_level_delay_check ON @extschema@.incident_escalation_level IS
'Give the time after the declaration when the level is due, from ''0'' (at once) to ''30 days'', such as ''10 minutes''.';
COMMENT ON CONSTRAINT incident_escalation_level_target_type_check ON @extschema@.incident_escalation_level IS
'Valid target types are rotation_primary, rotation_backup, responder, role_primary and role_backup.';
COMMENT ON CONSTRAINT incident_escalation_level_role_target_check ON @extschema@.incident_escalation_level IS
'Valid roles are incident_commander, technical_lead and communications_lead.';

------------------------------------------------------------------------------
-- Checks of the configuration: clear errors from the constraints above
------------------------------------------------------------------------------

-- Each table is tidied (names and contacts trimmed, words lower-cased) and
-- validated against its own constraints by incident__checked_table()
-- (00_common.sql); what no constraint can say is checked below.

SELECT @extschema@.incident__checked_table('@extschema@.incident_responder', 'name', 'phone', 'email', 'chat');
SELECT @extschema@.incident__checked_table('@extschema@.incident_rotation', 'name', 'time_zone');
SELECT @extschema@.incident__checked_table('@extschema@.incident_rotation_member', 'rotation', 'responder', 'backup');
SELECT @extschema@.incident__checked_table('@extschema@.incident_rotation_override', 'slot:lower', 'responder');
SELECT @extschema@.incident__checked_table('@extschema@.incident_team_role', 'primary_responder', 'backup_responder');
SELECT @extschema@.incident__checked_table('@extschema@.incident_escalation_policy', 'name');
SELECT @extschema@.incident__checked_table('@extschema@.incident_escalation_level', 'target_type:lower', 'target');

CREATE FUNCTION @extschema@.incident__require_rotation(name text)
RETURNS @extschema@.incident_rotation
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.incident_rotation;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'rotation must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the name of a rotation from incident_rotation.';
    END IF;
    SELECT * INTO r FROM @extschema@.incident_rotation x WHERE x.name = incident__require_rotation.name;
    IF r.name IS NULL THEN
        RAISE EXCEPTION 'rotation "%" does not exist', @extschema@.incident__quote(name)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_rotation for the rotations.';
    END IF;
    RETURN r;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_rotation(text) IS
'Internal: the rotation of this name, or an error if the name is null or unknown.';

CREATE FUNCTION @extschema@.incident__check_rotation_override()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    clash @extschema@.incident_rotation_override;
    invoker text := @extschema@.incident_invoker();
    writer text := invoker;
BEGIN
    -- created_by is who wrote the override; only a superuser (a restore)
    -- writes another name
    IF TG_OP = 'UPDATE' THEN
        writer := OLD.created_by;
    END IF;
    IF NEW.created_by IS DISTINCT FROM writer
       AND NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = invoker), false) THEN
        RAISE EXCEPTION 'invalid created_by "%" for override % of rotation "%"',
                        @extschema@.incident__quote(NEW.created_by), NEW.id, NEW.rotation
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('incident_rotation_override.created_by records who wrote the override: %s.', writer),
                  HINT = 'Leave created_by out; it is filled in for you.';
    END IF;

    -- Serialize overrides of one rotation, so that two sessions cannot each
    -- add one half of an overlap; this runs after the row is written, so the
    -- other override is looked for beside it.
    PERFORM FROM @extschema@.incident_rotation r WHERE r.name = NEW.rotation FOR UPDATE;
    SELECT * INTO clash FROM @extschema@.incident_rotation_override o
     WHERE o.rotation = NEW.rotation AND o.slot = NEW.slot
       AND o.starts_at < NEW.ends_at AND NEW.starts_at < o.ends_at
       AND o.id <> NEW.id
     ORDER BY o.starts_at LIMIT 1;
    IF clash.id IS NOT NULL THEN
        RAISE EXCEPTION 'override of the % of rotation "%" from "%" to "%" overlaps override %',
                        NEW.slot, NEW.rotation, NEW.starts_at, NEW.ends_at, clash.id
            USING ERRCODE = 'exclusion_violation',
                  DETAIL = pg_catalog.format('Override %s has %s cover the %s from %s to %s.',
                                             clash.id, clash.responder, clash.slot, clash.starts_at, clash.ends_at),
                  HINT = 'Overrides of one slot may not overlap: shorten or delete the other one first.';
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_rotation_override() IS
'Internal trigger: after an override is written, refuses it if it overlaps another override of the same rotation and slot, or if a role other than a superuser wrote a created_by that is not itself.';

CREATE TRIGGER incident_rotation_override_check
    AFTER INSERT OR UPDATE ON @extschema@.incident_rotation_override
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_rotation_override();

CREATE FUNCTION @extschema@.incident__check_escalation_order()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    -- an AFTER ROW trigger runs once the whole statement is done, so that
    -- one UPDATE may shift every delay of a policy at once; the policy row
    -- is locked so that two sessions adding levels check one after the other
    PERFORM FROM @extschema@.incident_escalation_policy p WHERE p.name = NEW.policy FOR UPDATE;
    SELECT a.level AS earlier, a.delay AS earlier_delay, b.level AS later, b.delay AS later_delay INTO bad
      FROM @extschema@.incident_escalation_level a
      JOIN @extschema@.incident_escalation_level b
        ON b.policy = a.policy AND b.level > a.level
       AND pg_catalog.date_part('epoch', b.delay) < pg_catalog.date_part('epoch', a.delay)
     WHERE a.policy = NEW.policy
     ORDER BY a.level, b.level LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'delay of level % of escalation policy "%" (%) is shorter than that of level % (%)',
                        bad.later, NEW.policy, bad.later_delay, bad.earlier, bad.earlier_delay
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Levels escalate in order, so their delays may not decrease.',
                  HINT = 'Give later levels the same or a longer delay, or renumber the levels.';
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_escalation_order() IS
'Internal trigger: at the end of a statement, refuses a policy whose delays decrease from one level to the next.';

CREATE TRIGGER incident_escalation_level_order
    AFTER INSERT OR UPDATE ON @extschema@.incident_escalation_level
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_escalation_order();

------------------------------------------------------------------------------
-- Who is on call
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__rotation_handoff(r @extschema@.incident_rotation, shift_no bigint)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- shift 0 begins at starts_at itself; later ones on the local wall clock
    SELECT CASE WHEN shift_no = 0 THEN r.starts_at
                ELSE ((r.starts_at AT TIME ZONE r.time_zone) + shift_no * r.shift) AT TIME ZONE r.time_zone END
$$;

COMMENT ON FUNCTION @extschema@.incident__rotation_handoff(@extschema@.incident_rotation, bigint) IS
'Internal: when shift number shift_no (0 first) of the rotation begins: starts_at plus shift_no shifts, counted on the wall clock of the rotation''s time zone. A local time that does not exist that day (the spring-forward gap) is read as PostgreSQL reads it, one hour later by the clock.';

CREATE FUNCTION @extschema@.incident__rotation_shift(r @extschema@.incident_rotation, at timestamptz)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    when_ timestamptz := incident__rotation_shift.at;
    k bigint;
BEGIN
    IF when_ < r.starts_at THEN
        RETURN NULL;
    END IF;
    -- estimate from local times, then step to the exact shift: months in the
    -- estimate count 30 days and daylight saving moves handoffs by an hour
    k := pg_catalog.floor(pg_catalog.date_part('epoch', (when_ AT TIME ZONE r.time_zone) - (r.starts_at AT TIME ZONE r.time_zone))
                          / pg_catalog.date_part('epoch', r.shift))::bigint;
    k := greatest(k, 0);
    WHILE @extschema@.incident__rotation_handoff(r, k + 1) <= when_ LOOP
        k := k + 1;
    END LOOP;
    WHILE k > 0 AND @extschema@.incident__rotation_handoff(r, k) > when_ LOOP
        k := k - 1;
    END LOOP;
    RETURN k;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__rotation_shift(@extschema@.incident_rotation, timestamptz) IS
'Internal: the number of the rotation''s shift (0 first) that is running at a time; NULL before starts_at.';

CREATE FUNCTION @extschema@.incident__oncall(rotation text, at timestamptz,
                                             OUT primary_responder text, OUT backup_responder text,
                                             OUT primary_reason text, OUT backup_reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    when_ timestamptz := incident__oncall.at;
    r @extschema@.incident_rotation;
    members text[];
    backups text[];
    n int;
    k bigint;
    i int;
    o @extschema@.incident_rotation_override;
BEGIN
    SELECT * INTO r FROM @extschema@.incident_rotation x WHERE x.name = incident__oncall.rotation;
    IF r.name IS NULL THEN
        primary_reason := pg_catalog.format('rotation "%s" does not exist', incident__oncall.rotation);
        backup_reason := primary_reason;
        RETURN;
    END IF;
    SELECT pg_catalog.array_agg(m.responder ORDER BY m.position), pg_catalog.array_agg(m.backup ORDER BY m.position)
      INTO members, backups
      FROM @extschema@.incident_rotation_member m WHERE m.rotation = r.name;
    n := coalesce(pg_catalog.array_length(members, 1), 0);
    IF n = 0 THEN
        primary_reason := pg_catalog.format('rotation "%s" has no members', r.name);
        backup_reason := primary_reason;
        RETURN;
    END IF;

    k := @extschema@.incident__rotation_shift(r, when_);
    IF k IS NULL THEN
        primary_reason := pg_catalog.format('rotation "%s" starts at %s', r.name, r.starts_at);
        backup_reason := primary_reason;
    ELSE
        i := (k % n)::int + 1;
        primary_responder := members[i];
        backup_responder := coalesce(backups[i], CASE WHEN n > 1 THEN members[i % n + 1] END);
        IF backup_responder IS NULL THEN
            backup_reason := pg_catalog.format('rotation "%s" has one member and no backup', r.name);
        END IF;
    END IF;

    SELECT * INTO o FROM @extschema@.incident_rotation_override x
     WHERE x.rotation = r.name AND x.slot = 'primary' AND x.starts_at <= when_ AND when_ < x.ends_at;
    IF o.id IS NOT NULL THEN
        primary_responder := o.responder;
        primary_reason := NULL;
    END IF;
    o := NULL;
    SELECT * INTO o FROM @extschema@.incident_rotation_override x
     WHERE x.rotation = r.name AND x.slot = 'backup' AND x.starts_at <= when_ AND when_ < x.ends_at;
    IF o.id IS NOT NULL THEN
        backup_responder := o.responder;
        backup_reason := NULL;
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__oncall(text, timestamptz) IS
'Internal: primary and backup of a rotation at a time, overrides applied, and for each one that is NULL the reason (unknown rotation, no members, not started, one member); never raises, so that views can use it.';

CREATE FUNCTION @extschema@.incident_oncall(rotation text, at timestamptz DEFAULT @extschema@.incident_now(),
                                            OUT primary_responder text, OUT backup_responder text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.incident_rotation := @extschema@.incident__require_rotation(incident_oncall.rotation);
    found_ record;
BEGIN
    IF incident_oncall.at IS NULL THEN
        RAISE EXCEPTION 'time must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a time, or leave it out for now (incident_now()).';
    END IF;
    IF NOT pg_catalog.isfinite(incident_oncall.at) THEN
        RAISE EXCEPTION 'invalid time "%" for rotation "%"', incident_oncall.at, r.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Who is on call is asked of a definite time.',
                  HINT = 'Give a time such as ''2026-03-04 12:00 Europe/Berlin'', or leave it out for now (incident_now()).';
    END IF;
    IF NOT EXISTS (SELECT FROM @extschema@.incident_rotation_member m WHERE m.rotation = r.name) THEN
        RAISE EXCEPTION 'rotation "%" has no members', r.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Add responders to it: INSERT INTO incident_rotation_member (rotation, position, responder) VALUES (%L, 1, ...).', r.name);
    END IF;
    SELECT * INTO found_ FROM @extschema@.incident__oncall(r.name, incident_oncall.at);
    primary_responder := found_.primary_responder;
    backup_responder := found_.backup_responder;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_oncall(text, timestamptz) IS
'Who is on call in a rotation at a time (default: incident_now()): the primary and the backup, overrides applied. Both are NULL before the rotation''s first handoff; the backup is NULL in a one-member rotation without a backup. An error for an unknown rotation or one without members.';

CREATE FUNCTION @extschema@.incident_oncall_schedule(rotation text, since timestamptz, until timestamptz)
RETURNS TABLE (starts_at timestamptz, ends_at timestamptz, primary_responder text, backup_responder text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.incident_rotation := @extschema@.incident__require_rotation(incident_oncall_schedule.rotation);
    bounds timestamptz[];
    k bigint;
    t timestamptz;
    shifts int := 0;
    i int;
BEGIN
    IF since IS NULL OR until IS NULL OR until <= since THEN
        RAISE EXCEPTION 'invalid period from "%" to "%"', coalesce(since::text, 'NULL'), coalesce(until::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give two times, the second after the first.';
    END IF;
    IF NOT EXISTS (SELECT FROM @extschema@.incident_rotation_member m WHERE m.rotation = r.name) THEN
        RAISE EXCEPTION 'rotation "%" has no members', r.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Add responders to it: INSERT INTO incident_rotation_member (rotation, position, responder) VALUES (%L, 1, ...).', r.name);
    END IF;
    -- every moment in the period at which someone may change: handoffs and
    -- the ends of overrides
    bounds := ARRAY[since];
    k := coalesce(@extschema@.incident__rotation_shift(r, since), -1) + 1;
    LOOP
        t := @extschema@.incident__rotation_handoff(r, k);
        EXIT WHEN t >= until;
        IF t > since THEN
            bounds := bounds || t;
        END IF;
        shifts := shifts + 1;
        IF shifts > 10000 THEN
            RAISE EXCEPTION 'period from "%" to "%" spans more than 10000 shifts of rotation "%"', since, until, r.name
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'Ask for a shorter period.';
        END IF;
        k := k + 1;
    END LOOP;
    SELECT bounds || coalesce(pg_catalog.array_agg(b), '{}') INTO bounds
      FROM @extschema@.incident_rotation_override o, LATERAL (VALUES (o.starts_at), (o.ends_at)) AS v(b)
     WHERE o.rotation = r.name AND v.b > since AND v.b < until;
    SELECT pg_catalog.array_agg(DISTINCT b ORDER BY b) INTO bounds FROM pg_catalog.unnest(bounds) AS b;
    bounds := bounds || until;

    FOR i IN 1 .. pg_catalog.array_length(bounds, 1) - 1 LOOP
        starts_at := bounds[i];
        ends_at := bounds[i + 1];
        SELECT o.primary_responder, o.backup_responder INTO primary_responder, backup_responder
          FROM @extschema@.incident__oncall(r.name, bounds[i]) o;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_oncall_schedule(text, timestamptz, timestamptz) IS
'Who is on call in a rotation from since until until: one row per stretch of time with the same people, cut at each handoff and at the start and end of each override. At most 10000 shifts.';

------------------------------------------------------------------------------
-- Escalation
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__escalation_step(policy_name text, declared timestamptz, step_no int,
                                                      OUT step int, OUT repeat int, OUT level int,
                                                      OUT delay interval, OUT due_at timestamptz,
                                                      OUT target_type text, OUT target text, OUT note text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Steps number the levels of every run in order: with n levels, step s is
    -- level number s % n + 1 of run s / n (0: the first run, 1: the first
    -- repeat). A run starts repeat_every after the previous run's last level.
    WITH levels AS (
        SELECT l.*, (pg_catalog.row_number() OVER (ORDER BY l.level) - 1)::int AS idx,
               (pg_catalog.count(*) OVER ())::int AS n,
               pg_catalog.max(pg_catalog.date_part('epoch', l.delay)) OVER () AS last_delay_s
          FROM @extschema@.incident_escalation_level l
         WHERE l.policy = $1
    )
    SELECT $3, $3 / l.n, l.level, l.delay,
           $2 + pg_catalog.make_interval(secs => ($3 / l.n) * (l.last_delay_s + coalesce(pg_catalog.date_part('epoch', p.repeat_every), 0))
                                                 + pg_catalog.date_part('epoch', l.delay)),
           l.target_type, l.target, l.note
      FROM levels l
      JOIN @extschema@.incident_escalation_policy p ON p.name = l.policy
     WHERE $3 >= 0 AND l.idx = $3 % l.n
       AND ($3 / l.n = 0 OR (p.repeat_every IS NOT NULL AND (p.repeat_limit IS NULL OR $3 / l.n <= p.repeat_limit)))
$$;

COMMENT ON FUNCTION @extschema@.incident__escalation_step(text, timestamptz, int) IS
'Internal: escalation step number step_no (0 first) of a policy for an incident declared at declared_at: its run (0: first, 1: first repeat), level, delay, due time and target; no row once the policy is exhausted. Delays are elapsed time.';

-- The next step of every unacknowledged incident at once: the arithmetic of
-- incident__escalation_step, set-based, with each policy's levels read once;
-- for the worker's sweep, which looks at all of them every time it runs
-- (sql/30_oncall.sql checks that both agree).
CREATE FUNCTION @extschema@.incident__escalations_due(OUT incident_id bigint, OUT code text, OUT step int,
                                                      OUT due_at timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH levels AS (
        SELECT l.policy, l.delay, p.repeat_every, p.repeat_limit,
               (pg_catalog.row_number() OVER (PARTITION BY l.policy ORDER BY l.level) - 1)::int AS idx,
               (pg_catalog.count(*) OVER (PARTITION BY l.policy))::int AS n,
               pg_catalog.max(pg_catalog.date_part('epoch', l.delay)) OVER (PARTITION BY l.policy) AS last_delay_s
          FROM @extschema@.incident_escalation_level l
          JOIN @extschema@.incident_escalation_policy p ON p.name = l.policy
    ), open AS MATERIALIZED (
        SELECT i.id, i.code, i.declared_at, s.escalation_policy AS policy,
               coalesce((SELECT pg_catalog.max((e.details->>'step')::int) + 1
                           FROM @extschema@.incident_event e
                          WHERE e.incident_id = i.id AND e.kind = 'escalated'
                            AND e.details->>'policy' = s.escalation_policy), 0) AS step
          FROM @extschema@.incident i
          JOIN @extschema@.incident_severity s ON s.severity = i.severity AND s.escalation_policy IS NOT NULL
         WHERE i.status = 'declared'
    )
    SELECT o.id, o.code, o.step,
           o.declared_at + pg_catalog.make_interval(secs => (o.step / l.n) * (l.last_delay_s + coalesce(pg_catalog.date_part('epoch', l.repeat_every), 0))
                                                           + pg_catalog.date_part('epoch', l.delay))
      FROM open o
      JOIN levels l ON l.policy = o.policy AND l.idx = o.step % l.n
     WHERE o.step / l.n = 0 OR (l.repeat_every IS NOT NULL AND (l.repeat_limit IS NULL OR o.step / l.n <= l.repeat_limit))
$$;

COMMENT ON FUNCTION @extschema@.incident__escalations_due() IS
'Internal, for the worker''s sweep: every unacknowledged open incident whose severity''s escalation policy has a step left, with that step''s number and due time, as incident__escalation_step computes them, in one pass.';

-- the sweep and incident_escalate() look up an incident's last escalation
-- step among its timeline events
CREATE INDEX incident_event_escalated_idx ON @extschema@.incident_event
    (incident_id, (details->>'policy'), ((details->>'step')::int)) WHERE kind = 'escalated';

CREATE FUNCTION @extschema@.incident__escalation_target(target_type text, target text, at timestamptz,
                                                        OUT responder text, OUT reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    oc record;
    tr @extschema@.incident_team_role;
BEGIN
    IF target_type IN ('rotation_primary', 'rotation_backup') THEN
        SELECT * INTO oc FROM @extschema@.incident__oncall(target, at);
        IF target_type = 'rotation_primary' THEN
            responder := oc.primary_responder;
            reason := oc.primary_reason;
        ELSE
            responder := oc.backup_responder;
            reason := oc.backup_reason;
        END IF;
    ELSIF target_type IN ('role_primary', 'role_backup') THEN
        SELECT * INTO tr FROM @extschema@.incident_team_role x WHERE x.role = target;
        responder := CASE target_type WHEN 'role_primary' THEN tr.primary_responder ELSE tr.backup_responder END;
        IF responder IS NULL THEN
            reason := pg_catalog.format('role %s has no %s responder set', target,
                                        CASE target_type WHEN 'role_primary' THEN 'primary' ELSE 'backup' END);
        END IF;
    ELSIF target_type = 'responder' THEN
        SELECT r.name INTO responder FROM @extschema@.incident_responder r WHERE r.name = target;
        IF responder IS NULL THEN
            reason := pg_catalog.format('responder "%s" does not exist', target);
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__escalation_target(text, text, timestamptz) IS
'Internal: the responder an escalation target (rotation primary or backup, responder, role primary or backup) stands for at a time, or NULL and the reason.';

CREATE FUNCTION @extschema@.incident__escalation_target_text(target_type text, target text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE target_type
        WHEN 'rotation_primary' THEN pg_catalog.format('primary of rotation "%s"', target)
        WHEN 'rotation_backup' THEN pg_catalog.format('backup of rotation "%s"', target)
        WHEN 'role_primary' THEN pg_catalog.format('primary %s', pg_catalog.replace(target, '_', ' '))
        WHEN 'role_backup' THEN pg_catalog.format('backup %s', pg_catalog.replace(target, '_', ' '))
        ELSE 'responder'
    END
$$;

COMMENT ON FUNCTION @extschema@.incident__escalation_target_text(text, text) IS
'Internal: an escalation target in words, such as primary of rotation "on-call".';

CREATE VIEW @extschema@.incident_escalations AS
SELECT i.code,
       i.severity,
       i.title,
       i.declared_at,
       s.escalation_policy AS policy,
       nx.level,
       nx.repeat,
       nx.due_at,
       nx.due_at <= @extschema@.incident_now() AS overdue,
       nx.target_type,
       nx.target,
       t.responder,
       r.phone,
       r.email,
       r.chat,
       CASE
           WHEN s.escalation_policy IS NULL THEN pg_catalog.format('severity %s has no escalation policy', i.severity)
           WHEN nx.step IS NULL AND NOT EXISTS (SELECT FROM @extschema@.incident_escalation_level l
                                                 WHERE l.policy = s.escalation_policy)
               THEN pg_catalog.format('escalation policy "%s" has no levels', s.escalation_policy)
           WHEN nx.step IS NULL THEN pg_catalog.format('escalation policy "%s" is exhausted', s.escalation_policy)
           ELSE t.reason
       END AS reason,
       coalesce(done.levels, '{}') AS done_levels,
       coalesce(done.escalations, 0) AS escalations,
       done.last_at AS last_escalated_at,
       nx.note
  FROM @extschema@.incident i
  JOIN @extschema@.incident_severity s USING (severity)
  LEFT JOIN LATERAL (
        SELECT pg_catalog.array_agg((e.details->>'level')::int ORDER BY e.id) AS levels,
               pg_catalog.count(*)::int AS escalations,
               pg_catalog.max(e.at) AS last_at,
               pg_catalog.max((e.details->>'step')::int) AS last_step
          FROM @extschema@.incident_event e
         WHERE e.incident_id = i.id AND e.kind = 'escalated'
           AND e.details->>'policy' = s.escalation_policy) done ON true
  LEFT JOIN LATERAL @extschema@.incident__escalation_step(s.escalation_policy, i.declared_at,
                                                         coalesce(done.last_step + 1, 0)) nx ON true
  LEFT JOIN LATERAL @extschema@.incident__escalation_target(nx.target_type, nx.target, nx.due_at) t ON true
  LEFT JOIN @extschema@.incident_responder r ON r.name = t.responder
 WHERE i.status = 'declared'
 ORDER BY nx.due_at, i.severity, i.declared_at, i.id;

COMMENT ON VIEW @extschema@.incident_escalations IS
'One row per unacknowledged open incident: the next level of its severity''s escalation policy, when it is due (declaration + delay, later runs when the policy repeats), whom it pages at that time (resolved through rotations, overrides and roles, with contacts) or why nobody, and the levels already escalated. Acknowledging an incident removes it.';
COMMENT ON COLUMN @extschema@.incident_escalations.policy IS 'The escalation policy of the incident''s severity; NULL: it does not escalate.';
COMMENT ON COLUMN @extschema@.incident_escalations.level IS 'The next level to escalate; NULL when none is left (see reason).';
COMMENT ON COLUMN @extschema@.incident_escalations.repeat IS 'Which run of the policy the next level belongs to: 0 the first, 1 the first repeat, and so on.';
COMMENT ON COLUMN @extschema@.incident_escalations.due_at IS 'When the next level is due: declared_at + its delay (+ the runs before it, when the policy repeats).';
COMMENT ON COLUMN @extschema@.incident_escalations.overdue IS 'Whether the next level is due by incident_now().';
COMMENT ON COLUMN @extschema@.incident_escalations.responder IS 'Whom the next level pages, resolved at due_at; NULL: nobody (see reason).';
COMMENT ON COLUMN @extschema@.incident_escalations.phone IS 'The responder''s phone.';
COMMENT ON COLUMN @extschema@.incident_escalations.email IS 'The responder''s email address.';
COMMENT ON COLUMN @extschema@.incident_escalations.chat IS 'The responder''s chat handle.';
COMMENT ON COLUMN @extschema@.incident_escalations.reason IS 'Why responder or level is NULL: no policy, policy exhausted, unknown or empty rotation, rotation not started, role not filled.';
COMMENT ON COLUMN @extschema@.incident_escalations.done_levels IS 'The levels already escalated under this policy, in order (a repeating policy lists a level once per run).';
COMMENT ON COLUMN @extschema@.incident_escalations.escalations IS 'How many escalations under this policy the timeline records.';
COMMENT ON COLUMN @extschema@.incident_escalations.last_escalated_at IS 'When the last of them was recorded.';
COMMENT ON COLUMN @extschema@.incident_escalations.note IS 'The next level''s note.';

CREATE FUNCTION @extschema@.incident_escalation_schedule(code text, max_steps int DEFAULT 100)
RETURNS TABLE (step int, repeat int, level int, due_at timestamptz, target_type text, target text,
               responder text, reason text, state text, escalated_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, false);
    policy_ text;
    now_ timestamptz := @extschema@.incident_now();
BEGIN
    IF max_steps IS NULL OR max_steps < 1 OR max_steps > 1000 THEN
        RAISE EXCEPTION 'invalid max_steps "%"', coalesce(max_steps::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A schedule lists from 1 to 1000 steps.',
                  HINT = 'Give the number of steps to list, from 1 to 1000 (default 100).';
    END IF;
    SELECT s.escalation_policy INTO policy_ FROM @extschema@.incident_severity s WHERE s.severity = inc.severity;
    RETURN QUERY
    SELECT x.step, x.repeat, x.level, x.due_at, x.target_type, x.target,
           CASE WHEN e.id IS NOT NULL THEN e.details->>'responder' ELSE t.responder END,
           CASE WHEN e.id IS NOT NULL THEN e.details->>'reason' ELSE t.reason END,
           CASE WHEN e.id IS NOT NULL THEN 'escalated'
                WHEN x.due_at <= now_ THEN 'due'
                ELSE 'scheduled' END,
           e.at
      FROM pg_catalog.generate_series(0, max_steps - 1) AS g(n)
     CROSS JOIN LATERAL @extschema@.incident__escalation_step(policy_, inc.declared_at, g.n) x
      LEFT JOIN @extschema@.incident_event e
             ON e.incident_id = inc.id AND e.kind = 'escalated'
            AND e.details->>'policy' = policy_ AND (e.details->>'step')::int = g.n
      LEFT JOIN LATERAL @extschema@.incident__escalation_target(x.target_type, x.target, x.due_at) t
             ON e.id IS NULL
     WHERE x.step IS NOT NULL                   -- no row once the policy is exhausted
       AND (e.id IS NOT NULL OR inc.status = 'declared')
     ORDER BY g.n;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_escalation_schedule(text, int) IS
'The escalation plan of an incident under its severity''s policy, step by step (at most max_steps): each level of each run with its due time, whom it pages (as recorded for steps escalated; resolved at the due time for the others) or why nobody, and its state: escalated, due or scheduled. Once the incident is acknowledged only the escalated steps remain.';

CREATE FUNCTION @extschema@.incident__escalate(code text, by_hand boolean)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    now_ timestamptz := @extschema@.incident__act_time(inc);
    policy_ text;
    last_step int;
    done int;
    last_at timestamptz;
    nx record;
    t record;
    r @extschema@.incident_responder;
    target_text text;
BEGIN
    IF inc.status <> 'declared' THEN
        PERFORM @extschema@.incident__refuse(inc, 'escalate',
            CASE WHEN inc.status IN ('resolved', 'closed')
                 THEN 'Only open, unacknowledged incidents escalate.'
                 ELSE 'Escalation stops once an incident is acknowledged; bring people in with incident_assign().' END);
    END IF;
    SELECT s.escalation_policy INTO policy_ FROM @extschema@.incident_severity s WHERE s.severity = inc.severity;
    IF policy_ IS NULL THEN
        RAISE EXCEPTION 'incident "%" has no escalation policy', inc.code
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Its severity %s has none.', inc.severity),
                  HINT = pg_catalog.format('Set one with UPDATE incident_severity SET escalation_policy = ... WHERE severity = %L.', inc.severity);
    END IF;
    SELECT pg_catalog.max((e.details->>'step')::int), pg_catalog.count(*), pg_catalog.max(e.at)
      INTO last_step, done, last_at
      FROM @extschema@.incident_event e
     WHERE e.incident_id = inc.id AND e.kind = 'escalated' AND e.details->>'policy' = policy_;
    SELECT * INTO nx FROM @extschema@.incident__escalation_step(policy_, inc.declared_at, coalesce(last_step + 1, 0));
    IF nx.step IS NULL THEN
        RAISE EXCEPTION 'incident "%" has no escalation level left', inc.code
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN done = 0
                                THEN pg_catalog.format('Escalation policy "%s" has no levels.', policy_)
                                ELSE pg_catalog.format('All %s escalations of policy "%s" are done; the last was at %s.', done, policy_, last_at) END,
                  HINT = 'Acknowledge it with incident_acknowledge(), or page someone directly.';
    END IF;

    -- whoever the target stands for now, which is when the page goes out
    SELECT * INTO t FROM @extschema@.incident__escalation_target(nx.target_type, nx.target, now_);
    SELECT * INTO r FROM @extschema@.incident_responder x WHERE x.name = t.responder;
    target_text := @extschema@.incident__escalation_target_text(nx.target_type, nx.target);
    IF t.responder IS NULL THEN
        RAISE WARNING 'level % of escalation policy "%" pages nobody: %', nx.level, policy_, t.reason
            USING HINT = 'The escalation is recorded and the next level follows; fix the rotation, role or policy so that the level reaches someone.';
    END IF;

    PERFORM @extschema@.incident__event(inc, 'escalated',
        CASE WHEN by_hand THEN @extschema@.incident_invoker() ELSE 'pg_incident' END,
        pg_catalog.format('level %s of policy "%s"%s: %s (%s)', nx.level, policy_,
                          CASE WHEN nx.repeat > 0 THEN pg_catalog.format(', repeat %s', nx.repeat) ELSE '' END,
                          coalesce(t.responder, 'nobody'), coalesce(t.reason, target_text)),
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'policy', policy_, 'step', nx.step, 'repeat', nx.repeat, 'level', nx.level,
            'target_type', nx.target_type, 'target', nx.target, 'responder', t.responder,
            'reason', t.reason, 'phone', r.phone, 'email', r.email, 'chat', r.chat,
            'due_at', nx.due_at, 'early', now_ < nx.due_at, 'by_hand', by_hand)),
        now_);
    RETURN t.responder;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__escalate(text, boolean) IS
'Internal: what incident_escalate() does, by hand (by_hand true, the caller the actor) or by the worker when a level falls due (by_hand false, actor pg_incident): escalates the unacknowledged incident to the next level of its severity''s policy, resolving the target now, with one escalated timeline event; returns the person paged.';

CREATE FUNCTION @extschema@.incident_escalate(code text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@.incident__escalate(code, true);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_escalate(text) IS
'Escalates an unacknowledged incident by hand to the next level of its severity''s escalation policy, due or not: resolves the level''s target now, writes an "escalated" timeline event naming the level and the person (with their contacts), and returns the person (NULL, with a warning, when the level pages nobody). incident_escalations then shows the level after it.';

------------------------------------------------------------------------------
-- pg_dump keeps users' data
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_responder', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_rotation', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_rotation_member', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_rotation_override', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_rotation_override_id_seq', '');

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

GRANT SELECT ON @extschema@.incident_responder, @extschema@.incident_rotation,
                @extschema@.incident_rotation_member, @extschema@.incident_rotation_override,
                @extschema@.incident_team_role, @extschema@.incident_escalation_policy,
                @extschema@.incident_escalation_level, @extschema@.incident_escalations
   TO incident_viewer;
-- who is on call and what escalates next is read-only: viewers may ask; the
-- view needs the internal helpers it calls
GRANT EXECUTE ON FUNCTION
    @extschema@.incident_oncall(text, timestamptz),
    @extschema@.incident_oncall_schedule(text, timestamptz, timestamptz),
    @extschema@.incident_escalation_schedule(text, int),
    @extschema@.incident__require_rotation(text),
    @extschema@.incident__rotation_handoff(@extschema@.incident_rotation, bigint),
    @extschema@.incident__rotation_shift(@extschema@.incident_rotation, timestamptz),
    @extschema@.incident__oncall(text, timestamptz),
    @extschema@.incident__escalation_step(text, timestamptz, int),
    @extschema@.incident__escalation_target(text, text, timestamptz),
    @extschema@.incident__escalation_target_text(text, text)
   TO incident_viewer;

GRANT EXECUTE ON FUNCTION @extschema@.incident_escalate(text) TO incident_responder;

GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_responder, @extschema@.incident_rotation,
                                @extschema@.incident_rotation_member, @extschema@.incident_rotation_override,
                                @extschema@.incident_team_role, @extschema@.incident_escalation_policy,
                                @extschema@.incident_escalation_level
   TO incident_admin;
GRANT USAGE ON SEQUENCE @extschema@.incident_rotation_override_id_seq TO incident_admin;
