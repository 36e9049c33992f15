/*
 * dseal-dump: decrypt a .dseal file to COPY text, for tests and debugging.
 *
 * This is NOT a production path: in production only a CVM of the agreed
 * recipe can unwrap a dataset, inside dstack_fdw, with the recipient key
 * from its guest agent.  This tool exists so that tests holding the
 * (simulated) recipient private key can check a seal round trip value by
 * value, independently of the FDW.  It still goes through the same unwrap
 * and chunk authentication as the CVM, so a wrong recipe or a tampered file
 * fails here exactly as it would there.
 *
 * Usage: dseal-dump --key-file F --app-id 0x.. --compose-hash 0x..
 *                   [--kms-root HEX] [--columns a,b] FILE
 *   Prints rows as PostgreSQL COPY text (tab-separated, \N for NULL).
 *   Exit 0 on success, 1 on a usage error, 2 when the file or key fails.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dseal.h"
#include "hex.h"

/* Print a byte string with COPY text escaping. */
static void
put_escaped(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
	{
		switch (p[i])
		{
			case '\\': fputs("\\\\", stdout); break;
			case '\t': fputs("\\t", stdout); break;
			case '\n': fputs("\\n", stdout); break;
			case '\r': fputs("\\r", stdout); break;
			default: putchar(p[i]);
		}
	}
}

/* Days since 1970-01-01 -> civil date (H. Hinnant's algorithm, proleptic Gregorian). */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t		era;
	unsigned	doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned) (z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	*y = (int64_t) yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	if (*m <= 2)
		(*y)++;
}

/* PostgreSQL dates count days from 2000-01-01 (10957 days after 1970). */
static void
put_date(int64_t pgdays)
{
	int64_t		y;
	unsigned	m,
				d;

	civil_from_days(pgdays + 10957, &y, &m, &d);
	if (y > 0)
		printf("%04lld-%02u-%02u", (long long) y, m, d);
	else
		printf("%04lld-%02u-%02u BC", (long long) (1 - y), m, d);
}

static void
put_timestamp(int64_t us, bool tz)
{
	int64_t		days = us / 86400000000LL;
	int64_t		rem = us % 86400000000LL;

	if (us == INT64_MAX || us == INT64_MIN)
	{
		fputs(us == INT64_MAX ? "infinity" : "-infinity", stdout);
		return;
	}
	if (rem < 0)
	{
		rem += 86400000000LL;
		days--;
	}
	put_date(days);
	printf(" %02lld:%02lld:%02lld.%06lld%s", (long long) (rem / 3600000000LL),
		   (long long) (rem / 60000000LL % 60), (long long) (rem / 1000000LL % 60),
		   (long long) (rem % 1000000LL), tz ? "+00" : "");
}

static void
put_float(double v, int digits)
{
	if (isnan(v))
		fputs("NaN", stdout);
	else if (isinf(v))
		fputs(v > 0 ? "Infinity" : "-Infinity", stdout);
	else
		printf("%.*g", digits, v);
}

/* One value in the text form PostgreSQL's COPY FROM accepts for the column type. */
static void
put_value(const DsealColumnDef *col, const DsealColBuf *cb, uint32_t row)
{
	const uint8_t *p;
	uint32_t	len;

	if (colbuf_is_null(cb, row))
	{
		fputs("\\N", stdout);
		return;
	}
	switch (col->enc)
	{
		case DSEAL_ENC_BOOL:
			putchar(*colbuf_fixed_at(cb, row) ? 't' : 'f');
			return;
		case DSEAL_ENC_I16:
			{
				int16_t		v;

				memcpy(&v, colbuf_fixed_at(cb, row), 2);
				printf("%d", v);
				return;
			}
		case DSEAL_ENC_I32:
			{
				int32_t		v;

				memcpy(&v, colbuf_fixed_at(cb, row), 4);
				if (strcmp(col->type, "date") == 0)
				{
					if (v == INT32_MAX || v == INT32_MIN)
						fputs(v == INT32_MAX ? "infinity" : "-infinity", stdout);
					else
						put_date(v);
				}
				else
					printf("%d", v);
				return;
			}
		case DSEAL_ENC_I64:
			{
				int64_t		v;

				memcpy(&v, colbuf_fixed_at(cb, row), 8);
				if (strncmp(col->type, "timestamp", 9) == 0)
					put_timestamp(v, strstr(col->type, "with time zone") != NULL);
				else
					printf("%lld", (long long) v);
				return;
			}
		case DSEAL_ENC_F32:
			{
				float		v;

				memcpy(&v, colbuf_fixed_at(cb, row), 4);
				put_float(v, 9);
				return;
			}
		case DSEAL_ENC_F64:
			{
				double		v;

				memcpy(&v, colbuf_fixed_at(cb, row), 8);
				put_float(v, 17);
				return;
			}
		case DSEAL_ENC_B16:
			{
				const uint8_t *u = colbuf_fixed_at(cb, row);

				for (int i = 0; i < 16; i++)
					printf("%s%02x", (i == 4 || i == 6 || i == 8 || i == 10) ? "-" : "", u[i]);
				return;
			}
		case DSEAL_ENC_VAR:
			p = colbuf_var_at(cb, row, &len);
			if (col->repr == DSEAL_REPR_BINARY && strcmp(col->type, "bytea") == 0)
			{
				fputs("\\\\x", stdout);
				for (uint32_t i = 0; i < len; i++)
					printf("%02x", p[i]);
			}
			else
				put_escaped(p, len);
			return;
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: dseal-dump --key-file F --app-id 0xADDR --compose-hash 0xHASH "
			"[--kms-root HEX] [--columns a,b] FILE\n");
	exit(1);
}

static int
fail(const DErr *err)
{
	fprintf(stderr, "dseal-dump: %s\n", err->msg);
	if (err->detail[0])
		fprintf(stderr, "DETAIL: %s\n", err->detail);
	return 2;
}

int
main(int argc, char **argv)
{
	static struct option opts[] = {
		{"key-file", required_argument, NULL, 'k'},
		{"app-id", required_argument, NULL, 'a'},
		{"compose-hash", required_argument, NULL, 'c'},
		{"kms-root", required_argument, NULL, 'r'},
		{"columns", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0}
	};
	const char *key_file = NULL,
			   *app_id = NULL,
			   *compose = NULL,
			   *kms_root = NULL,
			   *columns = NULL;
	int			c;
	DErr		err = {0};
	DsealReader *r;
	const DsealManifest *m;
	DsealRecipe recipe;
	uint8_t		sk[DC_SECKEY_LEN];
	char		keytext[160] = {0};
	FILE	   *kf;
	bool	   *want;
	DsealColBuf *bufs;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'k': key_file = optarg; break;
			case 'a': app_id = optarg; break;
			case 'c': compose = optarg; break;
			case 'r': kms_root = optarg; break;
			case 'l': columns = optarg; break;
			default: usage();
		}
	}
	if (optind != argc - 1 || !key_file || !app_id || !compose)
		usage();

	r = dseal_reader_open(argv[optind], &err);
	if (!r)
		return fail(&err);
	m = dseal_reader_manifest(r);

	/* the recipe of the "CVM" we pretend to be: from the command line, never the manifest */
	recipe = m->recipe;
	if (!dhex_decode_exact(app_id, recipe.app_id, DC_ADDR_LEN, "app id", &err) ||
		!dhex_decode_exact(compose, recipe.compose_hash, DSEAL_COMPOSE_HASH_LEN, "compose-hash", &err) ||
		(kms_root && !dhex_decode_exact(kms_root, recipe.kms_root_pubkey, DC_PUBKEY_LEN, "kms root", &err)))
		return fail(&err);
	kf = fopen(key_file, "r");
	if (!kf || !fgets(keytext, sizeof(keytext), kf))
	{
		fprintf(stderr, "dseal-dump: could not read key file \"%s\"\n", key_file);
		return 2;
	}
	fclose(kf);
	if (!dhex_decode_exact(keytext, sk, sizeof(sk), "recipient key", &err))
		return fail(&err);
	explicit_bzero(keytext, sizeof(keytext));
	if (!dseal_reader_unwrap(r, &recipe, sk, &err))
	{
		explicit_bzero(sk, sizeof(sk));
		return fail(&err);
	}
	explicit_bzero(sk, sizeof(sk));

	want = calloc(m->ncols, sizeof(bool));
	bufs = calloc(m->ncols, sizeof(DsealColBuf));
	for (int i = 0; i < m->ncols; i++)
	{
		if (columns)
		{
			char	   *list = strdup(columns);

			for (char *t = strtok(list, ","); t; t = strtok(NULL, ","))
				if (strcmp(t, m->cols[i].name) == 0)
					want[i] = true;
			free(list);
		}
		else
			want[i] = true;
		colbuf_init(&bufs[i], m->cols[i].enc, 1024, &err);
	}
	for (uint32_t g = 0; g < m->nrowgroups; g++)
	{
		for (int i = 0; i < m->ncols; i++)
			if (want[i] && !dseal_reader_read_chunk(r, g, (uint32_t) i, &bufs[i], &err))
				return fail(&err);
		for (uint32_t row = 0; row < m->rowgroups[g].nrows; row++)
		{
			bool		first = true;

			for (int i = 0; i < m->ncols; i++)
			{
				if (!want[i])
					continue;
				if (!first)
					putchar('\t');
				first = false;
				put_value(&m->cols[i], &bufs[i], row);
			}
			putchar('\n');
		}
	}
	for (int i = 0; i < m->ncols; i++)
		colbuf_free(&bufs[i]);
	free(bufs);
	free(want);
	dseal_reader_close(r);
	return 0;
}
