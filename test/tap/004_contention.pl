# Contention without crashes: the dispatcher claims and records while other
# sessions issue links (issue_tokens, many targets in one transaction) and
# submit reports on the same request targets.  Found by the burst
# benchmark: the claim's first-link writes and issue_tokens locked the same
# targets in different orders and deadlocked; the dispatcher then started
# over and sent its in-flight messages a second time.  Then both locked in
# key order; since 0.9.0 the claim writes no target at all (a first link is
# issued by its first report).  A failed transaction is retried without
# starting over: no deadlock, and with no crash not one duplicate.  Then a claim and a record
# that fail for a while (their function renamed away and back) are
# retried, again without a duplicate.
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

# A claim, then a record, that fail for a while (their function is renamed
# away, then back): the dispatcher retries them; nothing is sent twice.
my ($t1, $f1) = @{ $tenants[0] };
$node->safe_psql('postgres', 'ALTER FUNCTION status_checker._claim_messages(integer, integer, integer) RENAME TO _claim_messages_away');
my $r1 = $node->safe_psql('postgres',
	"SELECT status_checker.create_request($t1, $f1, '再試行 1', now() + interval '1 hour', target => '{\"sites\": [\"S1\", \"S2\", \"S3\"]}')");
ok(wait_until(60, sub { PostgreSQL::Test::Utils::slurp_file($node->logfile) =~ /_claim_messages\(integer, integer, integer\) does not exist/ }),
	'a claim fails (its function is gone)');
$node->safe_psql('postgres', 'ALTER FUNCTION status_checker._claim_messages_away(integer, integer, integer) RENAME TO _claim_messages');
ok(wait_until(60, sub { (outbox_counts($node, $r1)->{sent} // 0) == 3 }), '... and is retried: the 3 messages are sent');

$node->safe_psql('postgres',
	'ALTER FUNCTION status_checker._record_outcomes(bigint[], bigint[], integer[], text[], integer[], text[], integer[], integer, integer, integer) RENAME TO _record_outcomes_away');
my $r2 = $node->safe_psql('postgres',
	"SELECT status_checker.create_request($t1, $f1, '再試行 2', now() + interval '1 hour', target => '{\"sites\": [\"S4\", \"S5\", \"S6\"]}')");
ok(wait_until(60, sub {
	my $k = sink_stats($hook, 'sc1-')->{keys};
	$k >= $total + 6 && PostgreSQL::Test::Utils::slurp_file($node->logfile) =~ /_record_outcomes\(.*\) does not exist/ }),
	'the messages go out, but their outcomes cannot be recorded');
is(outbox_counts($node, $r2)->{sending}, 3, '... they stay sending meanwhile');
$node->safe_psql('postgres',
	'ALTER FUNCTION status_checker._record_outcomes_away(bigint[], bigint[], integer[], text[], integer[], text[], integer[], integer, integer, integer) RENAME TO _record_outcomes');
ok(wait_until(60, sub { (outbox_counts($node, $r2)->{sent} // 0) == 3 }), '... and are recorded on a retry');
$s = sink_stats($hook, 'sc1-');
is($s->{duplicates}, 0, 'nothing was sent twice');
unlike(PostgreSQL::Test::Utils::slurp_file($node->logfile), qr/could not be recorded|left sending by a previous run/,
	'the dispatcher never started over');

$node->stop;
done_testing();
