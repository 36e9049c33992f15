/*
 * consortia.c: dstack_consortia(), each consortium (server) of this CVM
 * against the criteria a dataset needs to be mounted, as match / partial /
 * miss, read from the chain now.
 *
 *   approval    match: >= k approvals; partial: some but fewer than k; miss: none
 *   revocation  match: not revoked; miss: revoked
 *   recipe      match: the pinned compose-hash is this CVM's; miss: it is not
 *   owners      match: every owner of a mounted table approved; partial: some
 *               did; miss: none did (n/a without tables)
 *   kms         match: dstack's KMS contract allows this CVM's boot (what its
 *               KMS asked before it released the keys); miss: it does not
 *   overall     match when all match; miss when approval, revocation, recipe
 *               or kms misses; partial otherwise
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/table.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "dstack_fdw.h"
#include "hex.h"

PG_FUNCTION_INFO_V1(dstack_consortia);

/* Owners of the foreign tables of a server: how many approved, of how many. */
static void
owners_approved(Oid serverid, const DfdwConsortiumStatus *st, int *approved, int *tables)
{
	Relation	rel = table_open(ForeignTableRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
	HeapTuple	tup;

	*approved = *tables = 0;
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_foreign_table ft = (Form_pg_foreign_table) GETSTRUCT(tup);
		DfdwTableOptions topts;

		if (ft->ftserver != serverid)
			continue;
		dfdw_table_options(ft->ftrelid, &topts);
		(*tables)++;
		if (dc_addr_in((const uint8 (*)[DC_ADDR_LEN]) st->approvers, st->n_approvers, topts.owner_id))
			(*approved)++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

static const char *
grade3(bool match, bool partial)
{
	return match ? "match" : partial ? "partial" : "miss";
}

Datum
dstack_consortia(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid			fdwid = GetForeignDataWrapperByName("dstack_fdw", false)->fdwid;

	InitMaterializedSRF(fcinfo, 0);
	rel = table_open(ForeignServerRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_foreign_server srv = (Form_pg_foreign_server) GETSTRUCT(tup);
		DfdwConsortiumStatus st;
		Datum		values[13];
		bool		nulls[13] = {0};
		char		hex[65];
		int			approved,
					tables;
		const char *g_appr,
				   *g_rev,
				   *g_recipe,
				   *g_owners;
		bool		recipe_ok;

		if (srv->srvfdw != fdwid)
			continue;
		dfdw_consortium_status(srv->oid, &st);
		owners_approved(srv->oid, &st, &approved, &tables);
		recipe_ok = memcmp(st.pinned_compose_hash, st.facts.compose_hash, 32) == 0;
		g_appr = grade3(st.facts.approvals >= st.facts.threshold, st.facts.approvals > 0);
		g_rev = st.revoked ? "miss" : "match";
		g_recipe = recipe_ok ? "match" : "miss";
		g_owners = tables == 0 ? "n/a" : grade3(approved == tables, approved > 0);

		values[0] = CStringGetTextDatum(NameStr(srv->srvname));
		dhex_encode(st.facts.app_id, DC_ADDR_LEN, hex);
		values[1] = CStringGetTextDatum(psprintf("0x%s", hex));
		values[2] = Int64GetDatum((int64) st.facts.approvals);
		values[3] = Int64GetDatum((int64) st.facts.threshold);
		values[4] = BoolGetDatum(st.revoked);
		values[5] = CStringGetTextDatum(psprintf("%llu.%03llu", (unsigned long long) (st.facts.epsilon_milli / 1000),
												 (unsigned long long) (st.facts.epsilon_milli % 1000)));
		values[6] = CStringGetTextDatum(g_appr);
		values[7] = CStringGetTextDatum(g_rev);
		values[8] = CStringGetTextDatum(g_recipe);
		values[9] = CStringGetTextDatum(g_owners);
		values[10] = CStringGetTextDatum(st.kms_allowed ? "match" : "miss");
		values[11] = CStringGetTextDatum(strcmp(g_appr, "match") == 0 && strcmp(g_rev, "match") == 0 &&
										 strcmp(g_recipe, "match") == 0 && st.kms_allowed &&
										 (strcmp(g_owners, "match") == 0 || strcmp(g_owners, "n/a") == 0)
										 ? "match"
										 : strcmp(g_appr, "miss") == 0 || st.revoked || !recipe_ok || !st.kms_allowed
										 ? "miss" : "partial");
		values[12] = Int64GetDatum((int64) st.facts.block_number);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return (Datum) 0;
}
