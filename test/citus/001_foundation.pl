# status_checker on a local Citus cluster (issue 20, step 1): a coordinator
# and two Citus workers on 127.0.0.1, status_checker's own workers on the
# coordinator only.  No table is distributed yet:
#   1. the extension installs on the coordinator and Citus propagates it to
#      each worker;
#   2. a survey, on the fresh install: what create_distributed_table /
#      create_reference_table says today of each of the extension's tables
#      (rolled back), compared with the checked-in expectation
#      test/citus/expected-distribution.txt, so that the later steps of
#      issue 20 shrink that list knowingly;
#   3. the foundation scenario (a tenant, sites, a form, a request, a link
#      token, a report through it, request_summary) and a recorded
#      earthquake firing a rule answer on the coordinator exactly as on a
#      plain single node (compared line by line, and with known values).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin, "$FindBin::RealBin/../tap";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SCTest qw(wait_until);
use CitusTest;
use Test::More;

plan skip_all => 'Citus is not installed (test/citus/build-citus.sh)' unless citus_installed();
my $fixtures = $ENV{SC_FIXTURES} // "$FindBin::RealBin/../../../shared/fixtures/feeds";
-d "$fixtures/jma" or BAIL_OUT("the recorded feeds (SC_FIXTURES) are not at $fixtures");
my ($version) = PostgreSQL::Test::Utils::slurp_file("$FindBin::RealBin/../../status_checker.control")
  =~ /^default_version\s*=\s*'([^']+)'/m;

my ($coord, $workers) = citus_cluster(name => 'sc');
my $single = single_node('single');

# ------------------------------------------------------------ 1. install
is($coord->safe_psql('postgres', 'SELECT count(*) FROM citus_get_active_worker_nodes()'), '2',
	'the coordinator has two active Citus workers');
$coord->safe_psql('postgres', 'CREATE EXTENSION status_checker');
$single->safe_psql('postgres', 'CREATE EXTENSION status_checker');
my $extq = q{SELECT extversion || ' ' || extnamespace::regnamespace FROM pg_extension WHERE extname = 'status_checker'};
is($coord->safe_psql('postgres', $extq), "$version status_checker",
	"CREATE EXTENSION status_checker on the Citus coordinator ($version)");
for my $i (0 .. $#$workers)
{
	is($workers->[$i]->safe_psql('postgres', $extq), "$version status_checker",
		'... propagated by Citus to worker ' . ($i + 1));
}
# the same tables on every node: what a later create_distributed_table
# needs (the shards are made from the workers' copy of the schema)
my $tablesq = q{SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
	WHERE relnamespace = 'status_checker'::regnamespace AND relkind IN ('r', 'p')};
my $tables = $coord->safe_psql('postgres', $tablesq);
ok(length($tables) && !(grep { $_->safe_psql('postgres', $tablesq) ne $tables } @$workers),
	"each worker has the coordinator's tables of the extension");

# the status_checker workers run on the coordinator only: the Citus
# workers do not load the library at all
my $bgq = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'status_checker %'};
ok(wait_until(30, sub { $coord->safe_psql('postgres', $bgq) > 0 }),
	"status_checker's background workers run on the coordinator");
is(join(',', map { $_->safe_psql('postgres', $bgq) } @$workers), '0,0',
	'... and on neither Citus worker');

# ------------------------------------------------------------ 2. survey
# Every table of the extension, parents before children (foreign keys), in
# one transaction that is rolled back: a table with tenant_id is
# distributed by it, co-located with tenant; one without becomes a
# reference table.  Each attempt runs in a subtransaction of its own; a
# table that distributes stays so for its children, one that fails does
# not (its children then fail on the foreign key to it).  Two passes:
# "today", and "without triggers" (citus.enable_unsafe_triggers on, which
# the project will never ship: it shows what stops each table once step 3
# of issue 20 has moved the side effects out of the triggers).
sub survey_sql
{
	my ($pass) = @_;
	my $unsafe = $pass eq 'today' ? 'off' : 'on';
	return <<"SQL";
BEGIN;
SET LOCAL citus.multi_shard_modify_mode = 'sequential';
SET LOCAL client_min_messages = warning;
SET LOCAL citus.enable_unsafe_triggers = $unsafe;
CREATE FUNCTION pg_temp.survey() RETURNS TABLE (tbl text, attempt text, state text, message text)
LANGUAGE plpgsql AS \$\$
DECLARE
    r record;
BEGIN
    FOR r IN
        WITH RECURSIVE t AS (
            SELECT c.oid, c.relname,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                            AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS has_tenant
            FROM pg_class c
            WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind IN ('r', 'p')
              AND NOT c.relispartition),
        fk AS (SELECT DISTINCT conrelid AS child, confrelid AS parent FROM pg_constraint
               WHERE contype = 'f' AND conrelid <> confrelid
                 AND conrelid IN (SELECT oid FROM t) AND confrelid IN (SELECT oid FROM t)),
        depth AS (SELECT oid, 0 AS d FROM t
                  UNION ALL
                  SELECT fk.child, depth.d + 1 FROM depth JOIN fk ON fk.parent = depth.oid WHERE depth.d < 50)
        SELECT t.relname, t.has_tenant, max(depth.d) AS d
        FROM t JOIN depth USING (oid)
        GROUP BY t.relname, t.has_tenant
        ORDER BY t.relname <> 'tenant', max(depth.d), t.relname
    LOOP
        IF r.relname <> 'tenant' AND NOT EXISTS (SELECT 1 FROM pg_dist_partition
                                                 WHERE logicalrelid = 'status_checker.tenant'::regclass) THEN
            -- the anchor of the co-location: tenant, distributed despite
            -- what stopped it above (its own row says what), so that each
            -- other table shows its own obstacles, not tenant's
            SET LOCAL citus.enable_unsafe_triggers = on;
            PERFORM create_distributed_table('status_checker.tenant', 'tenant_id');
            SET LOCAL citus.enable_unsafe_triggers = $unsafe;
        END IF;
        tbl := r.relname;
        attempt := CASE WHEN r.has_tenant THEN 'distributed' ELSE 'reference' END;
        BEGIN
            IF r.relname = 'tenant' THEN
                PERFORM create_distributed_table('status_checker.tenant', 'tenant_id');
            ELSIF r.has_tenant THEN
                PERFORM create_distributed_table(format('status_checker.%I', r.relname), 'tenant_id',
                                                 colocate_with => 'status_checker.tenant');
            ELSE
                PERFORM create_reference_table(format('status_checker.%I', r.relname));
            END IF;
            state := '00000';
            message := 'ok';
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
        END;
        RETURN NEXT;
    END LOOP;
END
\$\$;
SELECT tbl, attempt, state, replace(message, E'\\n', ' ') FROM pg_temp.survey();
ROLLBACK;
SQL
}

# The class of an error, from Citus's message: the names the expectation
# file uses (docs/scaling.md explains each).
sub error_class
{
	my ($state, $msg) = @_;
	return 'ok' if $state eq '00000';
	return 'triggers' if $msg =~ /because it has triggers/;
	return 'unique-key-without-tenant_id' if $msg =~ /^cannot create constraint on /;
	return 'fk-to-undistributed' if $msg =~ /must be a distributed table or a reference table/;
	return 'extension-owned-dependents' if $state eq '2BP01' && $msg =~ /because extension status_checker requires it/;
	return "other-$state";
}

my (%got, @order);
for my $pass ('today', 'without-triggers')
{
	my ($rc, $out, $err) = $coord->psql('postgres', survey_sql($pass), on_error_stop => 1);
	is($rc, 0, "the survey ($pass) ran in one transaction, rolled back") or diag($err);
	for (split /\n/, $out)
	{
		my ($tbl, $attempt, $state, $msg) = split /\|/, $_, 4;
		next unless defined $msg;
		push @order, $tbl if $pass eq 'today';
		$got{$tbl}{attempt} = $attempt;
		$got{$tbl}{$pass} = error_class($state, $msg);
		note(sprintf('survey %-16s %-24s %-11s %-28s %s', "$pass:", $tbl, $attempt, $got{$tbl}{$pass},
			$state eq '00000' ? '' : "$state $msg"));
	}
}
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_dist_partition}), '0',
	'... and left no table distributed');

# the expectation: "table attempt today without-triggers" a line
my %want;
open(my $fh, '<', "$FindBin::RealBin/expected-distribution.txt") or die "expected-distribution.txt: $!";
while (<$fh>)
{
	next if /^\s*(#|$)/;
	my ($tbl, $attempt, $today, $later) = split;
	$want{$tbl} = { attempt => $attempt, today => $today, 'without-triggers' => $later };
}
close $fh;

my $all = $coord->safe_psql('postgres', q{SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class
	WHERE relnamespace = 'status_checker'::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition});
is(join(' ', sort @order), $all, 'the survey tried every table of the extension, once each');
my $with_tenant = $coord->safe_psql('postgres', q{SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
	WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition});
is(join(' ', sort grep { $got{$_}{attempt} eq 'distributed' } keys %got), $with_tenant,
	'... a distribution by tenant_id for every table that has one, a reference table for the others');
is($order[0], 'tenant', '... tenant first (the others are co-located with it)');
for my $pass ('today', 'without-triggers')
{
	my $failed = grep { $got{$_}{$pass} ne 'ok' } keys %got;
	my $want_failed = grep { $want{$_}{$pass} ne 'ok' } keys %want;
	is($failed, $want_failed, sprintf('%s: %d of %d tables cannot be distributed, as many as expected-distribution.txt lists',
		$pass, $failed, scalar @order));
}
is_deeply({ map { $_ => join(' ', @{ $got{$_} }{qw(attempt today without-triggers)}) } keys %got },
	{ map { $_ => join(' ', @{ $want{$_} }{qw(attempt today without-triggers)}) } keys %want },
	'... each table with the outcomes expected-distribution.txt names')
  or diag(join("\n", 'the survey found (for expected-distribution.txt):',
	map { sprintf('%-24s %-11s %-28s %s', $_, @{ $got{$_} }{qw(attempt today without-triggers)}) } @order));

# ------------------------------------------------------------ 3. scenario
# The same script on the coordinator and on the single node; each line
# "what|value", free of times and random tokens, so that the two compare.
my $answers = '{"building": "none", "injured": 0, "operation": "normal"}';
my $scenario = <<"SQL";
SET search_path = status_checker, public;
SELECT create_tenant('テナントA', 'admin_a', 'admin\@a.example') AS t \\gset
SELECT import_sites(:t, E'code,name,group_path,municipality_code,lat,lon,address,contact_email\\n'
    'A01,A輪島,北陸/能登,1720400,37.39,136.90,,a01\@a.example\\n'
    'A02,A金沢,北陸/加賀,1720100,36.56,136.65,,a02\@a.example\\n'
    'A03,A東京,関東,1310100,35.68,139.76,,\\n') AS n \\gset
SELECT create_form(:t, '被害報告', default_form_definition('all')) AS f \\gset
SELECT create_request(:t, :f, '安否確認', now() + interval '6 hours') AS r \\gset
SELECT 'sites|' || :n;
SELECT 'tokens|' || count(*) FROM issue_tokens(:r);
SELECT token FROM issue_tokens(:r) WHERE site_code = 'A02' \\gset
SELECT 'report|' || (submit_report(:'token', '$answers') > 0);
SELECT 'summary|' || concat_ws(' ', title, state, targets, responded, response_rate, level_counts, worst_level)
  FROM request_summary WHERE request_id = :r;
SELECT 'site_status|' || string_agg(site_code || ':' || coalesce(level::text, '-'), ' ' ORDER BY site_code)
  FROM site_status WHERE request_id = :r;
SQL
my $earthquake = <<"SQL";
SET search_path = status_checker, public;
SELECT 'area_codes|' || (load_jma_area_codes(convert_from(pg_read_binary_file(
    '$fixtures/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv'), 'UTF8')) > 0);
SELECT create_trigger_rule(tenant_id, '震度5弱以上', form_id, '5-') AS rule FROM form WHERE name = '被害報告' \\gset
SELECT 'ingest|' || ingest_feed_document('jma', pg_read_binary_file('$fixtures/jma/VXSE51_20240101_noto_M7.6_maxint6+.xml'));
SELECT 'asked|' || string_agg(s.code, ' ' ORDER BY s.code)
  FROM request q JOIN request_target t USING (tenant_id, request_id) JOIN site s USING (tenant_id, site_id)
 WHERE q.rule_id = :rule;
SELECT 'decisions|' || string_agg(site_code || ':' || shindo || ':' || decision, ' ' ORDER BY site_code)
  FROM trigger_decision WHERE rule_id = :rule;
SELECT 'rule_request|' || concat_ws(' ', title, state, targets, responded) FROM request_summary WHERE rule_id = :rule;
SQL

sub lines_of
{
	my ($out) = @_;
	return { map { my ($k, $v) = split /\|/, $_, 2; ($k => $v) } grep { /\|/ } split /\n/, $out };
}

my %on;
for ([ coordinator => $coord ], [ single => $single ])
{
	my ($name, $node) = @$_;
	my ($rc, $out, $err) = $node->psql('postgres', $scenario, on_error_stop => 1);
	$on{$name}{scenario} = lines_of($out);
	$on{$name}{scenario_rc} = $rc;
	diag("$name, the scenario: $err") if $rc;
	($rc, $out, $err) = $node->psql('postgres', $earthquake, on_error_stop => 1);
	$on{$name}{earthquake} = lines_of($out);
	$on{$name}{earthquake_rc} = $rc;
	diag("$name, the earthquake: $err") if $rc;
}
my $c = $on{coordinator}{scenario};
is($on{coordinator}{scenario_rc}, 0, 'the foundation scenario runs on the coordinator without an error');
is($c->{sites}, 3, '... imports three sites');
is($c->{tokens}, 3, '... issues a link token for each');
is($c->{report}, 'true', '... stores a report sent with a token');
like($c->{summary} // '', qr/^安否確認 open 3 1 0\.3333 /, '... and request_summary counts it: 3 targets, 1 responded');
is_deeply($c, $on{single}{scenario}, '... every line as on a single node')
  or diag(explain({ coordinator => $c, single => $on{single}{scenario} }));

my $e = $on{coordinator}{earthquake};
is($on{coordinator}{earthquake_rc}, 0, 'the recorded Noto earthquake is ingested on the coordinator without an error');
is($e->{ingest}, 1, '... as one event');
like($e->{asked} // '', qr/(^| )A01( |$)/, '... and the rule (5弱 or more) asks the site in 輪島市 (1720400)');
is($e->{asked}, 'A01 A02', '... and the one in 金沢市, not the one in 東京');
is_deeply($e, $on{single}{earthquake}, '... every line as on a single node')
  or diag(explain({ coordinator => $e, single => $on{single}{earthquake} }));
note("coordinator: $_ = $c->{$_}") for sort keys %$c;
note("coordinator: $_ = $e->{$_}") for sort keys %$e;

$single->stop;
$_->stop for @$workers;
$coord->stop;
done_testing();
