/*
 * unit.h: the minimal harness every common/tests/test_*.c uses.
 *
 * Each test program prints one line per check and ends with the plain
 * "N passed, N failed" line that CI reads; it exits non-zero on any failure.
 */
#ifndef DSTACK_UNIT_H
#define DSTACK_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	unit_passed;
static int	unit_failed;

#define CHECK(cond, name) \
	do { \
		if (cond) { unit_passed++; printf("ok   %s\n", (name)); } \
		else { unit_failed++; printf("FAIL %s (%s:%d: %s)\n", (name), __FILE__, __LINE__, #cond); } \
	} while (0)

/* Compare bytes against an expected hex string. */
#define CHECK_HEX(buf, len, hexstr, name) \
	do { \
		char _h[2 * 4096 + 1]; \
		dhex_encode((buf), (len), _h); \
		if (strcmp(_h, (hexstr)) == 0) { unit_passed++; printf("ok   %s\n", (name)); } \
		else { unit_failed++; printf("FAIL %s\n     got      %s\n     expected %s\n", (name), _h, (hexstr)); } \
	} while (0)

#define UNIT_DONE() \
	do { \
		printf("%d passed, %d failed\n", unit_passed, unit_failed); \
		return unit_failed ? 1 : 0; \
	} while (0)

#endif							/* DSTACK_UNIT_H */
