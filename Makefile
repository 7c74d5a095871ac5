# kiln: the two commands of the README, and the pieces they are made of.
#   make demo   runs the main job
#   make test   runs every check and test
SHELL := /bin/bash
CARGO ?= cargo
KILN := target/release/kiln

.PHONY: demo test setup build lint unit bench bench-pull bench-build

setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --release --locked --bin kiln

# The main job: start a local registry, push a busybox base image to it,
# print the plan of every example (kiln build --dry-run), then build and
# push examples/metadata with kiln and show it with skopeo inspect.
demo: build
	$(CARGO) run --release --locked -q -p kiln-tests --bin demo

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit: setup
	$(CARGO) test --workspace --all-targets --locked
	$(CARGO) test --workspace --doc --locked

# Every check and test. Conformance data is read from ../shared/conformance
# (or $$KILN_CONFORMANCE_DIR).
test: lint unit

bench: setup
	$(CARGO) bench --locked -p kiln --bench frontend

# Issue 3: pull + unpack of a Debian minbase image, kiln against skopeo copy +
# umoci unpack, in one run. Needs root the first time (debootstrap); inputs
# are cached in target/bench-cache/, the table goes to target/bench-pull.json.
bench-pull: build
	KILN_BIN=$(CURDIR)/$(KILN) $(CARGO) run --release --locked -p kiln-tests --bin bench_pull

# Issue 4: builds on the Debian minbase image, kiln against buildah build
# --isolation chroot --storage-driver vfs --layers, in one run: per-step
# snapshot cost, whole-build time, peak RSS with a 1 GiB layer. Needs root
# (debootstrap the first time, buildah); the table goes to
# target/bench-build.json.
bench-build: build
	KILN_BIN=$(CURDIR)/$(KILN) $(CARGO) run --release --locked -p kiln-tests --bin bench_build
