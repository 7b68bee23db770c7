# test/t/032_health.pl: the health views and incident_health where one
# session cannot go (sql/90_health.sql has the rest):
#  - a session idle in transaction and a root blocking three sessions, seen
#    by incident_health whoever reads it, while incident_long_transactions
#    shows a role without pg_read_all_stats only its own sessions;
#  - nothing waits for a lock: sizes, sequences and incident_health answer
#    while a session holds an ACCESS EXCLUSIVE lock and an ALTER queues,
#    where pg_total_relation_size() waits;
#  - an inactive replication slot and a streaming standby in
#    incident_replication, on the primary and on the standby;
#  - incident_top_queries with pg_stat_statements loaded;
#  - sequences read without keeping their locks;
#  - role changes recorded only where pg_incident is installed, without a
#    password however the statement hides it, also for a role without
#    privileges with its own objects on its search_path; settings waiting
#    for a reload or a restart; DROP EXTENSION with its event triggers in
#    place.
# Every wait polls with a deadline; every read that could hang runs under
# statement_timeout, so that a hang fails the test instead of stalling it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('health');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_incident, pg_stat_statements'
pg_incident.enabled = off
pg_incident.naptime = 200
max_connections = 30
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_incident;
CREATE EXTENSION pg_stat_statements;
CREATE ROLE regress_viewer LOGIN IN ROLE incident_viewer;
CREATE ROLE regress_app LOGIN;
CREATE TABLE queue (id int PRIMARY KEY, v text);
INSERT INTO queue SELECT g, repeat('x', 500) FROM generate_series(1, 2000) g;
CREATE SEQUENCE order_seq;
GRANT SELECT ON queue TO regress_app;
UPDATE incident_health_threshold SET warning = 1, critical = 2 WHERE check_name = 'idle_in_transaction';
UPDATE incident_health_threshold SET warning = 2, critical = 3 WHERE check_name = 'lock_blocked';
UPDATE incident_health_threshold SET warning = 1 WHERE check_name = 'slot_retained_wal';
});

# health(check, as): "status|detail" of one check, read as a login
sub health
{
	my ($check, $user) = @_;
	return $node->safe_psql('postgres', "SET statement_timeout = '10s'; SELECT status || '|' || detail FROM incident_health WHERE check_name = '$check'",
		$user ? (extra_params => [ '-U', $user ]) : ());
}

# ---- idle in transaction, as another role ----
my $idle = $node->background_psql('postgres', extra_params => [ '-U', 'regress_app' ]);
$idle->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM queue');
my $idle_pid = $idle->query_safe('SELECT pg_backend_pid()');
$idle_pid =~ s/\D//g;
ok( $node->poll_query_until('postgres', q{SELECT status = 'critical' FROM incident_health WHERE check_name = 'idle_in_transaction'}),
	'a session idle in transaction for two seconds is critical at the edited thresholds');
like(health('idle_in_transaction', 'regress_viewer'), qr/^critical\|pid $idle_pid \(regress_app, [^)]+\) has sat idle in transaction for /,
	'a viewer without pg_read_all_stats sees the same check, naming pid, role and application');
is( $node->safe_psql('postgres', q{SELECT count(*) FROM incident_long_transactions WHERE user_name = 'regress_app'},
		extra_params => [ '-U', 'regress_viewer' ]),
	'0', 'while incident_long_transactions shows that viewer only its own sessions');
is( $node->safe_psql('postgres', qq{SELECT kind || ' ' || state || ' ' || (idle_for > '1 second') FROM incident_long_transactions WHERE pid = $idle_pid}),
	'idle in transaction idle in transaction true', 'and shows a superuser the idle session');
is( $node->safe_psql('postgres', qq{SELECT count(*) FROM incident_xmin_horizon WHERE pid = $idle_pid AND kind = 'session'}),
	'1', 'its snapshot holds the xmin horizon');
unlike($node->safe_psql('postgres', q{SELECT evidence::text FROM incident_health WHERE check_name = 'idle_in_transaction'}),
	qr/count\(\*\)/, 'the evidence never carries the query text');
$idle->query_safe('COMMIT');

# ---- a root blocking three sessions, and the built-in probe declaring it ----
# only db-lock-blocked runs, every second, alerting at the first failure
$node->safe_psql('postgres', q{
UPDATE incident_probe SET enabled = (name = 'db-lock-blocked') WHERE health_check IS NOT NULL;
UPDATE incident_probe SET every = '1 second', failures = 1 WHERE name = 'db-lock-blocked';
ALTER SYSTEM SET pg_incident.enabled = on;
SELECT pg_reload_conf();
});
my $root = $node->background_psql('postgres');
$root->query_safe(q{BEGIN; UPDATE queue SET v = 'y' WHERE id = 1});
my $root_pid = $root->query_safe('SELECT pg_backend_pid()');
$root_pid =~ s/\D//g;
my @waiters;
for my $i (1 .. 3)
{
	my $w = $node->background_psql('postgres');
	$w->query_until(qr/started/, "\\echo started\nUPDATE queue SET v = 'z$i' WHERE id = 1;\n");
	push @waiters, $w;
}
ok($node->poll_query_until('postgres', q{SELECT count(*) = 3 FROM pg_locks WHERE NOT granted}), 'three sessions queue on one row');
like(health('lock_blocked'), qr/^critical\|pid $root_pid blocks 3 session\(s\) \(idle in transaction\)$/,
	'lock_blocked is critical at three, naming the root and its state');
is( $node->safe_psql('postgres', q{SELECT (evidence -> 0 ->> 'root_pid') || ' ' || (evidence -> 0 ->> 'blocked_count') FROM incident_health WHERE check_name = 'lock_blocked'}),
	"$root_pid 3", 'its evidence names the root and how many it blocks');
like(health('lock_wait'), qr/^ok\|pid \d+ has waited [0-9.]+ s for (ShareLock|ExclusiveLock) on /, 'lock_wait names the longest waiter');
is( $node->safe_psql('postgres', q{SELECT sum(waiting_on_lock) FROM incident_connections}, extra_params => [ '-U', 'regress_viewer' ]),
	'3', 'incident_connections counts the waiters for a viewer too');
ok( $node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM incident WHERE source = 'probe'}),
	'the worker\'s built-in probe db-lock-blocked declares an incident');
is( $node->safe_psql('postgres', q{
        SELECT i.severity || ' ' || i.component || ' ' || (e.details -> 'health' ->> 'status') || ' '
               || (e.details -> 'health' -> 'evidence' -> 0 ->> 'root_pid')
          FROM incident i JOIN incident_event e ON e.incident_id = i.id AND e.kind = 'probe'
         WHERE i.source = 'probe'}),
	"P2 database critical $root_pid", 'of its severity, with the root blocker as evidence on the timeline');
$root->query_safe('ROLLBACK');
$_->quit for @waiters;
$node->safe_psql('postgres', q{ALTER SYSTEM SET pg_incident.enabled = off; SELECT pg_reload_conf()});

# ---- nothing waits for a lock ----
my $size = $node->safe_psql('postgres', q{SELECT pg_total_relation_size('queue')});
$root->query_safe(q{BEGIN; LOCK TABLE queue IN ACCESS EXCLUSIVE MODE; ALTER SEQUENCE order_seq INCREMENT 2});
my $alter = $node->background_psql('postgres');
$alter->query_until(qr/started/, "\\echo started\nALTER TABLE queue ADD COLUMN w int;\n");
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_locks WHERE NOT granted}), 'an ALTER TABLE queues behind the lock');
is( $node->safe_psql('postgres', q{SET statement_timeout = '10s'; SELECT total_bytes FROM incident_table_sizes WHERE relid = 'queue'::regclass}),
	$size, 'incident_table_sizes answers at once, with the size pg_total_relation_size gave before');
my ($ret, $out, $err) = $node->psql('postgres', q{SET lock_timeout = '200ms'; SELECT pg_total_relation_size('queue')});
like($err, qr/lock timeout/, 'where pg_total_relation_size() waits for the lock');
is( $node->safe_psql('postgres', q{SET statement_timeout = '10s'; SELECT coalesce(last_value::text, 'locked') FROM incident_sequences WHERE relid = 'order_seq'::regclass}),
	'locked', 'incident_sequences skips a sequence whose lock is taken');
is( $node->safe_psql('postgres', q{SET statement_timeout = '10s'; SELECT count(*) FROM incident_health WHERE detail LIKE 'could not check%'}),
	'0', 'incident_health runs every check meanwhile');
$root->query_safe('ROLLBACK');
$alter->quit;

# a viewer that reads every sequence and sits in its transaction holds none
# of their locks: a table with a serial column can still be dropped
$node->safe_psql('postgres', q{CREATE TABLE serials (id serial, v int); INSERT INTO serials (v) VALUES (1);
                               CREATE SEQUENCE app_only_seq; SELECT nextval('app_only_seq'); SELECT setval('app_only_seq', 9)});
$root->query_safe(q{SET ROLE regress_viewer; BEGIN; SELECT count(*) FROM incident_sequences; SELECT count(*) FROM incident_health});
is( $root->query_safe(q{SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE l.pid = pg_backend_pid() AND c.relkind = 'S'}),
	'0', 'reading the sequences leaves no lock on them');
($ret, $out, $err) = $node->psql('postgres', q{SET lock_timeout = '2s'; DROP TABLE serials});
is($err, '', 'DROP TABLE of a serial table goes through meanwhile');
$root->query_safe('ROLLBACK; RESET ROLE');
$root->quit;

# ---- replication: an inactive slot, a streaming standby ----
$node->safe_psql('postgres', q{SELECT pg_create_physical_replication_slot('old_replica', true)});
is( $node->safe_psql('postgres', q{SELECT active || ' ' || slot_type || ' ' || (retained_bytes > 0) FROM incident_replication WHERE kind = 'slot' AND name = 'old_replica'}),
	'false physical true', 'an inactive slot shows with the WAL it keeps');
like(health('slot_retained_wal'), qr/^warning\|slot old_replica \(inactive, wal_status reserved\) keeps /, 'slot_retained_wal names it');
$node->safe_psql('postgres', q{SELECT pg_drop_replication_slot('old_replica')});

$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('health_standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', q{CREATE TABLE after_backup AS SELECT 1 AS a});
$node->wait_for_catchup($standby);
is( $node->safe_psql('postgres', q{SELECT name || ' ' || active || ' ' || state || ' ' || sync_state || ' ' || (lag_bytes >= 0) FROM incident_replication WHERE kind = 'standby'}),
	'health_standby true streaming async true', 'the primary shows its standby, streaming');
like(health('replication_lag'), qr/^ok\|1 standby\(s\); health_standby replays [0-9.]+ s behind$/, 'replication_lag names it');
is( $standby->safe_psql('postgres', q{SELECT kind || ' ' || active || ' ' || (lag_bytes >= 0) FROM incident_replication WHERE kind = 'upstream'}),
	'upstream true true', 'the standby shows its upstream');
is( $standby->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE detail LIKE 'could not check%') || ' ' || count(*) FROM incident_health}),
	'0 13', 'incident_health runs every check on the standby');
is( $standby->safe_psql('postgres', q{SELECT count(*) > 0 FROM incident_table_sizes WHERE relid = 'queue'::regclass}),
	't', 'and so do the other views');
$standby->stop;

# ---- top queries ----
$node->safe_psql('postgres', q{SELECT count(*) FROM queue WHERE v LIKE '%q%'}, extra_params => [ '-U', 'regress_app' ]) for 1 .. 3;
is( $node->safe_psql('postgres', q{SELECT user_name || ' ' || calls FROM incident_top_queries('calls', 50) WHERE query LIKE '%FROM queue WHERE v LIKE%'}),
	'regress_app 3', 'incident_top_queries finds the statement of pg_stat_statements, with its role and calls');
is( $node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE calls > prev OR rank <> prev_rank + 1) || ' ' || min(rank) FROM (
            SELECT rank, calls, lag(calls) OVER (ORDER BY rank) AS prev, lag(rank) OVER (ORDER BY rank) AS prev_rank
              FROM incident_top_queries('calls', 50)) r}),
	'0 1', 'ranked from 1 by the order asked for');
is( $node->safe_psql('postgres', q{SELECT query FROM incident_top_queries('calls', 50) WHERE user_name = 'regress_app' LIMIT 1},
		extra_params => [ '-U', 'regress_viewer' ]),
	'<insufficient privilege>', 'a viewer without pg_read_all_stats does not read other roles\' queries');

# ---- role changes, where pg_incident is installed ----
$node->safe_psql('postgres', q{CREATE DATABASE other});
my ($r, $o, $e) = $node->psql('other', q{CREATE ROLE from_other; ALTER ROLE from_other PASSWORD 'x'; DROP ROLE from_other});
is($e, '', 'role changes in a database without pg_incident go through without a word');
$node->safe_psql('postgres', q{CREATE ROLE regress_new; ALTER ROLE regress_new PASSWORD 'hunter2'; DROP ROLE regress_new});
is( $node->safe_psql('postgres', q{SELECT string_agg(command_tag || ': ' || statement, ' / ' ORDER BY id) FROM incident_change WHERE statement LIKE '%regress_new%' OR statement LIKE '%from_other%'}),
	q{CREATE ROLE: CREATE ROLE regress_new / ALTER ROLE: ALTER ROLE regress_new PASSWORD / DROP ROLE: DROP ROLE regress_new},
	'role changes made here are recorded, without the password; those made elsewhere are not');

# a role without any privilege changes its own password, with a type named
# text and a schema it owns first on its search_path: recorded, no warning
$node->safe_psql('postgres', q{CREATE SCHEMA app_own AUTHORIZATION regress_app});
($r, $o, $e) = $node->psql('postgres', q{
CREATE DOMAIN app_own.text AS pg_catalog.varchar;
CREATE FUNCTION app_own.to_regprocedure(pg_catalog.text) RETURNS regprocedure LANGUAGE sql AS 'SELECT NULL::regprocedure';
SET search_path = app_own, public;
ALTER ROLE regress_app PASSWORD 'own-pw-1' /* it's 'own-pw-2' */;
ALTER ROLE "regress_app" PASSWORD E'own-pw-3\\' x'},
	extra_params => [ '-U', 'regress_app' ]);
is($e, '', 'a role changing its own password gets no warning');
is( $node->safe_psql('postgres', q{SELECT string_agg(role_name || ': ' || statement, ' / ' ORDER BY id) FROM incident_change WHERE object_identity = 'regress_app' AND session_role = 'regress_app'}),
	'regress_app: ALTER ROLE regress_app PASSWORD / regress_app: ALTER ROLE regress_app PASSWORD',
	'its changes are recorded as its own, whatever its search_path holds');
is($node->safe_psql('postgres', q{SELECT count(*) FROM incident_change WHERE statement ~ 'own-pw'}),
	'0', 'no password is kept, however the statement hid it');

# ---- settings changed in the files, waiting for a reload or a restart ----
$node->safe_psql('postgres', q{ALTER SYSTEM SET work_mem = '5MB'});
$node->safe_psql('postgres', q{ALTER SYSTEM SET primary_conninfo = 'host=nowhere password=conn-pw'});
like( $node->safe_psql('postgres', q{SELECT string_agg(command || ' ' || object || ': ' || statement, ' / ' ORDER BY object) FROM incident_recent_changes WHERE command LIKE 'pending%'}),
	qr{^pending reload primary_conninfo: primary_conninfo changed in \S+/postgresql\.auto\.conf line \d+ \(its value is for superusers only\) / pending reload work_mem: work_mem = 5MB in \S+/postgresql\.auto\.conf line \d+; the server runs with 4096kB$},
	'ALTER SYSTEM waits for a reload, and a superuser-only value is not shown');
is($node->safe_psql('postgres', q{SELECT count(*) FROM incident_change WHERE statement ~ 'conn-pw'}),
	'0', 'ALTER SYSTEM of a superuser-only setting keeps its name only');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET primary_conninfo; ALTER SYSTEM SET max_connections = 31});
$node->reload;
$node->poll_query_until('postgres', q{SELECT current_setting('work_mem') = '5MB'}) or die 'no reload';
is( $node->safe_psql('postgres', q{SELECT string_agg(command || ' ' || object, ' / ') FROM incident_recent_changes WHERE command LIKE 'pending%'}),
	'pending restart max_connections', 'after the reload, only the restart is pending');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET max_connections; ALTER SYSTEM RESET work_mem});
$node->reload;

# ---- DROP EXTENSION with the event triggers in place ----
($r, $o, $e) = $node->psql('postgres', q{DROP EXTENSION pg_incident; CREATE TABLE after_drop (a int); DROP TABLE after_drop; CREATE EXTENSION pg_incident});
is($e, '', 'DROP EXTENSION and DDL after it give no warning');
is($node->safe_psql('postgres', q{SELECT count(*) FROM incident_change WHERE object_identity = 'public.after_drop'}),
	'0', 'a new install starts a new change log');

$node->stop;
done_testing();
