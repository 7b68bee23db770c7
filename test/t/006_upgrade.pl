# test/t/006_upgrade.pl: a fresh install equals an installation upgraded step
# by step from the first release, member by member.
#
# Database "fresh" gets CREATE EXTENSION pg_incident (the current version,
# built from the feature sources); database "upgraded" gets version 0.1.0 and
# then ALTER EXTENSION pg_incident UPDATE TO each later version in turn. Both
# are then described by the same catalog query, one line per fact: every
# member of the extension with its definition (tables with their columns,
# defaults, constraints, indexes, triggers and row security; views;
# functions and aggregates; sequences; types), every comment and every grant, the tables
# pg_dump keeps with their conditions, and the rows the scripts seed. The
# two descriptions must be identical. (pg_dump alone cannot show this: it
# prints only CREATE EXTENSION for the members.)
#
# The scripts of released versions are frozen: extension/frozen.sha256 names
# each one with its SHA-256, and this test fails if one was edited.

use strict;
use warnings;

use Digest::SHA;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $tree = dirname(__FILE__) . '/../..';

# ---- the released scripts are unchanged ----

open(my $frozen, '<', "$tree/extension/frozen.sha256") or die "extension/frozen.sha256: $!";
my @released;
while (my $line = <$frozen>)
{
	next if $line =~ /^\s*(#|$)/;
	my ($sum, $file) = $line =~ /^([0-9a-f]{64})\s+(\S+)$/
	  or die "extension/frozen.sha256: cannot read line \"$line\"";
	push @released, $file;
	my $sha = Digest::SHA->new(256);
	$sha->addfile("$tree/$file");
	is($sha->hexdigest, $sum, "$file is as released");
}
ok(scalar(grep { m{/pg_incident--0\.1\.0\.sql$} } @released), 'the first install script is frozen');

# the upgrade path: 0.1.0, then every version an upgrade script leads to
my %next;
for my $script (glob("$tree/extension/pg_incident--*--*.sql"))
{
	my ($from, $to) = $script =~ /pg_incident--([0-9.]+)--([0-9.]+)\.sql$/ or next;
	$next{$from} = $to;
}
my @path = ('0.1.0');
push @path, $next{ $path[-1] } while exists $next{ $path[-1] };

my $makefile = do { local $/; open(my $mk, '<', "$tree/Makefile") or die $!; <$mk> };
my ($current) = $makefile =~ /^EXTVERSION\s*=\s*(\S+)/m;
is($path[-1], $current, "the upgrade scripts lead from 0.1.0 to $current (@path)");

# ---- two databases, two ways ----

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('fresh', 'CREATE EXTENSION pg_incident');
$node->safe_psql('upgraded', "CREATE EXTENSION pg_incident VERSION '0.1.0'");
for my $version (@path[ 1 .. $#path ])
{
	$node->safe_psql('upgraded', "ALTER EXTENSION pg_incident UPDATE TO '$version'");
}
is($node->safe_psql('upgraded', "SELECT extversion FROM pg_extension WHERE extname = 'pg_incident'"),
	$current, "upgraded step by step to $current");

# One line per fact, each naming its object by name (never by OID). ACLs are
# compared as sets of (grantee, privilege, grantable), which is what they
# mean; extconfig as a set of (table, condition).
my $describe = q{
WITH ext AS (SELECT oid, extconfig, extcondition FROM pg_extension WHERE extname = 'pg_incident'),
members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
acl(oid, kind, text) AS (
    SELECT c.oid, 'class', string_agg(format('%s:%s%s', coalesce(g.rolname, 'PUBLIC'), a.privilege_type,
                                             CASE WHEN a.is_grantable THEN '*' ELSE '' END), ',' ORDER BY 1)
      FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles g ON g.oid = a.grantee
     GROUP BY c.oid
    UNION ALL
    SELECT p.oid, 'proc', string_agg(format('%s:%s%s', coalesce(g.rolname, 'PUBLIC'), a.privilege_type,
                                            CASE WHEN a.is_grantable THEN '*' ELSE '' END), ',' ORDER BY 1)
      FROM pg_proc p CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
      LEFT JOIN pg_roles g ON g.oid = a.grantee
     GROUP BY p.oid
),
facts(line) AS (
    -- every member, by its identity
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) FROM members m
    UNION ALL
    -- comments on members and their columns
    SELECT format('comment %s = %s', pg_describe_object(m.classid, m.objid, c.objsubid), c.description)
      FROM members m JOIN pg_description c ON c.classoid = m.classid AND c.objoid = m.objid
    UNION ALL
    -- relations: kind, persistence, options, row security, grants
    SELECT format('relation %s kind=%s persistence=%s options=%s rls=%s/%s acl=%s', c.oid::regclass,
                  c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
                  (SELECT a.text FROM acl a WHERE a.oid = c.oid AND a.kind = 'class'))
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION ALL
    -- columns in order (dropped ones left out), with type, default, nullability, collation, grants
    SELECT format('column %s.%s #%s %s notnull=%s default=%s identity=%s generated=%s collation=%s acl=%s',
                  c.oid::regclass, a.attname,
                  row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
                  CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END, a.attacl)
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    SELECT format('constraint %s.%s %s deferrable=%s/%s comment=%s', c.oid::regclass, k.conname,
                  pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred, obj_description(k.oid, 'pg_constraint'))
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_constraint k ON k.conrelid = c.oid
    UNION ALL
    SELECT format('index %s comment=%s', pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class'))
      FROM members m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
    UNION ALL
    SELECT format('trigger %s enabled=%s comment=%s', pg_get_triggerdef(t.oid), t.tgenabled,
                  obj_description(t.oid, 'pg_trigger'))
      FROM members m JOIN pg_trigger t ON m.classid = 'pg_class'::regclass AND t.tgrelid = m.objid
     WHERE NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s.%s %s %s roles=%s using=%s check=%s', p.polrelid::regclass, p.polname,
                  p.polcmd, p.polpermissive, p.polroles::regrole[], pg_get_expr(p.polqual, p.polrelid),
                  pg_get_expr(p.polwithcheck, p.polrelid))
      FROM members m JOIN pg_policy p ON m.classid = 'pg_class'::regclass AND p.polrelid = m.objid
    UNION ALL
    -- definitions of views and functions line by line, each line naming its object
    SELECT format('view %s line %s: %s', c.oid::regclass, lpad(l.n::text, 4, '0'), l.text)
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
     CROSS JOIN LATERAL regexp_split_to_table(pg_get_viewdef(c.oid), E'\n') WITH ORDINALITY AS l(text, n)
     WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('sequence %s type=%s start=%s inc=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
                  s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                  s.seqcache, s.seqcycle,
                  (SELECT pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')))
      FROM members m JOIN pg_sequence s ON m.classid = 'pg_class'::regclass AND s.seqrelid = m.objid
    UNION ALL
    SELECT format('function %s acl=%s', p.oid::regprocedure,
                  (SELECT a.text FROM acl a WHERE a.oid = p.oid AND a.kind = 'proc'))
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    UNION ALL
    SELECT format('function %s line %s: %s', p.oid::regprocedure, lpad(l.n::text, 4, '0'), l.text)
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
     CROSS JOIN LATERAL regexp_split_to_table(pg_get_functiondef(p.oid), E'\n') WITH ORDINALITY AS l(text, n)
     WHERE p.prokind <> 'a'
    UNION ALL
    -- aggregates, which pg_get_functiondef() does not show
    SELECT format('aggregate %s sfunc=%s stype=%s finalfunc=%s combinefunc=%s initcond=%s kind=%s',
                  a.aggfnoid::regprocedure, a.aggtransfn::regprocedure, a.aggtranstype::regtype,
                  a.aggfinalfn, a.aggcombinefn, a.agginitval, a.aggkind)
      FROM members m JOIN pg_aggregate a ON m.classid = 'pg_proc'::regclass AND a.aggfnoid = m.objid
    UNION ALL
    SELECT format('type %s type=%s', t.oid::regtype, t.typtype)
      FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    UNION ALL
    -- what pg_dump keeps
    SELECT format('config_dump %s %s', c.relid::regclass, coalesce(c.cond, ''))
      FROM ext, unnest(ext.extconfig, ext.extcondition) AS c(relid, cond)
    UNION ALL
    -- the rights on the schema the extension lives in
    SELECT format('schema %s acl=%s', n.nspname, n.nspacl)
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_incident'
)
SELECT line FROM facts ORDER BY line COLLATE "C";
};

# The rows the scripts seed, table by table; times of the install itself
# (timestamptz columns) are left out, since they differ between the two runs.
my $tables = $node->safe_psql(
	'fresh', q{
SELECT c.oid::regclass || ' ' || coalesce(string_agg(quote_literal(a.attname), ', '), '')
  FROM pg_depend d
  JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass AND c.relkind = 'r'
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                          AND a.atttypid = 'timestamptz'::regtype
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_incident')
 GROUP BY c.oid ORDER BY 1});
my @rows;
for my $t (split /\n/, $tables)
{
	my ($table, $times) = split / /, $t, 2;
	my $minus = $times eq '' ? '' : " - ARRAY[$times]";
	push @rows, "SELECT '$table row ' || (to_jsonb(t)$minus)::text FROM $table t";
}
my $seeded = "SELECT line FROM (\n" . join("\nUNION ALL\n", @rows) . "\n) AS s(line) ORDER BY line COLLATE \"C\"";

for my $what ([ 'definitions, comments and grants', $describe ], [ 'seeded rows', $seeded ])
{
	my ($name, $query) = @$what;
	my @fresh = split /\n/, $node->safe_psql('fresh', $query);
	my @upgraded = split /\n/, $node->safe_psql('upgraded', $query);
	my %in_fresh = map { $_ => 1 } @fresh;
	my %in_upgraded = map { $_ => 1 } @upgraded;
	my @only_fresh = grep { !$in_upgraded{$_} } @fresh;
	my @only_upgraded = grep { !$in_fresh{$_} } @upgraded;
	ok(scalar(@fresh) > 100 || $name eq 'seeded rows', "$name: the description is not empty");
	ok(!@only_fresh && !@only_upgraded && scalar(@fresh) == scalar(@upgraded),
		"$name: fresh $current equals 0.1.0 upgraded to $current (" . scalar(@fresh) . ' lines)')
	  or diag(join("\n", (map { "only in fresh:    $_" } @only_fresh),
			(map { "only in upgraded: $_" } @only_upgraded)));
}

# the description sees what it claims to: a change in one database shows
$node->safe_psql('upgraded', 'COMMENT ON TABLE incident IS NULL');
my @fresh = split /\n/, $node->safe_psql('fresh', $describe);
my @upgraded = split /\n/, $node->safe_psql('upgraded', $describe);
isnt(join("\n", @fresh), join("\n", @upgraded), 'a changed comment makes the descriptions differ');

$node->stop;
done_testing();
