/*
 * gs_host.h: the host side of gpu_scan's kernels, without PostgreSQL.
 *
 * gs_host.c runs the per-row logic of kernels/gs_logic.h over a row group on
 * the CPU (the path CI tests and the fallback when there is no GPU), owns the
 * growable host group table, and merges a device table into it.  gs_cuda.c
 * runs the same logic on a GPU through a dlopen()ed libcuda.
 */
#ifndef GS_HOST_H
#define GS_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/gs_logic.h"

/* A host group table: grows (rehashes) when half full. */
typedef struct GsHostTable
{
	GsTable		t;
	uint32_t	used;			/* READY slots */
} GsHostTable;

/* malloc'ed storage for cap (power of two) slots; false when out of memory. */
extern bool gs_table_alloc(GsTable *t, uint32_t cap, int naggs);
extern void gs_table_free(GsTable *t);
extern bool gs_host_table_init(GsHostTable *h, uint32_t cap, int naggs);

/*
 * Pre-aggregate the rows of p (only those set in only_bits, LSB first, when
 * it is not NULL: the rows a device table had no room for), joined with
 * p->join's inner table when it has one.  Returns the number of outer rows
 * that contributed, or -1 when the table could not grow (out of memory).
 */
extern int64_t gs_host_preagg(const GsParams *p, GsHostTable *h, const uint32_t *only_bits);

/* Filter p's rows into sel_bits (ceil(nrows/32) words, cleared here); returns rows selected. */
extern uint32_t gs_host_filter(const GsParams *p, uint32_t *sel_bits);

/* Fold the READY slots of src (a device table read back) into h; -1 when out of memory. */
extern int gs_host_merge(GsHostTable *h, const GsParams *p, const GsTable *src);

/* Combine accumulator words b into a (both for p's aggregates). */
extern void gs_acc_combine(const GsParams *p, uint64_t *a, const uint64_t *b);

/*
 * The state float8_accum would have built ({N, Sx, Sxx}) from the words of a
 * GS_AGG_AVG_F64 aggregate; -1 when its inputs were all finite but Sx or Sxx
 * overflowed, where float8_accum raises "value out of range: overflow".
 */
extern int	gs_float_accum_state(const uint64_t *w, double out[3]);

/* The chained hash of a join's inner table on its key column (malloc'ed). */
typedef struct GsJoinHash
{
	uint32_t	nbuckets;
	uint32_t	n;				/* inner rows */
	uint32_t	inserted;		/* rows in the hash: not NULL, kept by bounding */
	uint32_t   *head;
	uint32_t   *next;
	int64_t    *key;
} GsJoinHash;

/* Build it; rows with a NULL key or not set in keep (when not NULL) are left out. */
extern bool gs_join_hash_build(GsJoinHash *jh, const GsColumn *keycol, const uint8_t *keep, uint32_t nrows);
extern void gs_join_hash_free(GsJoinHash *jh);
/* Point p's join at jh (host memory), probing with outer column outer_keycol. */
extern void gs_join_attach(GsParams *p, const GsJoinHash *jh, int outer_keycol);

/* Words of the bitmaps the kernels use. */
static inline size_t
gs_bitmap_words(uint32_t nrows)
{
	return ((size_t) nrows + 31) / 32;
}

#endif							/* GS_HOST_H */
