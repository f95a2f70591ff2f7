# Kwyre — build, test and boot the appliance.
# `make run`  builds the image and boots it in QEMU with the chat on this terminal.
# `make test` installs what is missing, builds everything and runs every test.
# `make check` is the fast loop: vet and unit tests, no VM, no kernel build.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
BIN     := bin
BUILD   := build
MODEL   ?=
# The image's kernel: kwyre (ours, make kernel) or debian (build/debian-kernel).
KERNEL_FLAVOUR ?= kwyre
KWYRE_KERNEL   := $(BUILD)/vmlinuz-kwyre

# The pinned binding module with services/inference/binding-patches applied
# (tools/binding-patch.sh), used through an alternate go.mod (-modfile): go.mod
# keeps the module as released, and `go version -m` on a program shows which.
BINDING := $(BUILD)/binding

# runtime/secret erases what plaintext handling leaves on stacks, registers and heap.
export GOEXPERIMENT := runtimesecret
export CGO_ENABLED  := 1
export GOFLAGS      := -buildvcs=false -trimpath -modfile=$(abspath $(BINDING))/kwyre.mod

# The engine's own cgo layer compiles against llama.h of the pinned binding module.
OLLAMA_DIR = $(shell GOFLAGS=-buildvcs=false $(GO) list -m -f '{{.Dir}}' github.com/ollama/ollama 2>/dev/null)
export CGO_CPPFLAGS = -I$(OLLAMA_DIR)/llama/llama.cpp/include -I$(OLLAMA_DIR)/ml/backend/ggml/ggml/include

# name=package:cgo. Programs without cgo are static: fewer files in the image to verify.
PROGRAMS := \
	kwyre-init=./init/cmd/kwyre-init:0 \
	kwyre-inference=./services/inference/cmd/kwyre-inference:1 \
	kwyre-watchdog=./services/watchdog/cmd/kwyre-watchdog:1 \
	kwyre-console=./services/console/cmd/kwyre-console:0 \
	kwyre-manifest=./tools/kwyre-manifest:0 \
	kwyre-testmodel=./tools/kwyre-testmodel:0 \
	kwyre-image=./image/cmd/kwyre-image:0

.PHONY: deps binding build check test test-unit test-race test-vm image run kernel kernel-check cuda bench env clean

deps:
	@./tools/install-deps.sh

# Phony, so it runs before every Go step; the script itself keeps build/binding
# when go.mod, go.sum and the patches are what it was made from.
binding:
	@./tools/binding-patch.sh $(BINDING)

# Prints the environment the Makefile builds with: eval "$$(make -s env)".
env: binding
	@echo "export GOEXPERIMENT=$(GOEXPERIMENT) CGO_ENABLED=1 GOFLAGS='$(GOFLAGS)'"
	@echo "export CGO_CPPFLAGS='$(CGO_CPPFLAGS)'"

build: binding
	@mkdir -p $(BIN)
	@for p in $(PROGRAMS); do \
	  name=$${p%%=*}; rest=$${p#*=}; pkg=$${rest%%:*}; cgo=$${rest##*:}; \
	  echo "go build $$name"; CGO_ENABLED=$$cgo $(GO) build -ldflags="-s -w" -o $(BIN)/$$name $$pkg; \
	done
# ggml compiles its CPU kernels for one instruction set: a second inference
# build for x86-64-v3 (AVX2, FMA, F16C), which the baseline one execs where
# the CPU has them (about 10x faster on CPU).
	@if [ "$$(uname -m)" = x86_64 ]; then \
	  echo "go build kwyre-inference-x86-64-v3"; \
	  CGO_CFLAGS="-O2 -march=x86-64-v3" CGO_CXXFLAGS="-O2 -march=x86-64-v3" $(GO) build \
	    -ldflags="-s -w -X main.cpuBuild=x86-64-v3" -o $(BIN)/kwyre-inference-x86-64-v3 ./services/inference/cmd/kwyre-inference; \
	fi

check: binding
	$(GO) vet ./...
	$(GO) test -short -count=1 ./...

# Tests that run a built program take it from bin/ instead of building it again.
test-unit: build
	KWYRE_INFERENCE_BIN=$(abspath $(BIN))/kwyre-inference KWYRE_REQUIRE_KERNEL=1 $(GO) test -count=1 -timeout 60m ./...

test-race: binding
	$(GO) test -race -short -count=1 ./...

kernel:
	@./kernel-config/build.sh

# The image needs the kernel file; build.sh skips the compile when its stamp
# says the kernel is current (and then touches the file).
$(KWYRE_KERNEL): kernel-config/kwyre.config kernel-config/build.sh
	@./kernel-config/build.sh

kernel-check:
	@./kernel-config/check.sh

image: build $(if $(filter kwyre,$(KERNEL_FLAVOUR)),$(KWYRE_KERNEL))
	@$(BIN)/kwyre-image -out $(BUILD) -kernel-flavour $(KERNEL_FLAVOUR) $(if $(MODEL),-model $(MODEL)) $(if $(CMDLINE),-cmdline '$(CMDLINE)')

# On a fresh machine, deps installs what the build and QEMU need first.
run: deps image
	@./qa/run-qemu.sh $(BUILD)/kwyre.img

test-vm: image
	KWYRE_QA_IMAGE=$(abspath $(BUILD)) $(GO) test -count=1 -v -timeout 40m ./qa/...

cuda: binding
	@./qa/gpu/build-cuda.sh

bench: build $(KWYRE_KERNEL)
	@./qa/bench.sh

test: deps build kernel-check kernel test-unit test-vm

clean:
	rm -rf $(BIN) $(BINDING) $(BUILD)/*.img $(BUILD)/*.efi $(BUILD)/*.cpio* $(BUILD)/work $(BUILD)/demo.gguf
