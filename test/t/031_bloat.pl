# test/t/031_bloat.pl: the accuracy of incident_table_bloat and
# incident_index_bloat against the truth, and incident_bloat_verify().
#
# Each case builds a table (and indexes) in schema b, bloats it as its name
# says, and VACUUMs and ANALYZEs it, in a session of its own so that the
# statistics counters of its changes reach the server before VACUUM resets
# them. The views' estimates are read; then VACUUM FULL rewrites every table
# and rebuilds its indexes, and the truth of each relation is the share of
# its size that this gave back. Every estimate not flagged unreliable
# must be within 5 percentage points of the truth, before VACUUM FULL and
# (the truth being 0 then) after it; the cases that must be flagged are. The
# table of case / estimate / truth / flag is printed (diag) for
# docs/diagnostics.md.
#
# incident_bloat_verify(): its errors (pgstattuple missing, not a table or a
# btree index, no such relation, a lock it would queue for), who may call
# it, and its measured figures against the truth.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('bloat');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_incident;
CREATE SCHEMA b;
CREATE ROLE regress_viewer LOGIN IN ROLE incident_viewer;
CREATE ROLE regress_admin LOGIN IN ROLE incident_admin;
GRANT USAGE ON SCHEMA b TO regress_viewer, regress_admin;
});

# [relation, what it is, setup SQL, whether its estimate must be flagged]
my $rows = q{INSERT INTO %s SELECT g, g, 'row ' || g FROM generate_series(1, %d) g};
my $doc = q{(SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 100) i)};
my @cases = (
	[ 'del50', 'table, 50 % of rows deleted',
		"CREATE TABLE b.del50 (id int NOT NULL, v int, t text); " . sprintf($rows, 'b.del50', 200000)
		  . "; DELETE FROM b.del50 WHERE id % 2 = 0" ],
	[ 'del90', 'table, 90 % of rows deleted',
		"CREATE TABLE b.del90 (id int NOT NULL, v int, t text); " . sprintf($rows, 'b.del90', 200000)
		  . "; CREATE INDEX del90_v ON b.del90 (v); DELETE FROM b.del90 WHERE id % 10 <> 0" ],
	[ 'del90_v', 'narrow btree (int4) on the 90 % deleted table', '' ],
	[ 'upd2', 'table, every row updated twice',
		"CREATE TABLE b.upd2 (id int NOT NULL, v int, t text); " . sprintf($rows, 'b.upd2', 100000)
		  . "; UPDATE b.upd2 SET v = v + 1; UPDATE b.upd2 SET v = v + 1" ],
	[ 'ff70', 'table, fillfactor 70, clean',
		"CREATE TABLE b.ff70 (id int NOT NULL, v int, t text) WITH (fillfactor = 70); " . sprintf($rows, 'b.ff70', 100000) ],
	[ 'order448', 'table int4, int8, int4 (padding), clean',
		"CREATE TABLE b.order448 (a int4 NOT NULL, b int8 NOT NULL, c int4 NOT NULL); "
		  . "INSERT INTO b.order448 SELECT g, g, g FROM generate_series(1, 100000) g" ],
	[ 'order844', 'table int8, int4, int4, clean',
		"CREATE TABLE b.order844 (b int8 NOT NULL, a int4 NOT NULL, c int4 NOT NULL); "
		  . "INSERT INTO b.order844 SELECT g, g, g FROM generate_series(1, 100000) g" ],
	[ 'stat0', 'table, text column with statistics target 0',
		"CREATE TABLE b.stat0 (id int NOT NULL, t text); ALTER TABLE b.stat0 ALTER t SET STATISTICS 0; "
		  . "INSERT INTO b.stat0 SELECT g, 'row ' || g FROM generate_series(1, 100000) g; DELETE FROM b.stat0 WHERE id % 2 = 0", 1 ],
	[ 'stat0fixed', 'table, int8 NOT NULL column with statistics target 0',
		"CREATE TABLE b.stat0fixed (id int NOT NULL, v int8 NOT NULL); ALTER TABLE b.stat0fixed ALTER v SET STATISTICS 0; "
		  . "INSERT INTO b.stat0fixed SELECT g, g FROM generate_series(1, 100000) g; DELETE FROM b.stat0fixed WHERE id % 2 = 0" ],
	[ 'toast_clean', 'table with TOAST (3.2 kB values), clean',
		"CREATE TABLE b.toast_clean (id int NOT NULL, doc text); "
		  . "INSERT INTO b.toast_clean SELECT g, $doc FROM generate_series(1, 5000) g" ],
	[ 'toast_del50', 'table with TOAST, 50 % of rows deleted',
		"CREATE TABLE b.toast_del50 (id int NOT NULL, doc text); "
		  . "INSERT INTO b.toast_del50 SELECT g, $doc FROM generate_series(1, 5000) g; DELETE FROM b.toast_del50 WHERE id % 2 = 0" ],
	[ 'del75_id', 'btree (int4), 75 % of rows deleted',
		"CREATE TABLE b.del75 (id int NOT NULL, v int); INSERT INTO b.del75 SELECT g, g FROM generate_series(1, 200000) g; "
		  . "CREATE INDEX del75_id ON b.del75 (id); DELETE FROM b.del75 WHERE id % 4 <> 0" ],
	[ 'dedup10_k', 'btree deduplicated, 10 distinct keys, CREATE INDEX',
		"CREATE TABLE b.dedup10 (id int NOT NULL, k int NOT NULL); CREATE INDEX dedup10_k_ins ON b.dedup10 (k); "
		  . "INSERT INTO b.dedup10 SELECT g, g % 10 FROM generate_series(1, 200000) g; CREATE INDEX dedup10_k ON b.dedup10 (k)" ],
	[ 'dedup10_k_ins', 'btree deduplicated, 10 distinct keys, built by inserts', '' ],
	[ 'dedup10_text', 'btree deduplicated, text, 10 distinct keys, 50 % deleted',
		"CREATE TABLE b.dedup10t (id int NOT NULL, k text NOT NULL); "
		  . "INSERT INTO b.dedup10t SELECT g, 'key ' || (g % 10) FROM generate_series(1, 200000) g; "
		  . "CREATE INDEX dedup10_text ON b.dedup10t (k); DELETE FROM b.dedup10t WHERE id % 2 = 0" ],
	[ 'dedup_multi', 'btree deduplicated on two columns of 10 and 20 keys',
		"CREATE TABLE b.dedupm (k1 int NOT NULL, k2 int NOT NULL); "
		  . "INSERT INTO b.dedupm SELECT g % 10, g % 20 FROM generate_series(1, 100000) g; "
		  . "CREATE INDEX dedup_multi ON b.dedupm (k1, k2)", 1 ],
	[ 'noanalyze', 'table vacuumed, never analyzed',
		"CREATE TABLE b.noanalyze (id int NOT NULL, t text); INSERT INTO b.noanalyze SELECT g, 'row ' || g FROM generate_series(1, 100000) g", 1 ],
	[ 'tiny', 'table of 3 pages, 50 % deleted',
		"CREATE TABLE b.tiny (id int NOT NULL, t text); INSERT INTO b.tiny SELECT g, 'row ' || g FROM generate_series(1, 400) g; "
		  . "DELETE FROM b.tiny WHERE id % 2 = 0", 1 ],
);

for my $c (@cases)
{
	next if $c->[2] eq '';
	# flushed at the end of the session's last statement, before psql returns
	$node->safe_psql('postgres', "$c->[2]; SELECT pg_stat_force_next_flush()");
}
for my $t (qw(del50 del90 upd2 ff70 order448 order844 stat0 stat0fixed toast_clean toast_del50 del75 dedup10 dedup10t dedupm tiny))
{
	$node->safe_psql('postgres', "VACUUM ANALYZE b.$t");
}
$node->safe_psql('postgres', 'VACUUM b.noanalyze');

my $estimates = q{
SELECT name, real_size, bloat_pct, reliable, coalesce(reason, '') FROM (
  SELECT table_name AS name, real_size, bloat_pct, reliable, reason FROM incident_table_bloat WHERE schema_name = 'b'
  UNION ALL
  SELECT index_name, real_size, bloat_pct, reliable, reason FROM incident_index_bloat WHERE schema_name = 'b') x
 ORDER BY name};

# estimates(USER): name => [size, bloat_pct, reliable, reason]
sub estimates
{
	my ($user) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $estimates, extra_params => [ $user ? ('-U', $user) : () ]);
	die "reading the estimates failed: $err" if $ret;
	my %e;
	for (split /\n/, $out)
	{
		my ($name, @v) = split /\|/, $_, -1;
		$e{$name} = \@v;
	}
	return \%e;
}
# sizes(): name => pg_relation_size of every relation of schema b
sub sizes
{
	my %s = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
		q{SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relnamespace = 'b'::regnamespace AND relkind IN ('r', 'i')});
	return \%s;
}
my $before = estimates();
my $size_before = sizes();
is_deeply({ map { $_ => $before->{$_}[0] } keys %$before }, { map { $_ => $size_before->{$_} } keys %$before },
	'after VACUUM, the size of each relation in the views is its pg_relation_size()');
is_deeply(estimates('regress_viewer'), $before, 'incident_viewer sees the same estimates as a superuser');

$node->safe_psql('postgres', 'VACUUM FULL b.' . $_) for qw(del50 del90 upd2 ff70 order448 order844 stat0 stat0fixed toast_clean toast_del50 del75 dedup10 dedup10t dedupm noanalyze tiny);
$node->safe_psql('postgres', 'ANALYZE b.' . $_) for qw(del50 del90 upd2 ff70 order448 order844 stat0 stat0fixed toast_clean toast_del50 del75 dedup10 dedup10t dedupm tiny);
my $after = estimates();
my $size_after = sizes();

my @table = ([ 'case', 'relation', 'size', 'estimate %', 'truth %', 'after VACUUM FULL %', 'flag' ]);
for my $c (@cases)
{
	my ($name, $what, undef, $must_flag) = @$c;
	my ($size, $est, $trust, $reason) = @{ $before->{$name} // [] };
	ok(defined $size, "$name is in a view") or next;
	$size = $size_before->{$name};
	my $truth = $size > 0 ? sprintf('%.1f', 100 * ($size - $size_after->{$name}) / $size) : '0.0';
	my ($est_after, $trust_after) = @{ $after->{$name} }[ 1, 2 ];
	push @table, [ $what, $name, $size, $est eq '' ? '-' : $est, $truth, $est_after eq '' ? '-' : $est_after,
		$trust eq 't' ? 'trusted' : "flagged: $reason" ];
	if ($must_flag)
	{
		is($trust, 'f', "$name: the estimate is flagged ($reason)");
		next;
	}
	is($trust, 't', "$name: the estimate is trusted") or diag("reason: $reason");
	ok(abs($est - $truth) <= 5, "$name: estimate $est % within 5 points of the truth $truth %");
	ok($trust_after eq 't' && abs($est_after) <= 5, "$name: after VACUUM FULL, estimate $est_after % within 5 points of 0");
}
like($before->{stat0}[3], qr/no statistics for t \(/, 'stat0: the reason names the column without statistics');
like($before->{noanalyze}[3], qr/no statistics for t \(/, 'noanalyze: the reason names the column never analyzed');
like($before->{tiny}[3], qr/under 16 pages/, 'tiny: the reason says it is too small');
like($before->{dedup_multi}[3], qr/deduplicated index on several columns/, 'dedup_multi: the reason says why');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(table_name || ':' || row_bytes, ' ' ORDER BY table_name) FROM incident_table_bloat WHERE table_name LIKE 'order%'}),
	'order448:52.0 order844:44.0', 'alignment: int4, int8, int4 rows take 52 bytes, int8, int4, int4 rows 44');

# the accuracy table, for docs/diagnostics.md
my @w = map { my $i = $_; (sort { $b <=> $a } map { length $_->[$i] } @table)[0] } 0 .. $#{ $table[0] };
my $text = '';
for my $r (@table)
{
	$text .= '| ' . join(' | ', map { sprintf('%-*s', $w[$_], $r->[$_]) } 0 .. $#$r) . " |\n";
}
diag("accuracy (estimate before VACUUM FULL, truth = share of the size VACUUM FULL gave back):\n$text");

# ---- incident_bloat_verify() ----

my ($ret, $out, $err) = $node->psql('postgres', q{\set VERBOSITY verbose
SELECT * FROM incident_bloat_verify('b.del50')});
like($err, qr/ERROR:  55000: the extension pgstattuple is not installed in this database.*HINT:  Install it with CREATE EXTENSION pgstattuple/s,
	'without pgstattuple: an error with SQLSTATE 55000 and the hint to install it');

# bloat a table again, to measure it
$node->safe_psql('postgres', 'DELETE FROM b.del50 WHERE id % 4 = 1; SELECT pg_stat_force_next_flush()');
$node->safe_psql('postgres', 'VACUUM ANALYZE b.del50; CREATE SCHEMA ext; CREATE EXTENSION pgstattuple SCHEMA ext');
my $del50_size = $node->safe_psql('postgres', q{SELECT pg_relation_size('b.del50')});
my $v = $node->safe_psql('postgres',
	q{SELECT kind, measured_bloat_pct, estimated_bloat_pct, reliable, measured_with FROM incident_bloat_verify('b.del50') ORDER BY kind});
my ($table_row, $toast_row) = split /\n/, $v;
my ($kind, $measured, $estimated, $trust, $with) = split /\|/, $table_row;
$node->safe_psql('postgres', 'VACUUM FULL b.del50');
my $truth = 100 * ($del50_size - $node->safe_psql('postgres', q{SELECT pg_relation_size('b.del50')})) / $del50_size;
is("$kind $trust", 'table t', 'verify: a row for the table, with its trusted estimate');
like($with, qr/^pgstattuple_approx/, 'measured with pgstattuple_approx (found in schema ext)');
ok(abs($measured - $truth) <= 5 && abs($estimated - $truth) <= 5,
	sprintf('verify: measured %s %% and estimated %s %% within 5 points of the truth %.1f %%', $measured, $estimated, $truth));
like($toast_row, qr/^toast\|/, 'and a row for its TOAST table');

$v = $node->safe_psql('postgres', q{SELECT kind, measured_bloat_pct, estimated_bloat_pct, measured_with FROM incident_bloat_verify('b.del75_id')});
is($v, 'index|0.0|0.0|pgstatindex', 'verify of a rebuilt index: 0 measured with pgstatindex, 0 estimated');

($ret, $out, $err) = $node->psql('postgres', q{\set VERBOSITY verbose
CREATE VIEW b.v AS SELECT 1; SELECT * FROM incident_bloat_verify('b.v')});
like($err, qr/ERROR:  42809: cannot verify "b.v": it is not a table, a materialized view or a btree index\nDETAIL:  "b.v" is a view\.\nHINT:  Pass a table/,
	'a view: an error 42809 naming it, what it is, and a hint');
($ret, $out, $err) = $node->psql('postgres', q{\set VERBOSITY verbose
SELECT * FROM incident_bloat_verify(4242424242)});
like($err, qr/ERROR:  42P01: relation with OID 4242424242 does not exist\n.*HINT:  Pass a table or a btree index by name/s,
	'no such relation: an error 42P01 naming the OID');
($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM incident_bloat_verify('b.nosuch')});
like($err, qr/relation "b.nosuch" does not exist/, 'a name that does not exist: the regclass error naming it');

($ret, $out, $err) = $node->psql('postgres', q{SELECT count(*) FROM incident_bloat_verify('b.del75')}, extra_params => [ '-U', 'regress_viewer' ]);
like($err, qr/permission denied for function incident_bloat_verify/, 'incident_viewer may not call it');
($ret, $out, $err) = $node->psql('postgres', q{SELECT count(*) FROM incident_bloat_verify('b.del75')}, extra_params => [ '-U', 'regress_admin' ]);
is("$ret $out", '0 1', 'incident_admin may, without pg_stat_scan_tables');

# a session holding an exclusive lock: verify gives up after lock_timeout (3 s)
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE b.del75 IN ACCESS EXCLUSIVE MODE');
my $start = time;
($ret, $out, $err) = $node->psql('postgres', q{\set VERBOSITY verbose
SELECT * FROM incident_bloat_verify('b.del75')});
my $waited = time - $start;
like($err, qr/ERROR:  55P03: could not lock "b.del75" to measure it within 3s/, 'behind an exclusive lock: an error 55P03');
ok($waited >= 2.9 && $waited < 20, sprintf('after about 3 s (%.1f s)', $waited));
$holder->query_safe('ROLLBACK');
$holder->quit;

# a wide, sparse table (40 all-NULL columns) does not break the view for
# everyone, and the helpers refuse what no catalog holds instead of looping
$node->safe_psql('postgres', q{
SELECT format('CREATE TABLE b.nulls40 (id int, %s)', string_agg('c' || g || ' int', ', ')) FROM generate_series(1, 40) g \gexec
INSERT INTO b.nulls40 (id) SELECT generate_series(1, 100);
ANALYZE b.nulls40;});
is($node->safe_psql('postgres', q{SELECT count(*) FROM incident_table_bloat WHERE table_name = 'nulls40'}),
	'1', 'a table of 40 all-NULL columns is estimated');
($ret, $out, $err) = $node->psql('postgres', q{SET statement_timeout = '5s'; SELECT incident__btree_pages('Infinity', 1, 16, 90, false)});
like($err, qr/invalid btree estimate input: rows/, 'incident__btree_pages refuses infinite rows at once');
($ret, $out, $err) = $node->psql('postgres', q{SELECT incident__row_width(-1::smallint, 'i', -1000003, 0)});
like($err, qr/invalid column for a row width/, 'incident__row_width refuses a negative width');

$node->stop;
done_testing();
