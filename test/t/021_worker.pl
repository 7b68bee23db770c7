# test/t/021_worker.pl: the background worker, without probes.
#
# A preloaded server whose worker uses the database "incidents"
# (pg_incident.database), so that the test's own connections to "postgres"
# are not the worker's. Shown here: the launcher waits quietly for the
# database, the worker waits quietly for the extension (one LOG line, no
# ERROR) and picks up CREATE / DROP / CREATE EXTENSION by itself; a failing
# phase is logged and counted and the loop goes on; DROP DATABASE of another
# database is not held up; a plain DROP DATABASE of the worker's database
# fails and says why; pg_incident.enabled = off and on take effect on
# reload; pg_terminate_backend and SIGKILL bring a new worker; a hot standby
# runs a worker that stays idle and starts working on promotion, with the
# same process; DROP DATABASE ... WITH (FORCE) of the worker's database
# completes and leaves the log quiet, and re-creating the database brings
# the worker back.
#
# Every wait is a poll with a deadline, never a fixed sleep.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_incident'
pg_incident.database = 'incidents'
pg_incident.naptime = '100ms'
restart_after_crash = on
});
$node->start;

my $state_fn = q{
CREATE FUNCTION incident__worker_state(
    OUT pid int, OUT started_at timestamptz, OUT state text, OUT database text,
    OUT last_activity text, OUT last_activity_at timestamptz, OUT loops bigint,
    OUT errors bigint, OUT last_error text, OUT last_error_at timestamptz, OUT process text,
    OUT checks_claimed bigint, OUT lateness_p50_ms float8, OUT lateness_p99_ms float8,
    OUT lateness_buckets bigint[], OUT checks_done bigint, OUT probes_due int, OUT checks_in_flight int)
RETURNS SETOF record
AS '$libdir/pg_incident', 'incident__worker_state' LANGUAGE C STRICT VOLATILE;
};
$node->safe_psql('postgres', $state_fn);

# the text of the server log from a byte offset on
sub log_since
{
	my ($offset) = @_;
	my $log = slurp_file($node->logfile);
	return substr($log, $offset);
}

# no ERROR or FATAL line in $log; on failure the lines are shown
sub no_errors
{
	my ($log, $name) = @_;
	my @bad = grep { /ERROR|FATAL/ } split /\n/, $log;
	is(scalar @bad, 0, $name) or diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
	return;
}

sub count_matches
{
	my ($text, $re) = @_;
	my @m = ($text =~ /$re/g);
	return scalar @m;
}

sub worker_field
{
	my ($n, $field) = @_;
	return $n->safe_psql('postgres', "SELECT $field FROM incident__worker_state() WHERE process = 'worker'");
}

# wait until the reporting process (worker, else launcher) made N more turns
sub wait_turns
{
	my ($n, $turns) = @_;
	my $start = worker_field($n, 'loops');
	my $pid = worker_field($n, 'pid');
	$n->poll_query_until('postgres',
		"SELECT pid <> $pid OR loops >= $start + $turns FROM incident__worker_state() WHERE process = 'worker'")
	  or die "the worker made no $turns turns";
	return;
}

sub worker_pid
{
	my ($n) = @_;
	return $n->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_incident worker'});
}

my $not_installed =
  qr/LOG:  pg_incident worker: extension pg_incident is not installed in database "incidents"; waiting/;
my $started = qr/LOG:  pg_incident worker: started in database "incidents"/;
my $no_db = qr/LOG:  pg_incident launcher: database "incidents" does not exist; waiting/;

# ---- no database yet: the launcher waits ----
ok($node->poll_query_until('postgres',
		q{SELECT state = 'waiting for the database' FROM incident__worker_state() WHERE process = 'worker'}),
	'without its database the launcher reports "waiting for the database"');
wait_turns($node, 3);
is(count_matches(log_since(0), $no_db), 1, 'and logs that once, though it looked several times');
is(worker_pid($node), '', 'no database worker runs');

# ---- the database, without the extension: the worker waits ----
my $offset = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE DATABASE incidents');
ok($node->poll_query_until('postgres',
		q{SELECT state = 'waiting for the extension' FROM incident__worker_state() WHERE process = 'worker'}),
	'once the database exists the worker starts and waits for the extension');
wait_turns($node, 3);
my $log = log_since($offset);
is(count_matches($log, $started), 1, 'the worker started once');
is(count_matches($log, $not_installed), 1, 'it logs exactly once that the extension is missing');
no_errors(log_since(0), 'no ERROR or FATAL in the log');
ok( $node->poll_query_until('postgres',
		q{SELECT datname || ' ' || query FROM pg_stat_activity WHERE backend_type = 'pg_incident worker'},
		'incidents waiting for the extension'),
	'pg_stat_activity shows the worker in its database, waiting for the extension');

# ---- CREATE EXTENSION, DROP EXTENSION, CREATE EXTENSION ----
$offset = -s $node->logfile;
$node->safe_psql('incidents', 'CREATE EXTENSION pg_incident');
ok($node->poll_query_until('postgres', q{SELECT state = 'idle' FROM incident__worker_state() WHERE process = 'worker'}),
	'after CREATE EXTENSION the worker is idle (working, no probes yet)');
ok( $node->poll_query_until('postgres',
		q{SELECT last_activity = 'claiming due probes' FROM incident__worker_state() WHERE process = 'worker'}),
	'it runs the phases of a turn, up to claiming the due probes');
like(log_since($offset), qr/LOG:  pg_incident worker: working in database "incidents"/, 'and said so in the log');

$offset = -s $node->logfile;
$node->safe_psql('incidents', 'DROP EXTENSION pg_incident');
ok($node->poll_query_until('postgres',
		q{SELECT state = 'waiting for the extension' FROM incident__worker_state() WHERE process = 'worker'}),
	'after DROP EXTENSION the worker waits again');
wait_turns($node, 2);
is(count_matches(log_since($offset), $not_installed), 1, 'with one LOG line');
$node->safe_psql('incidents', 'CREATE EXTENSION pg_incident');
ok($node->poll_query_until('postgres', q{SELECT state = 'idle' FROM incident__worker_state() WHERE process = 'worker'}),
	'a new CREATE EXTENSION is picked up by itself');
no_errors(log_since(0), 'still no ERROR or FATAL in the log');

# ---- a failing phase is logged and counted; the loop goes on ----
$offset = -s $node->logfile;
$node->safe_psql('postgres', q{ALTER SYSTEM SET pg_incident.worker_fail_phase = 'claiming due probes'; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', q{SELECT errors >= 3 FROM incident__worker_state() WHERE process = 'worker'}),
	'a phase that fails is counted in errors');
my $loops = worker_field($node, 'loops');
wait_turns($node, 3);
ok(worker_field($node, 'loops') >= $loops + 3, 'and the loop keeps turning');
is( worker_field($node, q{state || ' / ' || last_error}),
	'idle / phase "claiming due probes" failed as pg_incident.worker_fail_phase asks',
	'the state stays idle and last_error holds the message');
like(
	log_since($offset),
	qr/ERROR:  phase "claiming due probes" failed as pg_incident.worker_fail_phase asks\n.*CONTEXT:  pg_incident worker phase "claiming due probes"/,
	'the error is in the log with the phase as its context');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET pg_incident.worker_fail_phase; SELECT pg_reload_conf()});
wait_turns($node, 3);    # the reload reaches the worker meanwhile
my $errors = worker_field($node, 'errors');
wait_turns($node, 3);
is(worker_field($node, 'errors'), $errors, 'once the setting is reset, no more errors');

# ---- DROP DATABASE of another database is not held up ----
# With a naptime of 10 minutes both processes sleep through the DROP (the
# launcher sleeps without a timeout while its worker runs): only the
# ProcSignalBarrier's own wake-up can make them absorb it in time.
$node->safe_psql('postgres', q{ALTER SYSTEM SET pg_incident.naptime = '10min'; SELECT pg_reload_conf()});
ok( $node->poll_query_until('postgres',
		q{SELECT last_activity_at < now() - interval '1 s' FROM incident__worker_state() WHERE process = 'worker'}),
	'with pg_incident.naptime = 10min the worker sleeps between turns');
$node->safe_psql('postgres', 'CREATE DATABASE other');
my $t0 = time();
my ($timed_out, $ret, $out, $err) = (0);
$ret = $node->psql('postgres', 'DROP DATABASE other', stdout => \$out, stderr => \$err,
	timeout => 30, timed_out => \$timed_out);
my $took = time() - $t0;
ok(!$timed_out && $ret == 0, 'DROP DATABASE of another database completes') or diag($err);
cmp_ok($took, '<', 5, 'within a few seconds, though the worker is asleep');
$loops = worker_field($node, 'loops');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET pg_incident.naptime; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', "SELECT loops > $loops FROM incident__worker_state() WHERE process = 'worker'"),
	'a reload wakes the sleeping worker');

# ---- a plain DROP DATABASE of the worker's database fails ----
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE incidents');
isnt($ret, 0, 'a plain DROP DATABASE of the worker\'s database fails');
like($err, qr/ERROR:  database "incidents" is being accessed by other users\nDETAIL:  There are 2 other sessions using the database\./,
	'because the two database workers are connected to it');

# ---- SIGHUP: pg_incident.enabled ----
my $pid = worker_pid($node);
$node->safe_psql('postgres', q{ALTER SYSTEM SET pg_incident.enabled = off; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', q{SELECT state = 'disabled' FROM incident__worker_state() WHERE process = 'worker'}),
	'pg_incident.enabled = off and a reload: the worker is disabled');
is( $node->safe_psql('postgres', q{SELECT query FROM pg_stat_activity WHERE backend_type = 'pg_incident worker'}),
	'disabled', 'pg_stat_activity says so');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET pg_incident.enabled; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', q{SELECT state = 'idle' FROM incident__worker_state() WHERE process = 'worker'}),
	'on again: the worker works again');
is(worker_pid($node), $pid, 'the same process, not a restart');

# ---- pg_terminate_backend: the launcher starts a new worker ----
$offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_incident worker' AND pid <> $pid}),
	'after pg_terminate_backend a new worker starts');
ok($node->poll_query_until('postgres', q{SELECT state = 'idle' FROM incident__worker_state() WHERE process = 'worker'}),
	'and works');
$log = log_since($offset);
is(count_matches($log, $started), 1, 'one start in the log');
no_errors($log, 'and no ERROR or FATAL');
my $launcher = $node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_incident launcher' AND datname IS NULL});
is($launcher, '1', 'one launcher, connected to no database');

# ---- a hot standby: idle, writes nothing; promotion: works, same process ----
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
ok($standby->poll_query_until('postgres', q{SELECT state = 'idle on a standby' FROM incident__worker_state() WHERE process = 'worker'}),
	'on a hot standby the worker is idle');
wait_turns($standby, 3);
is(worker_field($standby, 'errors'), '0', 'and has no errors');
is(worker_field($standby, 'last_activity'), '',
	'and runs no phase: it writes nothing (not even a transaction)');
unlike(slurp_file($standby->logfile), qr/pg_incident worker: working/, 'it never starts working there');
my $standby_pid = worker_pid($standby);
$standby->promote;
ok($standby->poll_query_until('postgres', q{SELECT state = 'idle' FROM incident__worker_state() WHERE process = 'worker'}),
	'after promotion the worker works');
is(worker_pid($standby), $standby_pid, 'without a restart: the same process');
like(slurp_file($standby->logfile), qr/pg_incident worker: working in database "incidents"/,
	'and says in the log that it works');
$standby->stop;

# ---- SIGKILL: the postmaster restarts the whole cluster, the worker comes back ----
$pid = worker_pid($node);
kill 'KILL', $pid;
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_incident worker' AND pid <> $pid}),
	'after SIGKILL (crash recovery of the cluster) a new worker runs');
ok($node->poll_query_until('postgres', q{SELECT state = 'idle' FROM incident__worker_state() WHERE process = 'worker'}),
	'and works');

# ---- DROP DATABASE ... WITH (FORCE) of the worker's database ----
$offset = -s $node->logfile;
$t0 = time();
$ret = $node->psql('postgres', 'DROP DATABASE incidents WITH (FORCE)', stderr => \$err,
	timeout => 30, timed_out => \$timed_out);
$took = time() - $t0;
ok(!$timed_out && $ret == 0, 'DROP DATABASE of the worker\'s database WITH (FORCE) completes') or diag($err);
cmp_ok($took, '<', 5, 'within a few seconds');
ok($node->poll_query_until('postgres',
		q{SELECT state = 'waiting for the database' FROM incident__worker_state() WHERE process = 'worker'}),
	'then the launcher waits for the database');
wait_turns($node, 4);
$log = log_since($offset);
is(count_matches($log, $no_db), 1, 'logged once');
is(count_matches($log, $started), 0, 'no worker started meanwhile (no restart storm)');
no_errors($log, 'no ERROR or FATAL');
is(worker_pid($node), '', 'no worker runs');

$node->safe_psql('postgres', 'CREATE DATABASE incidents');
ok($node->poll_query_until('postgres',
		q{SELECT state = 'waiting for the extension' FROM incident__worker_state() WHERE process = 'worker'}),
	're-creating the database brings the worker back');

$node->stop;
done_testing();
