# test/t/023_steady_probes.pl: what the HTTP worker counts in memory for a
# steady probe (up, no failure, no flip) stays true to what one write per
# check would have left.
#
# A quiet preloaded cluster (nothing else reads the schedule again) with a
# probe every second against /switch of the test server, whose answer /set
# changes without the probe changing:
#  - a single failing check of a steady probe is recorded at once, and the
#    passes after it end its run of failures (they are not counted as
#    steady passes of a probe that still has a failure);
#  - single failures among passes declare nothing;
#  - turning pg_incident.enabled off writes the passes counted in memory
#    (of a second probe, on /ok);
#  - two probes 2 s apart, overdue together after the worker was off, are
#    2 s apart again after the catch-up;
#  - a login's advisory lock does not stop a probe of a component from
#    declaring, and a SQL probe's advisory lock does not outlive its check.
# Every wait polls with a deadline.

use strict;
use warnings;

use FindBin;
use HTTP::Tiny;
use lib "$FindBin::Bin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TestHttpServer qw(start_http_server);
use TestProbeNode qw(start_probe_node);

my ($port) = start_http_server();
my $base = "http://127.0.0.1:$port";

my $node = start_probe_node('steady');

# set_flaky(code): /switch?name=flaky answers code from now on
sub set_flaky
{
	my ($code) = @_;
	HTTP::Tiny->new->get("$base/set?name=flaky&code=$code")->{success}
	  or die "the test server did not take /set";
}

# failures => 3: a second failing check before the switch back declares nothing yet
$node->safe_psql('postgres', qq{
SELECT incident_probe_http('flaky', '$base/switch?name=flaky', every => '1 second', failures => 3);
SELECT incident_probe_http('calm', '$base/ok', every => '1 second');
});
ok( $node->poll_query_until('postgres',
		q{SELECT state = 'up' AND consecutive_successes >= 3 FROM incident_probe_status WHERE name = 'flaky'}),
	'the probe is up and steady');

for my $round (1, 2)
{
	set_flaky(500);
	ok( $node->poll_query_until('postgres',
			q{SELECT consecutive_failures > 0 FROM incident_probe_status WHERE name = 'flaky'}),
		"round $round: a steady probe's failing check is recorded at once");
	set_flaky(200);
	ok( $node->poll_query_until('postgres',
			q{SELECT consecutive_successes >= 2 FROM incident_probe_status WHERE name = 'flaky'}),
		"round $round: the passes after it are recorded");
	is($node->safe_psql('postgres', q{SELECT consecutive_failures FROM incident_probe_status WHERE name = 'flaky'}),
		'0', "round $round: and they end the run of failures");
}
is( $node->safe_psql('postgres',
		q{SELECT state || ' ' || (SELECT count(*) FROM incident) FROM incident_probe_status WHERE name = 'flaky'}),
	'up 0', 'single failures among passes declare nothing');

# ---- turning the worker off writes what it counted ----
# (of the probe without a flip: flaky's failures keep it from steady for 30 minutes)
my $rolled = q{SELECT coalesce(sum(u.checks), 0) FROM incident_probe_rollup u
                JOIN incident_probe p ON p.id = u.probe_id WHERE p.name = 'calm'};
my $done = q{SELECT checks_done FROM incident_worker_status WHERE process = 'worker'};
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET pg_incident.probe_flush_interval = '1h'; SELECT pg_reload_conf()});
# some checks later the reload has reached the worker
my $done_before = $node->safe_psql('postgres', $done);
$node->poll_query_until('postgres', "SELECT ($done) >= $done_before + 3") or die 'the worker does not check';
my $rolled_before = $node->safe_psql('postgres', $rolled);
$done_before = $node->safe_psql('postgres', $done);
$node->poll_query_until('postgres', "SELECT ($done) >= $done_before + 4") or die 'the worker does not check';
my $rolled_counting = $node->safe_psql('postgres', $rolled);
ok($rolled_counting < $rolled_before + 3, 'with a long flush interval the passes stay in memory');
$node->safe_psql('postgres', q{ALTER SYSTEM SET pg_incident.enabled = off; SELECT pg_reload_conf()});
ok( $node->poll_query_until('postgres', q{SELECT state = 'disabled' FROM incident_worker_status WHERE process = 'worker'}),
	'the worker is disabled');
cmp_ok($node->safe_psql('postgres', $rolled), '>=', $rolled_counting + 3, 'and wrote the passes it had counted');

# ---- probes that fell behind together go back to their own beats ----
# two probes every 4 s, 2 s apart; the worker off for longer than two
# intervals makes both overdue at once, and after the catch-up they are
# 2 s apart again, not bunched
$node->safe_psql('postgres', qq{
BEGIN;
SELECT incident_probe_drop('flaky'), incident_probe_drop('calm');
SELECT incident_probe_http('beat-a', '$base/ok', every => '4 seconds');
SELECT incident_probe_http('beat-b', '$base/ok', every => '4 seconds');
UPDATE incident_probe_state s SET next_run_at = pg_catalog.date_trunc('second', now()) + interval '2 seconds'
  FROM incident_probe p WHERE p.id = s.probe_id AND p.name = 'beat-a';
UPDATE incident_probe_state s SET next_run_at = pg_catalog.date_trunc('second', now()) + interval '4 seconds'
  FROM incident_probe p WHERE p.id = s.probe_id AND p.name = 'beat-b';
COMMIT;
ALTER SYSTEM RESET pg_incident.enabled;
ALTER SYSTEM RESET pg_incident.probe_flush_interval;
SELECT pg_reload_conf();
});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 2 FROM incident_probe_status WHERE name LIKE 'beat-%' AND state = 'up'}),
	'two probes 2 s apart are up');
# the phase of each probe's next check within its 4 s interval
my $phase = q{SELECT string_agg(round((extract(epoch FROM s.next_run_at)::numeric % 4))::text, ' ' ORDER BY p.name)
                FROM incident_probe p JOIN incident_probe_state s ON s.probe_id = p.id WHERE p.name LIKE 'beat-%'};
my $phase_before = $node->safe_psql('postgres', $phase);
$node->safe_psql('postgres', q{ALTER SYSTEM SET pg_incident.enabled = off; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{SELECT state = 'disabled' FROM incident_worker_status WHERE process = 'worker'})
  or die 'the worker is not disabled';
sleep(9);    # the time the worker is off: more than two intervals
$node->safe_psql('postgres', q{ALTER SYSTEM RESET pg_incident.enabled; SELECT pg_reload_conf()});
# the catch-up check of both, then one more each on its beat, written within 500 ms
my $checks = q{SELECT min(coalesce(r.checks, 0)) FROM incident_probe p
                LEFT JOIN (SELECT probe_id, sum(checks) AS checks FROM incident_probe_rollup GROUP BY probe_id) r
                  ON r.probe_id = p.id WHERE p.name LIKE 'beat-%'};
my $checks_before = $node->safe_psql('postgres', $checks);
ok($node->poll_query_until('postgres', "SELECT ($checks) >= $checks_before + 2"), 'both are checked again');
is($node->safe_psql('postgres', $phase), $phase_before, 'each on its own beat, still 2 s apart');

# ---- no login can stall the worker with a lock of its own ----
# probes of one component decide one at a time under a row lock that only
# the extension's functions can take; an advisory lock on any key (once the
# one they used) and a SQL probe's own session advisory lock stop nothing
$node->safe_psql('postgres', q{
CREATE ROLE regress_nobody LOGIN;
CREATE ROLE regress_probe_runner;
SELECT incident_probe_drop('beat-a'), incident_probe_drop('beat-b');
});
my $squatter = $node->background_psql('postgres', extra_params => [ '-U', 'regress_nobody' ]);
$squatter->query_safe(q{SELECT pg_advisory_lock(hashtext('pg_incident probe component website'))});
$node->safe_psql('postgres', qq{
SELECT incident_probe_sql('locker', 'SELECT count(*) FROM (SELECT pg_advisory_lock(4242)) l', every => '1 hour',
                          run_as => 'regress_probe_runner');
SELECT incident_probe_http('site', '$base/500', every => '1 second', failures => 1, component => 'website');
});
ok( $node->poll_query_until('postgres', q{SELECT incident IS NOT NULL FROM incident_probe_status WHERE name = 'site'}),
	'a failing probe of a component declares while a login holds advisory locks');
ok( $node->poll_query_until('postgres', q{SELECT last_result_at IS NOT NULL FROM incident_probe_status WHERE name = 'locker'}),
	'the SQL probe that takes an advisory lock ran');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_locks l JOIN incident_worker_status w ON w.pid = l.pid WHERE l.locktype = 'advisory'}),
	'0', 'and the SQL worker holds no advisory lock after it');
$squatter->quit;

done_testing();
