# mk/soak.mk: the soak campaign (tests/soak) against a dlogd built with -tags faultinject.
#
#   make soak      SOAK_DURATION (default 10m) of a random multi-log kernel workload from
#                  SOAK_CLIENTS connections over dlogd's unix transport, with faults at random
#                  instants (kill -9, SIGTERM, SIGSTOP, EIO and torn writes, full and vanishing log
#                  devices; the last two need root). Exits non-zero if an acknowledged mark was
#                  lost, a reply broke the protocol, or dlogd's RSS or goroutines grew.
#   make soak-ci   the same for 60 seconds (SOAK_CI_DURATION)
#
# The report (one line of figures, then a table) goes to stdout and to $(SOAK_DIR)/report.txt;
# dlogd's own log and the log devices stay in $(SOAK_DIR)/work. SOAK_SEED=N replays a seed's
# choices (timing differs); SOAK_FLAGS passes more flags (go run ./tests/soak --help).

# Included before the top-level Makefile's first target: keep 'all' the default goal.
soak_saved_default_goal := $(.DEFAULT_GOAL)

SOAK_DURATION    ?= 10m
SOAK_CI_DURATION ?= 60s
SOAK_CLIENTS     ?= 4
SOAK_LOGS        ?= 8
SOAK_SEED        ?= 0
SOAK_FLAGS       ?=
SOAK_DIR         ?= $(BUILD)/soak

SOAK_RUN = rm -rf $(SOAK_DIR) && mkdir -p $(SOAK_DIR) && \
	$(BUILD)/soak-bin/dlog-soak --dlogd $(BUILD)/soak-bin/dlogd --dir $(SOAK_DIR)/work --report $(SOAK_DIR)/report.txt \
		--clients $(SOAK_CLIENTS) --logs $(SOAK_LOGS) --seed $(SOAK_SEED) $(SOAK_FLAGS)

.PHONY: soak soak-ci soak-build

# The soak drives a dlogd built with fault injection (-tags faultinject:
# DLOG_FAULTIO), which the shipped bin/dlogd does not have.
soak-build:
	@mkdir -p $(BUILD)/soak-bin
	CGO_ENABLED=0 $(GO) build -trimpath -tags faultinject -o $(BUILD)/soak-bin/dlogd ./cmd/dlogd
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BUILD)/soak-bin/dlog-soak ./tests/soak

soak: soak-build
	$(SOAK_RUN) --duration $(SOAK_DURATION)

soak-ci: soak-build
	$(SOAK_RUN) --duration $(SOAK_CI_DURATION) --fault-every 3s

.DEFAULT_GOAL := $(soak_saved_default_goal)
