/*
 * policy.c: the pg_dstack_policy member of app-compose.json, parsed strictly
 * (see policy.h for the members, their ranges and why they are strings).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy.h"

/* jansson's text of a member value for messages: strings quoted, at most ~60 chars. */
static void
value_text(json_t *v, char *buf, size_t len)
{
	char	   *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;

	if (s == NULL)
		snprintf(buf, len, "(absent)");
	else if (strlen(s) > 60)
		snprintf(buf, len, "%.57s...", s);
	else
		snprintf(buf, len, "%s", s);
	free(s);
}

/* A DERR_FORMAT naming the member, its value and what it must be. */
static bool
bad_member(DErr *err, const char *name, json_t *v, const char *must)
{
	char		val[72];

	value_text(v, val, sizeof(val));
	derr_set(err, DERR_FORMAT, "invalid %s in the app-compose's %s", name, DPOLICY_KEY);
	derr_detail(err, "%s.%s is %s; it must be %s.", DPOLICY_KEY, name, val, must);
	return false;
}

bool
dpolicy_decimal_micro(const char *s, int max_decimals, int64_t *micro)
{
	int64_t		ip = 0;
	int64_t		frac = 0;
	int			nfrac = 0;
	const char *p = s;

	if (s == NULL || max_decimals < 0 || max_decimals > 6 || *p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++)
	{
		ip = ip * 10 + (*p - '0');
		if (ip > DPOLICY_MAX_EPSILON_MICRO / 1000000)
			return false;
	}
	if (*p == '.')
	{
		p++;
		if (*p < '0' || *p > '9')
			return false;		/* "1." is not a decimal */
		for (; *p >= '0' && *p <= '9'; p++)
		{
			if (++nfrac > max_decimals)
				return false;
			frac = frac * 10 + (*p - '0');
		}
	}
	if (*p != '\0')
		return false;
	for (int i = nfrac; i < 6; i++)
		frac *= 10;
	*micro = ip * 1000000 + frac;
	return *micro <= DPOLICY_MAX_EPSILON_MICRO;
}

bool
dpolicy_valid_unit(const char *s)
{
	size_t		n = s ? strlen(s) : 0;

	if (n == 0 || n > DPOLICY_UNIT_MAX || (s[0] >= '0' && s[0] <= '9') || s[0] == '$')
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$'))
			return false;
	}
	return true;
}

/* A positive epsilon given as a decimal string. */
static bool
get_epsilon(json_t *pol, const char *name, int max_decimals, int64_t *micro, char *text, DErr *err)
{
	json_t	   *v = json_object_get(pol, name);
	char		must[160];

	snprintf(must, sizeof(must), "a decimal string greater than 0 and at most 1000000, with at most %d "
			 "decimals%s (e.g. \"1.5\")", max_decimals,
			 max_decimals == 3 ? " because the consortium contract records epsilon in thousandths" : "");
	if (!json_is_string(v) || strlen(json_string_value(v)) > DPOLICY_TEXT_MAX ||
		!dpolicy_decimal_micro(json_string_value(v), max_decimals, micro) || *micro <= 0)
		return bad_member(err, name, v, must);
	strcpy(text, json_string_value(v));
	return true;
}

/* delta: a probability written as "0.000001" or "1e-6". */
static bool
get_delta(json_t *pol, DPolicy *out, DErr *err)
{
	static const char must[] = "a decimal string greater than 0 and less than 1, in decimal or exponent "
		"notation (e.g. \"1e-6\")";
	json_t	   *v = json_object_get(pol, "delta");
	const char *s;
	const char *p;
	char	   *end;
	double		d;

	if (!json_is_string(v) || strlen(json_string_value(v)) > DPOLICY_TEXT_MAX)
		return bad_member(err, "delta", v, must);
	s = p = json_string_value(v);
	/* digits [. digits] [e|E [+|-] digits]: no sign, no hex, no inf/nan, which strtod would take */
	if (*p < '0' || *p > '9')
		return bad_member(err, "delta", v, must);
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.')
	{
		if (*++p < '0' || *p > '9')
			return bad_member(err, "delta", v, must);
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E')
	{
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return bad_member(err, "delta", v, must);
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p != '\0')
		return bad_member(err, "delta", v, must);
	errno = 0;
	d = strtod(s, &end);
	if (*end != '\0' || errno == ERANGE || !(d > 0.0 && d < 1.0))
		return bad_member(err, "delta", v, must);
	out->delta = d;
	strcpy(out->delta_text, s);
	return true;
}

/* A JSON integer in [lo, hi]. */
static bool
get_int(json_t *pol, const char *name, json_int_t lo, json_int_t hi, json_int_t *out, DErr *err)
{
	json_t	   *v = json_object_get(pol, name);
	char		must[96];

	snprintf(must, sizeof(must), "a JSON integer from %lld to %lld", (long long) lo, (long long) hi);
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return bad_member(err, name, v, must);
	*out = json_integer_value(v);
	return true;
}

static const char *const members[] = {
	"allowed_query_shape", "epsilon_total", "delta", "epsilon_select",
	"min_group_size", "max_rows_per_unit", "privacy_unit",
};

static bool
parse_policy(json_t *pol, DPolicy *out, DErr *err)
{
	const char *key;
	json_t	   *v;
	json_int_t	n;

	json_object_foreach(pol, key, v)
	{
		bool		known = false;

		for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
			known = known || strcmp(key, members[i]) == 0;
		if (!known)
		{
			derr_set(err, DERR_FORMAT, "unknown member \"%.64s\" in the app-compose's %s", key, DPOLICY_KEY);
			derr_detail(err, "%s has exactly the members allowed_query_shape, epsilon_total, delta, "
						"epsilon_select, min_group_size, max_rows_per_unit and privacy_unit; a misspelt "
						"one would otherwise be silently ignored.", DPOLICY_KEY);
			return false;
		}
	}
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (json_object_get(pol, members[i]) == NULL)
		{
			derr_set(err, DERR_FORMAT, "the app-compose's %s lacks %s", DPOLICY_KEY, members[i]);
			derr_detail(err, "Every member of %s is required: allowed_query_shape, epsilon_total, delta, "
						"epsilon_select, min_group_size, max_rows_per_unit and privacy_unit.", DPOLICY_KEY);
			return false;
		}

	v = json_object_get(pol, "allowed_query_shape");
	if (!json_is_string(v))
		return bad_member(err, "allowed_query_shape", v, "the string \"" DPOLICY_SHAPE_DP "\"");
	if (strcmp(json_string_value(v), DPOLICY_SHAPE_DP) != 0)
	{
		char		val[72];

		value_text(v, val, sizeof(val));
		derr_set(err, DERR_UNSUPPORTED, "unsupported allowed_query_shape in the app-compose's %s", DPOLICY_KEY);
		derr_detail(err, "%s.allowed_query_shape is %s; this build enforces only \"%s\" (DP aggregates "
					"behind the output guard).", DPOLICY_KEY, val, DPOLICY_SHAPE_DP);
		return false;
	}
	strcpy(out->allowed_query_shape, DPOLICY_SHAPE_DP);

	if (!get_epsilon(pol, "epsilon_total", 3, &out->epsilon_total_micro, out->epsilon_total_text, err) ||
		!get_epsilon(pol, "epsilon_select", 6, &out->epsilon_select_micro, out->epsilon_select_text, err) ||
		!get_delta(pol, out, err))
		return false;
	if (!get_int(pol, "min_group_size", 0, INT32_MAX, &n, err))
		return false;
	out->min_group_size = (uint32_t) n;
	if (!get_int(pol, "max_rows_per_unit", 1, DPOLICY_MAX_ROWS_PER_UNIT, &n, err))
		return false;
	out->max_rows_per_unit = (int) n;

	v = json_object_get(pol, "privacy_unit");
	if (!json_is_string(v) || !dpolicy_valid_unit(json_string_value(v)))
		return bad_member(err, "privacy_unit", v,
						  "a column name of 1 to 63 ASCII letters, digits, '_' or '$', not starting with a "
						  "digit or '$'");
	strcpy(out->privacy_unit, json_string_value(v));
	return true;
}

bool
dpolicy_from_compose(const char *compose, size_t len, DPolicy *pol, DErr *err)
{
	json_error_t jerr;
	json_t	   *root;
	json_t	   *p;
	bool		ok;

	memset(pol, 0, sizeof(*pol));
	if (compose == NULL || len == 0)
	{
		derr_set(err, DERR_FORMAT, "the app-compose is empty");
		derr_detail(err, "No app-compose.json text was given to read %s from.", DPOLICY_KEY);
		return false;
	}
	root = json_loadb(compose, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
	{
		derr_set(err, DERR_FORMAT, "the app-compose is not valid JSON");
		derr_detail(err, "At line %d, column %d: %s.%s", jerr.line, jerr.column, jerr.text,
					strstr(jerr.text, "duplicate") ? " A key that appears twice is refused: two readers could "
					"take two different values." : "");
		return false;
	}
	if (!json_is_object(root))
	{
		json_decref(root);
		derr_set(err, DERR_FORMAT, "the app-compose is not a JSON object");
		return false;
	}
	p = json_object_get(root, DPOLICY_KEY);
	if (p == NULL)
	{
		json_decref(root);
		derr_set(err, DERR_FORMAT, "the app-compose has no %s", DPOLICY_KEY);
		derr_detail(err, "The analysis policy (epsilon_total, delta, epsilon_select, min_group_size, "
					"max_rows_per_unit, privacy_unit) is read from the measured app-compose.json only.");
		return false;
	}
	if (!json_is_object(p))
	{
		json_decref(root);
		derr_set(err, DERR_FORMAT, "the app-compose's %s is not a JSON object", DPOLICY_KEY);
		return false;
	}
	ok = parse_policy(p, pol, err);
	json_decref(root);
	if (!ok)
		memset(pol, 0, sizeof(*pol));
	return ok;
}
