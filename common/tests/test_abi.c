/*
 * test_abi.c: Ethereum ABI encoding against published vectors (the Solidity
 * ABI specification's examples, vectors produced by foundry's `cast`) and
 * strict decoding of return and revert data, including malformed input.
 */
#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "hex.h"
#include "unit.h"

/* Decode a hex vector into a static buffer for the decoders; aborts on bad test data. */
static uint8_t *
vec(const char *hex, size_t *len)
{
	static uint8_t *last;
	DErr		err = {0};

	free(last);
	last = NULL;
	if (!dhex_decode_alloc(hex, &last, len, "vector", &err))
	{
		printf("bad test vector: %s\n", err.msg);
		exit(2);
	}
	return last;
}

/* Fill n bytes with one value: readable fixed test inputs. */
static void
fill(uint8_t *p, size_t n, uint8_t v)
{
	memset(p, v, n);
}

/* Solidity spec: baz(uint32,bool) with 69, true; sam(bytes,bool,uint256[]). */
static void
test_spec_examples(void)
{
	uint8_t		w[2][ABI_WORD];
	uint8_t    *out = NULL;
	size_t		len = 0;
	DErr		err = {0};
	uint8_t		sel[4];
	AbiArg		args[3];
	static const uint64_t nums[] = {1, 2, 3};

	abi_selector("baz(uint32,bool)", sel);
	CHECK_HEX(sel, 4, "cdcd77c0", "selector baz(uint32,bool)");
	abi_word_uint64(69, w[0]);
	abi_word_bool(true, w[1]);
	CHECK(abi_encode_static_call("baz(uint32,bool)", (const uint8_t (*)[ABI_WORD]) w, 2, &out, &len, &err),
		  "encode baz(69,true)");
	CHECK_HEX(out, len,
			  "cdcd77c0"
			  "0000000000000000000000000000000000000000000000000000000000000045"
			  "0000000000000000000000000000000000000000000000000000000000000001",
			  "baz(69,true) calldata (spec)");
	free(out);

	memset(args, 0, sizeof(args));
	args[0].kind = ABI_ARG_BYTES;
	args[0].bytes = (const uint8_t *) "dave";
	args[0].len = 4;
	args[1].kind = ABI_ARG_WORD;
	abi_word_bool(true, args[1].word);
	args[2].kind = ABI_ARG_UINT_ARRAY;
	args[2].uints = nums;
	args[2].n = 3;
	CHECK(abi_encode_call("sam(bytes,bool,uint256[])", args, 3, &out, &len, &err), "encode sam(...)");
	CHECK_HEX(out, len,
			  "a5643bf2"
			  "0000000000000000000000000000000000000000000000000000000000000060"
			  "0000000000000000000000000000000000000000000000000000000000000001"
			  "00000000000000000000000000000000000000000000000000000000000000a0"
			  "0000000000000000000000000000000000000000000000000000000000000004"
			  "6461766500000000000000000000000000000000000000000000000000000000"
			  "0000000000000000000000000000000000000000000000000000000000000003"
			  "0000000000000000000000000000000000000000000000000000000000000001"
			  "0000000000000000000000000000000000000000000000000000000000000002"
			  "0000000000000000000000000000000000000000000000000000000000000003",
			  "sam(\"dave\",true,[1,2,3]) calldata (spec)");
	free(out);

	abi_selector("transfer(address,uint256)", sel);
	CHECK_HEX(sel, 4, "a9059cbb", "selector transfer(address,uint256)");
	abi_selector("NotOwner()", sel);
	CHECK_HEX(sel, 4, "30cd7471", "selector NotOwner() (cast sig)");
}

/* isAppAllowed: selector 0x1e079198 (IAppAuth interface id) and calldata identical to cast's. */
static void
test_is_app_allowed(void)
{
	AbiAppBootInfo b;
	const char *adv[] = {"INTEL-SA-00001", "INTEL-SA-00837-long-advisory-name-over-32-bytes"};
	uint8_t		sel[4];
	uint8_t    *out = NULL;
	size_t		len = 0;
	DErr		err = {0};

	abi_selector(ABI_SIG_IS_APP_ALLOWED, sel);
	CHECK_HEX(sel, 4, "1e079198", "selector isAppAllowed(AppBootInfo)");

	memset(&b, 0, sizeof(b));
	fill(b.app_id, 20, 0x11);
	fill(b.compose_hash, 32, 0x22);
	fill(b.instance_id, 20, 0x33);
	fill(b.device_id, 32, 0x44);
	fill(b.mr_aggregated, 32, 0x44);
	fill(b.mr_system, 32, 0x22);
	fill(b.os_image_hash, 32, 0x44);
	b.tcb_status = "UpToDate";
	b.advisory_ids = adv;
	b.n_advisory_ids = 2;
	CHECK(abi_encode_is_app_allowed(&b, &out, &len, &err), "encode isAppAllowed");
	CHECK_HEX(out, len,
			  "1e079198"
			  "0000000000000000000000000000000000000000000000000000000000000020"
			  "0000000000000000000000001111111111111111111111111111111111111111"
			  "2222222222222222222222222222222222222222222222222222222222222222"
			  "0000000000000000000000003333333333333333333333333333333333333333"
			  "4444444444444444444444444444444444444444444444444444444444444444"
			  "4444444444444444444444444444444444444444444444444444444444444444"
			  "2222222222222222222222222222222222222222222222222222222222222222"
			  "4444444444444444444444444444444444444444444444444444444444444444"
			  "0000000000000000000000000000000000000000000000000000000000000120"
			  "0000000000000000000000000000000000000000000000000000000000000160"
			  "0000000000000000000000000000000000000000000000000000000000000008"
			  "5570546f44617465000000000000000000000000000000000000000000000000"
			  "0000000000000000000000000000000000000000000000000000000000000002"
			  "0000000000000000000000000000000000000000000000000000000000000040"
			  "0000000000000000000000000000000000000000000000000000000000000080"
			  "000000000000000000000000000000000000000000000000000000000000000e"
			  "494e54454c2d53412d3030303031000000000000000000000000000000000000"
			  "000000000000000000000000000000000000000000000000000000000000002f"
			  "494e54454c2d53412d30303833372d6c6f6e672d61647669736f72792d6e616d"
			  "652d6f7665722d33322d62797465730000000000000000000000000000000000",
			  "isAppAllowed calldata equals cast calldata");
	free(out);

	b.n_advisory_ids = 0;
	b.advisory_ids = NULL;
	b.tcb_status = NULL;
	CHECK(abi_encode_is_app_allowed(&b, &out, &len, &err) && len == 4 + 32 * 12,
		  "isAppAllowed with empty tcbStatus and no advisories: 12 words");
	free(out);
}

/* Return data as cast abi-encode produces it. */
static void
test_decode(void)
{
	size_t		len;
	uint8_t    *d;
	bool		b = false;
	char	   *s = NULL;
	uint8_t		(*addrs)[ABI_ADDR_LEN] = NULL;
	size_t		n = 0;
	uint64_t	u = 0;
	DErr		err = {0};

	d = vec("0000000000000000000000000000000000000000000000000000000000000001"
			"0000000000000000000000000000000000000000000000000000000000000040"
			"0000000000000000000000000000000000000000000000000000000000000005"
			"68656c6c6f000000000000000000000000000000000000000000000000000000", &len);
	CHECK(abi_decode_bool_string(d, len, &b, &s, &err) && b && strcmp(s, "hello") == 0,
		  "decode (bool,string) = (true,\"hello\")");
	free(s);

	d = vec("0000000000000000000000000000000000000000000000000000000000000020"
			"0000000000000000000000000000000000000000000000000000000000000002"
			"0000000000000000000000001111111111111111111111111111111111111111"
			"0000000000000000000000003333333333333333333333333333333333333333", &len);
	CHECK(abi_decode_address_array(d, len, &addrs, &n, &err) && n == 2 &&
		  addrs[0][0] == 0x11 && addrs[1][19] == 0x33, "decode address[] of two");
	free(addrs);

	d = vec("0000000000000000000000000000000000000000000000000000000000000020"
			"0000000000000000000000000000000000000000000000000000000000000000", &len);
	CHECK(abi_decode_address_array(d, len, &addrs, &n, &err) && n == 0 && addrs == NULL,
		  "decode empty address[]");

	d = vec("00000000000000000000000000000000000000000000000000000000000005dc"
			"000000000000000000000000000000000000000000000000000000000000000a"
			"0000000000000000000000000000000000000000000000000000000000000080"
			"00000000000000000000000000000000000000000000000000000000000000c0"
			"000000000000000000000000000000000000000000000000000000000000000c"
			"64702d6167677265676174650000000000000000000000000000000000000000"
			"000000000000000000000000000000000000000000000000000000000000000a"
			"70617469656e745f696400000000000000000000000000000000000000000000", &len);
	{
		uint64_t	eps = 0,
					mg = 0;
		char	   *ot = NULL,
				   *pu = NULL;

		CHECK(abi_get_uint(d, len, 0, 32, &eps, &err) && eps == 1500 &&
			  abi_get_uint(d, len, 1, 32, &mg, &err) && mg == 10 &&
			  abi_get_string(d, len, 2, &ot, &err) && strcmp(ot, "dp-aggregate") == 0 &&
			  abi_get_string(d, len, 3, &pu, &err) && strcmp(pu, "patient_id") == 0,
			  "decode (uint32,uint32,string,string) policy shape");
		free(ot);
		free(pu);
	}

	d = vec("00000000000000000000000000000000000000000000000000000000000000ff", &len);
	CHECK(abi_decode_uint64(d, len, &u, &err) && u == 255, "decode uint256 255");
}

/* Everything malformed is DERR_FORMAT, never a read past the buffer. */
static void
test_malformed(void)
{
	size_t		len;
	uint8_t    *d;
	bool		b;
	char	   *s = NULL;
	uint8_t		a[20];
	uint8_t		(*addrs)[ABI_ADDR_LEN] = NULL;
	size_t		n;
	uint64_t	u;
	DErr		err;

#define EXPECT_FORMAT(expr, name) \
	do { derr_clear(&err); CHECK(!(expr) && err.code == DERR_FORMAT, name); } while (0)

	EXPECT_FORMAT(abi_decode_bool(NULL, 0, &b, &err), "empty return data refused");
	CHECK(strstr(err.msg, "no data") != NULL, "empty return data says 'no data'");
	d = vec("0000000000000000000000000000000000000000000000000000000000000001", &len);
	EXPECT_FORMAT(abi_decode_bool(d, 31, &b, &err), "31-byte bool refused");
	d = vec("0000000000000000000000000000000000000000000000000000000000000002", &len);
	EXPECT_FORMAT(abi_decode_bool(d, len, &b, &err), "bool word 2 refused");
	d = vec("0000000000000000000000010000000000000000000000000000000000000001", &len);
	EXPECT_FORMAT(abi_decode_address(d, len, a, &err), "address with dirty high bytes refused");
	d = vec("0000000000000000000000000000000000000000000000010000000000000000", &len);
	EXPECT_FORMAT(abi_decode_uint64(d, len, &u, &err), "uint over 64 bits refused");
	d = vec("0000000000000000000000000000000000000000000000000000000000000001"
			"0000000000000000000000000000000000000000000000000000000000000040", &len);
	EXPECT_FORMAT(abi_decode_bool_string(d, len, &b, &s, &err), "(bool,string) without its tail refused");
	d = vec("0000000000000000000000000000000000000000000000000000000000000001"
			"0000000000000000000000000000000000000000000000000000000000001000"
			"0000000000000000000000000000000000000000000000000000000000000005", &len);
	EXPECT_FORMAT(abi_decode_bool_string(d, len, &b, &s, &err), "string offset past the end refused");
	d = vec("0000000000000000000000000000000000000000000000000000000000000001"
			"0000000000000000000000000000000000000000000000000000000000000040"
			"0000000000000000000000000000000000000000000000000000000000000021"
			"68656c6c6f000000000000000000000000000000000000000000000000000000", &len);
	EXPECT_FORMAT(abi_decode_bool_string(d, len, &b, &s, &err), "string length past the end refused");
	d = vec("0000000000000000000000000000000000000000000000000000000000000001"
			"0000000000000000000000000000000000000000000000000000000000000040"
			"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
			"68656c6c6f000000000000000000000000000000000000000000000000000000", &len);
	EXPECT_FORMAT(abi_decode_bool_string(d, len, &b, &s, &err), "huge string length refused");
	d = vec("0000000000000000000000000000000000000000000000000000000000000020"
			"0000000000000000000000000000000000000000000000000000000000000003"
			"0000000000000000000000001111111111111111111111111111111111111111", &len);
	EXPECT_FORMAT(abi_decode_address_array(d, len, &addrs, &n, &err), "address[] count past the end refused");
	CHECK(addrs == NULL, "no array returned on failure");
	d = vec("0000000000000000000000000000000000000000000000000000000000000001"
			"0000000000000000000000000000000000000000000000000000000000000040"
			"0000000000000000000000000000000000000000000000000000000000000003"
			"6100620000000000000000000000000000000000000000000000000000000000", &len);
	EXPECT_FORMAT(abi_decode_bool_string(d, len, &b, &s, &err), "string with embedded NUL refused");
	CHECK(s == NULL, "no string returned on failure");
	d = vec("0000000000000000000000000000000000000000000000000000000000000001"
			"00000000000000000000000000000000000000000000000000000000000000", &len);
	EXPECT_FORMAT(abi_decode_bool(d, len, &b, &err), "return data not a whole number of words refused");
	d = vec("0000000000000000000000000000000000000000000000000000000000000001"
			"0000000000000000000000000000000000000000000000000000000000000001", &len);
	EXPECT_FORMAT(abi_decode_bool(d, len, &b, &err), "trailing word after a bool refused");
#undef EXPECT_FORMAT
}

/* Revert data: Error(string), Panic(uint256), known and unknown custom errors. */
static void
test_revert(void)
{
	size_t		len;
	uint8_t    *d;
	char	   *s = NULL;
	DErr		err = {0};
	const char *known[] = {"AlreadyRevoked()", "NotOwner()"};

	d = vec("08c379a0"
			"0000000000000000000000000000000000000000000000000000000000000020"
			"000000000000000000000000000000000000000000000000000000000000001a"
			"4e6f7420656e6f7567682045746865722070726f76696465642e000000000000", &len);
	CHECK(abi_describe_revert(d, len, &s, &err) && strcmp(s, "Not enough Ether provided.") == 0,
		  "Error(string) revert decoded");
	free(s);
	d = vec("4e487b71"
			"0000000000000000000000000000000000000000000000000000000000000011", &len);
	CHECK(abi_describe_revert(d, len, &s, &err) && strcmp(s, "panic 0x11") == 0, "Panic(0x11) decoded");
	free(s);
	d = vec("30cd7471", &len);
	CHECK(abi_describe_revert_known(d, len, known, 2, &s, &err) && strcmp(s, "custom error NotOwner()") == 0,
		  "known custom error named");
	free(s);
	d = vec("deadbeef0000000000000000000000000000000000000000000000000000000000000001", &len);
	CHECK(abi_describe_revert_known(d, len, known, 2, &s, &err) &&
		  strcmp(s, "custom error 0xdeadbeef (36 bytes)") == 0, "unknown custom error shows its selector");
	free(s);
	CHECK(abi_describe_revert(NULL, 0, &s, &err) && strcmp(s, "no reason given") == 0, "empty revert data");
	free(s);
	d = vec("08c379a0"
			"0000000000000000000000000000000000000000000000000000000000000020"
			"00000000000000000000000000000000000000000000000000000000000000ff", &len);
	CHECK(abi_describe_revert(d, len, &s, &err) && strncmp(s, "custom error 0x08c379a0", 23) == 0,
		  "truncated Error(string) falls back to the selector");
	free(s);
	d = vec("08c3", &len);
	CHECK(abi_describe_revert(d, len, &s, &err) && strstr(s, "malformed") != NULL, "2-byte revert data");
	free(s);
}

/*
 * The ledger views of the consortium contract (vectors from `cast abi-encode`):
 * charges(uint256) -> (bytes32,uint64,uint64,bytes32,uint64,bytes32[]) and
 * datasetVersion(bytes32) -> (address,bytes16,uint64,uint64,bool).
 */
static void
test_ledger_shapes(void)
{
	size_t		len;
	uint8_t    *d;
	uint8_t		b32[32];
	uint8_t		b16[16];
	uint8_t		a[20];
	uint8_t		(*arr)[32] = NULL;
	size_t		n = 0;
	uint64_t	u = 0;
	bool		b = false;
	DErr		err = {0};

	d = vec("1111111111111111111111111111111111111111111111111111111111111111"
			"000000000000000000000000000000000000000000000000000000000003d090"
			"00000000000000000000000000000000000000000000000000000000000f4240"
			"2222222222222222222222222222222222222222222222222222222222222222"
			"0000000000000000000000000000000000000000000000000000000000000005"
			"00000000000000000000000000000000000000000000000000000000000000c0"
			"0000000000000000000000000000000000000000000000000000000000000002"
			"3333333333333333333333333333333333333333333333333333333333333333"
			"4444444444444444444444444444444444444444444444444444444444444444", &len);
	CHECK(abi_get_bytes32(d, len, 0, b32, &err) && b32[0] == 0x11 && b32[31] == 0x11, "charge: queryHash");
	CHECK(abi_get_uint(d, len, 1, 64, &u, &err) && u == 250000, "charge: epsilonMicro");
	CHECK(abi_get_uint(d, len, 2, 64, &u, &err) && u == 1000000, "charge: deltaPico");
	CHECK(abi_get_uint(d, len, 4, 64, &u, &err) && u == 5, "charge: blockNumber");
	CHECK(abi_get_bytes32_array(d, len, 5, &arr, &n, &err) && n == 2 &&
		  arr[0][0] == 0x33 && arr[0][31] == 0x33 && arr[1][0] == 0x44 && arr[1][31] == 0x44,
		  "charge: bytes32[] manifestHashes of two");
	free(arr);

	/* the count claims three words, two follow */
	d = vec("0000000000000000000000000000000000000000000000000000000000000020"
			"0000000000000000000000000000000000000000000000000000000000000003"
			"3333333333333333333333333333333333333333333333333333333333333333"
			"4444444444444444444444444444444444444444444444444444444444444444", &len);
	derr_clear(&err);
	arr = NULL;
	CHECK(!abi_get_bytes32_array(d, len, 0, &arr, &n, &err) && err.code == DERR_FORMAT && arr == NULL && n == 0,
		  "bytes32[] count past the end refused");
	d = vec("0000000000000000000000000000000000000000000000000000000000000020"
			"0000000000000000000000000000000000000000000000000000000000000000", &len);
	CHECK(abi_get_bytes32_array(d, len, 0, &arr, &n, &err) && n == 0 && arr == NULL, "empty bytes32[]");
	d = vec("0000000000000000000000000000000000000000000000000000000000000040", &len);
	derr_clear(&err);
	CHECK(!abi_get_bytes32_array(d, len, 0, &arr, &n, &err) && err.code == DERR_FORMAT,
		  "bytes32[] offset past the end refused");

	d = vec("00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"
			"000102030405060708090a0b0c0d0e0f00000000000000000000000000000000"
			"000000000000000000000000000000000000000000000000ffffffffffffffff"
			"00000000000000000000000000000000000000000000000000000000000493e0"
			"0000000000000000000000000000000000000000000000000000000000000001", &len);
	CHECK(abi_get_address(d, len, 0, a, &err) && a[0] == 0x70 && a[19] == 0xc8, "datasetVersion: owner");
	CHECK(abi_get_bytes_n(d, len, 1, 16, b16, &err) && b16[0] == 0x00 && b16[1] == 0x01 && b16[15] == 0x0f,
		  "datasetVersion: bytes16 datasetId");
	CHECK(abi_get_uint(d, len, 2, 64, &u, &err) && u == UINT64_MAX, "datasetVersion: budget uint64 max");
	CHECK(abi_get_uint(d, len, 3, 64, &u, &err) && u == 300000, "datasetVersion: spent");
	CHECK(abi_get_bool(d, len, 4, &b, &err) && b, "datasetVersion: current");
	derr_clear(&err);
	CHECK(!abi_get_bytes_n(d, len, 0, 16, b16, &err) && err.code == DERR_FORMAT,
		  "bytes16 with non-zero low bytes refused (an address word)");
	derr_clear(&err);
	CHECK(!abi_get_bytes_n(d, len, 1, 33, b16, &err) && err.code == DERR_ARG, "bytes33 refused as a width");
	CHECK(abi_get_bytes_n(d, len, 1, 32, b32, &err) && b32[15] == 0x0f && b32[16] == 0, "bytes32 via bytes_n");
	derr_clear(&err);
	CHECK(!abi_get_bytes_n(d, len, 5, 16, b16, &err) && err.code == DERR_FORMAT, "bytes16 past the end refused");
}

int
main(void)
{
	size_t		len;

	test_spec_examples();
	test_is_app_allowed();
	test_decode();
	test_malformed();
	test_revert();
	test_ledger_shapes();
	vec("00", &len);				/* frees the last vector */
	UNIT_DONE();
}
