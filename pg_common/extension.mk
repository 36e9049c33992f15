# pg_common/extension.mk: what both extensions' PGXS Makefiles share.  Set
# MODULE_big, OBJS, EXTENSION, DATA and PGFILEDESC, then include this file.
# The PostgreSQL-free ../common library is linked statically and its symbols
# are hidden, so dstack_seal and dstack_fdw load into one backend without
# clashing; the pg_common glue is compiled into each.

OBJS += ../pg_common/derr_pg.o ../pg_common/typemap.o
PG_CPPFLAGS += -I$(srcdir)/../common -I$(srcdir)/../pg_common
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
SHLIB_LINK += $(srcdir)/../common/libdstack_common.a -Wl,--exclude-libs,ALL \
	-lsecp256k1 -lssl -lcrypto -lzstd -ljansson -lcurl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): $(wildcard $(srcdir)/*.h $(srcdir)/../common/*.h $(srcdir)/../pg_common/*.h)

# relink when the common library changes
$(shlib): $(srcdir)/../common/libdstack_common.a
