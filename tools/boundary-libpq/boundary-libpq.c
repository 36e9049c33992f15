/*
 * boundary-libpq: the client side of the output boundary (docs/output-guard.md).
 *
 * SQL alone cannot pipeline statements, hang up in the middle of an answer
 * or watch what reached the wire.  This program does, over libpq, against a
 * server where the analyst may read sealed table TABLE, and checks the one
 * promise: whatever the client does, every answer dstack_run() computed is
 * charged and recorded in its own committed transaction, and an answer the
 * client may not see is not sent.
 *
 *   usage: boundary-libpq CONNINFO TABLE
 *
 * Prints "ok" / "not ok" lines without numbers that vary, and a closing
 * "N passed, M failed" line; exits 1 when anything failed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

static int	passed,
			failed;
static const char *conninfo;
static char query[512];

static void
check(int ok, const char *fmt,...)
{
	va_list		ap;

	printf("%s ", ok ? "ok    " : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (ok)
		passed++;
	else
		failed++;
}

static PGconn *
connect_or_die(void)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "boundary-libpq: cannot connect: %s", PQerrorMessage(c));
		exit(2);
	}
	return c;
}

/* One integer from a query on a fresh connection (the ledger as anyone sees it). */
static long
scalar(const char *sql)
{
	PGconn	   *c = connect_or_die();
	PGresult   *r = PQexec(c, sql);
	long		v = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = atol(PQgetvalue(r, 0, 0));
	else
		fprintf(stderr, "boundary-libpq: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return v;
}

static long
runs(const char *status)
{
	char		sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM dstack_runs WHERE status = '%s'", status);
	return scalar(sql);
}

static long
spent(void)
{
	return scalar("SELECT coalesce(sum(spent_micro), 0) FROM dstack_budget");
}

/* Did any result of the pipeline carry a receipt (an answer that reached us)? */
static int
got_answer(PGresult *r)
{
	return PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1 &&
		strstr(PQgetvalue(r, 0, 0), "\"body_sha256\"") != NULL;
}

/*
 * Pipeline: dstack_run() first, then a statement that fails, then Sync.
 * The failure aborts the pipeline's implicit transaction, but the answer
 * was already sent: its charge and receipt must be committed anyway.
 */
static void
pipeline_then_failure(void)
{
	PGconn	   *c = connect_or_die();
	const char *params[1] = {query};
	long		answered = runs("answered"),
				before = spent();
	int			answers = 0,
				errors = 0;
	PGresult   *r;

	PQenterPipelineMode(c);
	PQsendQueryParams(c, "SELECT dstack_run($1)", 1, NULL, params, NULL, NULL, 0);
	PQsendQueryParams(c, "SELECT 1 / 0", 0, NULL, NULL, NULL, NULL, 0);
	PQpipelineSync(c);
	for (int n = 0; n < 3; n++)
	{
		while ((r = PQgetResult(c)) != NULL)
		{
			answers += got_answer(r);
			errors += PQresultStatus(r) == PGRES_FATAL_ERROR;
			PQclear(r);
		}
		r = PQgetResult(c);		/* the sync, or the next query's first result */
		if (r == NULL)
			continue;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
		{
			PQclear(r);
			break;
		}
		answers += got_answer(r);
		errors += PQresultStatus(r) == PGRES_FATAL_ERROR;
		PQclear(r);
	}
	PQexitPipelineMode(c);
	PQfinish(c);
	check(answers == 1, "pipeline: dstack_run() first in a pipeline answers");
	check(errors == 1, "pipeline: the statement after it fails");
	check(runs("answered") == answered + 1, "pipeline: its run is recorded as answered after the failure");
	check(spent() > before, "pipeline: its charge is committed after the failure");
}

/* Pipeline: dstack_run() after another statement of the same pipeline is refused. */
static void
pipeline_second(void)
{
	PGconn	   *c = connect_or_die();
	const char *params[1] = {query};
	long		all = scalar("SELECT count(*) FROM dstack_runs");
	int			answers = 0,
				errors = 0;
	PGresult   *r;

	PQenterPipelineMode(c);
	PQsendQueryParams(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
	PQsendQueryParams(c, "SELECT dstack_run($1)", 1, NULL, params, NULL, NULL, 0);
	PQpipelineSync(c);
	for (;;)
	{
		r = PQgetResult(c);
		if (r == NULL)
			continue;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
		{
			PQclear(r);
			break;
		}
		answers += got_answer(r);
		errors += PQresultStatus(r) == PGRES_FATAL_ERROR;
		PQclear(r);
	}
	PQexitPipelineMode(c);
	PQfinish(c);
	check(answers == 0 && errors == 1, "pipeline: dstack_run() after another statement is refused");
	check(scalar("SELECT count(*) FROM dstack_runs") == all, "pipeline: the refusal charged nothing");
}

/* Several statements in one simple query form a transaction block: refused. */
static void
multi_statement(void)
{
	PGconn	   *c = connect_or_die();
	char		sql[700];
	PGresult   *r;
	int			answers = 0,
				errors = 0;
	long		all = scalar("SELECT count(*) FROM dstack_runs");

	snprintf(sql, sizeof(sql), "SELECT dstack_run($q$%s$q$); SELECT 1 / 0;", query);
	PQsendQuery(c, sql);
	while ((r = PQgetResult(c)) != NULL)
	{
		answers += got_answer(r);
		errors += PQresultStatus(r) == PGRES_FATAL_ERROR;
		PQclear(r);
	}
	PQfinish(c);
	check(answers == 0 && errors == 1, "simple query: dstack_run(); SELECT 1/0 is refused as a transaction block");
	check(scalar("SELECT count(*) FROM dstack_runs") == all, "simple query: the refusal charged nothing");
}

/* Two calls in one statement: nothing reaches the client; what ran is charged. */
static void
two_calls(void)
{
	PGconn	   *c = connect_or_die();
	char		sql[1200];
	PGresult   *r;
	long		before = spent(),
				charged = runs("answered");

	snprintf(sql, sizeof(sql), "SELECT dstack_run($q$%s$q$), dstack_run($q$%s$q$)", query, query);
	r = PQexec(c, sql);
	check(PQresultStatus(r) == PGRES_FATAL_ERROR && PQntuples(r) == 0,
		  "two calls in one statement: an error, no row reaches the client");
	PQclear(r);
	PQfinish(c);
	check(runs("answered") == charged + 1 && spent() > before,
		  "two calls in one statement: the first call's charge and receipt are committed");
}

/*
 * Hang-up: send the query and close the socket at once.  The server still
 * charges and records the run before it tries to send the answer.
 */
static void
hang_up(void)
{
	PGconn	   *c = connect_or_die();
	char		sql[700];
	long		all = runs("answered"),
				now = all;

	snprintf(sql, sizeof(sql), "SELECT dstack_run($q$%s$q$)", query);
	PQsendQuery(c, sql);
	PQflush(c);
	close(PQsocket(c));			/* hang up without a Terminate message */
	PQfinish(c);
	/* the server runs to the end (charge, answer, receipt) and only then finds the socket closed */
	for (int i = 0; i < 300 && now == all; i++)
	{
		usleep(100 * 1000);
		now = runs("answered");
	}
	check(now == all + 1, "hang-up: the run the server started is charged, answered and recorded");
}

int
main(int argc, char **argv)
{
	if (argc != 3)
	{
		fprintf(stderr, "usage: boundary-libpq CONNINFO TABLE\n");
		return 2;
	}
	conninfo = argv[1];
	snprintf(query, sizeof(query), "SELECT dp_count(patient_id, 0.01) FROM %s", argv[2]);
	pipeline_then_failure();
	pipeline_second();
	multi_statement();
	two_calls();
	hang_up();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
