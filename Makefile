# status_checker — PGXS build.
#
# The extension version is defined once, in status_checker.control.
# The install script is assembled from the per-domain SQL files in a fixed
# order (see SQL_PARTS); each domain keeps its C and SQL side by side.

EXTENSION   = status_checker
# the checkout's folder, known before PGXS is included (and whether or not
# pg_config is there yet: `make demo` on a new machine installs it)
SC_CHECKOUT := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))
EXTVERSION  = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

SQL_PARTS = \
	$(SQL_COMMON) $(SQL_TENANCY) $(SQL_SHINDO) $(SQL_SITES) $(SQL_FORMS) $(SQL_REQUESTS) $(SQL_REPORTS) \
	$(SQL_FEEDS) $(SQL_TRIGGERS) $(SQL_DISPATCH) $(SQL_SECURITY) $(SQL_OPERATIONS) $(SQL_WEB) \
	src/security/privileges.sql \
	src/common/finish.sql

# The parts in the order of their dependencies: each file creates what it
# defines in its current form, after everything that creation needs (the
# tables a foreign key, a view or an SQL function body names, the types of
# columns and arguments, the functions of triggers, the roles that own
# functions).  PL/pgSQL bodies are checked only when they run: those may
# call what a later part defines.
# preconditions and helpers; the roles, the tenant context
SQL_COMMON   = src/common/schema.sql
SQL_TENANCY  = src/security/tenancy.sql
# the shindo type; tenants, users, groups, sites and their contacts, JMA codes
SQL_SHINDO   = src/shindo/shindo.sql
SQL_SITES    = src/sites/sites.sql src/sites/jma_codes.sql
SQL_FORMS    = src/forms/forms.sql
# requests (their targets and links need sites and forms)
SQL_REQUESTS = src/requests/requests.sql src/requests/targets.sql
SQL_REPORTS  = src/reports/reports.sql src/aggregate/aggregate.sql
# earthquake feeds; the rules they fire (which make requests)
SQL_FEEDS    = src/feeds/feeds.sql src/feeds/warnings.sql src/feeds/ingest.sql src/feeds/watcher.sql src/feeds/watcher_poll.sql src/feeds/telegram_origin.sql
SQL_TRIGGERS = src/triggers/triggers.sql src/triggers/rules.sql src/triggers/decide.sql src/triggers/fire.sql
# channels, templates and link keys; links; the outbox and its workers
SQL_DISPATCH = \
	src/dispatch/channels.sql \
	src/dispatch/destinations.sql \
	src/requests/tokens.sql \
	src/dispatch/outbox.sql \
	src/dispatch/reminders.sql \
	src/dispatch/enqueue.sql \
	src/dispatch/claim.sql \
	src/dispatch/workers.sql
# the gateway, signing, the audit chain over the tables above, accounts and
# logins, deletion, encryption of what the tables above store
SQL_SECURITY = \
	src/security/gateway.sql \
	src/security/signing.sql \
	src/security/audit_record.sql \
	src/security/audit.sql \
	src/security/accounts.sql \
	src/security/login_roles.sql \
	src/security/deletion.sql \
	src/security/delete_tenant.sql \
	src/security/encryption.sql \
	src/security/link_keys.sql \
	src/dispatch/delivery_status.sql \
	src/sites/contacts.sql
# jobs and monitoring
SQL_OPERATIONS = src/common/jobs.sql src/common/health.sql
# what the web pages and the dashboard need
SQL_WEB = \
	src/web/web.sql \
	src/web/sign_in.sql \
	src/web/csv_export.sql \
	src/web/report_form.sql

# privileges.sql runs last in the install script: it gives
# status_checker_api every table and function that exists then but the key
# tables and readers (row-level security and who may read a table are
# declared next to each table's definition).
#
# Upgrades: one script per release, from the release before
# (status_checker--<previous>--<version>.sql), generated from
# src/upgrades/<version>.sql and the files it replays (written as CREATE OR
# REPLACE), the way PostgreSQL's contrib modules keep theirs.  Once
# released, a version's install script and the update that reached it are
# kept frozen in versions/ (test/integration/upgrade.sh installs each
# release kept there, updates, and compares with a fresh install).
# 1.0.0 updated from 0.10.1 only (a 0.10.0 installation updates to 0.10.1
# first, with the 0.10.1 release); 1.1.0 updates from 1.0.0.
UPGRADE_1_1_0_PARTS = src/upgrades/1.1.0.sql src/feeds/warnings.sql src/feeds/ingest.sql src/feeds/watcher_poll.sql \
	src/triggers/rules.sql src/triggers/decide.sql src/triggers/fire.sql src/upgrades/1.1.0-privileges.sql

MODULE_big  = $(EXTENSION)
OBJS = \
	src/common/module.o \
	src/common/csv.o \
	src/common/kept_plan.o \
	src/common/worker.o \
	src/dispatch/crypto.o \
	src/dispatch/destinations.o \
	src/dispatch/dispatcher.o \
	src/dispatch/dispatch_shared.o \
	src/dispatch/render.o \
	src/shindo/shindo.o \
	src/shindo/shindo_core.o \
	src/feeds/feeds.o \
	src/feeds/watcher.o \
	src/sites/municipality.o \
	src/forms/form_validate.o \
	src/forms/jsonb_util.o \
	src/requests/token.o \
	src/reports/answers.o \
	src/reports/counters.o \
	src/reports/submit.o \
	src/reports/store.o \
	src/security/signing.o \
	src/security/elevated.o \
	src/security/tenancy.o \
	src/security/keys.o \
	src/web/http.o \
	src/web/reporter.o \
	src/web/web_common.o \
	src/web/ratelimit.o \
	src/web/connections.o \
	src/web/html.o \
	src/web/password.o \
	src/web/dashboard.o \
	src/web/assets.o

DATA_built  = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--1.0.0--1.1.0.sql
# frozen: the install scripts of 0.10.1 and 1.0.0, and the update between them
DATA        = versions/$(EXTENSION)--0.10.1.sql versions/$(EXTENSION)--0.10.1--1.0.0.sql versions/$(EXTENSION)--1.0.0.sql
EXTRA_CLEAN = src/web/assets.c $(PARSERS)$(DLSUFFIX) $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--1.0.0--1.1.0.sql results regression.diffs regression.out tmp_check

PG_CPPFLAGS = -I$(srcdir)/src -DSTATUS_CHECKER_VERSION=\"$(EXTVERSION)\" $(shell xml2-config --cflags)
SHLIB_LINK  = -lcurl -lcrypto -lmicrohttpd -largon2

# The feed parsers are a library of their own, loaded by src/feeds/feeds.c
# with RTLD_DEEPBIND: the postgres binary exports a json_object() of its own
# that would otherwise take the place of jansson's (dynamic symbol
# interposition).  The same sources build the fuzz harness (test/fuzz/).
PARSERS      = $(EXTENSION)_parsers
PARSER_OBJS  = src/feeds/feed_parse.o src/feeds/feed_common.o src/feeds/feed_jma.o src/feeds/feed_jma_weather.o src/feeds/feed_json.o src/shindo/shindo_core.o
PG_CFLAGS   = -Wall -Wmissing-prototypes -Wpointer-arith -Werror=vla -Werror

# pg_regress: `make installcheck` starts its own temporary server (no running
# server needed).  REGRESS_OUT lets a runner put results and the temporary
# instance somewhere writable by the user that runs the server.
# The tests are test/sql/*.sql with their expected output in test/expected/.
# Recorded feeds and code tables are read from SC_FIXTURES (by default
# ../shared/fixtures/feeds beside the checkout), the one variable every
# suite reads them from.
REGRESS_OUT ?= .
SC_FIXTURES ?= $(abspath $(SC_CHECKOUT)/../shared/fixtures/feeds)
export SC_FIXTURES
REGRESS      = shindo sites forms requests reports aggregate feeds weather triggers
REGRESS_OPTS = --load-extension=$(EXTENSION) --inputdir=$(srcdir)/test --outputdir=$(REGRESS_OUT) \
               --temp-instance=$(REGRESS_OUT)/tmp_check \
               --temp-config=$(srcdir)/test/regress.conf

# TAP tests (test/tap/*.pl, PostgreSQL::Test::Cluster): crash, failover and
# backups.  `make installcheck` runs them after pg_regress; TAP_OUT moves
# their tmp_check (nodes and logs) to a directory the server's user may
# write, as test/run-all.sh does when run as root.
TAP_TESTS   = 1
PROVE_TESTS = test/tap/*.pl
PROVE_FLAGS = -I test/tap --timer
ifdef TAP_OUT
CURDIR := $(TAP_OUT)
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

all: $(PARSERS)$(DLSUFFIX)
$(PARSERS)$(DLSUFFIX): $(PARSER_OBJS)
	$(CC) $(CFLAGS) $(CFLAGS_SL) -shared -o $@ $(PARSER_OBJS) $(LDFLAGS) $(shell xml2-config --libs) -ljansson
install: install-parsers
.PHONY: install-parsers
install-parsers: $(PARSERS)$(DLSUFFIX)
	$(INSTALL_SHLIB) $< '$(DESTDIR)$(pkglibdir)/$(PARSERS)$(DLSUFFIX)'

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS) $(EXTENSION).control Makefile
	( printf '%s\n' "-- status_checker $(EXTVERSION) — generated from src/*/*.sql by the Makefile; do not edit." \
	         '\echo Use "CREATE EXTENSION status_checker" to load this file. \quit'; \
	  for f in $(SQL_PARTS); do printf '\n-- ---- %s\n' "$$f"; cat $$f; done ) > $@

$(EXTENSION)--1.0.0--1.1.0.sql: $(UPGRADE_1_1_0_PARTS) Makefile
	( printf '%s\n' "-- status_checker 1.0.0 → 1.1.0 — generated from src/upgrades/1.1.0.sql by the Makefile; do not edit." \
	         '\echo Use "ALTER EXTENSION status_checker UPDATE" to load this file. \quit'; \
	  for f in $(UPGRADE_1_1_0_PARTS); do printf '\n-- ---- %s\n' "$$f"; cat $$f; done ) > $@

# the web assets, compiled into the library
WEB_ASSETS = src/web/assets/report.css src/web/assets/report.js \
             src/web/assets/dashboard.css src/web/assets/dashboard.js
src/web/assets.c: $(WEB_ASSETS) src/web/embed.sh
	sh src/web/embed.sh $(WEB_ASSETS) > $@

# `make dist`: the archive PGXN accepts (status_checker-<version>.zip, one
# top folder, META.json in it) from the committed tree.  META.json must
# name the version of the control file.
DISTNAME = $(EXTENSION)-$(EXTVERSION)
.PHONY: dist
dist:
	@python3 -c 'import json, sys; m = json.load(open("META.json")); v = sys.argv[1]; \
	sys.exit(0 if m["version"] == v and m["provides"]["$(EXTENSION)"]["version"] == v \
	else "META.json names version %s, the control file %s" % (m["version"], v))' $(EXTVERSION)
	git archive --format zip --prefix=$(DISTNAME)/ -o $(DISTNAME).zip HEAD
	@echo "$(DISTNAME).zip"

.PHONY: demo demo-stop test test-citus bench bench-feeds bench-dispatch bench-security bench-burst bench-web
demo:
	bash demo/run-demo.sh
# stops everything `make demo` started (the cluster, the mail and webhook
# receivers, the feed server); DEMO_DIR=... for a demo run elsewhere
demo-stop:
	bash demo/stop-demo.sh $(DEMO_DIR)
test:
	bash test/run-all.sh
# the Citus suite alone (Citus installed, or CITUS_SRC=its source tree)
test-citus:
	bash test/citus/run.sh
bench:
	bash test/bench/run-bench.sh
	bash test/bench/feeds-bench.sh
	bash test/bench/dispatch-bench.sh
	bash test/bench/security-bench.sh
	bash test/bench/burst-bench.sh
	bash test/bench/web-bench.sh
bench-feeds:
	bash test/bench/feeds-bench.sh
bench-dispatch:
	bash test/bench/dispatch-bench.sh
bench-security:
	bash test/bench/security-bench.sh
bench-burst:
	bash test/bench/burst-bench.sh
bench-web:
	bash test/bench/web-bench.sh
