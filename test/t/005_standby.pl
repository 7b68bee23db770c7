# A hot standby: dashboards read there, lifecycle calls are refused clearly,
# and after promotion the incidents are all there and numbering goes on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_incident'");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION pg_incident');
$primary->safe_psql('postgres', q{
	SET pg_incident.timezone = 'UTC';
	SET pg_incident.clock = '2026-01-15 14:30:00+00';
	SELECT incident_declare('P1', 'Database unavailable');
	SELECT incident_declare('P3', 'Minor functionality issues');
	SELECT incident_acknowledge('INC-2026-0115-002', 'jane');
});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', q{SELECT string_agg(code || ' ' || status, ', ' ORDER BY code) FROM incident_dashboard}),
	'INC-2026-0115-001 declared, INC-2026-0115-002 acknowledged',
	'the dashboard reads on the standby');
# (the primary's worker may have added reminders: on its real clock, the
# test clock's incidents are long overdue)
is($standby->safe_psql('postgres', q{SELECT count(*) FROM incident_timeline WHERE code = 'INC-2026-0115-002' AND kind <> 'reminder'}),
	'2', 'the timeline reads on the standby');

my ($ret, $out, $err) = $standby->psql('postgres', q{SELECT incident_acknowledge('INC-2026-0115-001')},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'acknowledging on the standby fails');
like($err, qr/25006: cannot change incident "INC-2026-0115-001" on a standby server/,
	'with a clear read-only error');

($ret, $out, $err) = $standby->psql('postgres', q{SELECT incident_declare('P1', 'Primary lost')},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'declaring on the standby fails');
like($err, qr/25006: cannot declare an incident on a standby server/, 'with a clear read-only error');

# failover: the promoted standby has everything and numbers on
$primary->stop;
$standby->promote;
is($standby->safe_psql('postgres', q{
	SET pg_incident.timezone = 'UTC';
	SET pg_incident.clock = '2026-01-15 15:00:00+00';
	SELECT incident_declare('P2', 'Replication lag after failover')}),
	'INC-2026-0115-003', 'after promotion the day numbering continues');
is($standby->safe_psql('postgres', q{SELECT incident_acknowledge('INC-2026-0115-001', 'john')}),
	'acknowledged', 'lifecycle calls work after promotion');

$standby->stop;
done_testing();
