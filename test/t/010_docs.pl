# test/t/010_docs.pl: every SQL example of README.md and docs/*.md is run, and
# its output must be the output shown.
#
# The conventions (docs/README.md, "Examples", says the same for writers):
#
# - An example is a psql transcript in a ``` block with no language tag (or
#   `sql` or `psql`). A line starting with "=> " is a statement; lines right
#   after it that start with "-> " continue it. The lines after the statement,
#   up to the next "=> " line or the end of the block, are its output as psql
#   prints it. A statement ends with ";" unless it is a psql meta-command
#   ("=> \x").
# - A block that is not runnable (a syntax synopsis, shell commands, a
#   configuration file line, output of several sessions) carries another
#   language tag (```text, ```sh, ```ini, ...) and is skipped. A block without
#   a tag, or tagged sql or psql, that holds no "=> " line is an error: every
#   SQL example is run.
# - <!-- setup: SQL --> (one line or several) runs SQL in the page's session
#   at that point; its output is not shown, and it must not fail. Setup is
#   for what a reader does not need to see, such as the test clock
#   (SET pg_incident.clock = '...').
# - <!-- test: no-extension --> anywhere on a page: the test does not run
#   CREATE EXTENSION pg_incident before the page (the page does it itself).
# - <!-- test: no-preload --> before a block: that block runs in a session of
#   its own, in a fresh database of a server that does not preload the
#   library.
#
# Each page (README.md, then docs/*.md in name order) runs in a fresh
# database in which a superuser has run CREATE EXTENSION pg_incident, as the
# superuser postgres (created if the OS user has another name), and all
# its transcript blocks and setup comments run in order in ONE psql session,
# so SET and CREATE carry over from block to block. psql runs with -X,
# SHOW_CONTEXT=never, TimeZone UTC and DateStyle ISO, YMD, on a server whose
# own zone (log_timezone) is UTC, with lc_messages C. After the page, its
# database and any database or role it created are dropped.
#
# Comparison ignores trailing white space on each line and blank lines at the
# end of an output, and reads "server process with PID 1234" as any PID.
# There is one test per statement, named after the file and line; a failure
# prints the expected and the actual output side by side, marked - and +.
#
# PG_INCIDENT_DOCS_ACCEPT=1 rewrites the shown outputs in the files with the
# actual ones instead of failing (for writers; review the diff, then run the
# test again without it). PG_INCIDENT_DOCS=FILE,FILE limits the pages.

use strict;
use warnings;

use Cwd qw(getcwd);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = getcwd();
$top =~ s{/test/t$}{};    # also when run from test/t
my @pages = $ENV{PG_INCIDENT_DOCS}
  ? split(/,/, $ENV{PG_INCIDENT_DOCS})
  : ('README.md', map { s{^\Q$top\E/}{}r } sort glob("$top/docs/*.md"));
my $accept = $ENV{PG_INCIDENT_DOCS_ACCEPT} ? 1 : 0;

my $transcript_tag = qr/^(?:|sql|psql)$/;

# ---- reading a page ----

# parse_page(FILE): { no_extension => bool, items => [...], lines => [...] }
# where an item is
#   { type => 'setup', sql => TEXT, line => N }
#   { type => 'stmt',  sql => TEXT, line => N, first => I, last => I,
#     expected => [LINES], block => N, no_preload => bool }
#   { type => 'error', line => N, message => TEXT }
# (first and last: the 0-based index range of the shown output lines).
sub parse_page
{
	my ($file) = @_;
	open(my $fh, '<', "$top/$file") or die "cannot read $top/$file: $!";
	my @lines = <$fh>;
	close $fh;
	chomp @lines;
	my %page = (no_extension => 0, items => [], lines => \@lines);
	my $next_no_preload = 0;
	my $i = 0;
	while ($i < @lines)
	{
		my $l = $lines[$i];
		if ($l =~ /<!--\s*test:\s*(.*?)\s*-->/)
		{
			for my $d (split /\s*,\s*/, $1)
			{
				if    ($d eq 'no-extension') { $page{no_extension} = 1 }
				elsif ($d eq 'no-preload')   { $next_no_preload = 1 }
				else
				{
					push @{ $page{items} },
					  { type => 'error', line => $i + 1, message => "unknown test directive \"$d\"" };
				}
			}
			$i++;
			next;
		}
		if ($l =~ /<!--\s*setup:(.*)$/)
		{
			my $start = $i;
			my $text = $1;
			while ($text !~ /-->/ && ++$i < @lines)
			{
				$text .= "\n" . $lines[$i];
			}
			$text =~ s/-->.*\z//s;
			push @{ $page{items} }, { type => 'setup', sql => $text, line => $start + 1 };
			$i++;
			next;
		}
		if ($l =~ /^(\s*)```\s*([^\s`]*)\s*$/)
		{
			my $tag = $2;
			my $start = $i++;
			my @body;
			while ($i < @lines && $lines[$i] !~ /^\s*```\s*$/)
			{
				push @body, $i++;
			}
			$i++;    # the closing fence
			my $no_preload = $next_no_preload;
			$next_no_preload = 0;
			next unless $tag =~ $transcript_tag;
			parse_block(\%page, \@lines, $start, \@body, $no_preload);
			next;
		}
		$i++;
	}
	return \%page;
}

# parse_block: the statements of one transcript block.
sub parse_block
{
	my ($page, $lines, $start, $body, $no_preload) = @_;
	my $block = $start + 1;
	my @idx = @$body;
	shift @idx while @idx && $lines->[ $idx[0] ] =~ /^\s*$/;
	if (!@idx || $lines->[ $idx[0] ] !~ /^=> /)
	{
		push @{ $page->{items} },
		  { type => 'error', line => $block,
			message => 'a ``` block without a language tag (or tagged sql/psql) must be a psql transcript '
			  . 'starting with "=> "; tag blocks that are not runnable (```text, ```sh)' };
		return;
	}
	my $stmt;
	for my $k (@idx)
	{
		my $l = $lines->[$k];
		if ($l =~ /^=> (.*)$/)
		{
			$stmt = { type => 'stmt', sql => $1, line => $k + 1, first => $k + 1, last => $k,
				expected => [], block => $block, no_preload => $no_preload };
			push @{ $page->{items} }, $stmt;
		}
		elsif ($l =~ /^-> (.*)$/ && $stmt->{last} < $stmt->{first})
		{
			$stmt->{sql} .= "\n" . $1;
			$stmt->{first} = $k + 1;
			$stmt->{last} = $k;
		}
		else
		{
			push @{ $stmt->{expected} }, $l;
			$stmt->{last} = $k;
		}
	}
	for my $s (grep { $_->{type} eq 'stmt' && $_->{block} == $block } @{ $page->{items} })
	{
		if ($s->{sql} !~ /^\\/ && $s->{sql} !~ /;\s*(--.*)?$/)
		{
			$s->{type} = 'error';
			$s->{message} = 'a statement must end with ";" (or be a psql meta-command such as \x)';
		}
	}
	return;
}

# ---- running ----

sub normalize
{
	my @l = map { s/\s+$//r } @_;
	s/(server process with PID )\d+/${1}N/ for @l;
	pop @l while @l && $l[-1] eq '';
	return @l;
}

my $node = PostgreSQL::Test::Cluster->new('docs');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_incident'
timezone = 'UTC'
log_timezone = 'UTC'
datestyle = 'iso, ymd'
intervalstyle = 'postgres'
lc_messages = 'C'
});
$node->start;

# The pages run as a superuser named postgres, whatever the OS user is, so
# that actors in the output do not depend on who runs the test.
sub superuser_postgres
{
	my ($n) = @_;
	$n->safe_psql('postgres',
		q{DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postgres') THEN CREATE ROLE postgres SUPERUSER LOGIN; END IF; END $$});
	return;
}
superuser_postgres($node);

my $nopreload;    # started when a page needs it

sub server_without_preload
{
	return $nopreload if $nopreload;
	$nopreload = PostgreSQL::Test::Cluster->new('docs_nopreload');
	$nopreload->init;
	$nopreload->append_conf(
		'postgresql.conf', q{
timezone = 'UTC'
log_timezone = 'UTC'
datestyle = 'iso, ymd'
intervalstyle = 'postgres'
lc_messages = 'C'
});
	$nopreload->start;
	superuser_postgres($nopreload);
	return $nopreload;
}

# run_psql(NODE, DB, ITEMS): run the items in one psql session; sets
# $item->{actual} (an array of lines) on each.
sub run_psql
{
	my ($n, $db, $items) = @_;
	my $script = '';
	for my $k (0 .. $#$items)
	{
		$script .= "\\echo '<<<docs-test-item $k>>>'\n" . $items->[$k]{sql} . "\n";
	}
	$script .= "\\echo '<<<docs-test-end>>>'\n";
	local $ENV{PGTZ} = 'UTC';
	local $ENV{PGDATESTYLE} = 'ISO, YMD';
	local $ENV{PGOPTIONS};
	delete $ENV{PGOPTIONS};
	my $out = '';
	IPC::Run::run([ 'psql', '-X', '-v', 'SHOW_CONTEXT=never', '-d', $n->connstr($db) . ' user=postgres' ],
		'<', \$script, '>&', \$out);
	my $current;
	for my $l (split /\n/, $out, -1)
	{
		if ($l =~ /^<<<docs-test-item (\d+)>>>$/)
		{
			$current = $items->[$1];
			$current->{actual} = [];
		}
		elsif ($l eq '<<<docs-test-end>>>')
		{
			$current = undef;
		}
		elsif ($current)
		{
			push @{ $current->{actual} }, $l;
		}
	}
	return;
}

sub diff_text
{
	my ($exp, $act) = @_;
	my $n = @$exp > @$act ? scalar @$exp : scalar @$act;
	my $text = '';
	for my $k (0 .. $n - 1)
	{
		my $e = $exp->[$k];
		my $a = $act->[$k];
		if (defined $e && defined $a && $e eq $a) { $text .= "  $e\n"; next }
		$text .= "- $e\n" if defined $e;
		$text .= "+ $a\n" if defined $a;
	}
	return $text;
}

my %rewrite;    # file => page, when accepting

my $pageno = 0;
for my $file (@pages)
{
	my $page = parse_page($file);
	my @items = @{ $page->{items} };
	$pageno++;
	my $db = "docs_$pageno";

	for my $e (grep { $_->{type} eq 'error' } @items)
	{
		fail("$file:$e->{line}: $e->{message}");
	}
	my @run = grep { $_->{type} ne 'error' } @items;
	next unless @run;

	my $roles_before = $node->safe_psql('postgres', 'SELECT string_agg(quote_literal(rolname), \',\') FROM pg_roles');
	my $dbs_before = $node->safe_psql('postgres', 'SELECT string_agg(quote_literal(datname), \',\') FROM pg_database');
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION pg_incident') unless $page->{no_extension};

	run_psql($node, $db, [ grep { !$_->{no_preload} } @run ]);

	# blocks on a server without the preloaded library, each in its own session
	my %blocks;
	push @{ $blocks{ $_->{block} } }, $_ for grep { $_->{no_preload} } @run;
	for my $b (sort { $a <=> $b } keys %blocks)
	{
		my $np = server_without_preload();
		my $npdb = "docs_${pageno}_$b";
		$np->safe_psql('postgres', "CREATE DATABASE $npdb");
		$np->safe_psql($npdb, 'CREATE EXTENSION pg_incident') unless $page->{no_extension};
		run_psql($np, $npdb, $blocks{$b});
		$np->safe_psql('postgres', "DROP DATABASE $npdb");
	}

	for my $it (@run)
	{
		my @act = normalize(@{ $it->{actual} // ['(no output: psql stopped before this)'] });
		if ($it->{type} eq 'setup')
		{
			my @bad = grep { /^(ERROR|FATAL|WARNING|PANIC):/ } @act;
			ok(!@bad, "$file:$it->{line}: setup runs") or diag(join("\n", @act));
			next;
		}
		my @exp = normalize(@{ $it->{expected} });
		my $oneline = $it->{sql} =~ s/\s+/ /gr;
		$oneline = substr($oneline, 0, 60) . '...' if length($oneline) > 63;
		if ($accept && join("\n", @exp) ne join("\n", @act))
		{
			push @{ $rewrite{$file}{changes} }, $it;
			$rewrite{$file}{page} = $page;
			pass("$file:$it->{line}: $oneline (output rewritten)");
			next;
		}
		ok(join("\n", @exp) eq join("\n", @act), "$file:$it->{line}: $oneline")
		  or diag("$file:$it->{line}: output of\n  => $it->{sql}\n"
			  . "differs (- shown in the file, + actual):\n"
			  . diff_text(\@exp, \@act));
	}

	my $new_dbs = $node->safe_psql('postgres',
		"SELECT string_agg(quote_ident(datname), ' ') FROM pg_database WHERE datname NOT IN ($dbs_before) AND datname <> '$db'");
	$node->safe_psql('postgres', "DROP DATABASE $_") for ($db, split(/ /, $new_dbs));
	my $new_roles = $node->safe_psql('postgres',
		"SELECT string_agg(quote_ident(rolname), ', ') FROM pg_roles WHERE rolname NOT IN ($roles_before)");
	$node->safe_psql('postgres', "DROP ROLE $new_roles") if $new_roles ne '';
}

# PG_INCIDENT_DOCS_ACCEPT: write the actual outputs into the files.
for my $file (sort keys %rewrite)
{
	my @lines = @{ $rewrite{$file}{page}{lines} };
	for my $it (sort { $b->{first} <=> $a->{first} } @{ $rewrite{$file}{changes} })
	{
		my @act = map { s/\s+$//r } @{ $it->{actual} // [] };
		pop @act while @act && $act[-1] eq '';
		# keep the blank line psql prints after a result when another statement follows
		my $next = $lines[ $it->{last} + 1 ] // '';
		push @act, '' if @act && $next =~ /^=> / && $act[-1] =~ /^\(\d+ rows?\)$/;
		splice(@lines, $it->{first}, $it->{last} - $it->{first} + 1, @act);
	}
	open(my $fh, '>', "$top/$file") or die "cannot write $top/$file: $!";
	print $fh map { "$_\n" } @lines;
	close $fh;
	diag("rewrote the outputs of $file");
}

done_testing();
