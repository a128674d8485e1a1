# The workers across the 0.10.1 → 1.0.0 update: the 1.0.0 library (two
# dispatcher workers) is installed while the database still has 0.10.1's
# schema, as between installing the new package and ALTER EXTENSION UPDATE.
# The workers send on that schema and reports are stored through the links
# they sent; the update runs while they work; afterwards they go on by
# themselves, the new links take reports, and no message is sent twice.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SCTest;
use Test::More;

my $from = '0.10.1';
my $hook = start_webhook_sink();
my $node = sc_node('workers_upgrade', conf => 'status_checker.dispatch_workers = 2');
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION status_checker VERSION '$from'");
my ($t, $f) = setup_tenant($node, '移行中', 60, $hook);

ok(wait_until(30, sub {
	$node->safe_psql('postgres', 'SELECT count(*) FROM status_checker.dispatcher_workers() WHERE running') eq '2' }),
	"the new library runs two dispatcher workers on the $from schema");

my $answers = q{'{"building": "none", "injured": 0, "operation": "normal"}'};
# a report through the link of the Nth webhook the receiver got (the first
# 20 are the request's made before the update, the next ones after it)
sub report_by_link
{
	my ($n) = @_;
	my ($token) = sink_log($hook)->[$n]{link} =~ m{/r/(.+)$};
	return 'no link' unless defined $token;
	return $node->safe_psql('postgres', "SELECT status_checker.submit_report('$token', $answers) > 0");
}

my $r1 = $node->safe_psql('postgres',
	"SELECT status_checker.create_request($t, $f, '更新前', now() + interval '1 hour', "
	  . "(SELECT jsonb_build_object('sites', jsonb_agg('S' || g)) FROM generate_series(1, 20) g))");
ok(wait_until(60, sub { (outbox_counts($node, $r1)->{sent} // 0) == 20 }),
	"before the update: the 20 webhooks are sent");
is($node->safe_psql('postgres', 'SELECT sum(sent) FROM status_checker.dispatcher_workers()'), '20',
	'... by the two workers, once each');
is(report_by_link(0), 't', "a link sent on the $from schema takes a report");

my ($version) = PostgreSQL::Test::Utils::slurp_file("$FindBin::RealBin/../../status_checker.control")
  =~ /^default_version\s*=\s*'([^']+)'/m;
$node->safe_psql('postgres', 'ALTER EXTENSION status_checker UPDATE');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'status_checker'"),
	$version, "ALTER EXTENSION UPDATE while the workers run (to $version)");

my @requests;
for my $n (1 .. 4)
{
	push @requests, $node->safe_psql('postgres',
		"SELECT status_checker.create_request($t, $f, '更新後 $n', now() + interval '1 hour', "
		  . "(SELECT jsonb_build_object('sites', jsonb_agg('S' || g)) FROM generate_series(21, 60) g))");
}
my $ids = join(',', @requests);
ok(wait_until(60, sub {
	$node->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE state = 'sent') = count(*) FROM status_checker.outbox WHERE request_id IN ($ids)") eq 't' }),
	'every message of the 4 requests made after the update is sent');
my $s = sink_stats($hook, 'sc1-');
my $total = $node->safe_psql('postgres', 'SELECT count(*) FROM status_checker.outbox');
is($s->{keys}, $total, "the receiver saw each of the $total messages");
is($s->{duplicates}, 0, '... and none twice');
is(report_by_link(1), 't', "a link sent before the update takes a report after it");
is(report_by_link(25), 't', 'a link sent after the update takes a report');
is($node->safe_psql('postgres', "SELECT count(*) FROM status_checker.report"), '3', 'the three reports are stored');
diag(sprintf('workers: %s',
	$node->safe_psql('postgres', q{SELECT string_agg(worker || ':' || sent, ' ' ORDER BY worker) FROM status_checker.dispatcher_workers()})));

$node->stop;
done_testing();
