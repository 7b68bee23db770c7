# test/t/020_http_engine.pl: the worker's HTTP engine (src/worker/http.c),
# driven through incident__http_fetch() against test/http_server.pl.
#
# Each way a fetch can end maps to one failure kind: ok (whatever the
# status), dns, connect, tls, timeout, too_large, protocol (a scheme other
# than http and https, asked for or redirected to), redirects, other. The
# engine runs many transfers at once: 200 URLs with hanging ones among them
# finish their /ok fetches long before the hangs time out. A fetch is
# cancellable, and a cancel closes its connections.
#
# The function is not in the extension's scripts yet: the test creates it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/..";
use IO::Socket::INET;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TestHttpServer qw(start_http_server);
use Time::HiRes qw(time usleep);

# ---- the test HTTP server ----
my ($port, $tls_port) = start_http_server('--tls');
my $base = "http://127.0.0.1:$port";

my $node = PostgreSQL::Test::Cluster->new('http');
$node->init;
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_incident;
CREATE FUNCTION incident__http_fetch(
    urls text[],
    timeout_ms int DEFAULT 5000,
    max_bytes int DEFAULT 1048576,
    max_redirects int DEFAULT 0,
    verify_tls bool DEFAULT true,
    max_concurrent int DEFAULT 64)
RETURNS TABLE (ord int, url text, failure text, status int,
    namelookup_ms float8, connect_ms float8, appconnect_ms float8,
    starttransfer_ms float8, total_ms float8, final_url text, body text,
    body_bytes bigint, error text, started_at timestamptz, finished_at timestamptz)
AS '$libdir/pg_incident', 'incident__http_fetch'
LANGUAGE C STRICT VOLATILE;
});

# fetch([urls], timeout, max_bytes, max_redirects, verify_tls): the rows, in
# the order of the URLs, as hashes
sub fetch
{
	my ($urls, $timeout, $max_bytes, $max_redirects, $verify) = @_;
	my $array = join(',', map { "'$_'" } @$urls);
	my $json = $node->safe_psql('postgres',
		sprintf(q{SELECT coalesce(json_agg(f ORDER BY ord), '[]') FROM incident__http_fetch(ARRAY[%s]::text[], %d, %d, %d, %s) f},
			$array, $timeout // 5000, $max_bytes // 1048576, $max_redirects // 0, ($verify // 1) ? 'true' : 'false'));
	return @{ decode_json($json) };
}

# fetch one URL; returns its row
sub fetch1 { my ($url, @rest) = @_; my @r = fetch([$url], @rest); return $r[0]; }

# ---- ok, with timings ----
my $r = fetch1("$base/ok");
is("$r->{failure} $r->{status}", 'ok 200', '/ok: ok, status 200');
is($r->{body}, 'ok', '/ok: the body');
is($r->{body_bytes}, 2, '/ok: the body\'s byte count');
is($r->{final_url}, "$base/ok", '/ok: the final URL');
is($r->{error}, undef, '/ok: no error text');
ok($r->{total_ms} > 0 && $r->{total_ms} < 5000, "/ok: total_ms is positive and small ($r->{total_ms})");
ok($r->{namelookup_ms} <= $r->{connect_ms} && $r->{connect_ms} <= $r->{starttransfer_ms}
	  && $r->{starttransfer_ms} <= $r->{total_ms},
	'/ok: the phases come in order (name lookup, connect, first byte, total)');
is($r->{appconnect_ms}, 0, '/ok: no TLS phase over http');

# ---- a 500 is a transport success ----
$r = fetch1("$base/500");
is("$r->{failure} $r->{status}", 'ok 500', '/500: ok transport, status 500');
$r = fetch1("$base/status?code=204");
is("$r->{failure} $r->{status}", 'ok 204', '/status?code=204: status 204');
$r = fetch1("$base/body?text=hello%20world");
is($r->{body}, 'hello world', '/body: the body, for the caller to match');

# ---- timeout ----
my $t0 = time();
$r = fetch1("$base/hang", 500);
my $took = time() - $t0;
is($r->{failure}, 'timeout', '/hang with a 500 ms timeout: timeout');
is($r->{status}, 0, '/hang: no status');
ok($r->{total_ms} >= 450 && $r->{total_ms} < 3000, "/hang: total_ms near 500 ($r->{total_ms})");
ok($took >= 0.45 && $took < 5, sprintf('/hang: the call returned after about 500 ms (%.2f s)', $took));
like($r->{error}, qr/timed out/i, '/hang: curl\'s error text');

# ---- the server closes without answering ----
$r = fetch1("$base/close");
is("$r->{failure} $r->{status}", 'other 0', '/close: other, no status');
like($r->{error}, qr/empty reply/i, '/close: curl\'s error text says so');

# ---- slow ----
$r = fetch1("$base/slow?ms=600");
is("$r->{failure} $r->{status}", 'ok 200', '/slow?ms=600: ok');
ok($r->{starttransfer_ms} >= 550 && $r->{total_ms} >= 550 && $r->{total_ms} < 5000,
	"/slow?ms=600: the first byte came after the delay ($r->{starttransfer_ms} ms)");
ok($r->{connect_ms} < 550, "/slow?ms=600: the connection itself was quick ($r->{connect_ms} ms)");

# ---- schemes: refused before any I/O, and in redirects ----
$r = fetch1("$base/redirect-file", 5000, 1048576, 3);
is($r->{failure}, 'protocol', '/redirect-file followed: protocol');
$r = fetch1("$base/redirect-file", 5000, 1048576, 0);
is("$r->{failure} $r->{status}", 'ok 302', '/redirect-file with max_redirects 0: not followed, status 302');
for my $url ('file:///etc/passwd', "ftp://127.0.0.1:$port/", "gopher://127.0.0.1:$port/", '127.0.0.1/ok')
{
	$r = fetch1($url);
	is($r->{failure}, 'protocol', "$url: protocol");
	ok($r->{total_ms} == 0 && $r->{body_bytes} == 0 && !defined $r->{final_url},
		"$url: refused before any I/O");
}

# ---- redirects ----
$r = fetch1("$base/redirect-loop", 5000, 1048576, 3);
is($r->{failure}, 'redirects', '/redirect-loop with max_redirects 3: redirects');
like($r->{error}, qr/3/, '/redirect-loop: the error names the limit');

# ---- body size ----
$r = fetch1("$base/big?bytes=10000000", 5000, 100000);
is($r->{failure}, 'too_large', '/big with a Content-Length over max_bytes: too_large');
$r = fetch1("$base/big?bytes=10000000&chunked=1", 5000, 100000);
is($r->{failure}, 'too_large', '/big without a Content-Length, over max_bytes: too_large');
ok($r->{body_bytes} > 100000 && $r->{body_bytes} < 300000,
	"/big: reading stopped soon after max_bytes ($r->{body_bytes} bytes)");
is(length($r->{body}), 65536, '/big: the first 64 kB of the body are kept');
$r = fetch1("$base/big?bytes=100000&chunked=1", 5000, 100000);
is("$r->{failure} $r->{body_bytes}", 'ok 100000', '/big of exactly max_bytes: ok');
$r = fetch1("$base/ok", 5000, 0);
is($r->{failure}, 'too_large', '/ok with max_bytes 0: too_large');

# ---- dns and connect ----
$r = fetch1('http://no-such-host.invalid/', 5000);
is($r->{failure}, 'dns', 'a name that does not resolve: dns');
my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die $!;
my $closed_port = $probe->sockport;
close $probe;
$r = fetch1("http://127.0.0.1:$closed_port/", 5000);
is($r->{failure}, 'connect', 'a port nothing listens on: connect');

# ---- TLS with a self-signed certificate ----
# make test installs libio-socket-ssl-perl and openssl, so the server has TLS
ok($tls_port, 'the test server serves TLS') or BAIL_OUT('no TLS in test/http_server.pl: IO::Socket::SSL or openssl missing');
{
	$r = fetch1("https://127.0.0.1:$tls_port/ok", 5000, 1048576, 0, 1);
	is($r->{failure}, 'tls', 'self-signed certificate, verified: tls');
	like($r->{error}, qr/certificate/i, 'self-signed: the error text names the certificate');
	$r = fetch1("https://127.0.0.1:$tls_port/ok", 5000, 1048576, 0, 0);
	is("$r->{failure} $r->{status} $r->{body}", 'ok 200 ok', 'self-signed certificate, not verified: ok');
	ok($r->{appconnect_ms} > 0, "TLS: the handshake phase is timed ($r->{appconnect_ms} ms)");
}

# ---- 200 URLs at once, 20 of them hanging ----
my @many = map { $_ % 10 == 0 ? "$base/hang" : "$base/ok" } 0 .. 199;
$t0 = time();
my $summary = $node->safe_psql(
	'postgres',
	sprintf(q{
WITH f AS (SELECT * FROM incident__http_fetch(ARRAY[%s]::text[], 3000, 1048576, 0, true, 64))
SELECT count(*) FILTER (WHERE url LIKE '%%/ok' AND failure = 'ok' AND status = 200),
       count(*) FILTER (WHERE url LIKE '%%/hang' AND failure = 'timeout'),
       count(*),
       max(total_ms) FILTER (WHERE url LIKE '%%/ok') < 1000,
       max(finished_at) FILTER (WHERE url LIKE '%%/ok') < min(finished_at) FILTER (WHERE url LIKE '%%/hang')
FROM f},
		join(',', map { "'$_'" } @many)));
$took = time() - $t0;
is($summary, '180|20|200|t|t',
	'200 URLs: 180 /ok done (each quickly, all before any /hang ended), 20 /hang timed out');
ok($took < 15, sprintf('200 URLs: the call took about one timeout, not one per hang (%.1f s)', $took));

# ---- a cancel interrupts a long wait and closes the connection ----
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->set_query_timer_restart();
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_until(qr/started/, "\\echo started\nSELECT count(*) FROM incident__http_fetch(ARRAY['$base/hang'], 600000);\n");

# wait until the fetch waits, and the server holds its connection
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
my $waiting = '';
while (time() < $deadline)
{
	$waiting = $node->safe_psql('postgres',
		"SELECT wait_event_type || ' ' || CASE WHEN query LIKE '%incident__http_fetch%' THEN 'fetch' ELSE 'other' END FROM pg_stat_activity WHERE pid = $pid");
	last if $waiting eq 'Extension fetch'
	  && fetch1("$base/stats")->{body} eq 'hanging=1';
	usleep(50_000);
}
is($waiting, 'Extension fetch', 'the fetch waits on an Extension wait event');

$t0 = time();
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
my ($out, $failed) = $bg->query("SELECT 'after the cancel'");
$took = time() - $t0;
like($bg->{stderr}, qr/canceling statement due to user request/, 'pg_cancel_backend interrupts the fetch');
ok($took < 10, sprintf('the cancel took effect at once (%.1f s), not after the 600 s timeout', $took));
like($out, qr/after the cancel/, 'the session goes on after the cancel');

my $stats = '';
$deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
while (time() < $deadline)
{
	$stats = fetch1("$base/stats")->{body};
	last if $stats eq 'hanging=0';
	usleep(50_000);
}
is($stats, 'hanging=0', 'the cancelled fetch closed its connection');
$bg->quit;

# ---- argument checks ----
my ($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT * FROM incident__http_fetch(ARRAY['$base/ok'], 0)");
like($stderr, qr/invalid timeout_ms "0"/, 'a zero timeout is refused');
($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT * FROM incident__http_fetch(ARRAY['$base/ok'], 1000, 1000, 21)");
like($stderr, qr/invalid max_redirects "21"/, 'max_redirects is bounded');
($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT * FROM incident__http_fetch(ARRAY['$base/ok', NULL])");
like($stderr, qr/invalid URL at position 2: null/, 'a null URL is refused');

$node->stop;
done_testing();
