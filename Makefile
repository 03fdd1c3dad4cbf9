# A thin wrapper over CMake and CTest. `make run` and `make test` work on a fresh Debian 12.

BUILD_DIR ?= build
JOBS      ?= 2
PREFIX    ?= /usr/local
CONFIG    ?= conf/trident.yaml

# Debian 12 packages the build, the tests and `make run` need.
DEB_PACKAGES := cmake make g++ pkg-config libboost-dev libfmt-dev libspdlog-dev \
                libyaml-cpp-dev libgtest-dev libsystemd-dev media-types curl apache2-utils wrk

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build run test bench install format clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing:" $$missing; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	exec $(BUILD_DIR)/trident -f $(CONFIG)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS) --timeout 300

# Side-by-side with Apache httpd, nginx, h2o and lighttpd; long, never in CI.
# BENCH_SECONDS (default 10) sets each test's length. Writes docs/benchmarks.md and .png.
bench: build
	tests/bench/run.sh $(BUILD_DIR)

install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

format:
	find include src mpm tests -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
