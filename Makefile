# pg_incident: incident-response playbook as a PostgreSQL extension (PGXS build)
#
# What a person runs:
#   make            build the module and the control file
#   make install    install into the PostgreSQL found by $(PG_CONFIG) (root)
#   make test       every suite (pg_regress, isolation, TAP) on throw-away clusters
#   make demo       a throw-away cluster and a scripted walk through the playbook
#   make bench      benchmarks; results in docs/benchmarks.md

EXTENSION    = pg_incident
EXTVERSION   = 0.3.0

MODULE_big   = pg_incident
OBJS         = $(patsubst %.c,%.o,$(wildcard src/*.c src/worker/*.c))
PGFILEDESC   = "pg_incident - incident response playbook in the database"

# One SQL source per feature (extension/NN_feature.sql) holds the current
# definitions of its objects; make joins them, in name order, into the install
# script of the current version. The scripts of released versions (the first
# install script and each upgrade) are frozen; extension/frozen.sha256 names
# them and test/t/006_upgrade.pl checks that they are unchanged and that an
# installation upgraded step by step equals a fresh one. To release
# $(EXTVERSION): commit the built install script, add it and the last upgrade
# script to frozen.sha256, raise EXTVERSION and start the next upgrade script.
FEATURES       = $(sort $(wildcard extension/[0-9][0-9]_*.sql))
CURRENT_SQL = extension/pg_incident--$(EXTVERSION).sql
DATA         = $(filter-out $(CURRENT_SQL),$(wildcard extension/pg_incident--*.sql))
DATA_built   = $(CURRENT_SQL)
EXTRA_CLEAN  = pg_incident.control results output_iso tmp_check tmp_check_iso log

$(CURRENT_SQL): $(FEATURES) Makefile
	{ printf '%s\n' '/* $@: pg_incident $(EXTVERSION), built by make from extension/NN_*.sql; edit those */' \
	    '' '-- complain if script is sourced in psql, rather than via CREATE EXTENSION' \
	    '\echo Use "CREATE EXTENSION pg_incident" to load this file. \quit'; \
	  for f in $(FEATURES); do printf '\n-- from %s\n' "$$f"; cat "$$f"; done; } > $@.tmp && mv $@.tmp $@

PG_CPPFLAGS  = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers $(shell curl-config --cflags 2>/dev/null)
SHLIB_LINK   = $(shell curl-config --libs 2>/dev/null)

# pg_regress: every sql/*.sql, in name order, on a temp instance
REGRESS      = $(sort $(patsubst sql/%.sql,%,$(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-config=test/conf/regress.conf --encoding=UTF8 --no-locale

# isolation specs live in test/specs
ISOLATION      = $(sort $(patsubst test/specs/%.spec,%,$(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --temp-config=test/conf/regress.conf --inputdir=test --encoding=UTF8 --no-locale

TAP_TESTS    = 1
PROVE_TESTS  = $(sort $(wildcard test/t/*.pl))
PROVE_FLAGS  = --timer

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
.DEFAULT_GOAL := all
else
# No PostgreSQL development files yet: make test, make demo and make bench
# install them; anything else needs them first.
.DEFAULT_GOAL := no-pgxs
no-pgxs all install:
	@echo "pg_config not found: run 'make test' or 'make demo' as root (they install what is missing)," >&2
	@echo "or install postgresql-server-dev-15 and libcurl4-openssl-dev." >&2
	@exit 2
endif

# PGXS installs $(EXTENSION).control from the top folder; generate it.
all: pg_incident.control
pg_incident.control: extension/pg_incident.control.in Makefile
	sed "s/@EXTVERSION@/$(EXTVERSION)/" $< > $@

.PHONY: test demo bench regress-suite isolation-suite tap-suite

# The suites, each on its own temp instance; test/run-tests calls these as an
# unprivileged user against a staged installation.
regress-suite:
	$(pg_regress_installcheck) --temp-instance=./tmp_check $(REGRESS_OPTS) $(REGRESS)

isolation-suite:
	$(pg_isolation_regress_installcheck) --temp-instance=./tmp_check_iso $(ISOLATION_OPTS) $(ISOLATION)

tap-suite:
	$(prove_installcheck)

# LC_ALL=C only so that bash does not warn at start when the caller's locale
# is not installed; test/lib.sh then sets the locale the scripts run in.
test:
	LC_ALL=C test/run-tests

demo:
	LC_ALL=C test/demo

bench:
	LC_ALL=C test/bench/run
	LC_ALL=C test/bench/probes
	LC_ALL=C test/bench/notify
	LC_ALL=C test/bench/locks
	LC_ALL=C test/bench/bloat
