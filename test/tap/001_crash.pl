# Crash safety of the workers and of the report path (requirements Q1).
#
# 1,000 sites answer through their personal links from 4 concurrent
# clients while their 1,000 webhooks are sent.  In the middle of it a
# client's backend, then the dispatcher, then the feed watcher are killed
# with SIGKILL: each time the postmaster resets every process and the
# workers come back by themselves.  Afterwards every acknowledged report
# exists, every message was sent, and any message sent twice is
# recognisable by its idempotency key (counted, printed).  Then
# pg_terminate_backend of each worker and DROP DATABASE of another database
# must not stop the workers for good nor hang them; nor DROP DATABASE of
# their own (they work again once it is back).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SCTest;
use Test::More;
use Time::HiRes qw(time);

my $hook = start_webhook_sink();
# 200 messages a second through the channel: the 1,000 take about 5 s,
# long enough to crash the server three times in the middle of them
my $node = sc_node('crash', conf => "status_checker.dispatch_rate_limit = 200\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION status_checker');
my ($t, $f) = setup_tenant($node, '耐障害', 1000, $hook);

ok(wait_until(60, sub { my $p = worker_pids($node); $p->{watcher} && ($p->{dispatcher} // '') =~ /^\d+,\d+$/ }),
	'the workers run: the feed watcher and two dispatcher workers (status_checker.dispatch_workers)');
my $pids = worker_pids($node);

my $rid = $node->safe_psql('postgres',
	"SELECT status_checker.create_request($t, $f, '地震 被害報告', now() + interval '1 hour')");
my $answers = '{"building": "partial", "detail": "壁にひび", "injured": 0, "operation": "limited"}';
my $clients = start_report_clients($node, $rid, 4, $answers);

# SIGKILL a backend that is storing a report (inside its transaction, not
# yet committed): the postmaster resets every process
ok(wait_until(60, sub {
	$node->safe_psql('postgres', 'SELECT count(*) >= 150 FROM status_checker.report') eq 't' }),
	'reports arrive from 4 clients');
my $other = $node->safe_psql('postgres',
	"SELECT status_checker.create_request($t, $f, '別件', now() + interval '1 hour', target => '{\"sites\": [\"S1\"]}')");
my $other_token = $node->safe_psql('postgres', "SELECT token FROM status_checker.issue_tokens($other)");
my $bg = $node->background_psql('postgres');
my $victim = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_safe("BEGIN; SELECT status_checker.submit_report('$other_token', '$answers')");
my $before = outbox_counts($node, $rid);
ok(kill('KILL', $victim), "kill -9 of a backend storing a report (pid $victim)");
eval { $bg->quit };
note(sprintf('at the backend crash: %d messages sent', $before->{sent} // 0));
my $old = $pids;
ok(wait_until(60, sub {
	my $p = worker_pids($node);
	all_new($p->{dispatcher}, $old->{dispatcher}) && $p->{watcher} && $p->{watcher} != $old->{watcher} }),
	'after the reset both workers are back by themselves');

# SIGKILL the dispatcher while it sends
$pids = worker_pids($node);
ok(wait_until(60, sub { (outbox_counts($node, $rid)->{sent} // 0) >= 300 }), 'sending goes on');
$before = outbox_counts($node, $rid);
my ($victim_d) = split /,/, $pids->{dispatcher};
ok(kill('KILL', $victim_d), "kill -9 of a dispatcher worker (pid $victim_d)");
note(sprintf('at the dispatcher crash: %d messages sent, %d sending', $before->{sent} // 0, $before->{sending} // 0));
ok(wait_until(60, sub {
	my $p = worker_pids($node);
	all_new($p->{dispatcher}, $pids->{dispatcher}) }),
	'the dispatcher workers are back (the postmaster reset them all)');

# SIGKILL the feed watcher
$pids = worker_pids($node);
ok(kill('KILL', $pids->{watcher}), "kill -9 of the feed watcher (pid $pids->{watcher})");
ok(wait_until(60, sub {
	my $p = worker_pids($node);
	$p->{watcher} && $p->{watcher} != $pids->{watcher} && $p->{dispatcher} }),
	'the feed watcher is back');

is($node->safe_psql('postgres', "SELECT count(*) FROM status_checker.report WHERE request_id = $other"), 0,
	'the report being stored when its backend was killed is not there (never acknowledged)');
ok(wait_report_clients($clients), 'the report clients finished');
my $acked = acked_reports($clients);
my $errors = 0;
for my $c (@$clients)
{
	$errors += () = PostgreSQL::Test::Utils::slurp_file($c->{ack}) =~ / ERROR$/mg;
}
is($errors, 0, 'no report was refused');
is(scalar(@$acked), 1000, 'every one of the 1,000 links got an acknowledged report');
my $ids = join(',', @$acked);
is($node->safe_psql('postgres', "SELECT count(*) FROM status_checker.report WHERE report_id IN ($ids)"),
	scalar(@$acked), 'every acknowledged report exists');
my $present = $node->safe_psql('postgres',
	"SELECT count(*) FROM status_checker.report WHERE tenant_id = $t");
my $responded = $node->safe_psql('postgres',
	"SELECT responded FROM status_checker.request_summary WHERE request_id = $rid");
is($responded, 1000, 'the summary counts 1,000 sites that answered');

ok(wait_until(120, sub {
	my $c = outbox_counts($node, $rid);
	($c->{sent} // 0) == 1000 }), 'all 1,000 messages are sent');
# (the tenant's messages: the 1,000 and the one of the other request)
my $queued = $node->safe_psql('postgres', "SELECT count(*) FROM status_checker.outbox WHERE tenant_id = $t");
ok(wait_until(60, sub { outbox_counts($node, $other)->{sent} }), 'the other request\'s message is sent too');
my $s;
ok(wait_until(30, sub { $s = sink_stats($hook, "sc1-$t-"); $s->{keys} == $queued }),
	"the receiver saw all $queued idempotency keys: none lost");
my $dead = $node->safe_psql('postgres',
	"SELECT count(*) FROM status_checker.outbox WHERE request_id = $rid AND state = 'dead'");
is($dead, 0, 'no message is dead');
diag(sprintf('crash test: reports acknowledged %d, present %d; messages queued %d, sent %d, '
	  . 'received %d, duplicates %d (each recognisable by its idempotency key)',
	  scalar(@$acked), $present, $queued, $node->safe_psql('postgres',
		  "SELECT count(*) FROM status_checker.outbox WHERE tenant_id = $t AND state = 'sent'"),
	  $s->{requests}, $s->{duplicates}));

# pg_terminate_backend: each worker ends, and comes back
$pids = worker_pids($node);
is($node->safe_psql('postgres',
	"SELECT bool_and(pg_terminate_backend(p)) AND pg_terminate_backend($pids->{watcher}) FROM unnest('{$pids->{dispatcher}}'::int[]) p"),
	't', 'pg_terminate_backend of the workers');
ok(wait_until(60, sub {
	my $p = worker_pids($node);
	all_new($p->{dispatcher}, $pids->{dispatcher}) && $p->{watcher} && $p->{watcher} != $pids->{watcher} }),
	'the workers come back after pg_terminate_backend');

# DROP DATABASE of another database (with the extension in it) while the
# workers run: they neither stop nor hang
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION status_checker');
$pids = worker_pids($node);
my $t0 = time;
$node->safe_psql('postgres', 'DROP DATABASE other');
note(sprintf('DROP DATABASE other took %.2f s', time - $t0));
my $rid2 = $node->safe_psql('postgres',
	"SELECT status_checker.create_request($t, $f, '余震', now() + interval '1 hour', target => '{\"sites\": [\"S1\", \"S2\", \"S3\"]}')");
ok(wait_until(60, sub { (outbox_counts($node, $rid2)->{sent} // 0) == 3 }),
	'after DROP DATABASE of another database the dispatcher still sends');
my $p = worker_pids($node);
is_deeply($p, $pids, '... with the same worker processes (not restarted, not hung)');

# DROP DATABASE of the workers' own database (WITH FORCE ends their
# sessions): they keep trying, without hanging, and when the database and
# the extension are back they work again
$node->safe_psql('template1', 'DROP DATABASE postgres WITH (FORCE)');
ok(wait_until(60, sub { PostgreSQL::Test::Utils::slurp_file($node->logfile) =~ /database "postgres" does not exist/ }),
	'with their database dropped, the workers fail to connect (and are started again)');
$node->safe_psql('template1', 'CREATE DATABASE postgres');
$node->safe_psql('postgres', 'CREATE EXTENSION status_checker');
my ($t3, $f3) = setup_tenant($node, '再作成', 5, $hook);
my $rid3 = $node->safe_psql('postgres',
	"SELECT status_checker.create_request($t3, $f3, '再作成後', now() + interval '1 hour')");
ok(wait_until(60, sub { (outbox_counts($node, $rid3)->{sent} // 0) == 5 }),
	'when the database and the extension are back, the dispatcher sends again');
ok(wait_until(60, sub { my $p = worker_pids($node); $p->{dispatcher} && $p->{watcher} }),
	'... and both workers run');

$node->stop;
done_testing();
