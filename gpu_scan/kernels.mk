# gpu_scan/kernels.mk: the CUDA kernels, embedded into the extension.
#
# With nvcc (NVCC, default /usr/local/cuda/bin/nvcc, or on PATH) the kernels
# are compiled into a fatbin (sm_90 code + compute_90 PTX, which newer GPUs
# JIT) and embedded as gs_fatbin.c; without it gs_fatbin.c is empty and the
# extension plans the CPU path (the probe says why).  --fmad=false: float
# arithmetic rounds as the host build does.

GS_DIR   := $(dir $(lastword $(MAKEFILE_LIST)))
.DEFAULT_GOAL := all
NVCC     ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
NVCC_FLAGS = -O3 --fmad=false -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

PG_CPPFLAGS += -I$(GS_DIR) -I$(GS_DIR)../dstack_fdw
SHLIB_LINK += -ldl -lm

$(GS_DIR)gs_host.o $(GS_DIR)gs_cuda.o $(GS_DIR)gs_pg.o $(GS_DIR)gs_compile.o $(GS_DIR)gs_plan.o \
$(GS_DIR)gs_exec.o: $(wildcard $(GS_DIR)*.h $(GS_DIR)kernels/*.h)

ifneq ($(NVCC),)
$(GS_DIR)gs_kernels.fatbin: $(GS_DIR)kernels/gs_kernels.cu $(GS_DIR)kernels/gs_logic.h
	$(NVCC) $(NVCC_FLAGS) -fatbin -o $@ $<

$(GS_DIR)gs_fatbin.c: $(GS_DIR)gs_kernels.fatbin
	{ echo '/* generated from kernels/gs_kernels.cu by nvcc; do not edit */'; \
	  echo '#include <stddef.h>'; \
	  echo '__attribute__((aligned(8))) const unsigned char gs_fatbin[] = {'; \
	  od -An -v -tu1 $< | sed 's/\([0-9][0-9]*\)/\1,/g'; \
	  echo '};'; \
	  echo 'const size_t gs_fatbin_len = sizeof(gs_fatbin);'; } > $@
else
$(GS_DIR)gs_fatbin.c:
	{ echo '/* generated: nvcc was not found, so this build has no GPU kernels */'; \
	  echo '#include <stddef.h>'; \
	  echo 'const unsigned char gs_fatbin[1] = {0};'; \
	  echo 'const size_t gs_fatbin_len = 0;'; } > $@
endif

EXTRA_CLEAN += $(GS_DIR)gs_kernels.fatbin $(GS_DIR)gs_fatbin.c
