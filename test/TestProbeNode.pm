# test/TestProbeNode.pm: a preloaded cluster whose worker probes, for the
# probe TAP tests, started by start_probe_node.
#
# Copyright (c) 2026, pg_incident authors

package TestProbeNode;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT_OK = qw(start_probe_node);

# start_probe_node(name): a new cluster with the worker preloaded, working
# in the database postgres (naptime 200 ms; passing checks of a steady probe
# counted in memory and written after 500 ms), pg_incident created there
# and the worker idle; dies if it does not come to work.
sub start_probe_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init;
	$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_incident'
pg_incident.database = 'postgres'
pg_incident.naptime = '200ms'
pg_incident.probe_flush_interval = '500ms'
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_incident');
	$node->poll_query_until('postgres',
		q{SELECT state = 'idle' FROM incident_worker_status WHERE process = 'worker'})
	  or die 'the worker does not work';
	return $node;
}

1;
