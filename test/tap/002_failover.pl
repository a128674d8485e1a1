# Standby and failover (requirements Q1, Q5).
#
# A primary with a synchronous streaming standby.  The recorded Noto
# earthquake (2024-01-01) arrives from the local feed server; a rule asks
# 1,000 sites, whose webhooks go out while 2 clients submit reports.  In
# the middle of it the primary is lost (immediate stop: the data centre is
# gone) and the standby is promoted.  Then:
#   - the workers did nothing on the standby, and start on the new primary
#     by themselves, where the tables say: every message sent, none lost,
#     duplicates counted (recognisable by idempotency key);
#   - the rest of the earthquake's telegrams arrive after the promotion:
#     the rule does not ask the sites a second time;
#   - every report acknowledged before, during or after the failover is
#     there (synchronous replication: an acknowledged commit is on both);
#   - the old primary, rewound with pg_rewind and rejoined as a standby,
#     sends nothing.
# Each node has its own status_checker.link_base_url, so the link in each
# webhook tells which node sent it.  The figures are printed at the end.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use File::Copy qw(copy);
use JSON::PP ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SCTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $fixtures = $ENV{SC_FIXTURES} || "$SCTest::root/../shared/fixtures/feeds";
plan skip_all => "fixtures not found at $fixtures" unless -d $fixtures;

# the feed server and the webhook receiver, on 127.0.0.1
my $feeds = start_feed_server($fixtures);
ok($feeds, 'the feed server runs');
my $hook = start_webhook_sink();
sub advance { JSON::PP::decode_json(`curl -s -X POST '$feeds/_control/advance'`) }

# the primary, 100 webhooks a second: the 1,000 take about 10 s
my $primary = sc_node('primary', streaming => 1, conf => <<'EOF');
status_checker.dispatch_rate_limit = 100
status_checker.link_base_url = 'https://primary.example/r/'
# WAL that pg_rewind reads on the lost primary: its crash recovery must not
# recycle the segments back to the last common checkpoint (in production,
# pg_rewind --restore-target-wal fetches them from the WAL archive)
wal_keep_size = '256MB'
EOF
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION status_checker');
$primary->safe_psql('postgres', "SELECT status_checker.load_jma_area_codes(pg_read_file('$fixtures/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv'))");
my ($t, $f) = setup_tenant($primary, '北陸電機', 0, $hook);
# 1,000 sites in 輪島市 and 金沢市, both shaken 震度5弱 or more
$primary->safe_psql('postgres', <<"SQL");
SELECT status_checker.import_sites($t, 'code,name,municipality_code,lat,lon' || E'\\n' ||
       string_agg(format('S%s,拠点%s,%s,37.0,136.8', i, i, CASE WHEN i % 2 = 0 THEN '1720400' ELSE '1720100' END), E'\\n'))
  FROM generate_series(1, 1000) i;
SELECT status_checker.create_trigger_rule($t, '震度5弱以上', $f, '5-');
SQL

# the standby: a copy of the primary's master key, its own link base URL
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
copy($primary->basedir . '/master.key', $standby->basedir . '/master.key') or die "copy: $!";
chmod 0600, $standby->basedir . '/master.key';
$standby->append_conf('postgresql.conf', sprintf(<<'EOF', $standby->basedir));
status_checker.master_key_file = '%s/master.key'
status_checker.link_base_url = 'https://standby.example/r/'
EOF
$standby->start;
# synchronous: a commit is acknowledged once the standby has it on disk
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'standby'\n");
$primary->reload;
ok($primary->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'"),
	'the standby replicates synchronously');

# the earthquake: the first telegrams, until the rule has asked the sites
$primary->safe_psql('postgres', "SELECT status_checker.add_feed('jma_atom', '$feeds/jma/eqvol.xml', '1 second')");
my ($published, $of) = (0, 0);
my $rid = 0;
while (!$rid)
{
	my $a = advance();
	($published, $of) = ($a->{published}, $a->{of});
	last unless $published;
	wait_until(30, sub {
		$primary->safe_psql('postgres',
			"SELECT count(*) >= $published FROM status_checker.feed_document WHERE state IN ('ingested', 'failed')") eq 't' });
	$rid = $primary->safe_psql('postgres', 'SELECT max(request_id) FROM status_checker.request WHERE rule_id IS NOT NULL') || 0;
	last if $published >= $of;
}
ok($rid, "telegram $published of $of made the rule ask the sites (request $rid)");
my $targets = $primary->safe_psql('postgres', "SELECT targets FROM status_checker.request WHERE request_id = $rid");
is($targets, 1000, 'all 1,000 sites are asked');

# reports through libpq's failover: both hosts, read-write session wanted
my $conninfo = sprintf("host=%s,%s port=%d,%d dbname=postgres target_session_attrs=read-write",
	$primary->host, $standby->host, $primary->port, $standby->port);
my $answers = '{"building": "none", "injured": 0, "operation": "normal"}';
my $clients = start_report_clients($primary, $rid, 2, $answers, $conninfo);

ok(wait_until(60, sub { (outbox_counts($primary, $rid)->{sent} // 0) >= 300 }), 'the primary sends');
ok(wait_until(60, sub {
	$primary->safe_psql('postgres', "SELECT count(*) >= 100 FROM status_checker.report WHERE tenant_id = $t") eq 't' }),
	'reports arrive');

# the standby's workers run and do nothing
my $sb = $standby->safe_psql('postgres', 'SELECT running, sent, in_flight FROM status_checker.dispatcher_status()');
is($sb, 't|0|0', 'on the standby the dispatcher runs and has sent nothing');
is($standby->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'status_checker feed watcher'"), 1,
	'on the standby the feed watcher runs');

# system_health() on both nodes: what each should be doing
my %h = map { (split /\|/)[0, 1] } split /\n/, $primary->safe_psql('postgres',
	'SELECT check_name, status FROM status_checker.system_health()');
is_deeply([ @h{qw(dispatcher feed_watcher replication)} ], [qw(ok ok ok)],
	'system_health on the primary: dispatcher, feed watcher and synchronous replication ok');
like($primary->safe_psql('postgres', "SELECT value FROM status_checker.system_health() WHERE check_name = 'replication'"),
	qr/1 streaming standby\(s\), 1 synchronous/, '... one synchronous standby');
%h = map { (split /\|/)[0, 2] } split /\n/, $standby->safe_psql('postgres',
	'SELECT check_name, status, value FROM status_checker.system_health()');
is($h{role}, 'standby', 'system_health on the standby: role standby');
like($h{replication}, qr/^streaming/, '... receiving WAL');

# the data centre is lost
my $at_loss = outbox_counts($primary, $rid);
$primary->stop('immediate');
my $t_loss = time;
$standby->promote;
my $t_promoted = time;
note(sprintf('primary lost with %d of 1000 messages sent; standby promoted in %.1f s',
	$at_loss->{sent} // 0, $t_promoted - $t_loss));

# the rest of the telegrams come after the promotion
my $later = 0;
while ($published < $of)
{
	my $a = advance();
	$published = $a->{published};
	$later++;
}
ok(wait_until(60, sub {
	$standby->safe_psql('postgres',
		"SELECT count(*) >= $of FROM status_checker.feed_document WHERE state IN ('ingested', 'failed')") eq 't' }),
	"the new primary ingests the $later telegrams published after the promotion");
is($standby->safe_psql('postgres', 'SELECT count(*) FROM status_checker.request WHERE rule_id IS NOT NULL'), 1,
	'the rule did not ask the sites a second time');

ok(wait_until(120, sub { (outbox_counts($standby, $rid)->{sent} // 0) == 1000 }),
	'the new primary sends the rest: all 1,000 are sent');
is($standby->safe_psql('postgres', "SELECT count(*) FROM status_checker.outbox WHERE request_id = $rid AND state = 'dead'"),
	0, 'none is dead');
my $s;
ok(wait_until(30, sub { $s = sink_stats($hook, "sc1-$t-"); $s->{keys} == 1000 }),
	'the receiver saw all 1,000 idempotency keys: none lost');

like($standby->safe_psql('postgres', "SELECT status || ' ' || detail FROM status_checker.system_health() WHERE check_name = 'replication'"),
	qr/^(warning|critical) /, 'system_health on the new primary: replication not ok until a standby follows');

my $log = sink_log($hook);
my ($first_new) = grep { $_->{link} =~ m{^https://standby\.example/} } @$log;
ok($first_new, 'the new primary sent');
my @late_old = grep { $_->{link} =~ m{^https://primary\.example/} && $_->{time} > $t_loss } @$log;
is(scalar(@late_old), 0, 'nothing came from the old primary after its loss');
my @before_promotion = grep { $_->{link} =~ m{^https://standby\.example/} && $_->{time} < $t_promoted } @$log;
is(scalar(@before_promotion), 0, 'nothing came from the standby before its promotion');

ok(wait_report_clients($clients), 'the report clients finished');
my $acked = acked_reports($clients);
my $ids = join(',', @$acked) || '0';
is(scalar(@$acked), 1000, 'every one of the 1,000 links got an acknowledged report');
is($standby->safe_psql('postgres', "SELECT count(*) FROM status_checker.report WHERE report_id IN ($ids)"),
	scalar(@$acked), 'every acknowledged report is on the new primary');
my $present = $standby->safe_psql('postgres', "SELECT count(*) FROM status_checker.report WHERE tenant_id = $t");

# the old primary: rewound, rejoined as a standby of the new one
my $old_pgdata = $primary->data_dir;
# pg_rewind copies the source's configuration files: keep the old primary's
copy("$old_pgdata/postgresql.conf", $primary->basedir . '/postgresql.conf.own') or die "copy: $!";
my $rewind = PostgreSQL::Test::Utils::run_log([
	'pg_rewind', '--target-pgdata', $old_pgdata,
	'--source-server', $standby->connstr('postgres'), '--no-sync' ]);
ok($rewind, 'pg_rewind of the old primary');
copy($primary->basedir . '/postgresql.conf.own', "$old_pgdata/postgresql.conf") or die "copy: $!";
$primary->append_conf('postgresql.conf', "synchronous_standby_names = ''\n");
$primary->enable_streaming($standby);
$primary->start;
my $t_rejoined = time;
ok($primary->poll_query_until('postgres', 'SELECT pg_is_in_recovery()'), 'the old primary runs as a standby');

# new work on the new primary: sent once, by the new primary only
my $rid2 = $standby->safe_psql('postgres',
	"SELECT status_checker.create_request($t, $f, '余震', now() + interval '1 hour', target => '{\"sites\": [\"S1\", \"S2\", \"S3\", \"S4\", \"S5\"]}')");
ok(wait_until(60, sub { (outbox_counts($standby, $rid2)->{sent} // 0) == 5 }), 'a new request\'s messages are sent');
$standby->wait_for_catchup($primary);
is($primary->safe_psql('postgres', "SELECT count(*) FROM status_checker.outbox WHERE request_id = $rid2 AND state = 'sent'"),
	5, 'the rejoined standby has replayed them');
is($primary->safe_psql('postgres', 'SELECT sent FROM status_checker.dispatcher_status()'), 0,
	'the rejoined old primary has sent nothing');
$log = sink_log($hook);
my @from_old = grep { $_->{link} =~ m{^https://primary\.example/} && $_->{time} > $t_loss } @$log;
is(scalar(@from_old), 0, 'the receiver got nothing from the old primary since its loss');

$s = sink_stats($hook, "sc1-$t-");
diag(sprintf('failover: reports acknowledged %d, present %d; messages queued 1005, sent %d, received %d, '
	  . 'duplicates %d; promotion took %.1f s; first message %.1f s after promotion; telegrams after promotion %d',
	  scalar(@$acked), $present, 1000 + (outbox_counts($standby, $rid2)->{sent} // 0),
	  $s->{requests}, $s->{duplicates}, $t_promoted - $t_loss, $first_new->{time} - $t_promoted, $later));

$primary->stop;
$standby->stop;
done_testing();
