# Contention without crashes: the dispatcher claims and records while other
# sessions issue links (issue_tokens, many targets in one transaction) and
# submit reports on the same request targets.  Found by the burst
# benchmark: the claim's first-link writes and issue_tokens locked the same
# targets in different orders and deadlocked; the dispatcher then started
# over and sent its in-flight messages a second time.  Now both lock in key
# order, and a failed transaction is retried without starting over: no
# deadlock, and with no crash not one duplicate.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SCTest;
use Test::More;

my $hook = start_webhook_sink();
my $node = sc_node('contention', conf => "status_checker.dispatch_batch_size = 1000\nlog_lock_waits = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION status_checker');
# 50 tenants of 100 sites: as after an earthquake, their rules create a
# request each in one transaction (the feed watcher's), 5,000 messages due
# at the same moment; at once another session issues the links of every
# open request in one transaction (an integrator's export), and reports
# come in.  Three rounds.
my @tenants;
for my $i (1 .. 50)
{
	my ($t, $f) = setup_tenant($node, "競合$i", 100, $hook);
	push @tenants, [ $t, $f ];
}
my $answers = '{"building": "none", "injured": 0, "operation": "normal"}';
my @clients;
my $rounds = 3;
for my $round (1 .. $rounds)
{
	$node->safe_psql('postgres', join("\n", 'BEGIN;',
		(map { "SELECT status_checker.create_request($_->[0], $_->[1], '余震 $round', now() + interval '1 hour');" } @tenants),
		'COMMIT;'));
	$node->safe_psql('postgres',
		"SELECT count(*) FROM status_checker.request r, status_checker.issue_tokens(r.request_id) WHERE r.state = 'open'");
	my $rid = $node->safe_psql('postgres', 'SELECT max(request_id) FROM status_checker.request');
	push @clients, start_report_clients($node, $rid, 1, $answers);
}
my $total = 50 * 100 * $rounds;
ok(wait_until(180, sub {
	$node->safe_psql('postgres',
		"SELECT count(*) = $total FROM status_checker.outbox WHERE state = 'sent'") eq 't' }),
	"all $total messages are sent");
ok(wait_report_clients($_), 'a report client finished') for @clients;
my $s = sink_stats($hook, 'sc1-');
is($s->{keys}, $total, 'the receiver saw every idempotency key');
is($s->{duplicates}, 0, 'and not one twice (no crash, no duplicate)');
my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
unlike($log, qr/deadlock detected/, 'no deadlock in the server log');
unlike($log, qr/could not be recorded|left sending by a previous run/,
	'the dispatcher never started over');
diag(sprintf('contention: %d messages, %d webhooks received, %d duplicates', $total, $s->{requests}, $s->{duplicates}));

$node->stop;
done_testing();
