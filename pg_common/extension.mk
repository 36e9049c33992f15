# pg_common/extension.mk: what both extensions' PGXS Makefiles share.  Set
# MODULE_big, OBJS, EXTENSION, EXTVERSION and PGFILEDESC, then include this
# file.  The PostgreSQL-free ../common library is linked statically and its
# symbols are hidden, so dstack_seal and dstack_fdw load into one backend
# without clashing; the pg_common glue is compiled into each.
#
# SQL scripts, versioned as pgvector does it (CONTRIBUTING.md):
#   sql/$(EXTENSION).sql           the current script, edited in place
#   sql/$(EXTENSION)--X.sql        released versions, frozen, installed as they are
#   sql/$(EXTENSION)--X--Y.sql     upgrade scripts, installed as they are
#   $(EXTENSION)--$(EXTVERSION).sql  built from sql/$(EXTENSION).sql: what
#                                  CREATE EXTENSION runs (not in git)
#   $(EXTENSION).control           built from $(EXTENSION).control.in with
#                                  default_version = EXTVERSION (not in git)
# Releasing EXTVERSION: copy the built script to sql/ (frozen), add the
# upgrade script to the next version, then raise EXTVERSION.

OBJS += ../pg_common/derr_pg.o ../pg_common/hex_pg.o ../pg_common/typemap.o
PG_CPPFLAGS += -I$(srcdir)/../common -I$(srcdir)/../pg_common
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
SHLIB_LINK += $(srcdir)/../common/libdstack_common.a -Wl,--exclude-libs,ALL \
	-lsecp256k1 -lssl -lcrypto -lzstd -ljansson -lcurl -pthread

ifneq ($(wildcard sql/$(EXTENSION)--$(EXTVERSION).sql),)
$(error sql/$(EXTENSION)--$(EXTVERSION).sql is frozen: raise EXTVERSION in the Makefile)
endif
DATA = $(wildcard sql/$(EXTENSION)--*.sql)
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
EXTRA_CLEAN = $(EXTENSION).control

# the default goal stays PGXS's `all`; these are two more of its prerequisites
all: $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION).control

# The script's first line names the version: stamp it with the one being built.
$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql Makefile
	sed -e '1s/^-- $(EXTENSION) [0-9][0-9.]*:/-- $(EXTENSION) $(EXTVERSION):/' $< > $@

$(EXTENSION).control: $(EXTENSION).control.in Makefile
	sed -e 's/@EXTVERSION@/$(EXTVERSION)/' $< > $@

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): $(wildcard $(srcdir)/*.h $(srcdir)/../common/*.h $(srcdir)/../pg_common/*.h)

# relink when the common library changes
$(shlib): $(srcdir)/../common/libdstack_common.a
