/*
 * fuzz_policy.c: the analysis-policy parser (policy.c) on arbitrary
 * app-compose text, as the guest agent's Info carries it.  A policy that
 * parses is within its documented ranges.
 */
#include <stdlib.h>
#include <string.h>

#include "../policy.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	DPolicy		pol;
	DErr		err = {0};

	if (dpolicy_from_compose((const char *) data, size, &pol, &err))
	{
		if (pol.epsilon_total_micro <= 0 || pol.epsilon_total_micro > DPOLICY_MAX_EPSILON_MICRO ||
			pol.epsilon_select_micro <= 0 || !(pol.delta > 0 && pol.delta < 1) ||
			pol.max_rows_per_unit < 1 || pol.max_rows_per_unit > DPOLICY_MAX_ROWS_PER_UNIT ||
			!dpolicy_valid_unit(pol.privacy_unit) || strcmp(pol.allowed_query_shape, DPOLICY_SHAPE_DP) != 0)
			abort();
	}
	return 0;
}
