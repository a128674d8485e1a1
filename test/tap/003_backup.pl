# Backups with pgBackRest and point-in-time recovery (requirements Q4).
#
# pgBackRest runs with deploy/pgbackrest/pgbackrest.conf itself (its paths
# replaced), WAL archived continuously.  A full backup, reports, a
# differential backup, more reports, a moment T, reports after T; then the
# cluster is lost (immediate stop, data directory deleted) and restored to
# T: every report committed before T is there, none committed after, and
# the audit chain still verifies.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SCTest;
use Test::More;

plan skip_all => 'pgbackrest is not installed'
  unless grep { -x "$_/pgbackrest" } split /:/, $ENV{PATH};

my $hook = start_webhook_sink();
my $node = sc_node('backup', streaming => 1, conf => "status_checker.dispatcher = off\n");
my $dir = PostgreSQL::Test::Utils::tempdir();
my $conf = "$dir/pgbackrest.conf";
my %paths = (REPO => "$dir/repo", PGDATA => $node->data_dir, SOCKET => $node->host,
	PORT => $node->port, LOG => "$dir/log", SPOOL => "$dir/spool");
mkdir $paths{$_} for qw(REPO LOG SPOOL);
my $template = PostgreSQL::Test::Utils::slurp_file("$SCTest::root/deploy/pgbackrest/pgbackrest.conf");
$template =~ s/\@(\w+)\@/$paths{$1}/g;
PostgreSQL::Test::Utils::append_to_file($conf, $template);
my @br = ('pgbackrest', "--config=$conf", '--stanza=status_checker');
sub pgbackrest { PostgreSQL::Test::Utils::run_log([ @br, @_ ]) }

$node->append_conf('postgresql.conf', <<"CONF");
archive_mode = on
archive_command = 'pgbackrest --config=$conf --stanza=status_checker archive-push %p'
CONF
$node->start;
ok(pgbackrest('stanza-create'), 'pgbackrest stanza-create');
ok(pgbackrest('check'), 'pgbackrest check: WAL archiving works');

$node->safe_psql('postgres', 'CREATE EXTENSION status_checker');
my ($t, $f) = setup_tenant($node, '本社', 300, $hook);
my $rid = $node->safe_psql('postgres',
	"SELECT status_checker.create_request($t, $f, '地震 被害報告', now() + interval '1 hour')");
$node->safe_psql('postgres',
	"CREATE TABLE public.links AS SELECT row_number() OVER (ORDER BY site_code) AS n, token FROM status_checker.issue_tokens($rid)");

# reports N..M, each its own transaction (as clients send them); their ids
sub reports
{
	my ($from, $to) = @_;
	my $sql = join("\n", map {
		"SELECT status_checker.submit_report((SELECT token FROM public.links WHERE n = $_), "
		  . q{'{"building": "none", "injured": 0, "operation": "normal"}');} } $from .. $to);
	return [ split /\n/, $node->safe_psql('postgres', $sql) ];
}

ok(pgbackrest('--type=full', 'backup'), 'a full backup');
my $batch1 = reports(1, 100);
ok(pgbackrest('--type=diff', 'backup'), 'a differential backup');
my $batch2 = reports(101, 200);
$node->safe_psql('postgres', 'SELECT status_checker.seal_audit_log()');
# T: after batch 2 committed, before batch 3
my $target = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$node->poll_query_until('postgres', "SELECT clock_timestamp() > '$target'::timestamptz + interval '10 ms'");
my $batch3 = reports(201, 300);
# the WAL of batch 3 is archived too: the restore must stop at T by itself
$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
ok($node->poll_query_until('postgres',
	'SELECT last_archived_wal >= pg_walfile_name(pg_current_wal_lsn() - 1) FROM pg_stat_archiver'),
	'the WAL is archived');
my $info = `pgbackrest --config=$conf --stanza=status_checker info`;
like($info, qr/full backup.*diff backup/s, 'pgbackrest info lists the full and the differential backup');

# the cluster is lost
$node->stop('immediate');
rmtree($node->data_dir);
ok(!-e $node->data_dir . '/PG_VERSION', 'the data directory is gone');

ok(pgbackrest('--type=time', "--target=$target", '--target-action=promote', 'restore'),
	"restore to T = $target");
$node->start;
ok($node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'the restored cluster is up and writable');

sub present
{
	my ($ids) = @_;
	return $node->safe_psql('postgres',
		'SELECT count(*) FROM status_checker.report WHERE report_id IN (' . join(',', @$ids) . ')');
}
is(scalar(@$batch1) + scalar(@$batch2) + scalar(@$batch3), 300, '300 reports were acknowledged');
is(present($batch1), 100, 'the 100 reports committed before the differential backup are there');
is(present($batch2), 100, 'the 100 committed after it and before T are there (replayed from the archive)');
is(present($batch3), 0, 'none of the 100 committed after T is there');
is($node->safe_psql('postgres', "SELECT responded FROM status_checker.request_summary WHERE request_id = $rid"),
	200, 'the request summary agrees: 200 sites answered');
is($node->safe_psql('postgres', "SELECT ok FROM status_checker.verify_audit_log($t)"), 't',
	'the restored audit chain verifies');
diag("backup and restore: restored to T = $target; reports before T 200 of 200 present, after T 0 of 100");

$node->stop;
done_testing();
