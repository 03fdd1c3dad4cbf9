# A thin wrapper over CMake and CTest. `make run` and `make test` work on a fresh Debian 12.

SHELL := /bin/bash

BUILD_DIR ?= build
ASAN_DIR  ?= build-asan
FUZZ_DIR  ?= build-fuzz
JOBS      ?= 2
PREFIX    ?= /usr/local
CONFIG    ?= conf/trident.yaml

# Debian 12 packages the build, the tests and `make run` need.
DEB_PACKAGES := cmake make g++ pkg-config libboost-dev libfmt-dev libspdlog-dev \
                libyaml-cpp-dev libgtest-dev libsystemd-dev media-types curl apache2-utils wrk \
                clang libclang-rt-14-dev slowhttptest goaccess prometheus-apache-exporter systemd

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build run test test-release test-sanitizers fuzz bench bench-logging install format clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing:" $$missing; \
	  policy=/usr/sbin/policy-rc.d; made=; \
	  if [ ! -e $$policy ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee $$policy >/dev/null && \
	    $(SUDO) chmod 755 $$policy && made=1; \
	  fi; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  status=$$?; [ -z "$$made" ] || $(SUDO) rm -f $$policy; exit $$status; \
	fi

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Started as root, trident refuses to run its children as root unless the config says
# `user: root`; the bundled site usually sits in a home folder other users cannot read, so
# `make run` as root serves it from a copy of the config that says so, beside the original
# (relative paths keep their meaning).
RUN_AS_ROOT_CONFIG = $(dir $(CONFIG)).run-as-root.yaml
run: build
	@if [ "$$(id -u)" = 0 ]; then \
	  { cat $(CONFIG); printf '\n# Added by make run, started as root.\nuser: root\n'; } \
	    > $(RUN_AS_ROOT_CONFIG); \
	  echo "make run: started as root, so the children run as root too ($(RUN_AS_ROOT_CONFIG))"; \
	  exec $(BUILD_DIR)/trident -f $(RUN_AS_ROOT_CONFIG); \
	fi; \
	exec $(BUILD_DIR)/trident -f $(CONFIG)

# Every test: each fuzzer briefly, the tests under ASan+UBSan, then the Release build's,
# whose summary closes the output.
test:
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)
	$(MAKE) --no-print-directory test-sanitizers
	$(MAKE) --no-print-directory test-release

test-release: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS) --timeout 300

test-sanitizers: deps
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DTRIDENT_SANITIZE=ON
	cmake --build $(ASAN_DIR) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure -j$(JOBS) --timeout 600

# libFuzzer (clang) on the parser and on the whole core; FUZZ_SECONDS per target. New
# inputs go to $(FUZZ_DIR)/corpus; the seeds in tests/fuzz/corpus are only read.
FUZZ_SECONDS       ?= 300
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_TARGETS       := request_parser connection
fuzz: deps
	cmake -S . -B $(FUZZ_DIR) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
	  -DTRIDENT_FUZZ=ON -DTRIDENT_TESTS=OFF
	cmake --build $(FUZZ_DIR) -j$(JOBS) $(foreach t,$(FUZZ_TARGETS),--target fuzz_$(t))
	@set -o pipefail; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t && echo "fuzz_$$t: $(FUZZ_SECONDS) s" && \
	  $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t 2>&1 \
	    | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Test unit written' \
	    || exit 1; \
	done

# Side-by-side with Apache httpd, nginx, h2o and lighttpd; long, never in CI.
# BENCH_SECONDS (default 5) sets each test's length, BENCH_ROUNDS (default 3) how many times
# each server is measured. Writes docs/benchmarks.md and .png, then checks what combined
# access logging costs the event MPM (at most 10% more CPU).
bench: build
	tests/bench/run.sh $(BUILD_DIR)
	BENCH_MPMS=event tests/bench/access_log_cost.sh $(BUILD_DIR)

# What combined access logging costs per request against logging off; fails over 10%.
bench-logging: build
	tests/bench/access_log_cost.sh $(BUILD_DIR)

install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

format:
	find include src mpm tests -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
