/*
 * fuzz.h: what the libFuzzer targets in common/fuzz share.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput over one reader of
 * untrusted bytes (docs/architecture.md, "Trust boundaries"); `make -C
 * common fuzz` runs each for FUZZ_SECONDS, `make -C common fuzzcheck` each
 * for a couple of seconds over the seed corpus in corpus/<name>/.  The
 * targets link the common/ library built with ASan and UBSan and without
 * http.c: the scripted transport below answers the JSON-RPC and guest-agent
 * clients instead of a network.
 */
#ifndef DSTACK_FUZZ_H
#define DSTACK_FUZZ_H

#include <stddef.h>
#include <stdint.h>

extern int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The scripted transport (http_mock.c).  The script is the answers a remote
 * sends, one per request, separated by NUL bytes (so n NULs make n + 1 answers); an answer that starts
 * with '@' and three digits has that HTTP status (else 200).  A request
 * after the last answer fails as a transport error.
 */
extern void fuzz_http_script(const uint8_t *data, size_t size);
extern int	fuzz_http_requests(void);	/* requests made since the script was set */

/* A NUL-terminated malloc()ed copy of data (jansson and the parsers read C strings). */
extern char *fuzz_strndup(const uint8_t *data, size_t size);

#endif							/* DSTACK_FUZZ_H */
