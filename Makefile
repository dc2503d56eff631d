# Tally — a thin layer over cargo and the host tool (tools/tally). `make help` lists targets.
#
#   make run  [CONFIG=configs/NAME.toml] [POLICY="cow=holder msgbuf=receiver"] [MEM=4G] [OUT=DIR]
#   make test | bench | experiments | debug | clean
#   make profile [BENCH=memory] [PROFILE_ARGS="--inclusive --inlined"] | profile-test

CONFIG ?= configs/default.toml
POLICY ?=
MEM    ?=
OUT    ?=
CPU    ?= cortex-a72
TIMEOUT ?=

KERNEL_TARGET := aarch64-unknown-none-softfloat
USER_TARGET   := aarch64-unknown-none
BUILD   := build
KERNEL_ELF := target/$(KERNEL_TARGET)/release/tally
USER_DIR   := $(CURDIR)/target/$(USER_TARGET)/release
TALLY   := target/release/tally
IMAGE   := $(BUILD)/tally.bin
SYSROOT = $(shell rustc --print sysroot)
OBJCOPY = $(firstword $(wildcard $(SYSROOT)/lib/rustlib/*/bin/llvm-objcopy) $(shell command -v llvm-objcopy))

RUN_ARGS = --config $(CONFIG) --cpu $(CPU) $(if $(POLICY),--policy "$(POLICY)") $(if $(MEM),--mem $(MEM)) $(if $(OUT),--out $(OUT)) $(if $(TIMEOUT),--timeout $(TIMEOUT))

.PHONY: all run test bench experiments debug clean setup kernel user tool image image-noacct help lint fmt host-test qemu-test fuzz profile profile-test

all: image tool

help:
	@sed -n '1,6p' Makefile | sed 's/^# \{0,1\}//'

## setup: install what is missing (QEMU from Debian, the Rust targets via rust-toolchain.toml).
setup:
	@command -v qemu-system-aarch64 >/dev/null 2>&1 || { \
	  echo "tally: installing QEMU (Debian package qemu-system-arm)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq qemu-system-arm >/dev/null; }
	@rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
	@rustup target list --installed | grep -q '^$(KERNEL_TARGET)$$' || rustup target add $(KERNEL_TARGET) $(USER_TARGET)

user: setup
	cargo build --release -p user --target $(USER_TARGET) --bins

kernel: user
	TALLY_USER_DIR=$(USER_DIR) cargo build --release -p kernel --target $(KERNEL_TARGET)

image: kernel
	@mkdir -p $(BUILD)
	$(OBJCOPY) -O binary $(KERNEL_ELF) $(IMAGE)
	@cp $(KERNEL_ELF) $(BUILD)/tally.elf

tool:
	cargo build --release -p tally

## run: build and boot CONFIG, show the console and the report summary.
run: image tool
	$(TALLY) run --kernel $(IMAGE) $(RUN_ARGS)

## debug: boot halted with QEMU's gdbstub on :1234.
debug: image tool
	@command -v gdb-multiarch >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq gdb-multiarch >/dev/null; }
	$(TALLY) run --kernel $(IMAGE) --gdb $(RUN_ARGS)

## test: lint (fmt, clippy), host unit and property tests, QEMU scenario tests, profile-test.
test: lint host-test qemu-test profile-test

host-test:
	cargo test --release -p abi -p devicetree -p accounting -p policies -p kcore -p tally

qemu-test: image tool
	$(TALLY) test --kernel $(IMAGE) --out-root $(BUILD)/test configs/*.toml
	$(TALLY) test --kernel $(IMAGE) --out-root $(BUILD)/test-replay --replay-check configs/*.toml
	$(TALLY) test --kernel $(IMAGE) --out-root $(BUILD)/test-4g --mem 4G configs/default.toml
	$(TALLY) test --kernel $(IMAGE) --out-root $(BUILD)/test-max --cpu max configs/default.toml
	$(TALLY) test --kernel $(IMAGE) --out-root $(BUILD)/test-bad tests/configs/bad-bootargs*.toml tests/configs/check-failed.toml tests/configs/bad-recount-leak.toml
	$(TALLY) test --kernel $(IMAGE) --out-root $(BUILD)/test-bad --no-recount tests/configs/bad-leak-teardown.toml
	$(TALLY) test --kernel $(IMAGE) --expect-refused tests/configs/refused/*.toml
	$(TALLY) test --kernel $(IMAGE) --expect-config-error "valid values: writer, holder, split" tests/configs/bad-policy.toml

lint: user
	cargo fmt --all -- --check
	cargo clippy --release -p abi -p devicetree -p accounting -p policies -p kcore -p tally --all-targets -- -D warnings
	TALLY_USER_DIR=$(USER_DIR) cargo clippy --release -p kernel --target $(KERNEL_TARGET) -- -D warnings
	cargo clippy --release -p user --target $(USER_TARGET) --bins -- -D warnings

fmt:
	cargo fmt --all

## bench: host ledger benchmark and in-guest instruction counts -> results/bench.json, bench.md.
# The benchmark configs live in bench/ (not configs/, so test and experiments skip them). Each
# boots under the default kernel and under one built with accounting compiled out
# (--no-default-features, in its own target directory so the two builds never overwrite each
# other), twice each: the figures must come out identical (runs are deterministic).
NOACCT_TARGET_DIR := target/noacct
NOACCT_IMAGE := $(BUILD)/tally-noacct.bin

image-noacct: user
	TALLY_USER_DIR=$(USER_DIR) cargo build --release -p kernel --target $(KERNEL_TARGET) \
	  --no-default-features --target-dir $(NOACCT_TARGET_DIR)
	@mkdir -p $(BUILD)
	$(OBJCOPY) -O binary $(NOACCT_TARGET_DIR)/$(KERNEL_TARGET)/release/tally $(NOACCT_IMAGE)

bench: image image-noacct tool
	@mkdir -p $(BUILD)/bench
	TALLY_BENCH_JSON=$(CURDIR)/$(BUILD)/bench/ledger.json cargo bench -p accounting
	$(TALLY) bench --kernel $(IMAGE) --kernel-noacct $(NOACCT_IMAGE) --repeat 2 \
	  --ledger-json $(BUILD)/bench/ledger.json bench/*.toml

## profile: the per-function instruction profile of bench/$(BENCH).toml's measured window
## (docs/profiling.md): tables on stdout, folded stacks in build/profile/$(BENCH).folded.
BENCH ?= memory
PROFILE_ARGS ?=
profile: image tool
	@mkdir -p $(BUILD)/profile
	$(TALLY) profile --kernel $(IMAGE) --config bench/$(BENCH).toml \
	  --folded $(BUILD)/profile/$(BENCH).folded $(PROFILE_ARGS)

## profile-test: profile each bench window tally profile knows (tools/tally/src/profile.rs,
## BENCH_WINDOWS); each must total exactly the counter reads that delimit it and give the
## figure the bench printed (a few seconds each).
profile-test: image tool
	@mkdir -p $(BUILD)/profile
	@for w in calibrate:calibration_loop memory:demand_zero_fault \
	    ipc-registers:ipc_roundtrip_registers ipc:ipc_roundtrip_0 ipc:ipc_roundtrip_64 \
	    fork:cow_fault fork:spawn_share_per_page fork:spawn_share_4mib fork:spawn; do \
	  b=$${w%%:*}; f=$${w#*:}; \
	  $(TALLY) profile --kernel $(IMAGE) --config bench/$$b.toml --figure $$f --top 0 \
	    > $(BUILD)/profile/$$f.txt \
	    || { cat $(BUILD)/profile/$$f.txt; echo "profile-test: bench/$$b.toml $$f FAILED"; exit 1; }; \
	  grep '^# bench figure' $(BUILD)/profile/$$f.txt; \
	done

## experiments: every file in results/ but the benchmarks' (`make bench` writes bench.json and
## bench.md): every config under every policy combination it exercises (matrix.md, matrix.csv,
## one chart per scenario, each run's files) and the default tour's report (results/default/).
experiments: image tool
	$(TALLY) experiments --kernel $(IMAGE) --out-root results configs/*.toml
	$(TALLY) run --kernel $(IMAGE) --config configs/default.toml --quiet --out results/default

## fuzz: the fuzz campaign (docs/fuzzing.md): fuzz/*.toml, each over 10^6 system calls per run,
## under every policy combination and both transfer modes, the full recount on; then one line
## (runs, calls, panics, hangs, recount failures, leaks, corrupt messages) from fuzz/summary.sh.
fuzz: image tool
	@rm -rf $(BUILD)/fuzz
	@mkdir -p $(BUILD)/fuzz
	-$(TALLY) test --kernel $(IMAGE) --out-root $(BUILD)/fuzz fuzz/*.toml 2>&1 | tee $(BUILD)/fuzz/test.log
	@sh fuzz/summary.sh $(BUILD)/fuzz $(BUILD)/fuzz/test.log

clean:
	cargo clean
	rm -rf $(BUILD)
