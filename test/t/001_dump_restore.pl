# test/t/001_dump_restore.pl: pg_dump keeps pg_incident's data.
#
# A database with incidents in every state (with events, role assignments,
# ticked checklist items, a manual escalation), an edited severity, a
# disabled and a custom checklist template, and on-call configuration
# (responders, a rotation with members and an override, a filled incident
# role, an edited seeded escalation level, a policy of one's own) is dumped with pg_dump -Fc and restored with pg_restore
# into a new database, and that one is dumped again in plain format and
# restored with psql. Each copy must hold the same incidents, timeline and
# checklists, the edited configuration without duplicated seeded rows, and
# its sequences: the next declaration gets the next code of the day and the
# next ids. (The model is PostgreSQL's src/test/modules/test_pg_dump.)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');

# Incidents of 2026-01-15 (UTC), one per state, on the test clock.
$node->safe_psql(
	'src', q{
CREATE EXTENSION pg_incident;
SET pg_incident.timezone = 'UTC';

-- what an incident_admin changes
UPDATE incident_severity SET response_time = '2 hours' WHERE severity = 'P3';
UPDATE incident_checklist_template SET enabled = false WHERE checklist = 'p1_response';
UPDATE incident_checklist_template_item SET item = 'Open a ticket in the tracker'
 WHERE checklist = 'team_assembly' AND item_no = 5;
INSERT INTO incident_checklist_template (checklist, title, phase, sort_order, severities)
VALUES ('customer_comms', 'Customer communication', 'response', 25, '{P1,P2}');
INSERT INTO incident_checklist_template_item (checklist, item_no, item)
VALUES ('customer_comms', 1, 'Post on the status page'),
       ('customer_comms', 2, 'Email the affected customers');
UPDATE incident_classify_rule SET severity = 'P4' WHERE name = 'unclassified';
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category)
VALUES ('newsletter', 205, '\mnewsletter\M', 'P4', 'functionality');
-- seeded rows deleted: a restore must not bring them back
DELETE FROM incident_classify_rule WHERE name = 'ui_inconsistency';
DELETE FROM incident_checklist_template_item WHERE checklist = 'closure' AND item_no = 5;

-- on-call: responders, the rotation the seeded policy pages, an override,
-- the IC role filled, an edited seeded level and a policy of one's own
INSERT INTO incident_responder (name, phone, email) VALUES
    ('alice', '+1-555-0100', 'alice@example.com'), ('bob', NULL, 'bob@example.com'), ('carol', NULL, NULL);
INSERT INTO incident_rotation (name, starts_at, time_zone) VALUES ('on-call', '2026-01-05 09:00 Europe/Berlin', 'Europe/Berlin');
INSERT INTO incident_rotation_member (rotation, position, responder, backup) VALUES
    ('on-call', 1, 'alice', 'carol'), ('on-call', 2, 'bob', NULL);
INSERT INTO incident_rotation_override (rotation, slot, responder, starts_at, ends_at)
VALUES ('on-call', 'primary', 'carol', '2026-01-15 00:00+00', '2026-01-15 09:00+00');
UPDATE incident_team_role SET primary_responder = 'carol' WHERE role = 'incident_commander';
UPDATE incident_escalation_level SET delay = '5 minutes' WHERE policy = 'page-on-call' AND level = 3;
INSERT INTO incident_escalation_policy (name, repeat_every) VALUES ('slow', '1 hour');
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('slow', 1, '1 hour', 'responder', 'bob');
UPDATE incident_severity SET escalation_policy = 'slow' WHERE severity = 'P4';

-- 001: closed
SET pg_incident.clock = '2026-01-15 08:00:00+00';
SELECT incident_declare('P1', 'database unavailable', 'primary is down');
SET pg_incident.clock = '2026-01-15 08:05:00+00';
SELECT incident_acknowledge('INC-2026-0115-001', 'alice');
SELECT incident_assign('INC-2026-0115-001', 'incident_commander', 'alice');
SELECT incident_assign('INC-2026-0115-001', 'technical_lead', 'bob');
SET pg_incident.clock = '2026-01-15 08:10:00+00';
SELECT incident_update('INC-2026-0115-001', 'investigating', 'failover started');
SELECT incident_checklist_tick('INC-2026-0115-001', 'initial_assessment', 1, 'alice');
SELECT incident_checklist_tick('INC-2026-0115-001', 'customer_comms', 1, 'carol');
SET pg_incident.clock = '2026-01-15 09:00:00+00';
SELECT incident_resolve('INC-2026-0115-001', 'disk full on the primary');
SET pg_incident.clock = '2026-01-15 09:30:00+00';
SELECT incident_close('INC-2026-0115-001');

-- 002: identified, raised to P1, with a note
SET pg_incident.clock = '2026-01-15 10:00:00+00';
SELECT incident_declare('P2', 'checkout errors');
SET pg_incident.clock = '2026-01-15 10:10:00+00';
SELECT incident_acknowledge('INC-2026-0115-002', 'bob');
SELECT incident_update('INC-2026-0115-002', 'identified', 'payment provider times out');
SELECT incident_set_severity('INC-2026-0115-002', 'P1', 'all payments fail');
SELECT incident_note('INC-2026-0115-002', 'provider confirmed the outage');

-- a declaration that rolls back: it uses ids but gives its code back
BEGIN;
SELECT incident_declare('P4', 'never happened');
ROLLBACK;

-- 003: declared only (P3, whose response time is now 2 hours)
SET pg_incident.clock = '2026-01-15 11:00:00+00';
SELECT incident_declare('medium', 'product pages slow');


-- 004: resolved without acknowledgement (a false alarm)
SET pg_incident.clock = '2026-01-15 12:00:00+00';
SELECT incident_declare('P4', 'typo on the pricing page');
SET pg_incident.clock = '2026-01-15 12:30:00+00';
SELECT incident_resolve('INC-2026-0115-004');

-- a business calendar for P3, with hours and holidays (0.2.0)
INSERT INTO incident_calendar (name, time_zone) VALUES ('office', 'Europe/Berlin');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
SELECT 'office', d, '09:00', '17:00' FROM generate_series(1, 5) AS d;
INSERT INTO incident_calendar_holiday (calendar, day, yearly) VALUES ('office', '2000-12-25', true);
UPDATE incident_severity SET calendar = 'office' WHERE severity = 'P3';
-- 005: a P1 escalated once by hand, still unacknowledged; the override has
-- carol cover alice until 09:00 (UTC), so she is the one paged
SET pg_incident.clock = '2026-01-15 08:30:00+00';
SELECT incident_declare('P1', 'payments failing');
SELECT incident_escalate('INC-2026-0115-005');
});

is( $node->safe_psql('src', q{SELECT string_agg(code || ' ' || status, ', ' ORDER BY code) FROM incident}),
	'INC-2026-0115-001 closed, INC-2026-0115-002 identified, INC-2026-0115-003 declared, INC-2026-0115-004 resolved, INC-2026-0115-005 declared',
	'source database has an incident in each state');
is( $node->safe_psql('src',
		q{SELECT string_agg(checklist || ' ' || item_no || ' ' || done_by, ', ' ORDER BY done_by)
		    FROM incident_checklist('INC-2026-0115-001') WHERE done}),
	'initial_assessment 1 alice, customer_comms 1 carol',
	'source database has ticked checklist items');
is( $node->safe_psql('src',
		"SELECT response_due - declared_at FROM incident WHERE code = 'INC-2026-0115-003'"),
	'02:00:00', 'a P3 declared after the edit is due in 2 hours');

# What pg_dump must carry, each as "rows md5-of-ordered-row-text": the
# tables, and every incident's checklists as incident_checklist() shows them.
my @tables = qw(incident incident_event checklists incident_day_counter
  incident_severity incident_checklist_template incident_checklist_template_item
  incident_calendar incident_calendar_hours incident_calendar_holiday
  incident_responder incident_rotation incident_rotation_member incident_rotation_override
  incident_team_role incident_escalation_policy incident_escalation_level escalations
  incident_classify_rule incident_deleted_default);

sub table_digest
{
	my ($db, $table) = @_;
	my $from =
	    $table eq 'checklists' ? '(SELECT i.code, c.* FROM incident i, incident_checklist(i.code) c) t'
	  : $table eq 'escalations'
	  ? "(SELECT e.* FROM incident_escalations e, set_config('pg_incident.clock', '2026-01-15 08:40:00+00', false)) t"
	  : "$table t";
	return $node->safe_psql($db,
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') FROM $from"
	);
}

my %src = map { $_ => table_digest('src', $_) } @tables;
note "source $_: $src{$_}" foreach @tables;
my $src_incident_seq = $node->safe_psql('src', 'SELECT last_value FROM incident_id_seq');
my $src_event_seq = $node->safe_psql('src', 'SELECT last_value FROM incident_event_id_seq');
is($src_incident_seq, '6', 'the rolled-back declaration used incident id 5');
is( $node->safe_psql('src',
		q{SET pg_incident.clock = '2026-01-15 08:40:00+00'; SELECT level || ' ' || responder || ' ' || due_at FROM incident_escalations WHERE code = 'INC-2026-0115-005'}),
	'2 carol 2026-01-15 08:30:00+00',
	'source database: the escalated P1 is at level 2, the IC carol');

my $tmp = PostgreSQL::Test::Utils::tempdir;

# custom format, pg_restore into dst; then plain format from dst into dst2
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->safe_psql('postgres', 'CREATE DATABASE dst2');
command_ok([ 'pg_dump', '-Fc', '-f', "$tmp/src.dump", '-d', $node->connstr('src') ],
	'pg_dump -Fc of the source database');
my ($out, $err);
my $ok = IPC::Run::run([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), "$tmp/src.dump" ],
	'>', \$out, '2>', \$err);
ok($ok, 'pg_restore into a new database succeeds');
is($err, '', 'pg_restore prints no error or warning');

command_ok([ 'pg_dump', '-Fp', '-f', "$tmp/dst.sql", '-d', $node->connstr('dst') ],
	'pg_dump -Fp of the restored database');
$ok = IPC::Run::run(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('dst2'), '-f', "$tmp/dst.sql" ],
	'>', \$out, '2>', \$err);
ok($ok, 'plain dump restores with psql');
is($err, '', 'the plain restore prints no error or warning');

foreach my $db (qw(dst dst2))
{
	foreach my $table (@tables)
	{
		is(table_digest($db, $table), $src{$table}, "$db: $table is identical to the source");
	}

	is( $node->safe_psql($db,
			"SELECT response_time || ' ' || is_default FROM incident_severity WHERE severity = 'P3'"),
		'02:00:00 false',
		"$db: the edited P3 response time is kept");
	is( $node->safe_psql($db,
			q{SELECT count(*) || ' ' || count(DISTINCT severity) || ' ' || count(*) FILTER (WHERE is_default) FROM incident_severity}),
		'4 4 2',
		"$db: four severities, two of them (P1, P2) still pristine defaults");
	is( $node->safe_psql($db,
			q{SET TimeZone = 'Europe/Berlin'; SELECT incident_sla_deadline('P3', '2026-12-24 16:00+01')}),
		'2026-12-28 10:00:00+01',
		"$db: P3 keeps its business calendar, with its hours and holidays");
	is( $node->safe_psql($db, q{SELECT count(*) FROM incident_calendar_hours WHERE calendar = '24x7'}),
		'7', "$db: the seeded 24x7 hours are not doubled");
	is( $node->safe_psql($db,
			"SELECT string_agg(checklist, ',' ORDER BY checklist) FROM incident_checklist_template WHERE NOT enabled"),
		'p1_response',
		"$db: the disabled checklist template stays disabled");
	is( $node->safe_psql($db,
			"SELECT item FROM incident_checklist_template_item WHERE checklist = 'team_assembly' AND item_no = 5"),
		'Open a ticket in the tracker',
		"$db: the edited checklist item is kept");

	is( $node->safe_psql($db,
			q{SELECT incident_classify('newsletter widget is broken') || ' ' || incident_classify('something odd')
			         || ' ' || count(*) FILTER (WHERE NOT is_default) FROM incident_classify_rule}),
		'P4 P4 2',
		"$db: the added and the edited classification rules are kept and used");
	is( $node->safe_psql($db,
			q{SELECT count(*) FROM incident_classify_rule WHERE name = 'ui_inconsistency'}
			  . q{ UNION ALL SELECT count(*) FROM incident_checklist_template_item WHERE checklist = 'closure' AND item_no = 5}),
		"0\n0",
		"$db: seeded rows deleted before the dump stay deleted (incident_deleted_default)");

	# A declaration after the restore continues the day and the sequences.
	my $next = $node->safe_psql(
		$db, q{
SET pg_incident.clock = '2026-01-15 15:00:00+00';
SET pg_incident.timezone = 'UTC';
SELECT incident_declare('P1', 'search down after restore');
});
	is($next, 'INC-2026-0115-006', "$db: the next declaration of the day gets 006");
	is( $node->safe_psql($db,
			"SELECT i.id || ' ' || e.id FROM incident i JOIN incident_event e ON e.incident_id = i.id WHERE i.code = 'INC-2026-0115-006'"),
		($src_incident_seq + 1) . ' ' . ($src_event_seq + 1),
		"$db: the new incident and its event take the next ids of the kept sequences");
	is( $node->safe_psql($db,
			"SELECT string_agg(DISTINCT checklist, ',' ORDER BY checklist) FROM incident_checklist('INC-2026-0115-006')"),
		'closure,customer_comms,fix,initial_assessment,investigation,recovery_verification,root_cause_analysis,team_assembly',
		"$db: a new P1 gets the custom checklist and not the disabled p1_response");
	is( $node->safe_psql($db,
			q{SELECT count(*) || ' ' || count(*) FILTER (WHERE is_default) FROM incident_escalation_level WHERE policy = 'page-on-call'}),
		'3 2', "$db: the seeded policy has its three levels once, the edited one kept");
	is( $node->safe_psql($db,
			q{SELECT primary_responder || ' ' || backup_responder FROM incident_oncall('on-call', '2026-01-13 12:00+00')}),
		'bob alice', "$db: the rotation answers who is on call");
	# the next override id continues the kept sequence
	is( $node->safe_psql($db,
			q{INSERT INTO incident_rotation_override (rotation, responder, starts_at, ends_at)
			  VALUES ('on-call', 'bob', '2026-02-01', '2026-02-02') RETURNING id}),
		'2', "$db: a new override takes the next id");
}

$node->stop;
done_testing();
