# test/t/003_no_preload.pl: pg_incident without shared_preload_libraries.
#
# Only the background worker needs the library preloaded; the SQL API and its
# settings must work when the library is loaded on first use: declaring,
# pg_incident.timezone (validated, and it decides the day of a code),
# pg_incident.clock (superuser only), CREATE EXTENSION in a second database of
# the same cluster (whose roles already exist) and DROP EXTENSION followed by
# CREATE EXTENSION.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
# the server's own zone, which decides the day of a code by default
$node->append_conf('postgresql.conf', "log_timezone = 'Asia/Riyadh'");
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '', 'the library is not preloaded');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_incident;
CREATE ROLE regress_alice LOGIN IN ROLE incident_responder;
});

# Run SQL in a fresh session as a role; returns (psql exit code, stdout,
# SQLSTATE of the error or '' if none, stderr).
sub psql_as
{
	my ($role, $db, $sql) = @_;
	my ($stdout, $stderr) = ('', '');
	my $ret = $node->psql(
		$db, "\\set VERBOSITY verbose\n$sql",
		stdout => \$stdout,
		stderr => \$stderr,
		extra_params => [ '-U', $role ]);
	my $sqlstate = $stderr =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : '';
	return ($ret, $stdout, $sqlstate, $stderr);
}

my ($ret, $out, $sqlstate, $err);
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

# ---- declare on the real clock ----
is( $node->safe_psql('postgres',
		q{SELECT incident_declare('P1', 'db down') = 'INC-' || to_char(now() AT TIME ZONE incident_timezone(), 'YYYY-MMDD') || '-001'}),
	't', 'declare works without preloading: the first code of today');

# ---- pg_incident.timezone ----
($ret, $out, $sqlstate, $err) = psql_as(
	$superuser, 'postgres', q{
SELECT incident_timezone() IS NOT NULL;
SET pg_incident.timezone = 'Not/AZone';
});
is($sqlstate, '22023', 'an unknown time zone is refused with 22023 once the library is loaded');
like($err, qr/invalid time zone "Not\/AZone"/, 'the error names the zone');
like($err, qr/HINT:.*pg_timezone_names/, 'the hint says where to find valid names');

# Before the library is loaded in a session, PostgreSQL keeps an unknown
# pg_incident.* setting as a placeholder; loading the library rejects it with
# a warning and the setting falls back to its default.
($ret, $out, $sqlstate, $err) = psql_as(
	$superuser, 'postgres', q{
SET TimeZone = 'UTC';
SET pg_incident.timezone = 'Not/AZone';
SELECT incident_timezone();
});
like($err, qr/WARNING:.*invalid time zone "Not\/AZone"/,
	'a bad zone set before the library loads is rejected with a warning when it loads');
is($out, 'Asia/Riyadh', 'and incident days are then taken in the server\'s zone (log_timezone)');

($ret, $out, $sqlstate, $err) = psql_as(
	$superuser, 'postgres', q{
SET pg_incident.clock = '2026-01-15 23:30:00+00';
SET pg_incident.timezone = 'Asia/Riyadh';
SELECT incident_declare('P2', 'late night in Riyadh');
SET pg_incident.timezone = 'UTC';
SELECT incident_declare('P2', 'still the 15th in UTC');
SET pg_incident.timezone = '';
SET TimeZone = 'UTC';
SELECT incident_declare('P2', 'the server zone decides, not the session');
});
is($ret, 0, 'declarations on the test clock succeed') or diag($err);
is( $out,
	"INC-2026-0116-001\nINC-2026-0115-001\nINC-2026-0116-002",
	'23:30 UTC on the 15th is the 16th in Asia/Riyadh, the 15th in UTC; an empty setting follows the server\'s zone, not the session TimeZone');

($ret, $out, $sqlstate, $err) = psql_as(
	'regress_alice', 'postgres', q{
SELECT incident_now() IS NOT NULL;
SET pg_incident.timezone = 'Pacific/Pago_Pago';
});
is($sqlstate, '42501', 'a responder cannot choose the zone of incident days (42501)');

# ---- pg_incident.clock is for superusers ----
($ret, $out, $sqlstate, $err) = psql_as(
	'regress_alice', 'postgres', q{
SELECT incident_now() IS NOT NULL;
SET pg_incident.clock = '2001-02-03 04:05:06+00';
});
is($sqlstate, '42501', 'a non-superuser cannot set pg_incident.clock (42501)');
like($err, qr/permission denied to set parameter "pg_incident.clock"/, 'the error names the setting');

($ret, $out, $sqlstate, $err) = psql_as(
	'regress_alice', 'postgres', q{
SET pg_incident.clock = '2001-02-03 04:05:06+00';
SELECT incident_declare('P4', 'alice tries to backdate') LIKE 'INC-2001-0203-%';
SELECT incident_now() = now();
SHOW pg_incident.clock;
});
like($err, qr/WARNING:.*permission denied to set parameter "pg_incident.clock"/,
	'a clock set by a non-superuser before the library loads is rejected with a warning');
is($out, "f\nt\n", 'and has no effect: the code and incident_now() use the real time');

# ---- a second database of the same cluster ----
$node->safe_psql('postgres', 'CREATE DATABASE second');
($ret, $out, $sqlstate, $err) = psql_as($superuser, 'second', 'CREATE EXTENSION pg_incident;');
is($ret, 0, 'CREATE EXTENSION in a second database, whose roles already exist, succeeds') or diag($err);
is($err, '', 'and prints nothing on stderr');
($ret, $out, $sqlstate, $err) = psql_as('regress_alice', 'second',
	q{SELECT incident_declare('P3', 'in the second database')
	         = 'INC-' || to_char(now() AT TIME ZONE incident_timezone(), 'YYYY-MMDD') || '-001'});
is($out, 't', 'a responder declares there; the second database counts its own codes') or diag($err);

# ---- DROP EXTENSION, then CREATE EXTENSION again ----
($ret, $out, $sqlstate, $err) = psql_as($superuser, 'postgres', 'DROP EXTENSION pg_incident;');
is($ret, 0, 'DROP EXTENSION succeeds') or diag($err);
is( $node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname LIKE 'incident%'}),
	'0', 'and leaves no table or view behind');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'incident\_%'}),
	'incident_admin,incident_responder,incident_viewer',
	'the roles stay (the second database still uses them)');
($ret, $out, $sqlstate, $err) = psql_as($superuser, 'postgres', 'CREATE EXTENSION pg_incident;');
is($ret, 0, 'CREATE EXTENSION again succeeds') or diag($err);
($ret, $out, $sqlstate, $err) = psql_as(
	'regress_alice', 'postgres', q{
SELECT count(*) FROM incident;
SELECT incident_declare('P2', 'after re-creating') = 'INC-' || to_char(now() AT TIME ZONE incident_timezone(), 'YYYY-MMDD') || '-001';
});
is($out, "0\nt", 'the re-created extension starts empty and a responder can declare again') or diag($err);

# ---- a responder cannot backdate an act with a placeholder clock ----
# Before the library is loaded in a session, pg_incident.clock is a mere
# placeholder that anyone may SET. A responder who opens a transaction, sets
# it, waits for a declaration and then acknowledges must still be recorded
# at the time of the acknowledgement, not at the start of the transaction.
my $code = $node->safe_psql('postgres', q{SELECT incident_declare('P2', 'declared before the trap')});
my $trap = $node->background_psql('postgres', extra_params => [ '-U', 'regress_alice' ]);
$trap->query_safe(q{BEGIN; SET LOCAL pg_incident.clock = '2020-01-01 00:00+00'; SELECT 1});
my $started = $trap->query_safe(q{SELECT transaction_timestamp()});
# the declaration comes after the trap's transaction began
$node->poll_query_until('postgres', "SELECT clock_timestamp() > '$started'::timestamptz")
  or die "the clock did not move";
my $later = $node->safe_psql('postgres', q{SELECT incident_declare('P2', 'declared while the trap waits')});
# loading the library drops the placeholder with a WARNING; the act goes on
is($trap->query("SELECT incident_acknowledge('$later')"), 'acknowledged', 'the responder acknowledges');
$trap->query('COMMIT');
$trap->quit;
is( $node->safe_psql('postgres',
		"SELECT acknowledged_at >= declared_at AND acknowledged_at > '$started'::timestamptz FROM incident WHERE code = '$later'"),
	't', 'an acknowledgement is recorded at its own time, whatever a placeholder clock said');

$node->stop;
done_testing();
