# kiln: the two commands of the README, and the pieces they are made of.
#   make demo   runs the main job
#   make test   runs every check and test
SHELL := /bin/bash
CARGO ?= cargo
KILN := target/release/kiln

.PHONY: demo test setup build lint unit bench bench-pull

setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --release --locked --bin kiln

# The main job. Until kiln can build images it prints the plan of every
# example Dockerfile, as `kiln build --dry-run` shows it.
demo: build
	@set -e; for dir in examples/*/; do \
	  [ -f "$$dir/Dockerfile" ] || continue; \
	  echo "== $(KILN) build --dry-run --context $$dir --dockerfile $${dir}Dockerfile"; \
	  $(KILN) build --dry-run --context "$$dir" --dockerfile "$${dir}Dockerfile"; \
	  echo; \
	done
	@echo "== the plan as JSON, for --target test of examples/multi-target (target/plan.json)"
	$(KILN) build --dry-run --format json --context examples/multi-target \
	  --dockerfile examples/multi-target/Dockerfile --target test > target/plan.json
	@head -n 25 target/plan.json

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
