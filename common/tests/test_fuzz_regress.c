/*
 * test_fuzz_regress.c: every input the fuzz targets (../fuzz) found a
 * fault with, replayed through the same entry point, with the outcome the
 * fix gives.  Each case names the target and what went wrong.
 */
#include "colbuf.h"
#include "hex.h"
#include "unit.h"

/*
 * fuzz_colbuf: a chunk plaintext of 13 bytes claiming 2231369741 bool rows
 * made colbuf_deserialize() allocate 2.2 GB (and, for wider encodings, up
 * to 64 GB) before noticing that the bytes were not there.  A malicious
 * owner controls every chunk's plaintext.  Now: refused, nothing allocated
 * for the claimed rows.
 */
static void
colbuf_rows_beyond_the_bytes(void)
{
	static const uint8_t chunk[] = {0x0d, 0x00, 0x00, 0x85, 0x00, 0x01, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff};
	DsealColBuf cb = {0};
	DErr		err = {0};

	for (DsealEnc e = DSEAL_ENC_BOOL; e <= DSEAL_ENC_VAR; e++)
	{
		char		name[96];

		derr_clear(&err);
		snprintf(name, sizeof(name), "colbuf: %s chunk with more rows than bytes refused before allocating",
				 dseal_enc_name(e));
		CHECK(!colbuf_deserialize(&cb, e, chunk, sizeof(chunk), &err) && err.code == DERR_FORMAT &&
			  cb.cap <= 1024, name);
		colbuf_free(&cb);
	}
	/* with a validity bitmap its bytes count too: 9 rows need 2 + 9 bytes after the header */
	{
		static const uint8_t v[] = {0x09, 0x00, 0x00, 0x00, 0x01, 0xff, 0x01, 1, 0, 1, 0, 1, 0, 1, 0, 1};

		derr_clear(&err);
		CHECK(colbuf_deserialize(&cb, DSEAL_ENC_BOOL, v, sizeof(v), &err) && cb.nrows == 9,
			  "colbuf: 9 bool rows with a bitmap in 5 + 2 + 9 bytes parse");
		colbuf_free(&cb);
		derr_clear(&err);
		CHECK(!colbuf_deserialize(&cb, DSEAL_ENC_BOOL, v, sizeof(v) - 1, &err) && err.code == DERR_FORMAT,
			  "colbuf: one byte less is refused");
		colbuf_free(&cb);
	}
}

/*
 * fuzz_colbuf (round trip): the reader accepted plaintexts the writer never
 * produces -- validity bits set past the last row, bool bytes other than 0
 * and 1 -- so one value could read two ways (a bool byte 0x22 is true to
 * PostgreSQL but a group of its own to a gpu_scan kernel).  Now a chunk must
 * be canonical, i.e. serialise back to its own bytes.
 */
static void
colbuf_canonical_only(void)
{
	/* the fuzzer's input: 13 bool rows, bitmap 00 2d (bit 13 set), values with 0x22 and 0x9e */
	static const uint8_t found[] = {0x0d, 0x00, 0x00, 0x00, 0x01, 0x00, 0x2d, 0x01, 0x00, 0x00, 0x00, 0x00,
									0x01, 0x00, 0x01, 0x00, 0x01, 0x22, 0x9e, 0x00};
	static const uint8_t pad[] = {0x03, 0x00, 0x00, 0x00, 0x01, 0x0d, 1, 0, 1};	/* bit 3 of 3 rows */
	static const uint8_t ok[] = {0x03, 0x00, 0x00, 0x00, 0x01, 0x05, 1, 0, 1};
	static const uint8_t two[] = {0x02, 0x00, 0x00, 0x00, 0x00, 1, 2};
	DsealColBuf cb = {0};
	DErr		err = {0};
	uint8_t		out[sizeof(ok)];

	CHECK(!colbuf_deserialize(&cb, DSEAL_ENC_BOOL, found, sizeof(found), &err) && err.code == DERR_FORMAT,
		  "colbuf: the fuzzer's bool chunk is refused");
	colbuf_free(&cb);
	derr_clear(&err);
	CHECK(!colbuf_deserialize(&cb, DSEAL_ENC_BOOL, pad, sizeof(pad), &err) && err.code == DERR_FORMAT &&
		  strstr(err.msg, "past") != NULL, "colbuf: a validity bit past the last row is refused");
	colbuf_free(&cb);
	derr_clear(&err);
	CHECK(colbuf_deserialize(&cb, DSEAL_ENC_BOOL, ok, sizeof(ok), &err) && colbuf_is_null(&cb, 1) &&
		  colbuf_serialized_size(&cb) == sizeof(ok), "colbuf: the canonical chunk parses");
	colbuf_serialize(&cb, out);
	CHECK(memcmp(out, ok, sizeof(ok)) == 0, "colbuf: and serialises back to its bytes");
	colbuf_free(&cb);
	derr_clear(&err);
	CHECK(!colbuf_deserialize(&cb, DSEAL_ENC_BOOL, two, sizeof(two), &err) && err.code == DERR_FORMAT,
		  "colbuf: a bool byte 2 is refused");
	colbuf_free(&cb);
}

int
main(void)
{
	colbuf_rows_beyond_the_bytes();
	colbuf_canonical_only();
	UNIT_DONE();
}
