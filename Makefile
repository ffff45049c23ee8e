# capOS build, boot and test entry points. `make run` and `make test` are
# the two commands in the README; every CI check is one of these targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := iso

TARGET        := x86_64-unknown-none
KERNEL_DIR    := target/kernel
KERNEL_ELF    := $(KERNEL_DIR)/$(TARGET)/release/capos-kernel
BUILD         := build
KERNEL        := $(BUILD)/capos-kernel
# Cargo features of the kernel `make kernel` builds (empty: the kernel that
# `make iso`, `make run` and `make bench` use; e.g. FEATURES=lockdep).
FEATURES      :=
# The smoke kernel: the same sources with the lock-order validator, built
# in its own target directory so neither build invalidates the other.
TEST_KERNEL_DIR := target/kernel-lockdep
TEST_KERNEL   := $(BUILD)/capos-kernel-lockdep
# The kernel `make bench` boots a second time to report the longest
# interrupts-off stretch (measuring it costs instructions on every lock, so
# the path-length figures come from the plain kernel).
IRQOFF_KERNEL_DIR := target/kernel-irqoff
IRQOFF_KERNEL := $(BUILD)/capos-kernel-irqoff
ISO           := $(BUILD)/capos.iso
HOST_DIR      := target/host
LOOM_DIR      := target/loom
# Static, higher-half kernel code; frame pointers keep fault reports useful.
KERNEL_RUSTFLAGS := -C relocation-model=static -C code-model=kernel -C force-frame-pointers=yes
HOST_CRATES   := -p capos-ring -p capos-caps -p capos-codegen -p capos-reflect -p capos-kcore -p capos-verify -p capos-rt -p capos-linux-baseline
SERVICE_CRATES := -p capos-rt -p init -p hostile -p worker -p fault -p template -p bench -p timer-demo -p vm-demo -p heap-demo -p spawn-test -p echo-server -p echo-client -p shm-producer -p shm-consumer -p leak-test -p self-abuse -p sleepers -p terminal-test -p registry -p launcher-test -p shell -p hello -p kill-test -p sessiond -p session-probe -p authd -p session-test
SERVICE_RUSTFLAGS = -C relocation-model=static -C link-arg=-T$(CURDIR)/rt/link.ld -C link-arg=--no-pie -C link-arg=-zmax-page-size=4096
NOSTD_CRATES  := -p capos-ring -p capos-caps -p capos-reflect -p capos-kcore
# Service crates whose library (not their binary) is tested on the host.
HOST_SERVICE_LIBS := -p registry -p shell -p sessiond -p authd


.PHONY: setup kernel kernel-lockdep kernel-irqoff services manifests iso run run-uefi test test-host test-loom check-manifests check-dispatch smoke stress bench pathprof fmt fmt-check lint clean

# Services packed into every ISO as GRUB modules (module name = binary name).
SERVICES      := init hostile worker fault-pf fault-gp fault-ud fault-de fault-nm template bench timer-demo vm-demo heap-demo spawn-test echo-server echo-client shm-producer shm-consumer leak-test self-abuse sleepers terminal-test registry launcher-test shell hello kill-test sessiond session-probe authd authd-test session-test
# The manifest `make run` boots (init reads it through BootPackage).
RUN_MANIFEST  := system
MANIFESTS     := $(basename $(notdir $(wildcard manifests/*.capnp)))
MKMANIFEST    := CARGO_TARGET_DIR=$(HOST_DIR) cargo run -q -p capos-caps --features std --bin mkmanifest --

## setup: install missing Debian packages and the pinned Rust toolchain
setup:
	@scripts/setup.sh

## kernel: the kernel ELF (release, debug info stripped into build/; FEATURES=... adds cargo features)
kernel: setup
	RUSTFLAGS="$(KERNEL_RUSTFLAGS)" CARGO_TARGET_DIR=$(KERNEL_DIR) \
	    cargo build --release -p capos-kernel --target $(TARGET) $(if $(FEATURES),--features "$(FEATURES)")
	@mkdir -p $(BUILD)
	objcopy --strip-debug $(KERNEL_ELF) $(KERNEL)

## kernel-lockdep: the smoke kernel, with the lock-order validator (build/capos-kernel-lockdep)
kernel-lockdep: setup
	RUSTFLAGS="$(KERNEL_RUSTFLAGS)" CARGO_TARGET_DIR=$(TEST_KERNEL_DIR) \
	    cargo build --release -p capos-kernel --target $(TARGET) --features "lockdep irqoff"
	@mkdir -p $(BUILD)
	objcopy --strip-debug $(TEST_KERNEL_DIR)/$(TARGET)/release/capos-kernel $(TEST_KERNEL)

## kernel-irqoff: the kernel measuring interrupts-off stretches, for make bench (build/capos-kernel-irqoff)
kernel-irqoff: setup
	RUSTFLAGS="$(KERNEL_RUSTFLAGS)" CARGO_TARGET_DIR=$(IRQOFF_KERNEL_DIR) \
	    cargo build --release -p capos-kernel --target $(TARGET) --features irqoff
	@mkdir -p $(BUILD)
	objcopy --strip-debug $(IRQOFF_KERNEL_DIR)/$(TARGET)/release/capos-kernel $(IRQOFF_KERNEL)

## services: userspace service binaries (build/services/NAME)
services: setup
	scripts/build-services.sh

## manifests: validate and compile every manifest (build/manifests/NAME.bin)
manifests: setup
	@mkdir -p $(BUILD)/manifests
	@for m in $(MANIFESTS); do $(MKMANIFEST) build manifests/$$m.capnp $(BUILD)/manifests/$$m.bin; done

# Module arguments for mkiso.sh: the manifest, then every service.
iso_modules = --module $(BUILD)/manifests/$(1).bin manifest $(foreach s,$(SERVICES),--module $(BUILD)/services/$(s) $(s))

## iso: hybrid BIOS/UEFI ISO with the interactive GRUB menu
iso: kernel services manifests
	scripts/mkiso.sh $(ISO) $(KERNEL) $(call iso_modules,$(RUN_MANIFEST))
	@echo "iso: $(ISO) ($$(du -h $(ISO) | cut -f1))"

## run: boot the ISO in QEMU, serial console on this terminal (Ctrl-A X quits)
run: iso
	scripts/qemu.sh $(ISO) --log $(BUILD)/run/kernel.log

## run-uefi: the same under OVMF
run-uefi: iso
	scripts/qemu.sh $(ISO) --uefi --log $(BUILD)/run/kernel.log

## test: every test: host crates, loom models, manifests, QEMU smokes
test: setup test-host test-loom check-manifests check-dispatch smoke

## test-host: unit tests and property tests of the host-testable crates
test-host: setup
	CARGO_TARGET_DIR=$(HOST_DIR) cargo test $(HOST_CRATES) --all-features
	CARGO_TARGET_DIR=$(HOST_DIR) cargo test $(HOST_SERVICE_LIBS) --lib
	CARGO_TARGET_DIR=$(HOST_DIR) cargo build $(NOSTD_CRATES) --target $(TARGET)

## test-loom: loom models of the lock-free ring, the TLB shoot-down protocol and the thread scheduling state
test-loom: setup
	RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=$(LOOM_DIR) \
	    cargo test -p capos-verify --release --test ring_loom --test tlb_loom --test runstate_loom

## check-dispatch: the kernel's dispatch path recognises no object type
## (every object is called through KernelObject; no downcast anywhere)
check-dispatch:
	@if grep -rnE 'downcast|as_any|dyn (core::any::)?Any' kernel/src; then \
	    echo "check-dispatch: the kernel must not downcast objects (see docs/architecture.md)" >&2; exit 1; \
	else echo "check-dispatch: no downcast in kernel/src"; fi

## check-manifests: validate every manifest in manifests/ with mkmanifest
check-manifests: setup
	@for m in $(MANIFESTS); do $(MKMANIFEST) check manifests/$$m.capnp; done

## smoke: QEMU boots under TCG and KVM, one CPU and several, faults, hostile input (lock validator on)
smoke: kernel-lockdep services manifests
	SMOKE_SERVICES="$(SERVICES)" scripts/smoke.sh $(TEST_KERNEL)

# `make stress` settings: the manifest to boot, how many boots, CPUs per
# boot and boots at a time (empty: 2, or 1 on a one-core host); KEEP_GOING=1
# records every hang and goes on instead of stopping at the first.
MANIFEST      ?= tlb
COUNT         ?= 100
SMP           ?= 4
JOBS          ?=

## stress: boot MANIFEST COUNT times on SMP CPUs, JOBS at a time; stop at the first hang with registers and backtraces
stress: kernel services manifests
	STRESS_SERVICES="$(SERVICES)" STRESS_MANIFEST=$(MANIFEST) STRESS_COUNT=$(COUNT) \
	    STRESS_SMP=$(SMP) $(if $(JOBS),STRESS_JOBS=$(JOBS)) $(if $(KEEP_GOING),STRESS_KEEP_GOING=1) \
	    scripts/stress.sh $(KERNEL_ELF)

## bench: instructions per operation (path length) in capOS beside a Linux guest; cycles too under hardware KVM
bench: kernel kernel-irqoff services manifests
	IRQOFF_KERNEL=$(IRQOFF_KERNEL) scripts/bench.sh $(KERNEL)

# The benchmark pathprof profiles (see docs/bench.md for the names).
OP            ?= ipc-same-cpu
PATHPROF_ARGS ?=

## pathprof: where one operation of benchmark OP spends its instructions, per function (OP=ipc-same-cpu)
pathprof: kernel services manifests
	@mkdir -p $(BUILD)/bench
	scripts/mkiso.sh $(BUILD)/bench/bench.iso $(KERNEL) --cmdline "test=boot" \
	    --module $(BUILD)/manifests/bench.bin manifest --module $(BUILD)/services/bench bench
	python3 scripts/pathprof.py --op $(OP) --iso $(BUILD)/bench/bench.iso --kernel-elf $(KERNEL_ELF) \
	    --bench-elf target/services/$(TARGET)/release/bench --log $(BUILD)/bench/pathprof.log $(PATHPROF_ARGS)

## fmt: format every crate
fmt:
	cargo fmt --all

fmt-check:
	cargo fmt --all --check

## lint: rustfmt check and clippy -D warnings on host and kernel crates
lint: setup fmt-check
	CARGO_TARGET_DIR=$(HOST_DIR) cargo clippy $(HOST_CRATES) --all-targets --all-features -- -D warnings
	CARGO_TARGET_DIR=$(HOST_DIR) cargo clippy $(HOST_SERVICE_LIBS) --lib --tests -- -D warnings
	RUSTFLAGS="$(KERNEL_RUSTFLAGS)" CARGO_TARGET_DIR=$(KERNEL_DIR) \
	    cargo clippy --release -p capos-kernel -p capos-arch --target $(TARGET) -- -D warnings
	RUSTFLAGS="$(KERNEL_RUSTFLAGS)" CARGO_TARGET_DIR=$(TEST_KERNEL_DIR) \
	    cargo clippy --release -p capos-kernel --target $(TARGET) --features "lockdep irqoff" -- -D warnings
	RUSTFLAGS="$(SERVICE_RUSTFLAGS)" CARGO_TARGET_DIR=target/services \
	    cargo clippy --release $(SERVICE_CRATES) --target $(TARGET) -- -D warnings

clean:
	rm -rf target $(BUILD)
