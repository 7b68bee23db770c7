# test/TestHttpServer.pm: test/http_server.pl for a TAP test, started by
# start_http_server and stopped when the test ends.
#
# Copyright (c) 2026, pg_incident authors

package TestHttpServer;

use strict;
use warnings;

use Exporter 'import';
use FindBin;
use POSIX ();

our @EXPORT_OK = qw(start_http_server);

my @servers;

# start_http_server(@args): runs test/http_server.pl with @args (such as
# '--tls'); returns its port and its TLS port (0 without TLS). A pipe and a
# fork rather than open '-|', whose implicit close would wait for the server
# when the test dies early; the server also exits when the test's process
# ends.
sub start_http_server
{
	my @args = @_;

	pipe(my $out, my $in) or die "pipe: $!";
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		close $out;
		open(STDOUT, '>&', $in) or POSIX::_exit(127);
		exec($^X, "$FindBin::Bin/../http_server.pl", @args) or do
		{
			print STDERR "exec test/http_server.pl: $!\n";
			POSIX::_exit(127);
		};
	}
	close $in;
	push @servers, $pid;
	my $ports = <$out> // '';
	my ($port, $tls_port) = $ports =~ /^port=(\d+) tls_port=(\d+)/
	  or die "test/http_server.pl printed \"$ports\", not its ports";
	return ($port, $tls_port);
}

END
{
	local $?;    # keep the test's exit status
	for my $pid (@servers)
	{
		kill 'TERM', $pid;
		waitpid($pid, 0);
	}
}

1;
