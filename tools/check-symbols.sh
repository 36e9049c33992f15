#!/usr/bin/env bash
# tools/check-symbols.sh: the extensions link common/ and shared libraries
# (jansson, curl, OpenSSL, libsecp256k1, zstd) into a backend.  A library
# function that has the same name as a function the postgres executable
# exports is bound to the executable's at run time (jansson's json_object()
# called PostgreSQL's SQL function json_object and crashed).  Fail if any
# symbol common/ or pg_common/ calls is also exported by postgres, unless
# postgres is where it is meant to come from.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG=$(pg_config --bindir)/postgres
exported=$(nm -D --defined-only "$PG" | awk '{print $3}' | sort -u)
called=$(nm -u "$ROOT"/common/*.o | awk '{print $2}' | sed 's/@.*//' | sort -u)
clash=$(comm -12 <(echo "$exported") <(echo "$called") |
	grep -v -E '^(_|str|mem|f?printf|snprintf|vsnprintf|pthread_|explicit_bzero|abort|free|malloc|calloc|realloc|qsort|getenv|close|open|read|write|fsync|rename|unlink|stat|fstat|lseek|pread|pwrite|time|clock_gettime|nanosleep|usleep|poll|socket|connect|fcntl|errno|__errno_location|setsockopt|getpid|mkstemp|fdopen|fclose|fopen|fread|fwrite|fflush|fputs|fputc|puts|putchar|sprintf|sscanf|strtol|strtoul|strtoull|strtoll|isatty|atoi|exit|memcmp|dirname|basename|random|srandom|select|sigaction|signal|ftruncate|opendir|readdir|closedir|mkdir|rmdir|access|realpath|gmtime_r|localtime_r|strftime|timegm|getrandom|sysconf|fileno|ferror|feof|vfprintf|fprintf|perror|atexit|qsort_r|bsearch|toupper|tolower|isspace|isdigit|isxdigit|isalpha|isalnum|fsync|dup|dup2|pipe|fork|waitpid|kill|gettimeofday|setenv|unsetenv|strerror|strerror_r|getuid|geteuid|chmod|fchmod|umask|__stack_chk_fail|__assert_fail|__ctype_b_loc|__ctype_tolower_loc|__ctype_toupper_loc|__fprintf_chk|__snprintf_chk|__sprintf_chk|__vsnprintf_chk|__memcpy_chk|__memset_chk|__strcpy_chk|__explicit_bzero_chk|__read_chk|__pread_chk)$' || true)
if [ -n "$clash" ]; then
	echo "symbols called by common/ that the postgres executable also exports:" >&2
	echo "$clash" | sed 's/^/  /' >&2
	exit 1
fi
echo "no symbol clashes between common/ and the postgres executable"

# The two extensions load into one backend (dstack_fdw preloaded): a function
# both export is bound to the first library's copy, so dstack_seal would run
# dstack_fdw's pg_common code.  Only PostgreSQL's entry points may be shared.
both=$(comm -12 <(nm -D --defined-only "$ROOT"/dstack_seal/dstack_seal.so | awk '{print $3}' | sort -u) \
	<(nm -D --defined-only "$ROOT"/dstack_fdw/dstack_fdw.so | awk '{print $3}' | sort -u) |
	grep -v -E '^(Pg_magic_func|_PG_init)$' || true)
if [ -n "$both" ]; then
	echo "symbols exported by both dstack_seal.so and dstack_fdw.so:" >&2
	echo "$both" | sed 's/^/  /' >&2
	exit 1
fi
echo "no symbol exported by both extensions"
