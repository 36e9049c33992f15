/*
 * test_dseal_prefetch.c: the read-ahead thread (dseal_prefetch.c).
 *
 *   - every row group read through the thread, in an order that is not the
 *     file's, holds exactly what a direct read of the same chunks holds;
 *   - the buffers are swapped, not shared: what the caller holds does not
 *     change while the thread reads the next row group;
 *   - a damaged chunk is reported by the wait for its row group, with the
 *     reader's message, and the row groups before it still arrive;
 *   - a discarded request is forgotten and the same thread serves the next
 *     (a rescan);
 *   - stopping with a request in flight finishes it and joins the thread
 *     (the reader is usable again afterwards);
 *   - starting the thread (whose mask blocks every signal) leaves the
 *     caller's signal mask as it was.
 */
#include <signal.h>
#include <unistd.h>

#include "dseal.h"
#include "fixture.h"
#include "unit.h"

static bool
same_buf(const DsealColBuf *x, const DsealColBuf *y)
{
	if (x->nrows != y->nrows || x->enc != y->enc)
		return false;
	if (x->width > 0)
		return memcmp(x->fixed, y->fixed, (size_t) x->nrows * x->width) == 0;
	return x->data_len == y->data_len && memcmp(x->data, y->data, x->data_len) == 0 &&
		memcmp(x->offsets, y->offsets, sizeof(uint32_t) * (x->nrows + 1)) == 0;
}

/* Flip one ciphertext byte of chunk (rg, col), in place. */
static void
flip_chunk(const char *path, DsealReader *r, uint32_t rg, uint32_t col)
{
	const DsealChunkRef *ch = &dseal_reader_manifest(r)->rowgroups[rg].chunks[col];
	FILE	   *f = fopen(path, "r+b");
	int			c;

	fseek(f, (long) ch->offset + 3, SEEK_SET);
	c = fgetc(f);
	fseek(f, (long) ch->offset + 3, SEEK_SET);
	fputc(c ^ 0x40, f);
	fclose(f);
}

int
main(void)
{
	DErr		err = {0};
	char		dir[] = "/tmp/test_prefetch_XXXXXX";
	char		path[128];
	DsealReader *r,
			   *direct;
	DsealPrefetch *p;
	uint32_t	cols[2] = {1, 0};	/* not the file's column order */
	uint32_t	order[NGROUPS] = {4, 0, 8, 1, 7, 2, 6, 3, 5};
	DsealColBuf mine[2] = {{0}},
				want[2] = {{0}},
				held;
	uint32_t	rg;
	bool		all_same = true,
				held_intact = true,
				pending_known = true;

	if (!fixture_keys(&err) || !mkdtemp(dir))
	{
		printf("FAIL setup: %s\n", err.msg);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/p.dseal", dir);
	CHECK(fixture_write(path, &err), "prefetch: write a file of 9 row groups");

	r = dseal_reader_open(path, &err);
	direct = dseal_reader_open(path, &err);
	CHECK(r && direct && dseal_reader_unwrap(r, &recipe, recipient_sk, &err) &&
		  dseal_reader_unwrap(direct, &recipe, recipient_sk, &err), "prefetch: open and unwrap twice");

	/* every row group through the thread, out of order, with the next requested before use */
	p = dseal_prefetch_start(r, 2, cols, NULL, 0, &err);
	CHECK(p != NULL, "prefetch: the thread starts");
	dseal_prefetch_request(p, order[0]);
	for (int k = 0; k < NGROUPS; k++)
	{
		pending_known &= dseal_prefetch_pending(p, &rg) && rg == order[k];
		if (!dseal_prefetch_wait(p, mine, NULL, &err))
		{
			printf("FAIL wait: %s\n", err.msg);
			return 1;
		}
		held = mine[1];			/* what the caller holds must not move under it */
		if (k + 1 < NGROUPS)
			dseal_prefetch_request(p, order[k + 1]);
		for (int c = 0; c < 2; c++)
		{
			if (!dseal_reader_read_chunk(direct, order[k], cols[c], &want[c], &err))
				return 1;
			all_same &= same_buf(&mine[c], &want[c]);
		}
		held_intact &= held.data == mine[1].data && same_buf(&mine[1], &want[1]);
	}
	CHECK(pending_known, "prefetch: the outstanding request is known before each wait");
	CHECK(all_same, "prefetch: every row group equals a direct read of its chunks");
	CHECK(held_intact, "prefetch: the caller's buffers stay put while the next row group is read");
	CHECK(!dseal_prefetch_pending(p, &rg), "prefetch: nothing outstanding after the last wait");
	CHECK(!dseal_prefetch_wait(p, mine, NULL, &err) && err.code == DERR_ARG, "prefetch: a wait without a request is refused");

	/*
	 * a caller that waits at once takes the columns the thread has not
	 * started; whichever thread read a column, it equals a direct read
	 */
	{
		bool		same = true;

		for (int k = 0; k < 50; k++)
		{
			uint32_t	g = (uint32_t) (k * 7) % NGROUPS;

			dseal_prefetch_request(p, g);
			if (!dseal_prefetch_wait(p, mine, NULL, &err))
				return 1;
			for (int c = 0; c < 2; c++)
				same &= dseal_reader_read_chunk(direct, g, cols[c], &want[c], &err) && same_buf(&mine[c], &want[c]);
		}
		printf("     the caller read %llu of the columns in its waits\n",
			   (unsigned long long) dseal_prefetch_helped(p));
		CHECK(same && dseal_prefetch_helped(p) > 0,
			  "prefetch: a waiting caller reads columns itself; every row group equals a direct read");
	}

	/* a rescan: the request in flight is discarded, the same thread serves the next one */
	dseal_prefetch_request(p, 7);
	dseal_prefetch_discard(p);
	CHECK(!dseal_prefetch_pending(p, &rg), "prefetch: nothing outstanding after a discard");
	dseal_prefetch_request(p, 2);
	CHECK(dseal_prefetch_wait(p, mine, NULL, &err) && dseal_reader_read_chunk(direct, 2, cols[0], &want[0], &err) &&
		  same_buf(&mine[0], &want[0]), "prefetch: after a discard the thread reads the next request");

	/* stop with a request in flight: it finishes, the thread is joined, the reader is usable again */
	dseal_prefetch_request(p, 3);
	dseal_prefetch_stop(p);
	CHECK(dseal_reader_read_chunk(r, 3, 0, &mine[0], &err) && mine[0].nrows == ROWS,
		  "prefetch: after a stop with a request in flight the reader works on this thread");

	/* a damaged chunk: the row groups before it arrive, its own wait fails with the reader's error */
	flip_chunk(path, r, 5, 1);
	p = dseal_prefetch_start(r, 2, cols, NULL, 0, &err);
	dseal_prefetch_request(p, 4);
	CHECK(dseal_prefetch_wait(p, mine, NULL, &err), "prefetch: the row group before the damage arrives");
	dseal_prefetch_request(p, 5);
	memset(&err, 0, sizeof(err));
	CHECK(!dseal_prefetch_wait(p, mine, NULL, &err) && err.code == DERR_INTEGRITY &&
		  strstr(err.msg, "chunk 1 of row group 5") && strstr(err.msg, "failed authentication") &&
		  err.detail[0] != '\0', "prefetch: the damaged row group's wait fails with the reader's message and detail");
	dseal_prefetch_request(p, 6);
	CHECK(dseal_prefetch_wait(p, mine, NULL, &err), "prefetch: the thread goes on after an error");
	dseal_prefetch_stop(p);
	dseal_prefetch_stop(NULL);

	/* the thread inherits a full signal mask, and the caller's mask is left as it was */
	{
		sigset_t	before,
					after;

		sigemptyset(&before);
		sigaddset(&before, SIGUSR1);
		pthread_sigmask(SIG_SETMASK, &before, NULL);
		p = dseal_prefetch_start(r, 2, cols, NULL, 0, &err);
		pthread_sigmask(SIG_SETMASK, NULL, &after);
		CHECK(sigismember(&after, SIGUSR1) && !sigismember(&after, SIGINT),
			  "prefetch: starting the thread leaves the caller's signal mask as it was");
		dseal_prefetch_stop(p);
	}

	for (int c = 0; c < 2; c++)
	{
		colbuf_free(&mine[c]);
		colbuf_free(&want[c]);
	}
	dseal_reader_close(r);
	dseal_reader_close(direct);
	unlink(path);
	rmdir(dir);
	UNIT_DONE();
}
