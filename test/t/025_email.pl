# test/t/025_email.pl: email channels, through the worker, to a real SMTP
# server (Debian's python3-aiosmtpd, its Mailbox handler writing a maildir).
#
#  - a P1's declaration arrives as a plain-text mail in the playbook's
#    status-update shape, to every recipient, with its subject;
#  - its resolution arrives in the executive-summary shape;
#  - an escalation also reaches the responder it pages, at their own address;
#  - a server that is down: the mail waits and arrives once it is up;
#  - a channel with a password never sends it without TLS: the delivery
#    fails (the test server offers no STARTTLS) and says why.
# Every wait polls with a deadline.
#
# Copyright (c) 2026, pg_incident authors

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/..";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use TestProbeNode qw(start_probe_node);

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
if (system("$python -c 'import aiosmtpd' 2>/dev/null") != 0)
{
	plan skip_all => 'python3-aiosmtpd is not installed (make test installs it as root)';
}

# a free port on loopback, and the SMTP server on it
my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die $!;
my $port = $probe->sockport;
close $probe;
my $maildir = tempdir('pg_incident_mail.XXXXXX', TMPDIR => 1, CLEANUP => 1) . '/md';
my $smtp;

sub start_smtp
{
	$smtp = fork() // die "fork: $!";
	if ($smtp == 0)
	{
		open(STDOUT, '>', '/dev/null');
		open(STDERR, '>', '/dev/null');
		exec($python, '-m', 'aiosmtpd', '-n', '-l', "127.0.0.1:$port", '-c', 'aiosmtpd.handlers.Mailbox', $maildir)
		  or POSIX::_exit(127);
	}
	my $deadline = time() + 30;
	while (time() < $deadline)
	{
		return if IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port);
		sleep(0.1);
	}
	die 'the SMTP server did not start';
}

sub stop_smtp
{
	kill 'TERM', $smtp;
	waitpid($smtp, 0);
}
END { kill 'TERM', $smtp if $smtp }

# mails(): the mails received, oldest first, as texts
sub mails
{
	my @files = sort { (stat $a)[9] <=> (stat $b)[9] || $a cmp $b } glob("$maildir/new/*");
	return map { slurp_file($_) } @files;
}

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

start_smtp();
my $node = start_probe_node('email');
$node->safe_psql('postgres', qq{
UPDATE incident_severity SET escalation_policy = NULL;
SELECT incident_channel_email('stakeholders', 'smtp://127.0.0.1:$port', 'incidents\@example.com',
                              '{oncall\@example.com,cto\@example.com}', min_severity => 'P2',
                              link_template => 'https://status.example/incidents/{code}');
});

# ---- a declaration ----
my $code = $node->safe_psql('postgres', q{SELECT incident_declare('P1', 'Checkout is down for everyone')});
ok(wait_for(sub { mails() == 1 }), 'the declaration arrives as a mail');
my ($mail) = mails();
like($mail, qr/^From: incidents\@example\.com$/m, 'from the channel sender');
like($mail, qr/^To: oncall\@example\.com,\r?\n cto\@example\.com$/m, 'to the recipients, in their order, one a line');
like($mail, qr/^X-RcptTo: oncall\@example\.com, cto\@example\.com$/m, 'who are the envelope recipients');
like($mail, qr/^Subject: \[P1\] \Q$code\E declared: Checkout is down for everyone$/m, 'with a subject naming it');
like($mail, qr/^Content-Type: text\/plain; charset=utf-8$/m, 'in plain text');
like($mail, qr/INCIDENT DECLARED - .*\nIncident ID: \Q$code\E \(P1\)\nStatus: Declared\nImpact: Checkout is down for everyone\n/,
	"in the playbook's status-update shape");
like($mail, qr{^https://status\.example/incidents/\Q$code\E$}m, 'with the link');
is($node->safe_psql('postgres', q{SELECT state || ' ' || last_status FROM incident_notifications}),
	'delivered 250', 'recorded delivered with the server\'s 250');

# ---- an escalation reaches the responder paged, at their address ----
$node->safe_psql('postgres', qq{
INSERT INTO incident_responder (name, email) VALUES ('Omar', 'omar\@example.com');
INSERT INTO incident_escalation_policy (name, description) VALUES ('mail', 'one level');
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target) VALUES ('mail', 1, '0 s', 'responder', 'Omar');
UPDATE incident_severity SET escalation_policy = 'mail' WHERE severity = 'P1';
});
my $esc = $node->safe_psql('postgres', q{SELECT incident_declare('P1', 'Payments fail')});
ok(wait_for(sub { grep { /^Subject: \[P1\] \Q$esc\E escalated/m } mails() }), 'the escalation arrives');
my ($page) = grep { /^Subject: \[P1\] \Q$esc\E escalated/m } mails();
like($page, qr/^X-RcptTo: oncall\@example\.com, cto\@example\.com, omar\@example\.com$/m,
	'also to the responder paged');
like($page, qr/^To: Omar$/m, 'whom the text names');
$node->safe_psql('postgres', q{UPDATE incident_severity SET escalation_policy = NULL});
$node->safe_psql('postgres', qq{SELECT incident_acknowledge('$esc', 'Omar'); SELECT incident_resolve('$esc', 'card processor timeout')});

# ---- the resolution: the executive summary ----
$node->safe_psql('postgres', qq{
SELECT incident_acknowledge('$code', 'Omar');
SELECT incident_update('$code', 'mitigating', 'Rolled back the release');
SELECT incident_resolve('$code', 'A bad deploy of the cart service');
});
ok(wait_for(sub { grep { /^Subject: \[P1\] Incident Summary - Checkout is down for everyone$/m } mails() }),
	'the resolution arrives as the executive summary');
my ($summary) = grep { /Incident Summary - Checkout/ } mails();
like($summary, qr/^Incident: \Q$code\E - Checkout is down for everyone$/m, 'naming the incident');
like($summary, qr/^Duration: /m, 'with its duration');
like($summary, qr/^Root Cause: A bad deploy of the cart service$/m, 'its root cause');
like($summary, qr/^Actions Taken: Rolled back the release$/m, 'the actions taken');
like($summary, qr/^- Post-incident review scheduled for \d{4}-\d\d-\d\d$/m, 'and the review date');

# ---- a long update: no line over 200 characters (the server refuses lines over 1000) ----
my $long = $node->safe_psql('postgres', q{SELECT incident_declare('P2', 'Reports are stale')});
$node->safe_psql('postgres', qq{
SELECT incident_acknowledge('$long', 'Omar');
SELECT incident_update('$long', 'investigating', repeat('the nightly export stalls again ', 40) || repeat('x', 700));
});
ok(wait_for(sub { grep { /^Subject: \[P2\] \Q$long\E status update/m } mails() }), 'a long update arrives');
my ($update) = grep { /^Subject: \[P2\] \Q$long\E status update/m } mails();
my ($longest) = sort { $b <=> $a } map { length } split /\r?\n/, $update;
ok($longest <= 200, "on lines of at most 200 characters ($longest)");
like($update, qr/the nightly export stalls again\n/, 'broken at spaces');

# ---- a relay that refuses the mail: its reply is the error ----
my $probe2 = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die $!;
my $tiny_port = $probe2->sockport;
close $probe2;
my $tiny = fork() // die "fork: $!";
if ($tiny == 0)
{
	open(STDOUT, '>', '/dev/null');
	open(STDERR, '>', '/dev/null');
	exec($python, '-m', 'aiosmtpd', '-n', '-l', "127.0.0.1:$tiny_port", '-s', '100', '-c', 'aiosmtpd.handlers.Sink')
	  or POSIX::_exit(127);
}
END { kill 'TERM', $tiny if $tiny }
ok(wait_for(sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $tiny_port) }), 'a relay taking 100 bytes at most');
$node->safe_psql('postgres', qq{
SELECT incident_channel_email('tiny', 'smtp://127.0.0.1:$tiny_port', 'incidents\@example.com', '{ops\@example.com}',
                              min_severity => 'P4', events => '{declared}');
SELECT incident_declare('P4', 'The footer is misaligned');
});
ok( $node->poll_query_until('postgres',
		q{SELECT attempts >= 1 AND state = 'pending' FROM incident_notifications WHERE channel = 'tiny'}),
	'a mail the relay refuses stays pending');
my $refused = $node->safe_psql('postgres', q{SELECT last_error FROM incident_notifications WHERE channel = 'tiny'});
like($refused, qr/the relay said: 552\b/, "its error quotes the relay ($refused)");
$node->safe_psql('postgres', q{SELECT incident_channel_drop('tiny')});

# ---- the server down for a while: the mail waits, then arrives ----
stop_smtp();
my $before = () = mails();
my $later = $node->safe_psql('postgres', q{SELECT incident_declare('P2', 'Search is slow')});
ok( $node->poll_query_until('postgres',
		qq{SELECT attempts >= 1 AND state = 'pending' AND last_error LIKE 'connect:%' FROM incident_notifications
            WHERE incident = '$later' AND event_kind = 'declared'}),
	'with the server down the mail stays pending');
start_smtp();
ok(wait_for(sub { grep { /^Subject: \[P2\] \Q$later\E declared/m } mails() }), 'and arrives once it is up');

# ---- a password is never sent in clear ----
$node->safe_psql('postgres', qq{
SELECT incident_channel_email('relay', 'smtp://127.0.0.1:$port', 'incidents\@example.com', '{ops\@example.com}',
                              min_severity => 'P4', smtp_user => 'pg', smtp_password => 'mail-s3cret');
SELECT incident_declare('P4', 'A typo on the about page');
});
ok( $node->poll_query_until('postgres',
		q{SELECT attempts >= 1 AND state = 'pending' FROM incident_notifications WHERE channel = 'relay'}),
	'a channel with a password does not deliver over a server without TLS');
my $error = $node->safe_psql('postgres', q{SELECT last_error FROM incident_notifications WHERE channel = 'relay'});
like($error, qr/SSL|TLS|STARTTLS/i, "and says why ($error)");
unlike($error, qr/\b250\b/, 'without the 250 of the relay\'s last good reply, which is no status of the failure');
# the log's entries but the statements it echoes (log_statement = all here)
my @entries = grep { !/^\S+ \S+ \S+ \[\d+\] \S+ (?:LOG:  statement:|STATEMENT:)/ }
  split /\n(?=\d{4}-\d\d-\d\d )/, slurp_file($node->logfile);
is(scalar(grep { /mail-s3cret/ } @entries), 0, 'the password is in no log entry but the statements typed');

done_testing();
