# test/t/004_notify.pl: every timeline event is announced on the pg_incident
# channel.
#
# A session LISTENs on pg_incident while other sessions declare and
# acknowledge incidents. Each committed event arrives once, in commit order,
# as a JSON payload with the event's id, the incident's id and code and the
# event kind, and nothing else: any login may LISTEN, so the payload names
# no person and holds no text a user typed. A rolled-back declaration
# announces nothing.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('notify');
$node->init;
$node->start;

my $owner = $node->safe_psql('postgres', 'SELECT current_user');
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_incident;
CREATE ROLE regress_alice LOGIN IN ROLE incident_responder;
});

my $listener = $node->background_psql('postgres');
$listener->set_query_timer_restart();
$listener->query_safe('LISTEN pg_incident');

# Poll the listener until it has printed at least $want notifications (or the
# test's timeout passes); returns the decoded payloads of all it printed.
sub notifications
{
	my ($want) = @_;
	my @payloads;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (1)
	{
		my $out = $listener->query_safe('SELECT 1');
		while ($out =~ /Asynchronous notification "pg_incident" with payload "(.*)" received from server process/g)
		{
			push @payloads, decode_json($1);
		}
		last if @payloads >= $want || time() > $deadline;
		usleep(100_000);
	}
	return @payloads;
}

my $clock = q{
SET pg_incident.clock = '2026-01-15 14:30:00+00';
SET pg_incident.timezone = 'UTC';
SET TimeZone = 'UTC';
};

# ---- a declaration in another session ----
my $code = $node->safe_psql('postgres', $clock . q{SELECT incident_declare('P1', 'database unavailable');});
is($code, 'INC-2026-0115-001', 'declared');
my $event_id = $node->safe_psql('postgres', 'SELECT max(id) FROM incident_event');

my @n = notifications(1);
is(scalar @n, 1, 'the listener gets one notification for a declaration');
is_deeply([ sort keys %{ $n[0] } ], [qw(code event event_id incident_id)],
	'payload: only the event id, incident id, code and event kind');
is($n[0]{code}, $code, 'payload: code is the code incident_declare returned');
is($n[0]{event}, 'declared', 'payload: event');
is($n[0]{event_id}, $event_id, 'payload: event_id is the timeline event\'s id');
is($n[0]{incident_id}, $node->safe_psql('postgres', "SELECT id FROM incident WHERE code = '$code'"),
	'payload: incident_id is the incident\'s id');
unlike(encode_json($n[0]), qr/\Q$owner\E|database unavailable/, 'payload: neither who declared nor the title');

# ---- a rolled-back declaration announces nothing ----
$node->safe_psql(
	'postgres', $clock . q{
BEGIN;
SELECT incident_declare('P2', 'rolled back');
ROLLBACK;
SELECT incident_declare('P3', 'marker after the rollback');
});
# Notifications arrive in commit order: one from the rolled-back transaction
# would come before the marker's.
@n = notifications(1);
is_deeply([ map { "$_->{code} $_->{event}" } @n ],
	['INC-2026-0115-002 declared'],
	'only the committed declaration is announced');

# ---- several events in one transaction arrive at commit, in order ----
$node->safe_psql(
	'postgres', $clock . q{
BEGIN;
SELECT incident_declare('P2', 'checkout errors');
SELECT incident_acknowledge('INC-2026-0115-003', 'bob');
SELECT incident_update('INC-2026-0115-003', 'investigating', 'looking');
COMMIT;
});
@n = notifications(3);
is_deeply([ map { "$_->{code} $_->{event}" } @n ],
	[
		'INC-2026-0115-003 declared',
		'INC-2026-0115-003 acknowledged',
		'INC-2026-0115-003 status_update'
	],
	'a transaction\'s events arrive together, in order');
ok($n[0]{event_id} < $n[1]{event_id} && $n[1]{event_id} < $n[2]{event_id},
	'their event ids increase');

# ---- a responder's acknowledgement ----
my ($stdout, $stderr);
$node->psql(
	'postgres', q{SELECT incident_acknowledge('INC-2026-0115-001')},
	stdout => \$stdout,
	stderr => \$stderr,
	extra_params => [ '-U', 'regress_alice' ]);
is($stdout, 'acknowledged', 'regress_alice acknowledges') or diag($stderr);
@n = notifications(1);
is_deeply([ map { "$_->{code} $_->{event}" } @n ],
	['INC-2026-0115-001 acknowledged'],
	'the acknowledgement is announced');
# the rest is read through the views, as the listener's role allows
is($node->safe_psql('postgres', "SELECT actor || ' ' || recorded_by FROM incident_timeline WHERE event_id = $n[0]{event_id}"),
	'regress_alice regress_alice', 'the timeline names who acknowledged');

$listener->quit;

# ---- the declaring session itself listens: psql prints it after the call ----
$node->psql(
	'postgres', $clock . q{
LISTEN pg_incident;
SELECT incident_declare('low', 'typo on the pricing page');
},
	stdout => \$stdout,
	stderr => \$stderr);
my @lines = split /\n/, $stdout;
is($lines[0], 'INC-2026-0115-004', 'the listening session declares');
like($lines[1] // '', qr/^Asynchronous notification "pg_incident" with payload "\{.*\}" received/,
	'psql prints the notification right after the call');
my ($payload) = ($lines[1] // '') =~ /with payload "(.*)" received/;
my $own = decode_json($payload // '{}');
is("$own->{code} $own->{event}", 'INC-2026-0115-004 declared',
	'and it carries the code and event of the new incident');

$node->stop;
done_testing();
