/*
 * test_receipt: the receipt body's layout (docs/receipts.md), built by
 * dreceipt_body(): exact canonical text of a known body, its agreement with
 * dreceipt_canonical() (the independent canonicaliser of any body text),
 * escaping, the optional selection object, and refusals.
 */
#include <string.h>

#include "hex.h"
#include "receipt.h"
#include "unit.h"

static void
fill(DReceiptBody *b, DReceiptDataset *d)
{
	memset(b, 0, sizeof(*b));
	memset(d, 0, sizeof(*d));
	d->table = "public.ehr";
	memset(d->owner, 0x11, sizeof(d->owner));
	memset(d->dataset_id, 0x22, sizeof(d->dataset_id));
	memset(d->manifest_hash, 0x33, sizeof(d->manifest_hash));
	b->query = "SELECT dx, dp_count(patient_id, 0.5) FROM ehr GROUP BY dx";
	b->result_json = "{\"columns\":[\"dx\",\"dp_count\"],\"rows\":[[\"N18.1\",\"812\"]]}";
	b->datasets = d;
	b->n_datasets = 1;
	b->eps_charged = 1000000;
	b->eps_aggregates = 500000;
	b->eps_selection = 500000;
	b->eps_spent = 1250000;
	b->eps_total = 1500000;
	b->delta = "1e-6";
	b->selection = true;
	b->selection_k = 1;
	b->selection_threshold = 29;
	b->pol_epsilon_total = 1500000;
	b->pol_delta = "1e-6";
	b->pol_epsilon_select = 500000;
	b->pol_min_group_size = 10;
	b->pol_privacy_unit = "patient_id";
	b->pol_max_rows_per_unit = 1;
	b->rows_per_unit = 1;
	b->sensitivity = 1;
	b->run_id = 7;
	memset(b->app_id, 0x44, sizeof(b->app_id));
	memset(b->compose_hash, 0x55, sizeof(b->compose_hash));
	b->instance_id = "abcd";
	b->chain_id = 31337;
	b->block_number = 5;
	memset(b->block_hash, 0x66, sizeof(b->block_hash));
	b->approvals = 4;
	b->threshold = 3;
	b->issued_at = "2026-11-28T20:00:00Z";
	b->sequence = 3;
	b->prev_receipt_hash = "0000000000000000000000000000000000000000000000000000000000000000";
}

static const char expected[] =
	"{\"app_id\":\"0x4444444444444444444444444444444444444444\","
	"\"chain\":{\"approvals\":4,\"block_hash\":\"0x6666666666666666666666666666666666666666666666666666666666666666\","
	"\"block_number\":5,\"chain_id\":31337,\"threshold\":3},"
	"\"charge\":{\"ledger\":\"local\"},"
	"\"compose_hash\":\"5555555555555555555555555555555555555555555555555555555555555555\","
	"\"contribution\":{\"privacy_unit\":\"patient_id\",\"rows_per_unit\":1,\"sensitivity\":1},"
	"\"datasets\":[{\"dataset_id\":\"22222222222222222222222222222222\","
	"\"manifest_hash\":\"3333333333333333333333333333333333333333333333333333333333333333\","
	"\"owner\":\"0x1111111111111111111111111111111111111111\",\"table\":\"public.ehr\"}],"
	"\"delta\":\"1e-6\","
	"\"epsilon\":{\"aggregates\":\"0.500000\",\"charged\":\"1.000000\",\"left\":\"0.250000\","
	"\"selection\":\"0.500000\",\"spent\":\"1.250000\",\"total\":\"1.500000\"},"
	"\"format\":\"dstack-receipt/v1\",\"instance_id\":\"abcd\",\"issued_at\":\"2026-11-28T20:00:00Z\","
	"\"noise\":\"csprng\","
	"\"policy\":{\"delta\":\"1e-6\",\"epsilon_select\":\"0.500000\",\"epsilon_total\":\"1.500000\","
	"\"max_rows_per_unit\":1,\"min_group_size\":10,\"privacy_unit\":\"patient_id\"},"
	"\"prev_receipt_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\","
	"\"query\":\"SELECT dx, dp_count(patient_id, 0.5) FROM ehr GROUP BY dx\","
	"\"result\":{\"columns\":[\"dx\",\"dp_count\"],\"rows\":[[\"N18.1\",\"812\"]]},"
	"\"run_id\":7,"
	"\"selection\":{\"mechanism\":\"laplace-threshold\",\"rows_per_unit_bound\":1,\"threshold\":29},"
	"\"sequence\":3}";

int
main(void)
{
	DReceiptBody b;
	DReceiptDataset d;
	char	   *canon = NULL;
	char	   *again = NULL;
	uint8_t		h[DC_SHA256_LEN];
	uint8_t		h2[DC_SHA256_LEN];
	DErr		err = {0};

	fill(&b, &d);
	CHECK(dreceipt_body(&b, &canon, h, &err), "a grouped body is built");
	CHECK(canon && strcmp(canon, expected) == 0, "its canonical text is the documented layout, keys sorted");
	if (canon && strcmp(canon, expected) != 0)
		printf("     got %s\n", canon);
	CHECK(dreceipt_canonical(canon, &again, h2, &err) && strcmp(again, canon) == 0 && memcmp(h, h2, sizeof(h)) == 0,
		  "dreceipt_canonical() of that text gives the same text and hash");
	free(canon);
	free(again);

	fill(&b, &d);
	b.selection = false;
	b.delta = "0";
	b.eps_selection = 0;
	b.seeded = true;
	CHECK(dreceipt_body(&b, &canon, h, &err), "an ungrouped, seeded body is built");
	CHECK(canon && strstr(canon, "\"selection\":{") == NULL && strstr(canon, "\"selection\":\"0.000000\"") != NULL,
		  "without GROUP BY there is no selection object, and epsilon.selection is 0");
	CHECK(canon && strstr(canon, "\"noise\":\"test-seed\"") != NULL, "a seeded answer says test-seed");
	CHECK(canon && strstr(canon, "suppressed") == NULL, "no count of dropped groups");
	free(canon);

	fill(&b, &d);
	b.onchain = true;
	memset(b.charge_tx, 0xab, 32);
	b.charge_block = 9;
	b.charge_log_index = 2;
	b.charge_index = 4;
	memset(b.charge_nonce, 0xcd, 32);
	memset(b.charge_query_hash, 0xef, 32);
	b.charge_delta_pico = 1000000;
	memset(b.charge_account, 0x77, 20);
	CHECK(dreceipt_body(&b, &canon, h, &err), "a body with an on-chain charge");
	CHECK(canon && strstr(canon, "\"charge\":{\"account\":\"0x7777777777777777777777777777777777777777\","
						  "\"block_number\":9,\"delta_pico\":1000000,\"index\":4,\"ledger\":\"chain\","
						  "\"log_index\":2,\"nonce\":\"0xcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\","
						  "\"query_sha256\":\"efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef\","
						  "\"tx\":\"0xabababababababababababababababababababababababababababababababab\"}") != NULL,
		  "it cites the transaction, block, log index, charge index, nonce, query hash, delta and account");
	free(canon);

	fill(&b, &d);
	b.query = "SELECT dp_count(p, 0.1) FROM t WHERE dx = 'Ä\"\\\n'";
	CHECK(dreceipt_body(&b, &canon, h, &err), "a query with quotes, a backslash, a newline and non-ASCII");
	CHECK(canon && strstr(canon, "dx = '\\u00C4\\\"\\\\\\n'") != NULL, "escaped as \\u00C4 (upper-case), \\\", \\\\, \\n");
	free(canon);

	fill(&b, &d);
	b.result_json = "[1, 2]";
	derr_clear(&err);
	CHECK(!dreceipt_body(&b, &canon, h, &err) && err.code == DERR_FORMAT && canon == NULL,
		  "a result that is not a JSON object is refused");
	fill(&b, &d);
	b.result_json = "{\"columns\":[],\"rows\":[[1.5]]}";
	derr_clear(&err);
	CHECK(!dreceipt_body(&b, &canon, h, &err) && err.code == DERR_FORMAT, "a JSON real in the result is refused");
	fill(&b, &d);
	b.result_json = "{\"a\":1,\"a\":2}";
	derr_clear(&err);
	CHECK(!dreceipt_body(&b, &canon, h, &err), "duplicate keys in the result are refused");
	UNIT_DONE();
}
