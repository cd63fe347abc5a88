# mk/bench.mk: the benchmark report (bench/cmd/benchreport).
#
#   make bench-report          run the engine (bench/), bitmap, iouring, transport and daemon benchmarks
#                              COUNT rounds of BENCHTIME each, every sub-benchmark beside its baseline,
#                              and write bench/results.md, bench/*.png, bench/README-table.md and the
#                              raw results they come from (bench/raw.txt)
#                              (BENCH_ONLY=REGEXP picks benchmarks by DIR.Name, e.g. 'bench\.|daemon\.')
#   make bench-report-render   write them again from the last run's raw results ($(BENCH_OUT)/raw.txt)
#   make bench-vm-render       draw bench/vm-results.png again from bench/vm-results.json (no VM boot)
#
# BENCH_OUT=DIR writes the report elsewhere (a trial run that must not replace the committed one).
# A full run takes about COUNT x 3 minutes. Figures are ratios within one run: the machine is shared.

# Included before the top-level Makefile's first target: keep 'all' the default goal.
bench_saved_default_goal := $(.DEFAULT_GOAL)

BENCHTIME  ?= 1s
BENCH_ONLY ?=
BENCH_RAW  ?= $(BUILD)/bench/raw.txt
BENCH_OUT  ?= bench

.PHONY: bench-report bench-report-render bench-vm-render

bench-report:
	$(GO) run ./bench/cmd/benchreport -count $(COUNT) -benchtime $(BENCHTIME) -raw $(BENCH_RAW) -out $(BENCH_OUT) $(if $(BENCH_ONLY),-only '$(BENCH_ONLY)')

bench-report-render:
	$(GO) run ./bench/cmd/benchreport -from $(BENCH_OUT)/raw.txt -out $(BENCH_OUT)

bench-vm-render:
	$(GO) run ./bench/cmd/benchreport -vm $(BENCH_OUT)/vm-results.json

.DEFAULT_GOAL := $(bench_saved_default_goal)
