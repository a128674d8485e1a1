# test/citus/CitusTest.pm — a local Citus cluster for status_checker's
# Citus suite (issue 20), built on PostgreSQL::Test::Cluster.
#
# citus_cluster() makes a coordinator and N Citus workers, each a node of
# its own listening on 127.0.0.1 (and on its socket), with Citus preloaded
# on all of them and status_checker preloaded on the coordinator only: the
# extension's background workers (dispatcher, feed watcher, HTTP worker)
# run there and nowhere else.  The coordinator knows its own address
# (citus_set_coordinator_host) and the workers (citus_add_node).  The
# extension itself is created by the test, on the coordinator: Citus
# propagates CREATE EXTENSION to the workers.
#
# Every node shares one master key file (docs/security.md): a data key
# wrapped on the coordinator must unwrap wherever a later step runs the
# code that needs it.
package CitusTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SCTest qw(sc_master_key);

our @EXPORT = qw(citus_cluster citus_installed single_node);

# Is Citus installed in the PostgreSQL these tests run?
sub citus_installed
{
	my $sharedir = `pg_config --sharedir`;
	chomp $sharedir;
	return -f "$sharedir/extension/citus.control";
}

# Settings every node of the cluster has.  Citus connects from node to
# node over TCP to 127.0.0.1 without TLS (the nodes share this machine);
# the statistics collector (calling home) is not built in
# (test/citus/build-citus.sh: --without-libcurl).
sub _node
{
	my ($name, $preload, $key, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', <<"EOF");
listen_addresses = '127.0.0.1'
max_connections = 60
shared_preload_libraries = '$preload'
citus.node_conninfo = 'sslmode=disable'
status_checker.master_key_file = '$key'
log_min_messages = warning
EOF
	$node->append_conf('postgresql.conf', $conf) if $conf;
	return $node;
}

# Where status_checker is preloaded (the coordinator, the single node):
# its workers for database "postgres"; the dispatcher may send to
# 127.0.0.0/8 only.
my $sc_workers_conf = <<'EOF';
status_checker.database = 'postgres'
status_checker.allowed_destinations = '127.0.0.0/8'
status_checker.link_base_url = 'https://status.example.com/r/'
EOF

# citus_cluster(name => 'x', workers => 2, coordinator_conf => '...',
# worker_conf => '...') — started, Citus created on every node and the
# workers added.  Returns ($coordinator, [$worker, ...]).
sub citus_cluster
{
	my (%o) = @_;
	my $name = $o{name} // 'citus';
	my $key = sc_master_key(PostgreSQL::Test::Utils::tempdir() . '/master.key');
	my $coordinator = _node("${name}_coordinator", 'citus,status_checker', $key,
		$sc_workers_conf . ($o{coordinator_conf} // ''));
	my @workers = map { _node("${name}_worker$_", 'citus', $key, $o{worker_conf}) } 1 .. ($o{workers} // 2);
	for my $node ($coordinator, @workers)
	{
		$node->start;
		$node->safe_psql('postgres', 'CREATE EXTENSION citus');
	}
	$coordinator->safe_psql('postgres',
		"SELECT citus_set_coordinator_host('127.0.0.1', " . $coordinator->port . ')');
	for my $w (@workers)
	{
		$coordinator->safe_psql('postgres', "SELECT citus_add_node('127.0.0.1', " . $w->port . ')');
	}
	return ($coordinator, \@workers);
}

# A plain node (no Citus) with status_checker preloaded as on the
# coordinator: what the coordinator is compared with ("as on one node").
sub single_node
{
	my ($name) = @_;
	my $key = sc_master_key(PostgreSQL::Test::Utils::tempdir() . '/master.key');
	my $node = _node($name, 'status_checker', $key, $sc_workers_conf);
	$node->start;
	return $node;
}

1;
