#!/usr/bin/perl
# test/http_server.pl: the HTTP server of pg_incident's tests.
#
# Listens on 127.0.0.1, on a port the kernel picks, and prints one line
#   port=N tls_port=M
# (tls_port=0 when TLS is not available: --tls not given, IO::Socket::SSL
# missing, or openssl could not make a certificate). With --tls it makes a
# self-signed certificate for "localhost" in a temporary folder and serves the
# same paths over TLS on the second port.
#
# Paths (any method; query parameters as shown):
#   /ok                 200 "ok"
#   /500                500 "error"
#   /status?code=N      status N
#   /switch?name=S      the status last set for S (200 until then)
#   /set?name=S&code=N  200 "set": /switch?name=S and /hook?name=S answer N
#                       from now on (&retry_after=N: with that header)
#   /body?text=T        200 with the body T (percent-decoded)
#   /slow?ms=N          200 "slow" after N milliseconds
#   /hang               reads the request and never answers
#   /close              reads the request and closes without answering
#   /redirect-file      302 to file:///etc/passwd
#   /redirect-loop      302 to /redirect-loop
#   /redirect?to=URL    302 to URL (percent-decoded)
#   /headers            200 with the request's header lines as the body
#   /hook?name=S        a webhook receiver: keeps the request (its header
#                       lines, its body, when it came) and answers the status
#                       last set for S by /set (200 until then; 0: never
#                       answers), with &retry_after=N there a Retry-After: N
#   /hooks?name=S       200 with what /hook?name=S kept, as a JSON array of
#                       {"at": seconds, "status": answered, "headers": {lower-
#                       cased name: value}, "body": text}
#   /stats              200 "hanging=N": connections /hang holds open
#   /big?bytes=N        200 with N bytes of "x" and a Content-Length;
#                       &chunked=1: without one, the body ends at close
#
# One process, one select loop, non-blocking sockets: many connections at
# once, and a hanging or slow one delays no other. Every response closes its
# connection. The server exits when its parent process ends (it checks every
# 200 ms) or on SIGTERM. Core Perl only, IO::Socket::SSL aside.

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time);

$SIG{PIPE} = 'IGNORE';
my $parent = getppid();
my $want_tls = grep { $_ eq '--tls' } @ARGV;

my $plain = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Listen => 1024,
	ReuseAddr => 1,
	Blocking => 0) or die "http_server.pl: cannot listen: $!\n";

my ($tls, $cert, $key);
if ($want_tls && eval { require IO::Socket::SSL; 1 })
{
	my $dir = tempdir('pg_incident_tls.XXXXXX', TMPDIR => 1, CLEANUP => 1);
	$cert = "$dir/cert.pem";
	$key = "$dir/key.pem";
	# openssl chatters on stderr while it makes the key
	open(my $saved_err, '>&', \*STDERR) or die "http_server.pl: cannot dup stderr: $!\n";
	open(STDERR, '>', '/dev/null');
	my $rc = system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
		'-subj', '/CN=localhost', '-keyout', $key, '-out', $cert);
	open(STDERR, '>&', $saved_err);
	undef $cert if $rc != 0;
	if (defined $cert)
	{
		$tls = IO::Socket::INET->new(
			LocalAddr => '127.0.0.1',
			LocalPort => 0,
			Listen => 1024,
			ReuseAddr => 1,
			Blocking => 0) or die "http_server.pl: cannot listen: $!\n";
	}
}

$| = 1;
printf "port=%d tls_port=%d\n", $plain->sockport, $tls ? $tls->sockport : 0;
close STDOUT;
open STDOUT, '>', '/dev/null';

my $running = 1;
$SIG{TERM} = sub { $running = 0 };

# per connection: { sock, tls (handshake pending), in, out, state, at, big, chunked }
my %conn;
my %switch;         # name => status, set by /set
my %retry_after;    # name => Retry-After seconds, set by /set
my %hooks;          # name => [requests /hook kept]
my $sel = IO::Select->new($plain);
$sel->add($tls) if $tls;
my $wsel = IO::Select->new;

while ($running && getppid() == $parent)
{
	my $now = time();
	my $wait = 0.2;
	for my $c (values %conn)
	{
		$wait = 0 if $c->{state} eq 'timed' && $c->{at} <= $now;
		$wait = $c->{at} - $now if $c->{state} eq 'timed' && $c->{at} - $now < $wait;
	}
	$wait = 0 if $wait < 0;
	my ($r, $w) = IO::Select->select($sel, $wsel, undef, $wait);
	for my $s (@{ $r || [] })
	{
		if ($s == $plain || ($tls && $s == $tls))
		{
			accept_all($s, $tls && $s == $tls);
			next;
		}
		my $c = $conn{ fileno($s) // -1 } or next;
		step($c);
	}
	for my $s (@{ $w || [] })
	{
		my $c = $conn{ fileno($s) // -1 } or next;
		step($c);
	}
	$now = time();
	for my $c (values %conn)
	{
		if ($c->{state} eq 'timed' && $c->{at} <= $now)
		{
			$c->{state} = 'writing';
			$c->{out} .= $c->{later};
			step($c);
		}
	}
}
exit 0;

# Accept every pending connection on a listening socket.
sub accept_all
{
	my ($listener, $is_tls) = @_;
	while (my $s = $listener->accept)
	{
		$s->blocking(0);
		my $c = { sock => $s, in => '', out => '', state => 'reading' };
		if ($is_tls)
		{
			IO::Socket::SSL->start_SSL(
				$s,
				SSL_server => 1,
				SSL_startHandshake => 0,
				SSL_cert_file => $cert,
				SSL_key_file => $key) or do { close $s; next };
			$c->{handshake} = 1;
		}
		$conn{ fileno($s) } = $c;
		$sel->add($s);
	}
}

# Advance a connection as far as it goes without blocking.
sub step
{
	my ($c) = @_;
	my $s = $c->{sock};
	if ($c->{handshake})
	{
		if ($s->accept_SSL)
		{
			$c->{handshake} = 0;
		}
		elsif ($IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_WRITE())
		{
			$wsel->add($s) unless $wsel->exists($s);
			return;
		}
		elsif ($IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_READ())
		{
			$wsel->remove($s);
			return;
		}
		else
		{
			return finish($c);
		}
		$wsel->remove($s);
	}
	if ($c->{state} eq 'reading' || $c->{state} eq 'hanging' || $c->{state} eq 'timed')
	{
		while (1)
		{
			my $n = sysread($s, my $buf, 65536);
			if (!defined $n)
			{
				last if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
				return finish($c);
			}
			return finish($c) if $n == 0;    # the client went away
			$c->{in} .= $buf if $c->{state} eq 'reading';
		}
		return if $c->{state} ne 'reading';
		my $end = index($c->{in}, "\r\n\r\n");
		return if $end < 0;
		my $head = substr($c->{in}, 0, $end);
		my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
		return if length($c->{in}) < $end + 4 + ($len // 0);
		respond($c, $head, substr($c->{in}, $end + 4, $len // 0));
	}
	if ($c->{state} eq 'writing')
	{
		while (1)
		{
			if ($c->{out} eq '' && ($c->{big} // 0) > 0)
			{
				my $take = $c->{big} < 65536 ? $c->{big} : 65536;
				$c->{out} = 'x' x $take;
				$c->{big} -= $take;
			}
			last if $c->{out} eq '';
			my $n = syswrite($s, $c->{out});
			if (!defined $n)
			{
				if ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR)
				{
					$wsel->add($s) unless $wsel->exists($s);
					return;
				}
				return finish($c);
			}
			substr($c->{out}, 0, $n, '');
		}
		finish($c);
	}
}

# Decide the response to a request whose head has been read.
sub respond
{
	my ($c, $head, $body) = @_;
	my ($target) = $head =~ /^\S+\s+(\S+)/;
	$target //= '/';
	my ($path, $query) = split /\?/, $target, 2;
	my %q;
	for my $pair (split /&/, $query // '')
	{
		my ($k, $v) = split /=/, $pair, 2;
		$v //= '';
		$v =~ tr/+/ /;
		$v =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
		$q{$k} = $v;
	}

	if ($path eq '/hook')
	{
		my $name = $q{name} // '';
		my $code = $switch{$name} // 200;
		my %h;
		my (undef, @lines) = split /\r\n/, $head;
		for (@lines) { $h{ lc $1 } = $2 if /^([^:]+):\s*(.*)$/ }
		utf8::decode($body);
		push @{ $hooks{$name} }, { at => time(), status => $code, headers => \%h, body => $body };
		if ($code == 0)
		{
			$c->{state} = 'hanging';
			return;
		}
		$c->{state} = 'writing';
		$c->{out} = response($code, 'hook',
			defined $retry_after{$name} ? ("Retry-After: $retry_after{$name}") : ());
		return;
	}
	if ($path eq '/hang')
	{
		$c->{state} = 'hanging';
		return;
	}
	if ($path eq '/close')
	{
		return finish($c);
	}
	$c->{state} = 'writing';
	if ($path eq '/ok') { $c->{out} = response(200, 'ok') }
	elsif ($path eq '/stats')
	{
		my $n = grep { $_->{state} eq 'hanging' } values %conn;
		$c->{out} = response(200, "hanging=$n");
	}
	elsif ($path eq '/500') { $c->{out} = response(500, 'error') }
	elsif ($path eq '/switch') { $c->{out} = response($switch{ $q{name} // '' } // 200, 'switch') }
	elsif ($path eq '/set')
	{
		$switch{ $q{name} // '' } = int($q{code} // 200);
		$retry_after{ $q{name} // '' } = $q{retry_after};
		$c->{out} = response(200, 'set');
	}
	elsif ($path eq '/status') { $c->{out} = response(int($q{code} // 200), 'status') }
	elsif ($path eq '/body') { $c->{out} = response(200, $q{text} // '') }
	elsif ($path eq '/redirect-file') { $c->{out} = response(302, 'moved', 'Location: file:///etc/passwd') }
	elsif ($path eq '/redirect-loop') { $c->{out} = response(302, 'again', 'Location: /redirect-loop') }
	elsif ($path eq '/redirect') { $c->{out} = response(302, 'moved', 'Location: ' . ($q{to} // '/ok')) }
	elsif ($path eq '/hooks')
	{
		$c->{out} = response(200, JSON::PP->new->utf8->canonical->encode($hooks{ $q{name} // '' } // []));
	}
	elsif ($path eq '/headers')
	{
		my (undef, @lines) = split /\r\n/, $head;
		$c->{out} = response(200, join("\n", @lines));
	}
	elsif ($path eq '/slow')
	{
		$c->{state} = 'timed';
		$c->{at} = time() + ($q{ms} // 1000) / 1000;
		$c->{later} = response(200, 'slow');
	}
	elsif ($path eq '/big')
	{
		my $bytes = int($q{bytes} // 1048576);
		$c->{big} = $bytes;
		$c->{out} = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
		  . ($q{chunked} ? '' : "Content-Length: $bytes\r\n") . "\r\n";
	}
	else { $c->{out} = response(404, 'not found') }
}

# An HTTP/1.1 response that closes the connection.
sub response
{
	my ($code, $body, @headers) = @_;
	return "HTTP/1.1 $code Test\r\nContent-Type: text/plain\r\nConnection: close\r\n"
	  . 'Content-Length: ' . length($body) . "\r\n"
	  . join('', map { "$_\r\n" } @headers) . "\r\n" . $body;
}

# Close a connection and forget it.
sub finish
{
	my ($c) = @_;
	my $s = $c->{sock};
	delete $conn{ fileno($s) // -1 };
	$sel->remove($s);
	$wsel->remove($s);
	close $s;
	return;
}
