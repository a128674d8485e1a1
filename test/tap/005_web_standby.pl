# The HTTP worker on a standby and through a failover (requirements Q1, Q5).
#
# A primary and a streaming standby, each with its own HTTP worker.  On the
# standby the reporter page opens (reading works on a standby), but a report
# cannot be stored there: the page answers 503 with Retry-After, says so in
# plain words and keeps what was entered; the API says 25006; signing in to
# the dashboard (which writes a session) is refused the same way.  After the
# promotion the same form, sent again with the same idempotency key, is
# stored once, and signing in works.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use File::Copy qw(copy);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SCTest;
use Test::More;

my ($pport, $sport) = (PostgreSQL::Test::Cluster::get_free_port(), PostgreSQL::Test::Cluster::get_free_port());
my $primary = sc_node('primary', streaming => 1, conf => <<"EOF");
status_checker.dispatcher = off
status_checker.feed_watcher = off
status_checker.http_listen = '127.0.0.1:$pport'
status_checker.http_workers = 1
EOF
$primary->start;
$primary->safe_psql('postgres', <<'SQL');
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('北陸電機', 'admin', 'admin@example.com');
SELECT add_user(1, 'kanri', 'kanri@example.com', 'manager');
SELECT set_user_password(1, 'kanri', 'correct horse battery');
SELECT upsert_site(1, 'NOTO1', '輪島工場', '1720400', 37.39, 136.90);
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '能登地震 被害報告', now() + interval '3 hours');
SQL
my $token = $primary->safe_psql('postgres', "SELECT status_checker.issue_token(1, 'NOTO1')");

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
copy($primary->basedir . '/master.key', $standby->basedir . '/master.key') or die "copy: $!";
chmod 0600, $standby->basedir . '/master.key';
$standby->append_conf('postgresql.conf', sprintf(<<'EOF', $standby->basedir, $sport));
status_checker.master_key_file = '%s/master.key'
status_checker.http_listen = '127.0.0.1:%s'
EOF
$standby->start;
$primary->wait_for_catchup('standby');

my $jars = PostgreSQL::Test::Utils::tempdir();
my $p = "http://127.0.0.1:$pport";
my $s = "http://127.0.0.1:$sport";
sub http { my $out = `curl -s @_`; return $out; }
sub status_of { return http("-o /dev/null -w '%{http_code}'", @_); }
ok(wait_until(60, sub { http("$s/healthz") eq "standby\n" }), 'the standby\'s worker answers /healthz with "standby"');
is(http("$p/healthz"), "ok\n", '... the primary\'s with "ok"');

# ---- on the standby
my $page = http("$s/r/$token");
like($page, qr/<form class="report"/, 'the reporter page opens on the standby (reading works there)');
my $form = "--data-urlencode _key=0123456789abcdef0123456789abcdef --data-urlencode q.building=severe "
  . "--data-urlencode q.detail=倒壊 --data-urlencode q.injured=1 --data-urlencode q.operation=stopped";
my $resp = http("-D - $form", "$s/r/$token");
like($resp, qr{^HTTP/1.1 503}, 'a report posted to the standby: 503');
like($resp, qr/^Retry-After: 5\r?$/mi, '... with Retry-After');
like($resp, qr/ただいま報告を受け付けられません/, '... saying so in plain words');
like($resp, qr/value="severe" checked/, '... and keeping what was entered');
like(http("-w ' %{http_code}' -d '{\"building\":\"none\",\"injured\":0,\"operation\":\"normal\"}'", "$s/api/v1/r/$token"),
	qr/"sqlstate":"25006".* 503$/s, 'the API on the standby: 503, SQLSTATE 25006');
my $pre = (http("-c $jars/jar -b $jars/jar $s/d/login")
	  =~ /name="_pre" value="([0-9a-f]+)"/)[0];
is(status_of("-c $jars/jar -b $jars/jar "
	  . "--data-urlencode _pre=$pre --data-urlencode tenant=1 --data-urlencode login=kanri "
	  . "--data-urlencode 'password=correct horse battery'", "$s/d/login"),
	'503', 'signing in on the standby (it writes a session): 503');
is($standby->safe_psql('postgres', "SELECT status || ' ' || value FROM status_checker.system_health() WHERE check_name = 'http'"),
	'ok 1 of 1 workers', 'system_health() on the standby: its HTTP worker runs');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM status_checker.report'), '0', 'nothing was stored');

# ---- the primary is lost; the standby takes over
$primary->stop('immediate');
$standby->promote;
ok(wait_until(60, sub { http("$s/healthz") eq "ok\n" }), 'after the promotion its worker answers "ok", without a restart');
is(status_of($form, "$s/r/$token"), '303', 'the same form sent again: stored (303)');
is(status_of($form, "$s/r/$token"), '303', '... and again (a retry)');
is($standby->safe_psql('postgres', "SELECT count(*) || ' ' || max(level) FROM status_checker.report"), '1 2',
	'one report, as sent');
$pre = (http("-c $jars/jar2 -b $jars/jar2 $s/d/login")
	  =~ /name="_pre" value="([0-9a-f]+)"/)[0];
is(status_of("-c $jars/jar2 -b $jars/jar2 "
	  . "--data-urlencode _pre=$pre --data-urlencode tenant=1 --data-urlencode login=kanri "
	  . "--data-urlencode 'password=correct horse battery'", "$s/d/login"),
	'303', 'signing in works on the new primary');

$standby->stop;
done_testing();
