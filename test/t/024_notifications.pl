# test/t/024_notifications.pl: the worker delivers the outbox to webhook
# receivers (test/http_server.pl's /hook) and loses nothing.
#
# A preloaded cluster whose worker works in the database postgres:
#  - a declaration reaches a json channel (signed: the receiver's HMAC check
#    passes, a wrong secret fails) and a slack channel (escaped, the siren for
#    P1) at once, with the event id as Idempotency-Key;
#  - a rolled-back declaration sends nothing; routing by min_severity;
#  - the receiver answering 500 for a while, then 200: every event delivered,
#    in order for the incident, duplicates only with the same key;
#  - 429 with Retry-After is honoured;
#  - a hanging receiver delays no other channel;
#  - a delivery failing past pg_incident.notification_dead_after is dead,
#    shows in incident_notification_dead, and incident_notification_retry
#    queues it again;
#  - SIGKILL of the worker and an immediate restart while deliveries are
#    pending lose nothing;
#  - viewers read neither a channel's url nor its secret.
# Every wait polls with a deadline.
#
# Copyright (c) 2026, pg_incident authors

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/..";
use Digest::SHA qw(hmac_sha256_hex);
use IO::Socket::INET;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use TestHttpServer qw(start_http_server);
use TestProbeNode qw(start_probe_node);

my ($port) = start_http_server();
my $base = "http://127.0.0.1:$port";
my $secret = 'a-secret-of-thirty-two-characters';

# get(path): the test server's answer to GET path
sub get
{
	my ($path) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5)
	  or die "connect: $!";
	print $s "GET $path HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
	local $/;
	my $r = <$s>;
	close $s;
	$r =~ s/^.*?\r\n\r\n//s;
	return $r;
}

# hooks(name): what /hook?name=S received, oldest first
sub hooks { return JSON::PP->new->utf8->decode(get("/hooks?name=$_[0]")) }

# wait_for(code): polls code until it returns true, for up to 60 s
sub wait_for
{
	my ($code) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		return 1 if $code->();
		sleep(0.05);
	}
	return 0;
}

my $node = start_probe_node('notify');
# a SIGKILLed worker makes the postmaster restart the cluster, as in production
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->reload;
# escalation fires on its own here too; the sections before it count posts
$node->safe_psql('postgres', q{UPDATE incident_severity SET escalation_policy = NULL});
$node->safe_psql('postgres', qq{
SELECT incident_channel_webhook('ops', '$base/hook?name=ops', secret => '$secret');
SELECT incident_channel_webhook('chat', '$base/hook?name=chat', format => 'slack', min_severity => 'P2',
                                link_template => 'https://status.example/incidents/{code}');
});

# ---- a declaration reaches both channels at once ----
my $code = $node->safe_psql('postgres', q{SELECT incident_declare('P1', 'Checkout <!channel> down & out')});
ok(wait_for(sub { @{ hooks('ops') } == 1 && @{ hooks('chat') } == 1 }), 'the declaration reaches both channels');
my ($got) = @{ hooks('ops') };
my $env = JSON::PP->new->decode($got->{body});
is($env->{version}, 1, 'the json envelope has a version');
is($env->{event}, 'declared', 'and the event kind');
is($env->{incident}{code}, $code, 'and the incident code');
is($env->{incident}{severity}, 'P1', 'and its severity');
is($env->{incident}{title}, 'Checkout <!channel> down & out', 'the title is kept as typed in json');
is($got->{headers}{'idempotency-key'}, $env->{event_id}, 'the event id is the idempotency key');
is($got->{headers}{'content-type'}, 'application/json', 'posted as application/json');

# the receiver's check of the signature
my ($t, $v1) = ($got->{headers}{'x-incident-signature'} // '') =~ /^t=(\d+),v1=([0-9a-f]{64})$/;
my $raw = $got->{body};
utf8::encode($raw);    # the bytes that were signed
ok(defined $t && abs(time() - $t) < 120, 'the signature carries a recent timestamp');
is($v1, hmac_sha256_hex("$t.$raw", $secret), 'the receiver verifies the HMAC with the secret');

my ($slack) = @{ hooks('chat') };
my $text = JSON::PP->new->decode($slack->{body})->{text};
like($text, qr/^\x{1F6A8} INCIDENT DECLARED/, 'the slack text opens with the siren for P1');
like($text, qr/Incident ID: \Q$code\E \(P1\)/, 'and names the incident');
like($text, qr/Checkout &lt;!channel&gt; down &amp; out/, 'what was typed is escaped for Slack');
unlike($text, qr/<!channel>/, 'no mention comes from a title');
like($text, qr{<https://status\.example/incidents/\Q$code\E\|\Q$code\E>}, 'the link follows the template');
ok(!defined $slack->{headers}{'x-incident-signature'}, 'a channel without a secret sends no signature');
is( $node->safe_psql('postgres', q{SELECT string_agg(state, ',') FROM incident_notifications}),
	'delivered,delivered', 'both deliveries are recorded delivered');

# ---- a rolled-back declaration sends nothing; routing by severity ----
$node->safe_psql('postgres', q{BEGIN; SELECT incident_declare('P1', 'never happened'); ROLLBACK;});
my $p4 = $node->safe_psql('postgres', q{SELECT incident_declare('P4', 'typo on the about page')});
ok(wait_for(sub { @{ hooks('ops') } == 2 }), 'the next declaration arrives');
is(JSON::PP->new->decode(hooks('ops')->[1]{body})->{incident}{code}, $p4,
	'and it is the committed one, not the rolled-back one');
is(scalar @{ hooks('chat') }, 1, 'a P4 does not reach a channel of min_severity P2');

# ---- the receiver down for a while, then up: nothing lost, in order ----
get('/set?name=ops&code=500');
my $p2 = $node->safe_psql('postgres', q{SELECT incident_declare('P2', 'search is slow')});
$node->safe_psql('postgres', qq{SELECT incident_acknowledge('$p2', 'Jane')});
$node->safe_psql('postgres', qq{SELECT incident_update('$p2', 'investigating', 'looking at the index')});
ok( $node->poll_query_until('postgres',
		qq{SELECT attempts >= 2 AND state = 'pending' AND last_status = 500 FROM incident_notifications
            WHERE channel = 'ops' AND incident = '$p2' AND event_kind = 'declared'}),
	'a failing delivery is retried and stays pending');
is( $node->safe_psql('postgres',
		qq{SELECT count(*) FROM incident_notifications WHERE channel = 'ops' AND incident = '$p2' AND attempts > 0 AND event_kind <> 'declared'}),
	'0', 'the later events of the incident wait for the first');
like( $node->safe_psql('postgres',
		qq{SELECT last_error FROM incident_notifications WHERE channel = 'ops' AND incident = '$p2' AND event_kind = 'declared'}),
	qr/^HTTP 500/, 'the last error says what the receiver answered');
get('/set?name=ops&code=200');
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 3 FROM incident_notifications WHERE channel = 'ops' AND incident = '$p2' AND state = 'delivered'}),
	'once the receiver is up, every event is delivered');
my @ok = grep { $_->{status} == 200 } @{ hooks('ops') };
my @kinds = map { JSON::PP->new->decode($_->{body})->{event} }
  grep { JSON::PP->new->decode($_->{body})->{incident}{code} eq $p2 } @ok;
is(join(',', @kinds), 'declared,acknowledged,status_update', 'in the order they happened');
my %keys;
$keys{ $_->{headers}{'idempotency-key'} }{ $_->{body} }++ for @{ hooks('ops') };
ok(!grep({ keys %{ $keys{$_} } != 1 } keys %keys), 'a repeated delivery repeats its key with the same body');

# ---- 429 with Retry-After ----
get('/set?name=ops&code=429&retry_after=3');
my $p3 = $node->safe_psql('postgres', q{SELECT incident_declare('P3', 'exports are late')});
ok( $node->poll_query_until('postgres',
		qq{SELECT last_status = 429 FROM incident_notifications WHERE channel = 'ops' AND incident = '$p3'}),
	'a 429 is recorded');
ok( $node->safe_psql('postgres',
		qq{SELECT next_attempt_at - last_attempt_at >= interval '2.9 seconds' FROM incident_notifications
            WHERE channel = 'ops' AND incident = '$p3'}) eq 't',
	'the next attempt waits for Retry-After');
get('/set?name=ops&code=200');
ok( $node->poll_query_until('postgres',
		qq{SELECT state = 'delivered' FROM incident_notifications WHERE channel = 'ops' AND incident = '$p3'}),
	'and then it is delivered');
# each attempt signed at its own time, so a receiver's replay window holds for a retry too
my @attempts = grep { JSON::PP->new->decode($_->{body})->{incident}{code} eq $p3 } @{ hooks('ops') };
my @signed = map {
	my ($at, $mac) = ($_->{headers}{'x-incident-signature'} // '') =~ /^t=(\d+),v1=([0-9a-f]{64})$/;
	my $bytes = $_->{body};
	utf8::encode($bytes);
	[ $at, defined $mac && $mac eq hmac_sha256_hex("$at.$bytes", $secret) ]
} @attempts;
ok(@signed >= 2 && !grep({ !$_->[1] } @signed), 'every attempt carries a signature that verifies');
ok(@signed >= 2 && $signed[-1][0] >= $signed[0][0] + 2, 'the retry is signed at its own time, after Retry-After');

# ---- a hanging receiver delays no other channel ----
# With 16 requests in all, a channel has 2 in flight at most (an eighth):
# five incidents at once hang two requests on the slow receiver, and the
# rest go on.
$node->append_conf('postgresql.conf', "pg_incident.max_concurrent_requests = 16\n");
$node->restart;
get('/set?name=slow&code=0');
$node->safe_psql('postgres', qq{SELECT incident_channel_webhook('slow', '$base/hook?name=slow', timeout => '5 seconds')});
my $before = @{ hooks('ops') };
my @hung = map { $node->safe_psql('postgres', qq{SELECT incident_declare('P1', 'payments fail in region $_')}) } 1 .. 5;
my $p1b = $hung[0];
ok(wait_for(sub { @{ hooks('slow') } >= 1 && @{ hooks('ops') } >= $before + 5 }),
	'both receivers got posts');
is( $node->safe_psql('postgres',
		qq{SELECT count(*) FILTER (WHERE channel = 'ops' AND state = 'delivered') || ':'
                  || count(*) FILTER (WHERE channel = 'slow' AND in_flight)
             FROM incident_notifications WHERE event_kind = 'declared' AND incident IN ('@{[ join "','", @hung ]}')}),
	'5:2', 'the ops channel is delivered while the slow one hangs with two requests, its share');
ok( $node->poll_query_until('postgres',
		qq{SELECT last_error LIKE 'timeout%' FROM incident_notifications WHERE incident = '$p1b' AND channel = 'slow'}),
	'the hanging delivery times out and is retried');
$node->safe_psql('postgres', q{SELECT incident_channel_drop('slow')});

# ---- dead letters, and retry ----
$node->append_conf('postgresql.conf', qq{
pg_incident.notification_dead_after = '2s'
pg_incident.notification_retry_max = '1s'
});
$node->reload;
$node->safe_psql('postgres', q{SELECT incident_channel_webhook('gone', 'http://127.0.0.1:1/hook', min_severity => 'P1')});
my $p1c = $node->safe_psql('postgres', q{SELECT incident_declare('P1', 'login broken')});
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM incident_notification_dead WHERE channel = 'gone' AND incident = '$p1c'}),
	'a delivery that keeps failing is dead');
like( $node->safe_psql('postgres', q{SELECT last_error FROM incident_notification_dead WHERE channel = 'gone'}),
	qr/^connect: /, 'with its last error');
my $dead = $node->safe_psql('postgres', q{SELECT id FROM incident_notification_dead WHERE channel = 'gone'});
$node->safe_psql('postgres', q{SELECT incident_channel_webhook('gone', '} . "$base/hook?name=gone" . q{', min_severity => 'P1')});
is($node->safe_psql('postgres', "SELECT incident_notification_retry($dead)"), 'pending', 'retry queues it again');
ok(wait_for(sub { @{ hooks('gone') } == 1 }), 'and, the channel fixed, it arrives');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT incident_notification_retry($dead)");
like($err, qr/notification $dead was delivered already/, 'a delivered notification is not retried');
$node->append_conf('postgresql.conf', q{
pg_incident.notification_dead_after = '1d'
pg_incident.notification_retry_max = '2s'
});
$node->reload;

# ---- escalation levels fire on time, once each; acknowledging stops them ----
$node->safe_psql('postgres', q{
INSERT INTO incident_responder (name, email, chat) VALUES ('Omar', 'omar@example.com', '@omar');
INSERT INTO incident_escalation_policy (name, description) VALUES ('fast', 'three levels, two seconds apart');
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('fast', 1, '0 s', 'responder', 'Omar'), ('fast', 2, '2 s', 'responder', 'Omar'),
       ('fast', 3, '4 s', 'responder', 'Omar');
UPDATE incident_severity SET escalation_policy = 'fast' WHERE severity = 'P1';
});
my $esc = $node->safe_psql('postgres', q{SELECT incident_declare('P1', 'the database is down')});
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 3 FROM incident_timeline WHERE code = '$esc' AND kind = 'escalated'}),
	'an unacknowledged P1 escalates through the three levels');
# lateness of each level against its due time; one tick is pg_incident.naptime (200 ms)
my $late = $node->safe_psql('postgres', qq{
SELECT string_agg(round(extract(epoch FROM e.at - i.declared_at - l.delay)::numeric, 1)::text, ',' ORDER BY l.level)
  FROM incident_timeline e JOIN incident i ON i.code = e.code
  JOIN incident_escalation_level l ON l.policy = 'fast' AND l.level = (e.details->>'level')::int
 WHERE e.code = '$esc' AND e.kind = 'escalated'
   AND e.at - i.declared_at - l.delay BETWEEN interval '0' AND interval '1 second'});
is(scalar(split /,/, $late), 3, "each level fires within a second of its due time (late by $late s)");
is( $node->safe_psql('postgres',
		qq{SELECT string_agg(actor || ':' || (details->>'responder') || ':' || (details->>'by_hand'), ',' ORDER BY at)
             FROM incident_timeline WHERE code = '$esc' AND kind = 'escalated'}),
	'pg_incident:Omar:false,pg_incident:Omar:false,pg_incident:Omar:false',
	'fired by the worker, paging the responder');
ok(wait_for(sub { 3 == grep { my $b = JSON::PP->new->decode($_->{body}); $b->{event} eq 'escalated' && $b->{incident}{code} eq $esc && $_->{status} == 200 } @{ hooks('ops') } }),
	'each escalation reaches the channel');
my ($page) = grep { JSON::PP->new->decode($_->{body})->{event} eq 'escalated' } @{ hooks('ops') };
is(JSON::PP->new->decode($page->{body})->{details}{email}, 'omar@example.com', "with the responder's contact");
# a few sweeps later (each 100 ms to 5 s apart, and one per commit), still three
$node->safe_psql('postgres', qq{SELECT incident_note('$esc', 'a commit that wakes the sweep')});
sleep(3);
is( $node->safe_psql('postgres', qq{SELECT count(*) FROM incident_timeline WHERE code = '$esc' AND kind = 'escalated'}),
	'3', 'and no level fires twice');
my $acked = $node->safe_psql('postgres', q{SELECT incident_declare('P1', 'the replica is down')});
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM incident_timeline WHERE code = '$acked' AND kind = 'escalated'}),
	'level 1 of another P1 fires at once');
$node->safe_psql('postgres', qq{SELECT incident_acknowledge('$acked', 'Omar')});
ok( $node->poll_query_until('postgres',
		qq{SELECT clock_timestamp() > declared_at + interval '5 seconds' FROM incident WHERE code = '$acked'}),
	'past the due time of every level');
is( $node->safe_psql('postgres', qq{SELECT count(*) FROM incident_timeline WHERE code = '$acked' AND kind = 'escalated'}),
	'1', 'acknowledging stops the levels after it');
$node->safe_psql('postgres', qq{SELECT incident_acknowledge('$esc', 'Omar')});

# a session holding the incident's row holds back its next level, and the log says so
my $hold = $node->safe_psql('postgres', q{SELECT incident_declare('P1', 'the queue is stuck')});
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM incident_timeline WHERE code = '$hold' AND kind = 'escalated'}),
	'level 1 of a held incident fires before anyone holds it');
my $log_at = -s $node->logfile;
my $holder = $node->background_psql('postgres');
$holder->query_safe(qq{BEGIN; SELECT incident_note('$hold', 'looking, not acknowledged yet')});
my $held_line = qr/pg_incident: incident \Q$hold\E is due for an escalation or a reminder, but another session holds its row/;
ok( wait_for(sub { substr(slurp_file($node->logfile), $log_at) =~ $held_line }),
	'the worker logs that the due level is held back by a session');
is( $node->safe_psql('postgres', qq{SELECT count(*) FROM incident_timeline WHERE code = '$hold' AND kind = 'escalated'}),
	'1', 'and does not fire it meanwhile');
$holder->query_safe('COMMIT');
$holder->quit;
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) >= 2 FROM incident_timeline WHERE code = '$hold' AND kind = 'escalated'}),
	'once the session commits, the held level fires');
my @held_lines = grep { $_ =~ $held_line } split /\n/, substr(slurp_file($node->logfile), $log_at);
is(scalar @held_lines, 1, 'the held incident is logged once, not at every sweep');
like(substr(slurp_file($node->logfile), $log_at), qr/pg_incident: incident \Q$hold\E is no longer held by another session/,
	'and its release once');
$node->safe_psql('postgres', qq{SELECT incident_acknowledge('$hold', 'Omar')});

# ---- reminders: a response deadline breached, and status updates overdue ----
$node->safe_psql('postgres', q{UPDATE incident_severity SET response_time = '1 second', update_every = '2 seconds' WHERE severity = 'P3'});
my $slowack = $node->safe_psql('postgres', q{SELECT incident_declare('P3', 'reports are late')});
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM incident_timeline WHERE code = '$slowack' AND kind = 'reminder'
             AND details->>'reminder' = 'response_breached'}),
	'an unacknowledged incident past its response deadline gets a breach reminder');
$node->safe_psql('postgres', qq{SELECT incident_acknowledge('$slowack', 'Omar');
SELECT incident_assign('$slowack', 'communications_lead', 'Omar');
SELECT incident_update('$slowack', 'investigating', 'looking at the export job')});
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) >= 3 FROM incident_timeline WHERE code = '$slowack' AND kind = 'reminder'
             AND details->>'reminder' = 'update_overdue'}),
	'an overdue status update raises reminders');
is( $node->safe_psql('postgres',
		qq{SELECT count(*) = count(DISTINCT (details->>'due', details->>'period'))
                  AND bool_and(details->>'responder' = 'Omar')
             FROM incident_timeline WHERE code = '$slowack' AND kind = 'reminder' AND details->>'reminder' = 'update_overdue'}),
	't', 'one per overdue period, to the communications lead');
is( $node->safe_psql('postgres',
		qq{SELECT count(*) FROM incident_timeline WHERE code = '$slowack' AND kind = 'reminder' AND details->>'reminder' = 'response_breached'}),
	'1', 'and the breach reminder only once');
$node->safe_psql('postgres', qq{SELECT incident_resolve('$slowack', 'the job was stuck');
UPDATE incident_severity SET escalation_policy = NULL});

# ---- SIGKILL of the worker and an immediate restart lose nothing ----
get('/set?name=ops&code=500');
my @crash = map { $node->safe_psql('postgres', "SELECT incident_declare('P2', 'crash test $_')") } 1 .. 5;
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 5 FROM incident_notifications WHERE channel = 'ops' AND state = 'pending' AND attempts > 0}),
	'five deliveries pending after failures');
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM incident_worker_status WHERE process = 'worker'});
kill 'KILL', $pid;
ok( $node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM incident_worker_status WHERE process = 'worker' AND state = 'idle' AND pid <> $pid}),
	'the worker killed with SIGKILL comes back');
$node->stop('immediate');
$node->start;
get('/set?name=ops&code=200');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM incident_notifications WHERE state <> 'delivered' AND channel = 'ops'}),
	'after the crash and the restart every delivery is made');
my %arrived = map { JSON::PP->new->decode($_->{body})->{incident}{code} => 1 } grep { $_->{status} == 200 } @{ hooks('ops') };
is(scalar(grep { $arrived{$_} } @crash), 5, 'each of the five incidents reached the receiver');

# ---- a viewer reads neither url nor secret ----
$node->safe_psql('postgres', q{CREATE ROLE notify_viewer IN ROLE incident_viewer});
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE notify_viewer; SELECT url FROM incident_channel});
like($err, qr/permission denied/, 'a viewer cannot read a channel url');
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE notify_viewer; SELECT secret FROM incident_channel});
like($err, qr/permission denied/, 'nor its secret');
is( $node->safe_psql('postgres', q{SET ROLE notify_viewer; SELECT string_agg(name || ':' || signed, ',') FROM incident_channels}),
	'chat:false,gone:false,ops:true', 'a viewer sees the channels and whether they sign');
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT incident_channel_webhook('bad', 'https://hooks.example/x', secret => 'too-short-xyz')});
like($err, qr/invalid secret \(value not shown\)/, 'a refused secret is not quoted');
# the server logs statements as they were typed (log_statement, and
# log_min_error_statement for a failed one), as it does CREATE ROLE's
# passwords; nothing of pg_incident's own quotes a secret
my @leaks = grep { /too-short-xyz|\Q$secret\E/ && !/incident_channel_webhook\(/ } split /\n/, slurp_file($node->logfile);
is(join("\n", @leaks), '', 'no secret in the server log but in the statements typed');

# ---- a 2xx whose answer is too long to read is delivered, once ----
$node->safe_psql('postgres', qq{SELECT incident_channel_webhook('chatty', '$base/big?bytes=3000000', events => '{declared}')});
my $chatty = $node->safe_psql('postgres', q{SELECT incident_declare('P4', 'a receiver that answers at length')});
ok( $node->poll_query_until('postgres',
		qq{SELECT state || ':' || attempts || ':' || last_status FROM incident_notifications WHERE channel = 'chatty' AND incident = '$chatty'},
		'delivered:1:200'),
	'a 200 with a 3 MB body is delivered at the first attempt, not posted again');

done_testing();
