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
ISO           := $(BUILD)/capos.iso
HOST_DIR      := target/host
LOOM_DIR      := target/loom
# Static, higher-half kernel code; frame pointers keep fault reports useful.
KERNEL_RUSTFLAGS := -C relocation-model=static -C code-model=kernel -C force-frame-pointers=yes
HOST_CRATES   := -p capos-ring -p capos-caps -p capos-kcore -p capos-verify -p capos-rt -p capos-linux-baseline
SERVICE_CRATES := -p capos-rt -p init -p hostile -p worker -p fault -p template -p bench -p timer-demo -p vm-demo -p heap-demo -p spawn-test -p echo-server -p echo-client -p shm-producer -p shm-consumer
SERVICE_RUSTFLAGS = -C relocation-model=static -C link-arg=-T$(CURDIR)/rt/link.ld -C link-arg=--no-pie -C link-arg=-zmax-page-size=4096
NOSTD_CRATES  := -p capos-ring -p capos-caps -p capos-kcore

.PHONY: setup kernel services manifests iso run run-uefi test test-host test-loom check-manifests smoke stress bench fmt fmt-check lint clean

# Services packed into every ISO as GRUB modules (module name = binary name).
SERVICES      := init hostile worker fault-pf fault-gp fault-ud fault-de fault-nm template bench timer-demo vm-demo heap-demo spawn-test echo-server echo-client shm-producer shm-consumer
# The manifest `make run` boots (init reads it through BootPackage).
RUN_MANIFEST  := default
MANIFESTS     := $(basename $(notdir $(wildcard manifests/*.capnp)))
MKMANIFEST    := CARGO_TARGET_DIR=$(HOST_DIR) cargo run -q -p capos-caps --features std --bin mkmanifest --

## setup: install missing Debian packages and the pinned Rust toolchain
setup:
	@scripts/setup.sh

## kernel: the kernel ELF (release, debug info stripped into build/)
kernel: setup
	RUSTFLAGS="$(KERNEL_RUSTFLAGS)" CARGO_TARGET_DIR=$(KERNEL_DIR) \
	    cargo build --release -p capos-kernel --target $(TARGET)
	@mkdir -p $(BUILD)
	objcopy --strip-debug $(KERNEL_ELF) $(KERNEL)

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
	scripts/qemu.sh $(ISO)

## run-uefi: the same under OVMF
run-uefi: iso
	scripts/qemu.sh $(ISO) --uefi

## test: every test: host crates, loom models, manifests, QEMU smokes
test: setup test-host test-loom check-manifests smoke

## test-host: unit tests and property tests of the host-testable crates
test-host: setup
	CARGO_TARGET_DIR=$(HOST_DIR) cargo test $(HOST_CRATES) --all-features
	CARGO_TARGET_DIR=$(HOST_DIR) cargo build $(NOSTD_CRATES) --target $(TARGET)

## test-loom: loom models of the lock-free ring and the TLB shoot-down protocol
test-loom: setup
	RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=$(LOOM_DIR) \
	    cargo test -p capos-verify --release --test ring_loom --test tlb_loom

## check-manifests: validate every manifest in manifests/ with mkmanifest
check-manifests: setup
	@for m in $(MANIFESTS); do $(MKMANIFEST) check manifests/$$m.capnp; done

## smoke: QEMU boots under TCG and KVM, one CPU and several, faults, hostile input
smoke: kernel services manifests
	SMOKE_SERVICES="$(SERVICES)" scripts/smoke.sh $(KERNEL)

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

## bench: cycles per operation in capOS beside this machine's Linux baseline
bench: kernel services manifests
	scripts/bench.sh $(KERNEL)

## fmt: format every crate
fmt:
	cargo fmt --all

fmt-check:
	cargo fmt --all --check

## lint: rustfmt check and clippy -D warnings on host and kernel crates
lint: setup fmt-check
	CARGO_TARGET_DIR=$(HOST_DIR) cargo clippy $(HOST_CRATES) --all-targets --all-features -- -D warnings
	RUSTFLAGS="$(KERNEL_RUSTFLAGS)" CARGO_TARGET_DIR=$(KERNEL_DIR) \
	    cargo clippy --release -p capos-kernel -p capos-arch --target $(TARGET) -- -D warnings
	RUSTFLAGS="$(SERVICE_RUSTFLAGS)" CARGO_TARGET_DIR=target/services \
	    cargo clippy --release $(SERVICE_CRATES) --target $(TARGET) -- -D warnings

clean:
	rm -rf target $(BUILD)
