/*
 * hex_pg.c: hex text of bytes, palloc'd, for messages, receipts and
 * catalog views (pg_common.h).
 */
#include "postgres.h"

#include "hex.h"
#include "pg_common.h"

char *
dpg_hex(const uint8 *b, size_t n, bool prefix_0x)
{
	char	   *h = palloc(2 * n + 3);

	if (prefix_0x)
	{
		h[0] = '0';
		h[1] = 'x';
	}
	dhex_encode(b, n, prefix_0x ? h + 2 : h);
	return h;
}
