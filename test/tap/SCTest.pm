# test/tap/SCTest.pm — helpers of status_checker's TAP tests (resilience).
#
# Built on PostgreSQL's own PostgreSQL::Test::Cluster: each test makes its
# nodes with sc_node(), which preloads the extension, starts its workers
# in database "postgres" and gives the node a master key of its own.  The
# webhook receiver is test/integration/webhook_sink.py on 127.0.0.1.
# Nothing here sleeps blindly: every wait polls with a deadline.

package SCTest;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use IPC::Run ();
use JSON::PP ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(sc_node sc_master_key start_webhook_sink start_feed_server sink_stats sink_log
  setup_tenant worker_pids all_new wait_until start_report_clients
  wait_report_clients acked_reports outbox_counts);

our $root = File::Spec->rel2abs(dirname(__FILE__) . '/../..');
our $python = $ENV{SC_PYTHON} || '/usr/bin/python3';
my @sinks;
my %sink_logs;					# url -> its JSON lines file

# A random 256-bit master key (hex) in FILE, mode 600: the key that wraps
# the tenants' data keys (docs/security.md).  With OLD, its keys follow.
sub sc_master_key
{
	my ($file) = @_;
	open(my $rnd, '<:raw', '/dev/urandom') or die "urandom: $!";
	read($rnd, my $bytes, 32) == 32 or die "urandom: short read";
	close $rnd;
	umask 077;
	open(my $fh, '>', $file) or die "$file: $!";
	print $fh unpack('H*', $bytes), "\n";
	close $fh;
	chmod 0600, $file;
	return $file;
}

# sc_node(NAME, streaming => 0|1, conf => "extra settings") — a new node,
# initialised, with status_checker preloaded; not started.  Its dispatcher
# may send to 127.0.0.0/8 (the receivers of the tests are on 127.0.0.1).
sub sc_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $opts{streaming} ? 1 : 0);
	my $key = sc_master_key($node->basedir . '/master.key');
	$node->append_conf('postgresql.conf', <<"EOF");
shared_preload_libraries = 'status_checker'
status_checker.database = 'postgres'
status_checker.master_key_file = '$key'
status_checker.dispatch_timeout = '2s'
status_checker.dispatch_retry_base = '100ms'
status_checker.dispatch_retry_max = '1s'
status_checker.dispatch_max_attempts = 50
status_checker.dispatch_lease = '5s'
status_checker.link_base_url = 'https://status.example.com/r/'
status_checker.allowed_destinations = '127.0.0.0/8'
restart_after_crash = on
wal_log_hints = on
log_min_messages = warning
EOF
	$node->append_conf('postgresql.conf', $opts{conf}) if $opts{conf};
	return $node;
}

# The webhook receiver: returns its base URL ("http://127.0.0.1:PORT").
sub start_webhook_sink
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my ($log, $portfile) = ("$dir/hooks.jsonl", "$dir/hook.port");
	my $h = IPC::Run::start(
		[ $python, "$root/test/integration/webhook_sink.py", $log, $portfile ],
		'>', "$dir/sink.out", '2>', "$dir/sink.err");
	push @sinks, $h;
	wait_until(30, sub { -s $portfile }) or die "the webhook receiver did not start";
	my $port = PostgreSQL::Test::Utils::slurp_file($portfile);
	chomp $port;
	$sink_logs{"http://127.0.0.1:$port"} = $log;
	return "http://127.0.0.1:$port";
}

# Every webhook the receiver got, in order: [{ time, key, link }, ...].
# The link's host tells which node sent it: each node of a test gets its
# own status_checker.link_base_url.
sub sink_log
{
	my ($url) = @_;
	my @hooks;
	open(my $fh, '<:raw', $sink_logs{$url}) or die "$sink_logs{$url}: $!";
	while (my $line = <$fh>)
	{
		my $h = JSON::PP::decode_json($line);
		my $body = eval { JSON::PP->new->decode($h->{body}) } // {};	# characters
		push @hooks, { time => $h->{time}, key => $h->{headers}{'Idempotency-Key'} // '',
			link => $body->{link} // '' };
	}
	close $fh;
	return \@hooks;
}

# The local feed server (test/integration/feed_server.py) replaying the
# recorded feeds of FIXTURES: returns its base URL.  Stopped at the end,
# whatever happens to the test.
sub start_feed_server
{
	my ($fixtures) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $h = IPC::Run::start(
		[ $python, "$root/test/integration/feed_server.py", $fixtures, "$dir/port" ],
		'>', "$dir/out", '2>', "$dir/err");
	push @sinks, $h;
	wait_until(30, sub { -s "$dir/port" }) or die "the feed server did not start";
	return 'http://127.0.0.1:' . PostgreSQL::Test::Utils::slurp_file("$dir/port");
}

END
{
	local $?;					# keep the test's exit status
	$_->kill_kill for @sinks;
}

# What the receiver saw of the messages whose idempotency keys start with
# PREFIX: { requests => n, keys => distinct keys, duplicates => n }.
sub sink_stats
{
	my ($url, $prefix) = @_;
	my $json = `curl -s --max-time 10 '$url/_stats'`;
	die "the webhook receiver did not answer" if $? != 0;
	my $keys = JSON::PP::decode_json($json)->{keys};
	my ($requests, $distinct) = (0, 0);
	for my $k (keys %$keys)
	{
		next if defined $prefix && index($k, $prefix) != 0;
		$requests += $keys->{$k};
		$distinct++;
	}
	return { requests => $requests, keys => $distinct,
		duplicates => $requests - $distinct };
}

# A tenant with NSITES sites "S1".."Sn", the default form and a webhook
# channel to URL; returns (tenant id, form id).
sub setup_tenant
{
	my ($node, $name, $nsites, $url) = @_;
	my $import = $nsites ? <<"SQL" : '';
SELECT import_sites(:t, 'code,name,municipality_code,lat,lon' || E'\\n' ||
       string_agg(format('S%s,拠点%s,1310100,35.6,139.7', i, i), E'\\n'))
  FROM generate_series(1, $nsites) i;
SQL
	my $ids = $node->safe_psql('postgres', <<"SQL");
SET search_path = status_checker;
SELECT create_tenant('$name', 'admin', 'admin\@example.com') AS t \\gset
SELECT create_form(:t, 'f', default_form_definition()) AS f \\gset
$import
SELECT add_channel(:t, 'webhook', 'sink', jsonb_build_object('url', '$url/ok', 'secret', 'whsec-resilience-test'));
SELECT :t, :f;
SQL
	return split /\|/, (split /\n/, $ids)[-1];
}

# Process ids of the workers: { dispatcher => "pid,pid" (the dispatcher
# workers', sorted), watcher => pid } (absent while a worker is down).
sub worker_pids
{
	my ($node) = @_;
	my ($rc, $out) = $node->psql('postgres', q{
		SELECT backend_type, pid FROM pg_stat_activity
		 WHERE backend_type IN ('status_checker dispatcher', 'status_checker feed watcher')});
	my (%pids, @dispatchers);
	for (split /\n/, $out // '')
	{
		my ($type, $pid) = split /\|/;
		if ($type =~ /dispatcher/) { push @dispatchers, $pid; }
		else { $pids{watcher} = $pid; }
	}
	$pids{dispatcher} = join(',', sort { $a <=> $b } @dispatchers) if @dispatchers;
	return \%pids;
}

# Are the process ids NEW ("pid,pid") as many as OLD, and all different?
sub all_new
{
	my ($new, $old) = @_;
	return 0 unless $new && $old;
	my @n = split /,/, $new;
	my %o = map { $_ => 1 } split /,/, $old;
	return @n == keys(%o) && !grep { $o{$_} } @n;
}

# Poll CODE until it returns true or SECONDS pass; returns the result.
sub wait_until
{
	my ($seconds, $code) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		my $r = eval { $code->() };
		return $r if $r;
		usleep(100_000);
	}
	return 0;
}

# Reports from NCLIENTS concurrent clients (test/tap/report_client.sh),
# each through its share of the request's personal links.  Every
# acknowledged report (the server said which report id it stored) is
# written to the client's ack file; a client that loses its connection
# waits for the server and goes on.  CONNINFO (default: the node) may
# name several hosts with target_session_attrs=read-write, as applications
# do to follow a failover.  Returns the clients' handles.
sub start_report_clients
{
	my ($node, $request_id, $nclients, $answers, $conninfo) = @_;
	$conninfo //= $node->connstr('postgres');
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $tokens = $node->safe_psql('postgres',
		"SELECT token FROM status_checker.issue_tokens($request_id)");
	my @tokens = split /\n/, $tokens;
	my @clients;
	for my $c (0 .. $nclients - 1)
	{
		my $file = "$dir/tokens.$c";
		open(my $fh, '>', $file) or die "$file: $!";
		for (my $i = $c; $i < @tokens; $i += $nclients)
		{
			print $fh "$tokens[$i]\n";
		}
		close $fh;
		my $h = IPC::Run::start(
			[ 'bash', "$root/test/tap/report_client.sh", $conninfo,
			  $file, "$dir/ack.$c", $answers ],
			'>', "$dir/client.$c.out", '2>', "$dir/client.$c.err");
		push @clients, { handle => $h, ack => "$dir/ack.$c", err => "$dir/client.$c.err" };
	}
	return \@clients;
}

sub wait_report_clients
{
	my ($clients) = @_;
	my $ok = 1;
	for my $c (@$clients)
	{
		$c->{handle}->finish or $ok = 0;
	}
	return $ok;
}

# The acknowledged report ids of all clients.
sub acked_reports
{
	my ($clients) = @_;
	my @ids;
	for my $c (@$clients)
	{
		next unless -e $c->{ack};
		open(my $fh, '<', $c->{ack}) or die "$c->{ack}: $!";
		while (<$fh>)
		{
			push @ids, $1 if /^\S+ (\d+)$/;
		}
		close $fh;
	}
	return \@ids;
}

# The outbox of a request by state: { sent => n, queued => n, ... }.
sub outbox_counts
{
	my ($node, $request_id) = @_;
	my $out = $node->safe_psql('postgres',
		"SELECT state, count(*) FROM status_checker.outbox WHERE request_id = $request_id GROUP BY state");
	my %c = map { split /\|/ } split /\n/, $out;
	return \%c;
}

1;
