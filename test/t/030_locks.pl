# test/t/030_locks.pl: incident_blocking_locks and incident_lock_roots where
# the isolation specs cannot go:
#  - a prepared transaction as the root of a chain;
#  - a parallel query holding the lock: its workers are folded into the
#    leader (pg_blocking_pids() names the leader once per process);
#  - twenty sessions queued on one row: twenty rows and one root, where the
#    playbook's query (pg_locks joined on locktype alone) returns hundreds.
# Every wait polls with a deadline.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('locks');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_prepared_transactions = 5
max_connections = 40
max_worker_processes = 8
max_parallel_workers = 4
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_incident;
CREATE TABLE queue (id int PRIMARY KEY, v int);
INSERT INTO queue VALUES (1, 0);
CREATE TABLE big AS SELECT g FROM generate_series(1, 300000) g;
ANALYZE big;
CREATE ROLE regress_viewer LOGIN IN ROLE incident_viewer;
});

# waiting(n): polls until n processes wait for a lock
sub waiting
{
	my ($n) = @_;
	return $node->poll_query_until('postgres', "SELECT count(*) >= $n FROM pg_locks WHERE NOT granted");
}

# ---- a prepared transaction is the root ----
$node->safe_psql('postgres', q{BEGIN; LOCK TABLE queue IN SHARE MODE; PREPARE TRANSACTION 'px-deploy'});
my $w1 = $node->background_psql('postgres');
$w1->query_until(qr/started/, "\\echo started\nINSERT INTO queue VALUES (2, 0);\n");
my $w2 = $node->background_psql('postgres');
$w2->query_until(qr/started/, "\\echo started\nBEGIN;\nLOCK TABLE queue;\n");
ok(waiting(2), 'two sessions wait behind the prepared transaction');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(mode || ':' || coalesce(blocking_prepared::text, '-') || ':' || root_blocker_prepared || ':'
                            || root_state || ':' || chain_depth, ' ' ORDER BY mode)
            FROM incident_blocking_locks}),
	'AccessExclusiveLock:{px-deploy}:px-deploy:prepared:1 RowExclusiveLock:{px-deploy}:px-deploy:prepared:1',
	'both are blocked by the prepared transaction, named by its gid, at the root');
is( $node->safe_psql('postgres',
		q{SELECT root_pid IS NULL, root_prepared, blocked_directly, blocked_count, state, xact_age > '0'
            FROM incident_lock_roots}),
	't|px-deploy|2|2|prepared|t', 'incident_lock_roots shows it with the two it blocks');
is($node->safe_psql('postgres', q{SELECT array_to_string(pg_blocking_pids(pid), ',') FROM incident_blocking_locks LIMIT 1}),
	'0', 'where pg_blocking_pids() shows a pid 0');
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'px-deploy'});
$w1->quit;
$w2->quit;

# ---- a parallel query holds the lock ----
my $par = $node->background_psql('postgres');
$par->query_safe(q{SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
                   SET max_parallel_workers_per_gather = 2});
$par->query_until(qr/started/,
	"\\echo started\nSELECT count(*) FROM big WHERE pg_sleep(0.0002) IS NOT NULL;\n");
my $leader = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%FROM big WHERE pg_sleep%' AND backend_type = 'client backend' AND pid <> pg_backend_pid()});
ok( $node->poll_query_until('postgres', qq{SELECT count(*) = 2 FROM pg_stat_activity WHERE leader_pid = $leader AND pid <> $leader}),
	'the parallel query runs with two workers');
my $alter = $node->background_psql('postgres');
$alter->query_until(qr/started/, "\\echo started\nALTER TABLE big ADD COLUMN x int;\n");
ok(waiting(1), 'ALTER TABLE waits for it');
is($node->safe_psql('postgres', q{SELECT array_length(pg_blocking_pids(pid), 1) FROM incident_blocking_locks}),
	'3', 'pg_blocking_pids() names the leader once per process of the query');
is( $node->safe_psql('postgres', q{SELECT blocking_pids = ARRAY[root_blocker_pid], root_blocker_pid, root_state FROM incident_blocking_locks}),
	"t|$leader|active", 'incident_blocking_locks names the leader once, as the root');
is($node->safe_psql('postgres', q{SELECT root_pid, blocked_count, backend_type FROM incident_lock_roots}),
	"$leader|1|client backend", 'and incident_lock_roots the one session to cancel');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($leader)");
$alter->quit;
eval { $par->quit };    # its psql has ended on the canceled query

# ---- twenty sessions queued on one row ----
my $holder = $node->background_psql('postgres');
$holder->query_safe(q{BEGIN; UPDATE queue SET v = v + 1 WHERE id = 1});
my @waiters;
for my $i (1 .. 20)
{
	my $w = $node->background_psql('postgres');
	$w->query_until(qr/started/, "\\echo started\nUPDATE queue SET v = v + 1 WHERE id = 1;\n");
	push @waiters, $w;
}
ok(waiting(20), 'twenty sessions wait for the row');
is( $node->safe_psql('postgres',
		q{SELECT count(*), count(DISTINCT root_blocker_pid), max(chain_depth), bool_or(deadlocked),
                 count(*) FILTER (WHERE locktype = 'transactionid'), count(*) FILTER (WHERE wait_start IS NULL)
            FROM incident_blocking_locks}),
	'20|1|2|f|1|0', 'one row per waiter, one root, the first waiting for its transaction and the rest for the row');
my $holder_pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction'});
is( $node->safe_psql('postgres', q{SELECT root_pid, blocked_directly, blocked_count, state FROM incident_lock_roots}),
	"$holder_pid|1|20|idle in transaction", 'the root blocks one directly and twenty in all');
my $playbook = $node->safe_psql('postgres', q{
SELECT count(*)
FROM pg_catalog.pg_locks blocked_locks
JOIN pg_catalog.pg_stat_activity blocked_activity ON blocked_activity.pid = blocked_locks.pid
JOIN pg_catalog.pg_locks blocking_locks ON blocking_locks.locktype = blocked_locks.locktype
JOIN pg_catalog.pg_stat_activity blocking_activity ON blocking_activity.pid = blocking_locks.pid
WHERE NOT blocked_locks.granted});
cmp_ok($playbook, '>', 100, "the playbook's query returns $playbook rows for the same twenty waits");

# ---- a viewer sees the graph, and queries as pg_stat_activity shows them ----
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT count(*), count(*) FILTER (WHERE blocked_query = '<insufficient privilege>') FROM incident_blocking_locks},
	extra_params => [ '-U', 'regress_viewer' ]);
is("$ret $out", '0 20|20', "incident_viewer sees every wait, and no other role's query text");

$holder->query_safe('COMMIT');
$_->quit for @waiters;
$holder->quit;
$node->stop;
done_testing();
