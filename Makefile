# InfiniBand ODP on HMM mirroring, on Linux 6.12 and soft-RoCE.
#   make run      build, boot, ib_write_bw pinned vs --odp over rxe0 (the main job)
#   make check    every test (KUnit, integration, pyverbs test_odp, hmm-tests)
#   make kernel   build the patched kernel only      (DEBUG=1: debug variant)
#   make stress   the long reliability runs (odp_stress 10 min, bad input, fault injection, swap)
#   make patches  the kernel change as a format-patch series + checkpatch
#   make bisect-check  every prefix of the series builds (W=1 on what it touches), KUnit on the last
#   make bench-edu  batched vs per-page DMA mapping on the edu device (VT-d)
#   make bench-storage  file-backed ODP figures on ext4 (tests/host/bench/storage)
#   make bench    ODP against pinned (one VM boot), the edu figure (bench-edu), the cluster figures (2 VMs), bench-storage
#   RECORD=1      make check / make bench also rewrite their section of RESULTS.md from what the run measured
SHELL := /bin/bash
DEBUG ?= 0
SUITES ?=
RECORD ?= 0
export DEBUG RECORD

.PHONY: all deps kernel run check stress patches bisect-check bench bench-edu bench-storage clean

all: kernel

deps:
	@bin/install-deps

kernel: deps
	@bin/kernel-build -s

run: kernel
	@tests/host/vm-run --timeout 600 -- tests/guest/main-job

check: deps
	@tests/host/check $(SUITES)

# The edu figure: mirror batched DMA mapping vs per-page dma_map_page (VT-d)
bench-edu: kernel
	@tests/host/bench/edu

# Storage targets: file-backed ODP READ vs anonymous, cold vs cached, zero-copy vs copy
bench-storage: kernel
	@tests/host/bench/storage

stress: deps
	@tests/host/stress

patches: deps
	@bin/make-patches

bisect-check: deps
	@bin/bisect-check

bench: deps
	@st=0; tests/host/bench/run || st=$$?; echo; tests/host/bench/edu || st=$$?; echo; tests/host/bench/cluster || st=$$?; echo; tests/host/bench/storage || st=$$?; exit $$st

clean:
	rm -rf build
