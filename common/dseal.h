/*
 * dseal.h: the sealed dataset format, .dseal version 1 (docs/format.md).
 *
 * File layout:
 *   header   16 bytes: "DSTKSEAL" | u32le version (1) | u32le flags (reserved: 0)
 *   chunks   for each row group, for each column: ciphertext || 16-byte GCM tag
 *   manifest canonical JSON (see manifest.c), signed by the owner
 *   trailer  24 bytes: u64le manifest offset | u64le manifest length | "DSEALEND"
 *
 * Chunk encryption: AES-256-GCM under the dataset's random data key;
 *   nonce = 0^4 || u64be chunk ordinal (row_group * ncols + column)
 *   aad   = "dstack-seal/v1 chunk" || dataset_id(16) || header_hash(32)
 *           || u32be row group || u32be column || u64be ciphertext length
 * header_hash is SHA-256 of the canonical JSON of the manifest's "header"
 * object (dataset id, owner, table, schema, recipe, wrapped key: everything
 * fixed before the first chunk is written, the 16 header bytes included, so
 * they are authenticated twice: by the owner's signature and by every chunk's
 * tag).  Not the hash of the whole manifest: that lists each chunk's tag
 * and so cannot exist before the chunks do (see docs/format.md).
 *
 * Memory: the writer holds two row groups of column buffers (the caller
 * fills one while the writer's thread seals the other) plus one
 * compressed/encrypted chunk; the reader one chunk per projected column.
 */
#ifndef DSTACK_DSEAL_H
#define DSTACK_DSEAL_H

#include <stdbool.h>
#include <stdint.h>

#include "colbuf.h"
#include "crypto.h"
#include "derr.h"
#include "wrap.h"

#define DSEAL_MAGIC				"DSTKSEAL"
#define DSEAL_TRAILER_MAGIC		"DSEALEND"
#define DSEAL_VERSION			1
#define DSEAL_FILE_HEADER_LEN	16
#define DSEAL_FLAGS				0	/* bytes 12-15: no flag is defined in version 1 */
#define DSEAL_TRAILER_LEN		24
#define DSEAL_DEFAULT_ROWS_PER_GROUP 65536
#define DSEAL_MAX_MANIFEST_LEN	(256u * 1024 * 1024)
#define DSEAL_FORMAT_NAME		"dstack-seal/v1"

/* How a variable-width column's bytes represent the value. */
typedef enum DsealRepr
{
	DSEAL_REPR_BINARY = 0,		/* fixed-width binary, or raw bytes (text, bytea) */
	DSEAL_REPR_TEXT = 1			/* the type's text output (numeric, others) */
} DsealRepr;

typedef struct DsealColumnDef
{
	char	   *name;			/* column name */
	char	   *type;			/* PostgreSQL type, format_type_with_typemod() text */
	DsealEnc	enc;
	DsealRepr	repr;
} DsealColumnDef;

typedef struct DsealChunkRef
{
	uint64_t	offset;			/* file offset of ciphertext */
	uint64_t	length;			/* ciphertext + tag */
	uint64_t	plain_length;	/* serialized plaintext, before compression */
	bool		zstd;			/* ciphertext holds zstd-compressed plaintext */
	uint8_t		tag[DC_GCM_TAG_LEN];
	uint8_t		sha256[DC_SHA256_LEN];	/* of ciphertext || tag: checkable without keys */
} DsealChunkRef;

typedef struct DsealRowGroup
{
	uint32_t	nrows;
	DsealChunkRef *chunks;		/* ncols entries */
} DsealRowGroup;

typedef struct DsealManifest
{
	int			version;
	uint8_t		file_header[DSEAL_FILE_HEADER_LEN];	/* the file's first 16 bytes, as signed */
	uint8_t		dataset_id[DSEAL_DATASET_ID_LEN];
	uint8_t		owner_id[DC_ADDR_LEN];
	char	   *table;
	int			ncols;
	DsealColumnDef *cols;
	DsealRecipe recipe;
	char	   *recipient_purpose;	/* the GetKey path/purpose of the recipient key */
	uint8_t		recipient_pub[DC_PUBKEY_LEN];
	uint8_t		recipient_chain[2][DC_SIG_LEN];	/* dstack signature chain of recipient_pub */
	uint8_t		ephemeral_pub[DC_PUBKEY_LEN];
	uint8_t		wrapped[DSEAL_WRAPPED_LEN];
	uint32_t	rows_per_group;
	char	   *sealed_at;		/* ISO 8601 UTC, informational */
	uint64_t	row_count;
	uint32_t	nrowgroups;
	DsealRowGroup *rowgroups;
	uint8_t		header_hash[DC_SHA256_LEN];
	uint8_t		signature[DC_SIG_LEN];
	uint8_t		manifest_hash[DC_SHA256_LEN];	/* sha256 of json below */
	char	   *json;			/* canonical manifest text, signature included */
	size_t		json_len;
} DsealManifest;

/* ---- manifest.c ---- */
extern void dseal_manifest_free(DsealManifest *m);
extern void dseal_manifest_clear(DsealManifest *m);
/* Parse, check structure, header hash and owner signature: DERR_FORMAT / DERR_INTEGRITY. */
extern DsealManifest *dseal_manifest_parse(const char *json, size_t len, DErr *err);
/* Compute header_hash from the header fields of m (used by the writer). */
extern bool dseal_manifest_header_hash(const DsealManifest *m, uint8_t out[DC_SHA256_LEN], DErr *err);
/* Build the canonical JSON of m, sign it with owner_sk, fill m->json/signature/manifest_hash. */
extern bool dseal_manifest_finish(DsealManifest *m, const uint8_t owner_sk[DC_SECKEY_LEN], DErr *err);
/* The digest the owner signs (EIP-191 personal_sign over keccak256 of the unsigned body). */
extern bool dseal_manifest_signing_digest(const DsealManifest *m, uint8_t digest[32], DErr *err);

/* The 16-byte file header of this format version: magic, version, flags. */
extern void dseal_file_header(uint8_t out[DSEAL_FILE_HEADER_LEN]);
/* Check a file header: magic, version and reserved flags (DERR_FORMAT / DERR_UNSUPPORTED). */
extern bool dseal_check_file_header(const uint8_t hdr[DSEAL_FILE_HEADER_LEN], const char *path, DErr *err);

/* ---- chunk crypto helpers (shared by writer and reader) ---- */
extern void dseal_chunk_nonce(uint64_t ordinal, uint8_t nonce[DC_GCM_NONCE_LEN]);
#define DSEAL_CHUNK_AAD_LEN (20 + DSEAL_DATASET_ID_LEN + DC_SHA256_LEN + 4 + 4 + 8)
extern void dseal_chunk_aad(const DsealManifest *m, uint32_t rg, uint32_t col, uint64_t ct_len,
							uint8_t aad[DSEAL_CHUNK_AAD_LEN]);

/* ---- writer (dseal_writer.c) ---- */
typedef struct DsealWriter DsealWriter;

typedef struct DsealWriterOptions
{
	const char *path;			/* final path; written as path.tmp.<pid>.<n>, then linked to it exclusively */
	const char *table;
	int			ncols;
	const DsealColumnDef *cols;
	DsealRecipe recipe;
	const char *recipient_purpose;
	uint8_t		recipient_pub[DC_PUBKEY_LEN];	/* chain already verified by the caller */
	uint8_t		recipient_chain[2][DC_SIG_LEN];
	uint32_t	rows_per_group;
	int			zstd_level;		/* 0 = no compression */
	bool		write_detached_manifest;	/* also write path + ".json" */
} DsealWriterOptions;

/*
 * Create a writer: draws the dataset id and data key, wraps the key for the
 * recipient, opens the temporary file exclusively.  owner_sk is copied and
 * scrubbed on finish/abort.
 */
extern DsealWriter *dseal_writer_open(const DsealWriterOptions *opts,
									  const uint8_t owner_sk[DC_SECKEY_LEN], DErr *err);
/*
 * Seal one row group: cols[i] holds column i's values; all have the same
 * nrows.  The writer's thread seals it in the background: on return cols hold
 * the writer's other buffers, empty (same encodings), for the next row group,
 * and the caller still frees whatever cols hold at the end.  An error the
 * thread met on the previous row group is returned here (or by finish).
 */
extern bool dseal_writer_add_row_group(DsealWriter *w, DsealColBuf *cols, DErr *err);
/*
 * Wait for the last row group, stop the thread, write manifest and trailer,
 * fsync, publish (EEXIST if path exists).  *manifest_out stays valid until free.
 */
extern bool dseal_writer_finish(DsealWriter *w, const DsealManifest **manifest_out, DErr *err);
/*
 * Release everything: stops and joins the thread first (a row group in
 * flight is abandoned between chunks), scrubs the owner key and the data
 * key, unlinks the temporary file if not finished.  NULL-safe.
 */
extern void dseal_writer_free(DsealWriter *w);
extern uint64_t dseal_writer_rows(const DsealWriter *w);
extern uint64_t dseal_writer_bytes(const DsealWriter *w);

/* ---- reader (dseal_reader.c) ---- */
typedef struct DsealReader DsealReader;

/* Open, read the trailer and manifest, verify the owner signature. */
extern DsealReader *dseal_reader_open(const char *path, DErr *err);

/*
 * A process's cache of parsed, verified manifests, keyed by file identity
 * (device, inode, size, mtime, ctime): dseal_reader_open_cached() parses a
 * file's manifest once, then reuses it while an entry is free to hold it
 * (least recently used entries not borrowed by an open reader are replaced).
 * Not thread-safe: one cache per thread that opens readers.
 */
typedef struct DsealManifestCache DsealManifestCache;
extern DsealManifestCache *dseal_cache_create(int capacity);
extern DsealReader *dseal_reader_open_cached(const char *path, DsealManifestCache *cache, DErr *err);
extern void dseal_cache_stats(const DsealManifestCache *c, uint64_t *hits, uint64_t *misses);
/* Free the cache and its manifests (no reader may still borrow one).  NULL-safe. */
extern void dseal_cache_free(DsealManifestCache *c);

/*
 * Open path with a manifest another process of this build parsed and
 * verified (a parallel scan's leader), taken over by the reader (freed with
 * it, or at once on failure); the file's header and trailer are still read
 * and compared with it.
 */
extern DsealReader *dseal_reader_open_with(const char *path, DsealManifest *m, DErr *err);

/* ---- manifest_flat.c: a parsed manifest as one block, for shared memory ---- */
extern size_t dseal_manifest_flat_size(const DsealManifest *m);
extern void dseal_manifest_flatten(const DsealManifest *m, uint8_t *out);
/* A malloc'd manifest from a block made by dseal_manifest_flatten (json is NULL). */
extern DsealManifest *dseal_manifest_unflatten(const uint8_t *in, size_t len, DErr *err);
extern const DsealManifest *dseal_reader_manifest(const DsealReader *r);
/* Check one chunk's bytes against the signed sha256 (no keys needed). */
extern bool dseal_reader_check_chunk(DsealReader *r, uint32_t rg, uint32_t col, DErr *err);
/* Install the data key, after checking it against the wrap (see wrap.h). */
extern bool dseal_reader_unwrap(DsealReader *r, const DsealRecipe *cvm_recipe,
								const uint8_t recipient_sk[DC_SECKEY_LEN], DErr *err);
/* Install an already-unwrapped data key. */
extern bool dseal_reader_set_data_key(DsealReader *r, const uint8_t key[DSEAL_DATA_KEY_LEN], DErr *err);
/* Read, authenticate, decompress and parse one chunk into out. */
extern bool dseal_reader_read_chunk(DsealReader *r, uint32_t rg, uint32_t col,
									DsealColBuf *out, DErr *err);
/* Close fd, free GCM context (scrubbing the key) and manifest.  NULL-safe. */
extern void dseal_reader_close(DsealReader *r);

/*
 * A second set of chunk contexts (the reader's data key, a zstd context,
 * buffers), for another thread that reads chunks of the same reader at the
 * same time as the reader's owner: dseal_reader_read_chunk_with().  The
 * reader must have its key; free the scratch before the reader.
 */
typedef struct DsealScratch DsealScratch;
extern DsealScratch *dseal_scratch_new(const DsealReader *r, DErr *err);
extern void dseal_scratch_free(DsealScratch *x);	/* NULL-safe; scrubs the key copy */
extern bool dseal_reader_read_chunk_with(DsealReader *r, DsealScratch *x, uint32_t rg, uint32_t col,
										 DsealColBuf *out, DErr *err);

/* ---- contribution bounding (unit_bound.c) ---- */
typedef struct DsealBound DsealBound;

/* A table for at most rows_per_unit rows per unit, sized for a dataset of row_count rows. */
extern DsealBound *dseal_bound_new(uint64_t row_count, uint32_t rows_per_unit, DErr *err);
/*
 * Decide a row group's rows in order (row groups in the order given): keep[]
 * (LSB first, zeroed here) marks each row kept, counted against its unit;
 * rows whose unit is NULL are dropped.
 */
extern bool dseal_bound_row_group(DsealBound *b, const DsealColBuf *unit, uint8_t *keep, DErr *err);
/* Forget every count (a rescan starts over). */
extern void dseal_bound_reset(DsealBound *b);
extern void dseal_bound_free(DsealBound *b);

/* ---- read-ahead (dseal_prefetch.c) ---- */
typedef struct DsealPrefetch DsealPrefetch;

/*
 * Start a thread that reads row groups of r, columns cols[0..ncols), one
 * request at a time, into its own column buffers.  Until
 * dseal_prefetch_stop() the reader belongs to the thread.  Every signal is
 * blocked in it, and it calls nothing but this library, OpenSSL and zstd.
 * bound: a bounding table the thread applies to column cols[unit] of each
 * row group, in request order (and only the thread, while it runs), or NULL.
 */
extern DsealPrefetch *dseal_prefetch_start(DsealReader *r, int ncols, const uint32_t *cols,
										   DsealBound *bound, int unit, DErr *err);
/* Ask for row group rg; the previous request must have been waited for. */
extern void dseal_prefetch_request(DsealPrefetch *p, uint32_t rg);
/* Is a request outstanding (not yet waited for)?  Its row group in *rg. */
extern bool dseal_prefetch_pending(DsealPrefetch *p, uint32_t *rg);
/*
 * Wait for the outstanding request, reading the columns the thread has not
 * started on the caller's thread meanwhile; on success swap its buffers with
 * out[0..ncols) (the caller's become the thread's next ones) and, with a
 * bounding table, copy the row group's kept-rows bitmap into keep.  On
 * failure err is the reader's (or the table's) error, whole.
 */
extern bool dseal_prefetch_wait(DsealPrefetch *p, DsealColBuf *out, uint8_t *keep, DErr *err);
/* How many columns the caller has read in its waits so far. */
extern uint64_t dseal_prefetch_helped(DsealPrefetch *p);
/*
 * Drop the outstanding request, if any: a read in progress finishes, its
 * buffers and error are forgotten, and the thread waits for the next
 * request (a rescan).  Row groups it bounded stay counted: reset the table.
 */
extern void dseal_prefetch_discard(DsealPrefetch *p);
/* Finish a read in progress, stop and join the thread, free its buffers.  NULL-safe. */
extern void dseal_prefetch_stop(DsealPrefetch *p);

#endif							/* DSTACK_DSEAL_H */
