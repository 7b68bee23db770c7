# test/t/022_probes.pl: the worker runs HTTP probes against test/http_server.pl
# and declares, records and resolves incidents through the SQL lifecycle.
#
# A preloaded cluster whose worker works in the database postgres; probes
# every second against the test server on loopback:
#  - a healthy endpoint stays up and declares nothing;
#  - an endpoint answering 500 is down after `failures` checks and declares
#    exactly one incident, whatever more checks come;
#  - a hanging endpoint times out and delays no other probe;
#  - redirects to file:// and redirect loops are refused by the engine, and a
#    probe with headers follows no redirect (its headers go to its own URL);
#  - pointing the failing probe at a healthy URL records the recovery and
#    resolves the incident (resolve_on_recovery);
#  - the worker terminated, and the whole server restarted with -m immediate,
#    mid-probe: it comes back and carries on, declaring nothing twice;
#  - SQL probes run in their own process, as their run_as role: within
#    thresholds up, past crit one incident, a dropped run_as role unknown
#    without an incident; a slow SQL query delays no HTTP probe; the SQL
#    worker terminated mid-query comes back and runs the probe again.
# Every wait polls with a deadline.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use TestHttpServer qw(start_http_server);
use TestProbeNode qw(start_probe_node);

# ---- the test HTTP server ----
my ($port) = start_http_server();
my $base = "http://127.0.0.1:$port";

my $node = start_probe_node('probes');

$node->safe_psql(
	'postgres', qq{
SELECT incident_probe_http('healthy', '$base/ok', every => '1 second', failures => 2);
SELECT incident_probe_http('broken', '$base/500', every => '1 second', failures => 2, recoveries => 1,
                           severity => 'P2', resolve_on_recovery => true);
SELECT incident_probe_http('hanging', '$base/hang', every => '1 second', timeout => '2 seconds', failures => 1);
SELECT incident_probe_http('to-file', '$base/redirect-file', every => '1 second', failures => 1);
SELECT incident_probe_http('looping', '$base/redirect-loop', every => '1 second', failures => 1);
});

# checked_more(probe, n): waits until the probe has had n more checks; true if it has.
sub checked_more
{
	my ($probe, $more) = @_;
	my $count = "SELECT coalesce(sum(u.checks), 0) FROM incident_probe_rollup u"
	  . " JOIN incident_probe p ON p.id = u.probe_id WHERE p.name = '$probe'";
	my $now = $node->safe_psql('postgres', $count);
	return $node->poll_query_until('postgres', "SELECT ($count) >= $now + $more");
}

# ---- a failing endpoint declares one incident ----
ok( $node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM incident WHERE title = 'broken is down'}),
	'an endpoint answering 500 declares an incident');
is( $node->safe_psql('postgres',
		q{SELECT severity || ' ' || source || ' ' || (started_at < declared_at)::text FROM incident WHERE title = 'broken is down'}),
	'P2 probe true', 'of the probe\'s severity, from the probe, its impact starting at the first failing check');
is( $node->safe_psql('postgres',
		q{SELECT message FROM incident_timeline WHERE kind = 'probe' AND message LIKE 'broken%' ORDER BY event_id LIMIT 1}),
	'broken is down: status', 'the failing result is on the timeline');

# ---- the hanging endpoint times out; the healthy one goes on meanwhile ----
ok( $node->poll_query_until('postgres',
		q{SELECT last_failure = 'timeout' FROM incident_probe_status WHERE name = 'hanging'}),
	'a hanging endpoint times out');
ok(checked_more('healthy', 3),
	'the healthy probe keeps its pace while the hanging one waits');
is($node->safe_psql('postgres', q{SELECT state FROM incident_probe_status WHERE name = 'healthy'}),
	'up', 'and stays up');

# ---- the engine refuses what a probe must not follow ----
ok( $node->poll_query_until('postgres',
		q{SELECT last_failure = 'protocol' FROM incident_probe_status WHERE name = 'to-file'}),
	'a redirect to file:// is refused');
ok( $node->poll_query_until('postgres',
		q{SELECT last_failure = 'redirects' FROM incident_probe_status WHERE name = 'looping'}),
	'a redirect loop stops at the limit');

# ---- a probe's headers go to its own URL only: with headers, no redirect is followed ----
# (libcurl would send them to the other host; /headers echoes what it was sent)
my $elsewhere = "http://localhost:$port/headers";
$node->safe_psql(
	'postgres', qq{
SELECT incident_probe_http('keyed', '$base/redirect?to=$elsewhere', headers => ARRAY['X-Api-Key: s3cret'],
                           expect_body => 'X-Api-Key', enabled => false);
SELECT incident_probe_http('unkeyed', '$base/redirect?to=$elsewhere', expect_body => 'Host: localhost', enabled => false);
});
is( $node->safe_psql('postgres', q{SELECT status || ' ' || failure FROM incident_probe_run('keyed')}),
	'302 body',
	'a probe with headers gets the redirect itself and sends nothing to the host it names');
is($node->safe_psql('postgres', q{SELECT status || ' ' || ok FROM incident_probe_run('unkeyed')}),
	'200 true', 'a probe without headers follows the redirect');

# ---- SQL probes ----
$node->safe_psql(
	'postgres', q{
CREATE ROLE regress_probe_reader;
GRANT pg_monitor TO regress_probe_reader;
CREATE ROLE regress_probe_gone;
SELECT incident_probe_sql('sql-ok', 'SELECT count(*) FROM pg_stat_activity', every => '1 second',
                          warn => 500, crit => 1000, run_as => 'regress_probe_reader');
SELECT incident_probe_sql('sql-crit', 'SELECT 100', every => '1 second', crit => 50, failures => 2,
                          severity => 'P3', run_as => 'regress_probe_reader');
SELECT incident_probe_sql('sql-gone', 'SELECT true', every => '1 second', failures => 1,
                          run_as => 'regress_probe_gone');
DROP ROLE regress_probe_gone;
});
ok($node->poll_query_until('postgres', q{SELECT state = 'up' FROM incident_probe_status WHERE name = 'sql-ok'}),
	'a SQL probe within its thresholds is up');
ok( $node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM incident WHERE title = 'sql-crit is down'}),
	'a SQL probe past crit declares an incident');
is( $node->safe_psql('postgres',
		q{SELECT severity || ' ' || source FROM incident WHERE title = 'sql-crit is down'}),
	'P3 probe', 'of the probe\'s severity, from the probe');
is( $node->safe_psql('postgres',
		q{SELECT last_error FROM incident_probe_status WHERE name = 'sql-crit'}),
	'value 100 is above crit 50', 'the probe says why');
ok( $node->poll_query_until('postgres',
		q{SELECT state = 'unknown' AND last_failure = 'config' FROM incident_probe_status WHERE name = 'sql-gone'}),
	'a SQL probe whose run_as role was dropped is unknown');
is($node->safe_psql('postgres', q{SELECT count(*) FROM incident WHERE title LIKE 'sql-gone%'}),
	'0', 'and declares nothing');
is( $node->safe_psql('postgres', q{SELECT state FROM incident_worker_status WHERE process = 'sql worker'}),
	'idle', 'the SQL worker shows in incident_worker_status');

# a slow SQL probe runs in the SQL worker; the HTTP probes keep their pace
$node->safe_psql('postgres',
	q{SELECT incident_probe_sql('sql-sleepy', 'SELECT pg_sleep(8) IS NOT NULL', every => '1 second',
                                timeout => '30 seconds', run_as => 'regress_probe_reader')});
my $sql_query = q{SELECT query FROM pg_stat_activity WHERE backend_type = 'pg_incident sql worker'};
ok( $node->poll_query_until('postgres', $sql_query, 'running SQL probe sql-sleepy'),
	'the SQL worker runs the slow query');
ok(checked_more('healthy', 3), 'the HTTP probes are checked meanwhile');
is($node->safe_psql('postgres', $sql_query), 'running SQL probe sql-sleepy',
	'while the slow query still runs');
$node->safe_psql('postgres', q{SELECT incident_probe_drop('sql-sleepy')});

# ---- more failing checks declare nothing more ----
ok(checked_more('broken', 2),
	'the broken probe goes on being checked');
is($node->safe_psql('postgres', q{SELECT count(*) FROM incident WHERE title = 'broken is down'}),
	'1', 'still one incident');

# ---- the worker terminated mid-probe comes back and declares nothing twice ----
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM incident_worker_status WHERE process = 'worker'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok( $node->poll_query_until('postgres',
		qq{SELECT pid <> $pid AND state = 'idle' FROM incident_worker_status WHERE process = 'worker'}),
	'a terminated worker comes back');
ok(checked_more('broken', 2),
	'and goes on checking');
is($node->safe_psql('postgres', q{SELECT count(*) FROM incident WHERE title = 'broken is down'}),
	'1', 'without declaring again');

# ---- an immediate restart mid-probe loses and doubles nothing ----
$node->stop('immediate');
$node->start;
ok( $node->poll_query_until('postgres', q{SELECT state = 'idle' FROM incident_worker_status WHERE process = 'worker'}),
	'after an immediate restart the worker works again');
ok(checked_more('broken', 2),
	'its probes run again (nothing stays claimed)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM incident WHERE title = 'broken is down'}),
	'1', 'and the incident is still the one');

# ---- recovery: the probe pointed at a healthy URL resolves its incident ----
$node->safe_psql('postgres',
	qq{SELECT incident_probe_http('broken', '$base/ok', every => '1 second', failures => 2, recoveries => 1,
                                  severity => 'P2', resolve_on_recovery => true)});
ok( $node->poll_query_until('postgres', q{SELECT status = 'resolved' FROM incident WHERE title = 'broken is down'}),
	'recovery resolves the incident');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(message, ' / ' ORDER BY event_id) FROM incident_timeline
           WHERE code = (SELECT code FROM incident WHERE title = 'broken is down') AND kind IN ('probe', 'resolved')}),
	'broken is down: status / broken recovered / Probe broken recovered.',
	'the timeline: down, recovered, resolved');

# ---- a steady probe's passes are counted in memory, written in batches ----
my $kept = q{SELECT count(*) FROM incident_probe_result r JOIN incident_probe p ON p.id = r.probe_id
              WHERE p.name = 'healthy'};
my $kept_before = $node->safe_psql('postgres', $kept);
ok(checked_more('healthy', 3), 'a steady probe\'s passes reach its roll-up');
is($node->safe_psql('postgres', $kept), $kept_before, 'with no result row per passing check');

# a clean stop writes what was counted: with a long flush interval, the
# counts stay in memory until the worker is terminated
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET pg_incident.probe_flush_interval = '1h'; SELECT pg_reload_conf()});
my $rolled = q{SELECT coalesce(sum(u.checks), 0) FROM incident_probe_rollup u
                JOIN incident_probe p ON p.id = u.probe_id WHERE p.name = 'healthy'};
my $done = q{SELECT checks_done FROM incident_worker_status WHERE process = 'worker'};
# some turns later the reload has reached the worker
my $done_before = $node->safe_psql('postgres', $done);
$node->poll_query_until('postgres', "SELECT ($done) >= $done_before + 5")
  or die 'the worker does not check';
my $rolled_before = $node->safe_psql('postgres', $rolled);
$done_before = $node->safe_psql('postgres', $done);
ok($node->poll_query_until('postgres', "SELECT ($done) >= $done_before + 10"),
	'the worker goes on checking');
my $rolled_counting = $node->safe_psql('postgres', $rolled);
ok($rolled_counting < $rolled_before + 3, 'while the steady probe\'s passes stay in memory');
$pid = $node->safe_psql('postgres', q{SELECT pid FROM incident_worker_status WHERE process = 'worker'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres', "SELECT ($rolled) >= $rolled_counting + 3"),
	'terminated, the worker writes them before it exits');
$node->safe_psql('postgres',
	q{ALTER SYSTEM RESET pg_incident.probe_flush_interval; SELECT pg_reload_conf()});
ok( $node->poll_query_until('postgres',
		qq{SELECT pid <> $pid AND state = 'idle' FROM incident_worker_status WHERE process = 'worker'}),
	'and comes back');

# a person's change reaches the schedule: the steady probe pointed at a failing URL goes down
$node->safe_psql('postgres',
	qq{SELECT incident_probe_http('healthy', '$base/500', every => '1 second', failures => 2)});
ok( $node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM incident WHERE title = 'healthy is down'}),
	'a steady probe whose URL is changed to a failing one declares its incident');
$node->safe_psql('postgres',
	qq{SELECT incident_probe_http('healthy', '$base/ok', every => '1 second', failures => 2)});
ok($node->poll_query_until('postgres', q{SELECT state = 'up' FROM incident_probe_status WHERE name = 'healthy'}),
	'and pointed back, recovers');
$node->safe_psql('postgres', q{UPDATE incident_probe SET enabled = false WHERE name = 'healthy'});
# by the time another probe had two more checks, the change reached the
# worker and a check in flight then has finished
checked_more('broken', 2) or die 'the worker does not check';
$rolled_before = $node->safe_psql('postgres', $rolled);
checked_more('broken', 3) or die 'the worker does not check';
is($node->safe_psql('postgres', $rolled), $rolled_before, 'a disabled probe is no longer checked');
$node->safe_psql('postgres', q{UPDATE incident_probe SET enabled = true WHERE name = 'healthy'});
ok(checked_more('healthy', 2), 'and enabled again, it is');

# ---- a body is judged by a text it contains or a regular expression it matches ----
$node->safe_psql('postgres', qq{
SELECT incident_probe_http('regex-ok', '$base/body?text=%7B%22status%22%3A%20%22ok%22%7D', every => '1 hour',
                           expect_body_regex => '"status": *"ok"');
SELECT incident_probe_http('regex-bad', '$base/body?text=%7B%22status%22%3A%20%22degraded%22%7D', every => '1 hour', failures => 1,
                           expect_body_regex => '(?i)"STATUS": *"ok"');
SELECT incident_probe_http('regex-case', '$base/body?text=%7B%22status%22%3A%20%22ok%22%7D', every => '1 hour',
                           expect_body_regex => '(?i)"STATUS": *"OK"');
});
is($node->safe_psql('postgres', q{SELECT ok || ' ' || coalesce(failure, '-') FROM incident_probe_run('regex-ok')}),
	'true -', 'a body matching expect_body_regex passes');
is( $node->safe_psql('postgres',
		q{SELECT ok || ' ' || failure || ' / ' || error FROM incident_probe_run('regex-bad')}),
	'false body / the body does not match expect_body_regex',
	'a body that does not match fails with failure body');
is($node->safe_psql('postgres', q{SELECT ok FROM incident_probe_run('regex-case')}),
	't', '(?i) makes the expression case-insensitive');
ok( $node->poll_query_until('postgres',
		q{SELECT state || ' ' || coalesce(last_failure, '-') FROM incident_probe_status WHERE name IN ('regex-ok', 'regex-bad')
          ORDER BY name}, "down body\nup -"),
	'the worker judges the same way');
# a body that makes the expression backtrack for seconds fails the check after 200 ms
$node->safe_psql('postgres', qq{
SELECT incident_probe_http('regex-slow', '$base/big?bytes=2001', every => '1 hour', expect_body_regex => '^(x*)\\1(x*)\\2\$');
});
is( $node->safe_psql('postgres', q{SELECT failure || ' / ' || error FROM incident_probe_run('regex-slow')}),
	'body / expect_body_regex took longer than 200 ms on this body',
	'an expression too slow for the body fails the check instead of holding the worker');
$node->safe_psql('postgres',
	q{SELECT incident_probe_drop('regex-ok'), incident_probe_drop('regex-bad'), incident_probe_drop('regex-case'),
             incident_probe_drop('regex-slow')});

# ---- results older than pg_incident.result_retention are pruned ----
$node->safe_psql(
	'postgres', q{
INSERT INTO incident_probe_result (probe_id, at, ok, failure, state)
SELECT id, now() - interval '40 days', false, 'connect', 'down' FROM incident_probe WHERE name = 'healthy';
INSERT INTO incident_probe_rollup (probe_id, hour, checks)
SELECT id, date_trunc('hour', now() - interval '40 days'), 1 FROM incident_probe WHERE name = 'healthy';
});
ok( $node->poll_query_until('postgres',
		q{SELECT NOT EXISTS (SELECT FROM incident_probe_result WHERE at < now() - interval '30 days')
             AND NOT EXISTS (SELECT FROM incident_probe_rollup WHERE hour < now() - interval '30 days')}),
	'results and roll-ups older than the retention are pruned');
ok($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM incident_probe_rollup}), 'and only those');

# ---- the worker logged no error ----
my $log = slurp_file($node->logfile);
unlike($log, qr/pg_incident worker: could not record|CONTEXT:  pg_incident worker phase/,
	'no phase of the worker failed');

# ---- the SQL worker terminated mid-query comes back and runs the probe again ----
$node->safe_psql('postgres',
	q{SELECT incident_probe_sql('sql-sleepy', 'SELECT pg_sleep(60) IS NOT NULL', every => '1 second',
                                timeout => '2 minutes', run_as => 'regress_probe_reader')});
ok( $node->poll_query_until('postgres', $sql_query, 'running SQL probe sql-sleepy'),
	'the SQL worker runs a long query');
my $sql_pid = $node->safe_psql('postgres', q{SELECT pid FROM incident_worker_status WHERE process = 'sql worker'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($sql_pid)");
ok( $node->poll_query_until('postgres',
		qq{SELECT pid <> $sql_pid FROM pg_stat_activity WHERE backend_type = 'pg_incident sql worker'
             AND query = 'running SQL probe sql-sleepy'}),
	'a terminated SQL worker comes back and runs the interrupted probe again');
$sql_pid = $node->safe_psql('postgres', q{SELECT pid FROM incident_worker_status WHERE process = 'sql worker'});
# the next check of it is quick; the one running is canceled
$node->safe_psql('postgres',
	q{SELECT incident_probe_sql('sql-sleepy', 'SELECT true', every => '1 second', run_as => 'regress_probe_reader')});
$node->safe_psql('postgres', "SELECT pg_cancel_backend($sql_pid)");
ok( $node->poll_query_until('postgres',
		q{SELECT last_error = 'canceling statement due to user request (SQLSTATE 57014)'
            FROM incident_probe_status WHERE name = 'sql-sleepy'}),
	'pg_cancel_backend() of its query is a failed check');
$node->safe_psql('postgres', q{SELECT incident_probe_drop('sql-sleepy')});
ok(checked_more('sql-crit', 1), 'and its other probes');
is($node->safe_psql('postgres', q{SELECT count(*) FROM incident WHERE title = 'sql-crit is down'}),
	'1', 'without declaring again');

# ---- DROP and CREATE EXTENSION in one transaction while a check runs ----
# The new extension gives the old probe's id to another probe: the check
# still running belongs to the old one (it times out) and is never recorded
# against the new one (which fails on its status).
# hanging(): how many connections the test server's /hang holds open
sub hanging
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die "connect: $!";
	print $s "GET /stats HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
	local $/;
	my $r = <$s>;
	close $s;
	return $r =~ /hanging=(\d+)/ ? $1 : -1;
}
sub wait_hanging
{
	my ($want) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		return 1 if hanging() == $want;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}
$node->safe_psql('postgres', q{SELECT incident_probe_drop('hanging')});
ok(wait_hanging(0), 'no check hangs');
$node->safe_psql('postgres', qq{SELECT incident_probe_http('old-hang', '$base/hang', every => '1 hour', timeout => '3 seconds')});
my $old_id = $node->safe_psql('postgres', q{SELECT id FROM incident_probe WHERE name = 'old-hang'});
ok(wait_hanging(1), 'a check of the old probe is in flight');
my $recreated = (split /\n/, $node->safe_psql('postgres', qq{
DROP EXTENSION pg_incident;
CREATE EXTENSION pg_incident;
SELECT setval('incident_probe_id_seq', $old_id - 1);
SELECT incident_probe_http('fresh', '$base/500', every => '1 hour', failures => 1);
SELECT extract(epoch FROM clock_timestamp());}))[-1];
ok( $node->poll_query_until('postgres', q{SELECT state = 'down' FROM incident_probe_status WHERE name = 'fresh'}),
	'the new probe of the same id is checked');
# past the time the old check times out
ok($node->poll_query_until('postgres', qq{SELECT extract(epoch FROM clock_timestamp()) > $recreated + 5}), 'a while later');
is( $node->safe_psql('postgres',
		qq{SELECT p.id = $old_id, string_agg(r.failure, ',')
             FROM incident_probe p JOIN incident_probe_result r ON r.probe_id = p.id WHERE p.name = 'fresh' GROUP BY p.id}),
	't|status', 'only its own failing check is recorded, not the old probe\'s timeout');

$node->stop;
done_testing();
