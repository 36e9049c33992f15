/*
 * test_policy.c: the pg_dstack_policy of app-compose.json (policy.c): the
 * demo compose parses to the values the consortium is deployed with, every
 * member is required and range-checked at its boundaries, malformed and
 * ambiguous composes (duplicate keys, JSON reals, unknown members) are
 * refused with a message naming the member; and the guest agent's Info
 * carries the compose text that ga_app_compose_measured() binds to the
 * measured compose-hash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "crypto.h"
#include "guest_agent.h"
#include "hex.h"
#include "policy.h"
#include "unit.h"

/* run from common/ (make check) or from the repository root */
#define DEMO_COMPOSE "../tools/demo/app-compose.json"
#define DEMO_COMPOSE_ROOT "tools/demo/app-compose.json"

/* The members of a valid policy, as JSON texts. */
static const char *const member_names[] = {
	"allowed_query_shape", "epsilon_total", "delta", "epsilon_select",
	"min_group_size", "max_rows_per_unit", "privacy_unit",
};
static const char *const member_values[] = {
	"\"dp-aggregate\"", "\"1.5\"", "\"1e-6\"", "\"0.1\"", "10", "1", "\"patient_id\"",
};

/*
 * A compose whose policy is the valid one with member `name` set to the JSON
 * text `value` (NULL: left out; a name not in the list: added).
 */
static const char *
compose_with(const char *name, const char *value)
{
	static char buf[4096];
	size_t		n = 0;
	bool		seen = false;

	n += snprintf(buf + n, sizeof(buf) - n, "{\"manifest_version\":2,\"name\":\"t\",\"%s\":{", DPOLICY_KEY);
	for (size_t i = 0; i < sizeof(member_names) / sizeof(member_names[0]); i++)
	{
		const char *v = member_values[i];

		if (name != NULL && strcmp(name, member_names[i]) == 0)
		{
			seen = true;
			if ((v = value) == NULL)
				continue;
		}
		n += snprintf(buf + n, sizeof(buf) - n, "%s\"%s\":%s", buf[n - 1] == '{' ? "" : ",", member_names[i], v);
	}
	if (name != NULL && !seen)
		n += snprintf(buf + n, sizeof(buf) - n, ",\"%s\":%s", name, value);
	snprintf(buf + n, sizeof(buf) - n, "}}");
	return buf;
}

static DErr err;
static DPolicy pol;

/* Parse a compose text; err and pol hold the outcome. */
static bool
parse(const char *text)
{
	derr_clear(&err);
	return dpolicy_from_compose(text, strlen(text), &pol, &err);
}

static bool
zeroed(const DPolicy *p)
{
	static const DPolicy zero;

	return memcmp(p, &zero, sizeof(zero)) == 0;
}

/* member=value is refused as DERR_FORMAT naming the member, with pol zeroed. */
static void
refused(const char *name, const char *value, const char *what)
{
	bool		ok = !parse(compose_with(name, value)) && err.code == DERR_FORMAT &&
		strstr(err.msg, name) != NULL && zeroed(&pol);

	CHECK(ok, what);
	if (!ok)
		printf("     got code %d: %s / %s\n", err.code, err.msg, err.detail);
}

/* member=value is accepted. */
static bool
accepted(const char *name, const char *value)
{
	bool		ok = parse(compose_with(name, value));

	if (!ok)
		printf("     refused: %s / %s\n", err.msg, err.detail);
	return ok;
}

static void
test_demo_compose(void)
{
	FILE	   *f = fopen(DEMO_COMPOSE, "rb") ?: fopen(DEMO_COMPOSE_ROOT, "rb");
	static char text[65536];
	size_t		n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;

	if (f)
		fclose(f);
	CHECK(n > 0, "demo app-compose.json readable");
	text[n] = '\0';
	derr_clear(&err);
	CHECK(dpolicy_from_compose(text, n, &pol, &err), "demo app-compose.json has a valid policy");
	if (err.code)
		printf("     %s / %s\n", err.msg, err.detail);
	/* tools/testenv.sh deploys the consortium with --epsilon-milli 1500 --min-group 10 --privacy-unit patient_id */
	CHECK(pol.epsilon_total_micro == 1500000 && strcmp(pol.epsilon_total_text, "1.5") == 0,
		  "demo: epsilon_total 1.5");
	CHECK(pol.delta == 1e-6 && strcmp(pol.delta_text, "1e-6") == 0, "demo: delta 1e-6, text kept");
	CHECK(pol.epsilon_select_micro == 500000, "demo: epsilon_select 0.5");
	CHECK(pol.min_group_size == 10 && pol.max_rows_per_unit == 1 && strcmp(pol.privacy_unit, "patient_id") == 0 &&
		  strcmp(pol.allowed_query_shape, "dp-aggregate") == 0, "demo: min_group_size, max_rows_per_unit, unit, shape");
}

static void
test_members(void)
{
	CHECK(parse(compose_with(NULL, NULL)), "the valid policy parses");
	for (size_t i = 0; i < sizeof(member_names) / sizeof(member_names[0]); i++)
	{
		char		name[96];

		snprintf(name, sizeof(name), "missing %s refused", member_names[i]);
		refused(member_names[i], NULL, name);
	}
	CHECK(!parse(compose_with("max_row_per_unit", "5")) && err.code == DERR_FORMAT &&
		  strstr(err.msg, "max_row_per_unit") != NULL, "a misspelt (unknown) member refused");
	CHECK(!parse(compose_with("allowed_query_shape", "\"sql\"")) && err.code == DERR_UNSUPPORTED &&
		  strstr(err.detail, "\"sql\"") != NULL, "another query shape: DERR_UNSUPPORTED with the value");
	refused("allowed_query_shape", "1", "query shape not a string");
}

static void
test_epsilon(void)
{
	CHECK(accepted("epsilon_total", "\"2\"") && pol.epsilon_total_micro == 2000000, "epsilon_total \"2\"");
	CHECK(accepted("epsilon_total", "\"0.001\"") && pol.epsilon_total_micro == 1000, "epsilon_total \"0.001\" (smallest)");
	CHECK(accepted("epsilon_total", "\"1000000\"") && pol.epsilon_total_micro == 1000000000000,
		  "epsilon_total \"1000000\" (largest)");
	CHECK(accepted("epsilon_total", "\"01.250\"") && pol.epsilon_total_micro == 1250000 &&
		  strcmp(pol.epsilon_total_text, "01.250") == 0, "epsilon_total with leading and trailing zeros, text kept");
	refused("epsilon_total", "\"0\"", "epsilon_total \"0\" refused");
	refused("epsilon_total", "\"0.000\"", "epsilon_total \"0.000\" refused");
	refused("epsilon_total", "\"1.0005\"", "epsilon_total with 4 decimals refused (contract has thousandths)");
	refused("epsilon_total", "\"1000000.001\"", "epsilon_total above 1000000 refused");
	refused("epsilon_total", "\"99999999999999999999\"", "epsilon_total overflowing refused");
	refused("epsilon_total", "1.5", "epsilon_total as a JSON real refused");
	refused("epsilon_total", "2", "epsilon_total as a JSON integer refused");
	refused("epsilon_total", "\"-1\"", "negative epsilon_total refused");
	refused("epsilon_total", "\"+1\"", "signed epsilon_total refused");
	refused("epsilon_total", "\"1e3\"", "epsilon_total in exponent notation refused");
	refused("epsilon_total", "\" 1\"", "epsilon_total with a space refused");
	refused("epsilon_total", "\"1.\"", "epsilon_total \"1.\" refused");
	refused("epsilon_total", "\".5\"", "epsilon_total \".5\" refused");
	refused("epsilon_total", "\"\"", "empty epsilon_total refused");
	refused("epsilon_total", "\"1,5\"", "epsilon_total with a comma refused");
	CHECK(!parse(compose_with("epsilon_total", "\"abc\"")) && strstr(err.detail, "\"abc\"") != NULL,
		  "the detail quotes the refused value");
	CHECK(accepted("epsilon_select", "\"0.000001\"") && pol.epsilon_select_micro == 1, "epsilon_select 1e-6 (6 decimals)");
	refused("epsilon_select", "\"0.0000001\"", "epsilon_select with 7 decimals refused");
	refused("epsilon_select", "\"0\"", "epsilon_select 0 refused");
	refused("epsilon_select", "0.1", "epsilon_select as a JSON real refused");
	refused("epsilon_select", "null", "epsilon_select null refused");
}

static void
test_delta(void)
{
	CHECK(accepted("delta", "\"0.000001\"") && pol.delta == 1e-6 && strcmp(pol.delta_text, "0.000001") == 0,
		  "delta in decimal notation");
	CHECK(accepted("delta", "\"1E-9\"") && pol.delta == 1e-9, "delta with a capital E");
	CHECK(accepted("delta", "\"5e-1\"") && pol.delta == 0.5, "delta 0.5");
	CHECK(accepted("delta", "\"0.999999\""), "delta just below 1");
	CHECK(accepted("delta", "\"1e-300\"") && pol.delta > 0, "tiny delta");
	refused("delta", "\"0\"", "delta 0 refused");
	refused("delta", "\"0e5\"", "delta 0e5 refused");
	refused("delta", "\"1\"", "delta 1 refused");
	refused("delta", "\"1e0\"", "delta 1e0 refused");
	refused("delta", "\"2\"", "delta 2 refused");
	refused("delta", "\"1e-400\"", "delta that underflows refused");
	refused("delta", "\"-1e-6\"", "negative delta refused");
	refused("delta", "\"inf\"", "delta inf refused");
	refused("delta", "\"nan\"", "delta nan refused");
	refused("delta", "\"0x1p-20\"", "delta in hex refused");
	refused("delta", "\"1e\"", "delta 1e refused");
	refused("delta", "\"1e-6 \"", "delta with trailing space refused");
	refused("delta", "1e-6", "delta as a JSON real refused");
	refused("delta", "\"0.00000000000000000000000000000001\"", "delta text longer than 31 characters refused");
}

static void
test_integers(void)
{
	CHECK(accepted("min_group_size", "0") && pol.min_group_size == 0, "min_group_size 0");
	CHECK(accepted("min_group_size", "2147483647") && pol.min_group_size == 2147483647, "min_group_size 2^31-1");
	refused("min_group_size", "-1", "min_group_size -1 refused");
	refused("min_group_size", "2147483648", "min_group_size 2^31 refused");
	refused("min_group_size", "10.0", "min_group_size as a JSON real refused");
	refused("min_group_size", "\"10\"", "min_group_size as a string refused");
	refused("min_group_size", "true", "min_group_size true refused");
	CHECK(accepted("max_rows_per_unit", "1000") && pol.max_rows_per_unit == 1000, "max_rows_per_unit 1000");
	refused("max_rows_per_unit", "0", "max_rows_per_unit 0 refused");
	refused("max_rows_per_unit", "1001", "max_rows_per_unit 1001 refused");
	refused("max_rows_per_unit", "1.0", "max_rows_per_unit as a JSON real refused");
}

static void
test_unit(void)
{
	char		long_name[80];
	char		v[96];

	CHECK(accepted("privacy_unit", "\"Account_ID$2\"") && strcmp(pol.privacy_unit, "Account_ID$2") == 0,
		  "privacy_unit with capitals, digits, _ and $");
	CHECK(accepted("privacy_unit", "\"_id\""), "privacy_unit starting with _");
	memset(long_name, 'u', 63);
	long_name[63] = '\0';
	snprintf(v, sizeof(v), "\"%s\"", long_name);
	CHECK(accepted("privacy_unit", v) && strlen(pol.privacy_unit) == 63, "privacy_unit of 63 characters");
	snprintf(v, sizeof(v), "\"%su\"", long_name);
	refused("privacy_unit", v, "privacy_unit of 64 characters refused");
	refused("privacy_unit", "\"\"", "empty privacy_unit refused (bounding cannot be switched off)");
	refused("privacy_unit", "\"1st\"", "privacy_unit starting with a digit refused");
	refused("privacy_unit", "\"$x\"", "privacy_unit starting with $ refused");
	refused("privacy_unit", "\"patient id\"", "privacy_unit with a space refused");
	refused("privacy_unit", "\"p\\\"q\"", "privacy_unit with a quote refused");
	refused("privacy_unit", "\"caf\\u00e9\"", "non-ASCII privacy_unit refused");
	CHECK(!parse(compose_with("privacy_unit", "\"a\\u0000b\"")) && err.code == DERR_FORMAT && zeroed(&pol),
		  "privacy_unit with NUL refused (by the JSON parser)");
	refused("privacy_unit", "[\"patient_id\"]", "privacy_unit as an array refused");
}

static void
test_document(void)
{
	char		text[4096];

	CHECK(!parse("{\"name\":\"t\"}") && err.code == DERR_FORMAT && strstr(err.msg, DPOLICY_KEY) != NULL,
		  "compose without pg_dstack_policy refused");
	CHECK(!parse("{\"pg_dstack_policy\":[]}") && err.code == DERR_FORMAT, "policy not an object refused");
	CHECK(!parse("[1]") && err.code == DERR_FORMAT, "compose not an object refused");
	CHECK(!parse("{\"name\":") && err.code == DERR_FORMAT && strstr(err.msg, "not valid JSON") != NULL,
		  "truncated compose refused");
	derr_clear(&err);
	CHECK(!dpolicy_from_compose("", 0, &pol, &err) && err.code == DERR_FORMAT, "empty compose refused");
	derr_clear(&err);
	CHECK(!dpolicy_from_compose(NULL, 0, &pol, &err) && err.code == DERR_FORMAT, "NULL compose refused");
	/* duplicates: a reader taking the first and one taking the last would see two policies */
	snprintf(text, sizeof(text), "%s", compose_with(NULL, NULL));
	text[strlen(text) - 1] = '\0';
	strcat(text, ",\"pg_dstack_policy\":{}}");
	CHECK(!parse(text) && err.code == DERR_FORMAT && strstr(err.detail, "twice") != NULL,
		  "pg_dstack_policy given twice refused");
	snprintf(text, sizeof(text), "%s", compose_with("min_group_size", "0,\"min_group_size\":10"));
	CHECK(!parse(text) && err.code == DERR_FORMAT, "a policy member given twice refused");
	snprintf(text, sizeof(text), "{\"name\":\"a\",\"name\":\"b\",%s", compose_with(NULL, NULL) + 1);
	CHECK(!parse(text) && err.code == DERR_FORMAT, "a duplicate key elsewhere in the compose refused");
	snprintf(text, sizeof(text), "%s", compose_with(NULL, NULL));
	CHECK(!dpolicy_from_compose(text, strlen(text) - 1, &pol, &err), "the length is honoured (last byte cut)");
	snprintf(text, sizeof(text), "  \n%s\n", compose_with(NULL, NULL));
	CHECK(parse(text), "whitespace around the document is fine");
}

static void
test_helpers(void)
{
	int64_t		m = -1;

	CHECK(dpolicy_decimal_micro("0.5", 6, &m) && m == 500000, "decimal 0.5");
	CHECK(dpolicy_decimal_micro("3", 0, &m) && m == 3000000, "decimal 3, no decimals allowed");
	CHECK(!dpolicy_decimal_micro("3.1", 0, &m), "decimal 3.1 with no decimals allowed refused");
	CHECK(!dpolicy_decimal_micro("1", 7, &m), "more than 6 decimals cannot be asked for");
	CHECK(!dpolicy_decimal_micro(NULL, 3, &m), "NULL decimal refused");
	CHECK(dpolicy_valid_unit("patient_id") && !dpolicy_valid_unit("") && !dpolicy_valid_unit(NULL),
		  "unit names");
}

/* Info's app_compose against the measured compose-hash. */
static void
test_measured(void)
{
	GaInfo		info;
	const char *text = compose_with(NULL, NULL);

	memset(&info, 0, sizeof(info));
	info.app_compose = strdup(text);
	info.app_compose_len = strlen(text);
	dc_sha256(text, strlen(text), info.compose_hash);
	derr_clear(&err);
	CHECK(ga_app_compose_measured(&info, &err), "compose text hashing to the compose-hash is the measured one");
	info.compose_hash[5] ^= 1;
	derr_clear(&err);
	CHECK(!ga_app_compose_measured(&info, &err) && err.code == DERR_INTEGRITY && strstr(err.detail, "sha256") != NULL,
		  "compose text hashing to another compose-hash: DERR_INTEGRITY with both hashes");
	info.compose_hash[5] ^= 1;
	info.app_compose_len--;
	derr_clear(&err);
	CHECK(!ga_app_compose_measured(&info, &err) && err.code == DERR_INTEGRITY, "one byte less is not the measured text");
	free(info.app_compose);
	info.app_compose = NULL;
	derr_clear(&err);
	CHECK(!ga_app_compose_measured(&info, &err) && err.code == DERR_FORMAT, "no compose text: DERR_FORMAT");
}

int
main(void)
{
	test_demo_compose();
	test_members();
	test_epsilon();
	test_delta();
	test_integers();
	test_unit();
	test_document();
	test_helpers();
	test_measured();
	UNIT_DONE();
}
