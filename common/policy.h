/*
 * policy.h: the analysis policy as the measured app-compose.json states it.
 *
 * The compose file's sha256 is the compose-hash that dstack measures into
 * RTMR3, that the guest agent's Info reports and that the consortium
 * contract pins; so the policy written in the file is the one the owners
 * approved, and no JSON-RPC node can change it.  The file carries it as
 *
 *   "pg_dstack_policy": {
 *     "allowed_query_shape": "dp-aggregate",
 *     "epsilon_total": "1.5",        total privacy budget, decimal string
 *     "delta": "1e-6",               of DP partition selection, per grouped query
 *     "epsilon_select": "0.1",       of DP partition selection, per grouped query
 *     "min_group_size": 10,          floor of the partition-selection threshold
 *     "max_rows_per_unit": 1,        rows one unit may contribute per sealed table
 *     "privacy_unit": "patient_id"   column that identifies one person / account
 *   }
 *
 * Parsing is strict: every member is required, no other member is allowed,
 * numbers of epsilon and delta are JSON strings (a decimal text has one
 * meaning in every language, a JSON real does not), and a compose with a
 * duplicated key anywhere is refused (two parsers could read two policies).
 * Ranges: 0 < epsilon_total <= 1000000 with at most 3 decimals (the
 * contract records epsilon in thousandths); 0 < epsilon_select <= 1000000
 * with at most 6 decimals; 0 < delta < 1 (decimal or exponent notation);
 * 0 <= min_group_size <= 2147483647; 1 <= max_rows_per_unit <= 1000;
 * privacy_unit an identifier of 1 to 63 ASCII letters, digits, '_' or '$'
 * not starting with a digit or '$'; allowed_query_shape "dp-aggregate", the
 * only shape this build enforces.
 */
#ifndef DSTACK_POLICY_H
#define DSTACK_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derr.h"

#define DPOLICY_KEY				"pg_dstack_policy"
#define DPOLICY_SHAPE_DP		"dp-aggregate"
#define DPOLICY_MAX_EPSILON_MICRO	INT64_C(1000000000000)	/* epsilon 1000000 */
#define DPOLICY_MAX_ROWS_PER_UNIT	1000
#define DPOLICY_UNIT_MAX		63	/* PostgreSQL's NAMEDATALEN - 1 */
#define DPOLICY_TEXT_MAX		31	/* longest decimal text kept as written */

typedef struct DPolicy
{
	char		allowed_query_shape[32];
	int64_t		epsilon_total_micro;	/* epsilon_total in millionths (a multiple of 1000) */
	char		epsilon_total_text[DPOLICY_TEXT_MAX + 1];	/* as the compose writes it */
	int64_t		epsilon_select_micro;
	char		epsilon_select_text[DPOLICY_TEXT_MAX + 1];
	double		delta;
	char		delta_text[DPOLICY_TEXT_MAX + 1];	/* as the compose writes it */
	uint32_t	min_group_size;
	int			max_rows_per_unit;
	char		privacy_unit[DPOLICY_UNIT_MAX + 1];
} DPolicy;

/*
 * Parse the pg_dstack_policy member of an app-compose.json text of len
 * bytes.  DERR_FORMAT (message naming the member, detail with the value and
 * what was expected) on any violation; DERR_UNSUPPORTED for a query shape
 * this build does not enforce.  On failure *pol is zeroed.
 */
extern bool dpolicy_from_compose(const char *compose, size_t len, DPolicy *pol, DErr *err);

/*
 * A decimal string "I[.F]" (ASCII digits only, no sign, no exponent, at most
 * max_decimals digits after the point) in millionths; false when malformed,
 * too precise or above DPOLICY_MAX_EPSILON_MICRO.  max_decimals <= 6.
 */
extern bool dpolicy_decimal_micro(const char *s, int max_decimals, int64_t *micro);

/* A privacy-unit column name as the policy allows it (see above). */
extern bool dpolicy_valid_unit(const char *s);

#endif							/* DSTACK_POLICY_H */
