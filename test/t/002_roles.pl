# test/t/002_roles.pl: what incident_viewer, incident_responder and
# incident_admin may do, and what nobody may do.
#
# Login roles granted each of the three roles connect and try the things a
# user of that kind would: a viewer reads the dashboard, the timeline and a
# checklist but cannot declare; a responder runs the whole lifecycle and is
# recorded as the actor (not the extension's owner) but cannot edit the
# severity table; an admin can. Admins configure on-call; viewers see who is
# on call and what escalates next; responders escalate by hand. Nobody, not even a superuser, can rewrite or
# delete the timeline or delete an incident.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('roles');
$node->init;
$node->start;

my $owner = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_incident;
CREATE ROLE regress_viewer LOGIN IN ROLE incident_viewer;
CREATE ROLE regress_responder LOGIN IN ROLE incident_responder;
CREATE ROLE regress_admin LOGIN IN ROLE incident_admin;
CREATE ROLE regress_outsider LOGIN;
-- declared on the test clock years ago: by the real clock of the other
-- sessions its response deadline is breached
SET pg_incident.clock = '2020-01-15 14:30:00+00';
SET pg_incident.timezone = 'UTC';
SELECT incident_declare('P1', 'database unavailable');
});

# Run SQL as a role; returns (psql exit code, stdout, SQLSTATE of the error
# or '' if none, stderr).
sub psql_as
{
	my ($role, $sql) = @_;
	my ($stdout, $stderr) = ('', '');
	my $ret = $node->psql(
		'postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$stdout,
		stderr => \$stderr,
		extra_params => [ '-U', $role ]);
	my $sqlstate = $stderr =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : '';
	return ($ret, $stdout, $sqlstate, $stderr);
}

# Assert that SQL run as a role fails with SQLSTATE 42501.
sub denied
{
	my ($role, $sql, $name) = @_;
	my ($ret, $out, $sqlstate, $err) = psql_as($role, $sql);
	is($sqlstate, '42501', "$role: $name is refused with 42501")
	  or diag("exit code $ret, stderr: $err");
	return $err;
}

my ($ret, $out, $sqlstate, $err);

# ---- viewer ----
($ret, $out, $sqlstate, $err) = psql_as('regress_viewer',
	q{SELECT code || ' ' || status || ' ' || response_state FROM incident_dashboard});
is($out, 'INC-2020-0115-001 declared breached', 'viewer: reads incident_dashboard')
  or diag($err);
($ret, $out, $sqlstate, $err) = psql_as('regress_viewer',
	q{SELECT string_agg(code || ' ' || kind || ' ' || actor, ', ') FROM incident_timeline});
is($out, "INC-2020-0115-001 declared $owner", 'viewer: reads incident_timeline') or diag($err);
($ret, $out, $sqlstate, $err) = psql_as('regress_viewer',
	q{SELECT count(*) FILTER (WHERE checklist = 'p1_response') || ' ' || count(*) FILTER (WHERE done)
	    FROM incident_checklist('INC-2020-0115-001')});
is($out, '6 0', 'viewer: reads the checklist of an incident') or diag($err);

$err = denied('regress_viewer', q{SELECT incident_declare('P2', 'viewer tries to declare')}, 'incident_declare');
like($err, qr/permission denied for function incident_declare/, 'viewer: the error names the function');
denied('regress_viewer', q{SELECT incident_acknowledge('INC-2020-0115-001')}, 'incident_acknowledge');
denied('regress_viewer', q{SELECT incident_checklist_tick('INC-2020-0115-001', 'p1_response', 1)}, 'incident_checklist_tick');
denied('regress_viewer', q{UPDATE incident SET status = 'closed'}, 'UPDATE incident');

# ---- a login role with none of the three roles ----
denied('regress_outsider', q{SELECT * FROM incident_dashboard}, 'SELECT incident_dashboard');
denied('regress_outsider', q{SELECT incident_declare('P2', 'outsider tries to declare')}, 'incident_declare');

# ---- responder: the whole lifecycle ----
($ret, $out, $sqlstate, $err) = psql_as(
	'regress_responder', q{
SELECT incident_declare('P2', 'checkout errors') AS code \gset
SELECT incident_acknowledge(:'code');
SELECT incident_assign(:'code', 'incident_commander', 'regress_responder');
SELECT incident_update(:'code', 'identified', 'payment provider times out');
SELECT incident_set_severity(:'code', 'P1', 'all payments fail');
SELECT incident_checklist_tick(:'code', 'initial_assessment', 1);
SELECT incident_note(:'code', 'provider confirmed');
SELECT incident_resolve(:'code', 'provider outage');
SELECT incident_close(:'code');
\echo :code
});
is($ret, 0, 'responder: declare, acknowledge, assign, update, set severity, tick, note, resolve and close succeed')
  or diag($err);
my @lines = split /\n/, $out;
my $code = $lines[-1];
like($code, qr/^INC-\d{4}-\d{4}-\d{3}$/, 'responder: incident_declare returned a code');
is($lines[-2], 'closed', 'responder: the incident ends closed');

is( $node->safe_psql('postgres',
		"SELECT string_agg(kind || ':' || actor, ' ' ORDER BY event_id) FROM incident_timeline WHERE code = '$code'"),
	'declared:regress_responder note:pg_incident acknowledged:regress_responder assigned:regress_responder status_update:regress_responder '
	  . 'severity_changed:regress_responder checklist:regress_responder note:regress_responder resolved:regress_responder closed:regress_responder',
	"responder: every timeline event names the responder (or pg_incident, for its note of the recent changes), not the owner \"$owner\"");
is( $node->safe_psql('postgres',
		"SELECT concat_ws(' ', declared_by, acknowledged_by, resolved_by, closed_by) FROM incident WHERE code = '$code'"),
	'regress_responder regress_responder regress_responder regress_responder',
	'responder: the incident records the responder for each step');

denied('regress_responder', q{UPDATE incident_severity SET response_time = '2 hours' WHERE severity = 'P3'},
	'UPDATE incident_severity');
denied('regress_responder', q{UPDATE incident SET title = 'rewritten'}, 'UPDATE incident');
denied('regress_responder',
	q{INSERT INTO incident_event (incident_id, at, kind, actor, status) SELECT id, now(), 'note', 'forged', status FROM incident LIMIT 1},
	'INSERT INTO incident_event');

# ---- admin: the configuration ----
($ret, $out, $sqlstate, $err) = psql_as('regress_admin',
	q{UPDATE incident_severity SET response_time = '2 hours' WHERE severity = 'P3'});
is($ret, 0, 'admin: UPDATE incident_severity succeeds') or diag($err);
is( $node->safe_psql('postgres', q{SELECT response_time || ' ' || is_default FROM incident_severity WHERE severity = 'P3'}),
	'02:00:00 false', 'admin: the P3 response time is now 2 hours');
($ret, $out, $sqlstate, $err) = psql_as('regress_admin',
	q{SELECT incident_declare('P3', 'admin declares too') AS code \gset
SELECT response_due - declared_at FROM incident WHERE code = :'code';});
is($out, '02:00:00', 'admin: may declare, and a P3 now gets 2 hours') or diag($err);
denied('regress_admin', q{UPDATE incident_event SET actor = 'nobody'}, 'UPDATE incident_event');
denied('regress_admin', q{DELETE FROM incident}, 'DELETE incident');

# ---- on-call: admins configure, viewers read, responders escalate ----
($ret, $out, $sqlstate, $err) = psql_as(
	'regress_admin', q{
INSERT INTO incident_responder (name, phone) VALUES ('pat', '+1-555-0199');
INSERT INTO incident_rotation (name, starts_at) VALUES ('on-call', '2019-12-30 09:00+00');
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES ('on-call', 1, 'pat');
INSERT INTO incident_rotation_override (rotation, responder, starts_at, ends_at) VALUES ('on-call', 'pat', '2030-01-01', '2030-01-02');
UPDATE incident_team_role SET primary_responder = 'pat' WHERE role = 'incident_commander';
UPDATE incident_escalation_level SET delay = '1 minute' WHERE policy = 'page-on-call' AND level = 3;
});
is($ret, 0, 'admin: writes responders, rotations, members, overrides, roles and escalation levels') or diag($err);
denied('regress_responder', q{INSERT INTO incident_responder (name) VALUES ('mallory')}, 'INSERT INTO incident_responder');
denied('regress_responder', q{UPDATE incident_escalation_level SET delay = '1 day'}, 'UPDATE incident_escalation_level');
denied('regress_viewer', q{DELETE FROM incident_rotation_member}, 'DELETE FROM incident_rotation_member');

($ret, $out, $sqlstate, $err) = psql_as('regress_viewer',
	q{SELECT primary_responder FROM incident_oncall('on-call');
SELECT level || ' ' || responder || ' ' || phone FROM incident_escalations WHERE code = 'INC-2020-0115-001'});
is($out, "pat\n1 pat +1-555-0199", 'viewer: asks who is on call and reads incident_escalations') or diag($err);
denied('regress_viewer', q{SELECT incident_escalate('INC-2020-0115-001')}, 'incident_escalate');

($ret, $out, $sqlstate, $err) = psql_as('regress_responder', q{SELECT incident_escalate('INC-2020-0115-001')});
is($out, 'pat', 'responder: escalates by hand and learns whom it paged') or diag($err);
is( $node->safe_psql('postgres',
		q{SELECT kind || ':' || actor || ':' || (details->>'level') FROM incident_timeline WHERE code = 'INC-2020-0115-001' AND kind = 'escalated'}),
	'escalated:regress_responder:1', 'responder: the escalation event names the responder as actor');

# ---- nobody, not even the superuser, rewrites the record ----
my $before = $node->safe_psql('postgres',
	q{SELECT (SELECT count(*) FROM incident) || ' ' || (SELECT count(*) FROM incident_event)});
foreach my $sql (
	q{UPDATE incident_event SET actor = 'nobody'},
	q{DELETE FROM incident_event},
	q{TRUNCATE incident_event},
	q{DELETE FROM incident},
	q{TRUNCATE incident CASCADE})
{
	$err = denied($owner, $sql, $sql);
	like($err, qr/audit record/, "superuser: $sql says the timeline is an audit record");
}
is( $node->safe_psql('postgres',
		q{SELECT (SELECT count(*) FROM incident) || ' ' || (SELECT count(*) FROM incident_event)}),
	$before, 'superuser: incidents and events are all still there');

$node->stop;
done_testing();
