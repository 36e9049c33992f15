/*
 * options.c: the option validator, and server/table options resolved into
 * structs with their defaults.
 *
 * Server (one per consortium): rpc_url (one or more nodes, comma-separated),
 *   rpc_quorum, chain_id, kms_contract, app_contract, guest_agent,
 *   kms_root_pubkey, confirmations, connect_timeout_ms, timeout_ms, retries.
 * Foreign table (one per sealed dataset): path, owner.
 * The app id and compose-hash that unwrap a dataset are deliberately not
 * options: they come from the guest agent, i.e. from the measured CVM.
 * path and guest_agent name a file and a socket the server opens: only a
 * superuser may set them (so, as ALTER revalidates every option, only a
 * superuser may alter a table or server that has them).
 */
#include "postgres.h"

#include <errno.h>

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "crypto.h"
#include "dstack_fdw.h"
#include "hex.h"

typedef struct DfdwOption
{
	const char *name;
	Oid			context;
	const char *what;			/* for hints */
} DfdwOption;

static const DfdwOption valid_options[] = {
	{"rpc_url", ForeignServerRelationId, "http(s) JSON-RPC URL, or several separated by commas"},
	{"rpc_quorum", ForeignServerRelationId, "nodes of rpc_url that must agree, a majority; 0 = all"},
	{"chain_id", ForeignServerRelationId, "decimal chain id the nodes must serve"},
	{"kms_contract", ForeignServerRelationId, "0x address of dstack's KMS contract"},
	{"app_contract", ForeignServerRelationId, "0x address"},
	{"guest_agent", ForeignServerRelationId, "Unix socket path"},
	{"kms_root_pubkey", ForeignServerRelationId, "33-byte compressed key, hex"},
	{"confirmations", ForeignServerRelationId, "integer >= 0"},
	{"connect_timeout_ms", ForeignServerRelationId, "milliseconds"},
	{"timeout_ms", ForeignServerRelationId, "milliseconds"},
	{"retries", ForeignServerRelationId, "integer >= 0"},
	{"ledger", ForeignServerRelationId, "chain or local"},
	{"path", ForeignTableRelationId, "absolute path of a .dseal file"},
	{"owner", ForeignTableRelationId, "0x address of the owner"},
	{NULL, InvalidOid, NULL}
};

/* "a, b, c" of the options valid in a catalog, for the hint. */
static char *
valid_option_list(Oid context)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const DfdwOption *o = valid_options; o->name; o++)
	{
		if (o->context != context)
			continue;
		appendStringInfo(&buf, "%s%s (%s)", buf.len ? ", " : "", o->name, o->what);
	}
	return buf.len ? buf.data : "none";
}

/* Integer option in [min, max]; errors name the option. */
static int
int_option(DefElem *def, int min, int max)
{
	char	   *s = defGetString(def);
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid value for option \"%s\": \"%s\"", def->defname, s),
				 errhint("Use an integer between %d and %d.", min, max)));
	return (int) v;
}

/*
 * Hex option of exactly len bytes, decoded into out: the one decoder of the
 * address and key options, for the validator and for the resolved options
 * every user of them reads (so no caller decodes an option's text again).
 */
static void
hex_option(DefElem *def, uint8 *out, size_t len, const char *what)
{
	uint8		buf[DC_PUBKEY_LEN];
	DErr		err;

	Assert(len <= sizeof(buf));
	derr_clear(&err);
	if (!dhex_decode_exact(defGetString(def), buf, len, what, &err))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid value for option \"%s\"", def->defname),
				 errdetail("%s", err.detail[0] ? err.detail : err.msg),
				 errhint("Give %s as %zu bytes of hex (%s).", what, len,
						 len == DC_ADDR_LEN ? "e.g. 0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
						 : "66 hex digits starting with 02 or 03")));
	if (len == DC_PUBKEY_LEN)
	{
		uint8		pub[DC_PUBKEY_LEN];

		if (!dc_pubkey_normalize(buf, len, pub, &err))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid value for option \"%s\"", def->defname),
					 errdetail("%s", err.detail),
					 errhint("Copy the KMS root public key the consortium published.")));
	}
	memcpy(out, buf, len);
}

/* A chain id: a decimal integer from 1 to 2^63 - 1 (EIP-155 ids are far smaller). */
static uint64
chain_id_option(DefElem *def)
{
	char	   *s = defGetString(def);
	char	   *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *s < '0' || *s > '9' || *end != '\0' || v == 0 || v > (unsigned long long) PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid value for option \"%s\": \"%s\"", def->defname, s),
				 errhint("Give the decimal chain id of the chain the consortium contract is on (e.g. 1 for "
						 "Ethereum, 8453 for Base, 31337 for anvil).")));
	return (uint64) v;
}

/* kms_contract and chain_id, which mounting needs (and ALTER SERVER may lack). */
void
dfdw_require_chain_options(ForeignServer *server, const DfdwServerOptions *opts)
{
	if (opts->kms_contract != NULL && opts->chain_id != NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
			 errmsg("server \"%s\" lacks option \"%s\"", server->servername,
					opts->kms_contract == NULL ? "kms_contract" : "chain_id"),
			 errdetail("A dataset is mounted only while dstack's KMS contract, asked on the chain the consortium "
					   "lives on, allows this CVM: the question dstack's KMS asked before it released the keys."),
			 errhint("ALTER SERVER %s OPTIONS (ADD %s '...'): %s.", quote_identifier(server->servername),
					 opts->kms_contract == NULL ? "kms_contract" : "chain_id",
					 opts->kms_contract == NULL ? "the address of the KMS contract your dstack KMS uses "
					 "(its kms_contract_addr)" : "the decimal id of the chain the compose pins")));
}

uint64
dfdw_chain_id(const DfdwServerOptions *opts)
{
	DefElem    *def = makeDefElem("chain_id", (Node *) makeString(opts->chain_id), -1);

	return chain_id_option(def);
}

PG_FUNCTION_INFO_V1(dstack_fdw_validator);

/*
 * Options that name a file or socket on the database server which dstack_fdw
 * opens: setting them is reading server files (as pg_read_server_files or
 * COPY FROM a file would be), so only a superuser may.  The CVM operator
 * creates the servers and foreign tables; analysts need neither USAGE on the
 * server nor these options, they query through dstack_run().
 */
static void
check_file_option_privilege(DefElem *def, Oid catalog)
{
	if (superuser())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to set option \"%s\"", def->defname),
			 errdetail("Option \"%s\" names a %s on the database server that dstack_fdw opens; only a superuser may set it.",
					   def->defname, strcmp(def->defname, "guest_agent") == 0 ? "socket" : "file"),
			 errhint("Ask the CVM operator (a superuser) to %s.",
					 catalog == ForeignServerRelationId ? "create or alter the server"
					 : "create the foreign table, or to import the sealed datasets")));
}

/* "chain" (the ledger of record is the consortium contract) or "local". */
static bool
ledger_option(DefElem *def)
{
	char	   *v = defGetString(def);

	if (strcmp(v, "chain") == 0)
		return true;
	if (strcmp(v, "local") == 0)
		return false;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid value for option \"ledger\": \"%s\"", v),
			 errdetail("With \"chain\" every dstack_run() is charged on the consortium contract before it "
					   "reads a row; \"local\" keeps the budget in this database only."),
			 errhint("Use ledger 'chain' (the default) or ledger 'local'.")));
	return false;				/* not reached */
}

/*
 * Validate options at CREATE/ALTER time, so a typo is an error when it is
 * made and not at the first query.
 */
Datum
dstack_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;
	uint8		bytes[DC_PUBKEY_LEN];

	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);
		const DfdwOption *o;

		for (o = valid_options; o->name; o++)
			if (o->context == catalog && strcmp(o->name, def->defname) == 0)
				break;
		if (o->name == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 errhint("Valid options in this context are: %s.", valid_option_list(catalog))));

		if (strcmp(def->defname, "confirmations") == 0)
			(void) int_option(def, 0, 10000);
		else if (strcmp(def->defname, "retries") == 0)
			(void) int_option(def, 0, 20);
		else if (strcmp(def->defname, "connect_timeout_ms") == 0 ||
				 strcmp(def->defname, "timeout_ms") == 0)
			(void) int_option(def, 1, 600000);
		else if (strcmp(def->defname, "rpc_quorum") == 0)
			(void) int_option(def, 0, DFDW_MAX_RPC_NODES);
		else if (strcmp(def->defname, "chain_id") == 0)
			(void) chain_id_option(def);
		else if (strcmp(def->defname, "app_contract") == 0 || strcmp(def->defname, "owner") == 0 ||
				 strcmp(def->defname, "kms_contract") == 0)
			hex_option(def, bytes, DC_ADDR_LEN, "an Ethereum address");
		else if (strcmp(def->defname, "kms_root_pubkey") == 0)
			hex_option(def, bytes, DC_PUBKEY_LEN, "a compressed secp256k1 public key");
		else if (strcmp(def->defname, "ledger") == 0)
			(void) ledger_option(def);
		else if (strcmp(def->defname, "rpc_url") == 0)
			dfdw_validate_rpc_url(defGetString(def));
		else if (strcmp(def->defname, "path") == 0 || strcmp(def->defname, "guest_agent") == 0)
		{
			check_file_option_privilege(def, catalog);
			if (!is_absolute_path(defGetString(def)))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("option \"%s\" must be an absolute path", def->defname),
						 errhint("Give the full path, e.g. /var/lib/pg_dstack/sealed/ehr.dseal.")));
		}
	}
	PG_RETURN_VOID();
}

/* Server options with defaults; required ones are checked where they are used. */
void
dfdw_server_options(ForeignServer *server, DfdwServerOptions *opts)
{
	ListCell   *lc;

	memset(opts, 0, sizeof(*opts));
	opts->confirmations = 0;
	opts->connect_timeout_ms = 2000;
	opts->timeout_ms = 10000;
	opts->retries = 2;
	opts->chain_ledger = true;
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, "rpc_url") == 0)
			opts->rpc_url = defGetString(def);
		else if (strcmp(def->defname, "rpc_quorum") == 0)
			opts->rpc_quorum = int_option(def, 0, DFDW_MAX_RPC_NODES);
		else if (strcmp(def->defname, "chain_id") == 0)
			opts->chain_id = defGetString(def);
		else if (strcmp(def->defname, "kms_contract") == 0)
			opts->kms_contract = defGetString(def);
		else if (strcmp(def->defname, "app_contract") == 0)
		{
			opts->app_contract = defGetString(def);
			hex_option(def, opts->app_contract_id, DC_ADDR_LEN, "an Ethereum address");
		}
		else if (strcmp(def->defname, "guest_agent") == 0)
			opts->guest_agent = defGetString(def);
		else if (strcmp(def->defname, "kms_root_pubkey") == 0)
		{
			opts->kms_root_pubkey = defGetString(def);
			hex_option(def, opts->kms_root, DC_PUBKEY_LEN, "a compressed secp256k1 public key");
		}
		else if (strcmp(def->defname, "confirmations") == 0)
			opts->confirmations = int_option(def, 0, 10000);
		else if (strcmp(def->defname, "connect_timeout_ms") == 0)
			opts->connect_timeout_ms = int_option(def, 1, 600000);
		else if (strcmp(def->defname, "timeout_ms") == 0)
			opts->timeout_ms = int_option(def, 1, 600000);
		else if (strcmp(def->defname, "retries") == 0)
			opts->retries = int_option(def, 0, 20);
		else if (strcmp(def->defname, "ledger") == 0)
			opts->chain_ledger = ledger_option(def);
	}
	if (opts->rpc_url == NULL || opts->kms_root_pubkey == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" lacks option \"%s\"", server->servername,
						opts->rpc_url == NULL ? "rpc_url" : "kms_root_pubkey"),
				 errdetail("A sealed dataset is mounted only after its consortium's approval is read "
						   "from the chain and its key chain is checked against the KMS root."),
				 errhint("ALTER SERVER %s OPTIONS (ADD %s '...').", quote_identifier(server->servername),
						 opts->rpc_url == NULL ? "rpc_url" : "kms_root_pubkey")));
}

/* Table options; both are required. */
void
dfdw_table_options(Oid relid, DfdwTableOptions *opts)
{
	ForeignTable *ft = GetForeignTable(relid);
	ListCell   *lc;

	memset(opts, 0, sizeof(*opts));
	foreach(lc, ft->options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, "path") == 0)
			opts->path = defGetString(def);
		else if (strcmp(def->defname, "owner") == 0)
		{
			opts->owner = defGetString(def);
			hex_option(def, opts->owner_id, DC_ADDR_LEN, "an Ethereum address");
		}
	}
	if (opts->path == NULL || opts->owner == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" lacks option \"%s\"", get_rel_name(relid),
						opts->path == NULL ? "path" : "owner"),
				 errhint("ALTER FOREIGN TABLE %s OPTIONS (ADD %s '...'), or create it with IMPORT FOREIGN SCHEMA.",
						 quote_identifier(get_rel_name(relid)), opts->path == NULL ? "path" : "owner")));
}
