# pg_dstack top-level build.  `make` builds the PostgreSQL-free common library,
# both extensions' shared objects and the C tools; `make install` installs the
# extensions with PGXS; `make unitcheck` runs the C unit tests.  The full test
# suite (chain, simulator, pg_regress, end-to-end) is `./dev test`.

PG_CONFIG ?= pg_config
EXT_DIRS   = dstack_seal dstack_fdw
TOOL_DIRS  = tools/dseal-dump tools/boundary-libpq $(wildcard tools/chaintest) $(wildcard tools/dstack-verify) $(wildcard tools/libcuda-sim)

all: common
	for d in $(EXT_DIRS); do $(MAKE) -C $$d PG_CONFIG=$(PG_CONFIG) || exit 1; done
	for d in $(TOOL_DIRS); do $(MAKE) -C $$d || exit 1; done

common:
	$(MAKE) -C common

install: all
	for d in $(EXT_DIRS); do $(MAKE) -C $$d PG_CONFIG=$(PG_CONFIG) install || exit 1; done

unitcheck:
	$(MAKE) -C common check
	$(MAKE) -C gpu_scan check

# libFuzzer targets of common/'s readers of untrusted bytes (needs clang):
# `make fuzz` runs each for FUZZ_SECONDS (default 60), `make fuzzcheck` briefly (CI).
fuzz fuzzcheck:
	$(MAKE) -C common $@

# On a machine with a GPU: the suite on the GPU vs the host build, then bench/gpu.sh.
gpucheck:
	tools/gpucheck.sh

# pg_regress against a running server; tools/regress.sh sets up everything it needs.
installcheck:
	tools/regress.sh

clean:
	$(MAKE) -C common clean
	$(MAKE) -C gpu_scan clean
	for d in $(EXT_DIRS); do $(MAKE) -C $$d PG_CONFIG=$(PG_CONFIG) clean; done
	for d in $(TOOL_DIRS); do $(MAKE) -C $$d clean; done
	rm -rf results regression.diffs regression.out

.PHONY: all common install unitcheck installcheck gpucheck fuzz fuzzcheck clean
