# The dispatcher workers across the 0.7.0 → 0.8.0 update: the 0.8.0 library
# (two workers) is installed while the database still has 0.7.0's schema,
# whose claim and start-up know nothing of workers.  Until ALTER EXTENSION
# UPDATE runs, worker 0 sends with 0.7.0's functions and worker 1 waits;
# after it, worker 1 joins by itself, and no message is sent twice.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SCTest;
use Test::More;

my $hook = start_webhook_sink();
my $node = sc_node('workers_upgrade');
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION status_checker VERSION '0.7.0'");
my ($t, $f) = setup_tenant($node, '移行中', 60, $hook);

# the workers' shared-memory counters, read through the 0.8.0 library
# (0.7.0's schema has no dispatcher_workers())
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.workers(OUT worker integer, OUT running boolean, OUT pid integer,
		OUT started_at timestamptz, OUT heartbeat timestamptz, OUT in_flight bigint, OUT waiting bigint,
		OUT sent bigint, OUT retried bigint, OUT dead bigint)
	RETURNS SETOF record LANGUAGE c AS '$libdir/status_checker', 'sc_dispatcher_workers'});
ok(wait_until(30, sub {
	$node->safe_psql('postgres', 'SELECT count(*) FROM public.workers() WHERE running') eq '2' }),
	'the 0.8.0 library runs two dispatcher workers on the 0.7.0 schema');

my $r1 = $node->safe_psql('postgres',
	"SELECT status_checker.create_request($t, $f, '更新前', now() + interval '1 hour', "
	  . "(SELECT jsonb_build_object('sites', jsonb_agg('S' || g)) FROM generate_series(1, 20) g))");
ok(wait_until(60, sub { (outbox_counts($node, $r1)->{sent} // 0) == 20 }),
	'before the update: the 20 webhooks are sent');
is($node->safe_psql('postgres', q{SELECT string_agg(worker || ':' || sent, ' ' ORDER BY worker) FROM public.workers()}),
	'0:20 1:0', "... all by worker 0, with 0.7.0's functions; worker 1 waits");

# to the current version (0.7.0 → 0.8.0 → …)
my ($version) = PostgreSQL::Test::Utils::slurp_file("$FindBin::RealBin/../../status_checker.control")
  =~ /^default_version\s*=\s*'([^']+)'/m;
$node->safe_psql('postgres', 'ALTER EXTENSION status_checker UPDATE');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'status_checker'"),
	$version, "ALTER EXTENSION UPDATE while the workers run (to $version)");

# small requests, one every half second, until worker 1 has claimed some
my @requests;
ok(wait_until(60, sub {
	my $n = scalar(@requests) + 1;
	push @requests, $node->safe_psql('postgres',
		"SELECT status_checker.create_request($t, $f, '更新後 $n', now() + interval '1 hour', "
		  . "(SELECT jsonb_build_object('sites', jsonb_agg('S' || g)) FROM generate_series(21, 60) g))");
	select(undef, undef, undef, 0.5);
	$node->safe_psql('postgres', 'SELECT count(*) > 0 FROM status_checker.outbox WHERE claimed_by = 1') eq 't' }),
	'after the update, worker 1 joins by itself');
my $ids = join(',', @requests);
ok(wait_until(60, sub {
	$node->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE state = 'sent') = count(*) FROM status_checker.outbox WHERE request_id IN ($ids)") eq 't' }),
	'every message of the ' . scalar(@requests) . ' requests made after the update is sent');
my $s = sink_stats($hook, 'sc1-');
my $total = $node->safe_psql('postgres', 'SELECT count(*) FROM status_checker.outbox');
is($s->{keys}, $total, "the receiver saw each of the $total messages");
is($s->{duplicates}, 0, '... and none twice');
diag(sprintf('workers after the update: %s',
	$node->safe_psql('postgres', q{SELECT string_agg(worker || ':' || sent, ' ' ORDER BY worker) FROM status_checker.dispatcher_workers()})));

$node->stop;
done_testing();
