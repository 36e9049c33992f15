/*
 * manifest_flat.c: a parsed manifest as one flat block of bytes, and back.
 *
 * A parallel scan's leader has parsed and verified the manifest (owner
 * signature, layout); its workers get the parsed form through shared memory
 * instead of reading, parsing and verifying the JSON again (about 9
 * microseconds a chunk).  The block is for processes of the same build on
 * the same machine: native byte order and struct layout, not a file format.
 * It carries everything but the canonical JSON text (json is NULL in the
 * copy; json_len is kept, the reader checks the trailer against it).
 */
#include <stdlib.h>
#include <string.h>

#include "dseal.h"

#define FLAT_MAGIC	0x464d5344u	/* "DSMF" */

typedef struct FlatWriter
{
	uint8_t    *p;				/* NULL: only count */
	size_t		n;
} FlatWriter;

static void
put(FlatWriter *w, const void *src, size_t len)
{
	if (w->p)
		memcpy(w->p + w->n, src, len);
	w->n += len;
}

static void
put_str(FlatWriter *w, const char *s)
{
	uint32_t	len = s ? (uint32_t) strlen(s) : UINT32_MAX;

	put(w, &len, sizeof(len));
	if (s)
		put(w, s, len);
}

static size_t
flatten(const DsealManifest *m, uint8_t *out)
{
	FlatWriter	w = {out, 0};
	uint32_t	magic = FLAT_MAGIC;

	put(&w, &magic, sizeof(magic));
	put(&w, m, sizeof(*m));		/* pointers in it are ignored when read back */
	put_str(&w, m->table);
	put_str(&w, m->recipient_purpose);
	put_str(&w, m->sealed_at);
	for (int c = 0; c < m->ncols; c++)
	{
		put(&w, &m->cols[c], sizeof(DsealColumnDef));
		put_str(&w, m->cols[c].name);
		put_str(&w, m->cols[c].type);
	}
	for (uint32_t g = 0; g < m->nrowgroups; g++)
	{
		put(&w, &m->rowgroups[g].nrows, sizeof(uint32_t));
		put(&w, m->rowgroups[g].chunks, sizeof(DsealChunkRef) * (size_t) m->ncols);
	}
	return w.n;
}

size_t
dseal_manifest_flat_size(const DsealManifest *m)
{
	return flatten(m, NULL);
}

void
dseal_manifest_flatten(const DsealManifest *m, uint8_t *out)
{
	(void) flatten(m, out);
}

typedef struct FlatReader
{
	const uint8_t *p;
	size_t		left;
	bool		ok;
} FlatReader;

static void
get(FlatReader *r, void *dst, size_t len)
{
	if (!r->ok || r->left < len)
	{
		r->ok = false;
		memset(dst, 0, len);
		return;
	}
	memcpy(dst, r->p, len);
	r->p += len;
	r->left -= len;
}

/* A malloc'd copy of the next string (NULL for a NULL one); sets *fail on error. */
static char *
get_str(FlatReader *r, bool *fail)
{
	uint32_t	len;
	char	   *s;

	get(r, &len, sizeof(len));
	if (!r->ok || len == UINT32_MAX)
		return NULL;
	if (r->left < len || (s = malloc((size_t) len + 1)) == NULL)
	{
		r->ok = false;
		*fail = true;
		return NULL;
	}
	memcpy(s, r->p, len);
	s[len] = '\0';
	r->p += len;
	r->left -= len;
	return s;
}

DsealManifest *
dseal_manifest_unflatten(const uint8_t *in, size_t len, DErr *err)
{
	FlatReader	r = {in, len, true};
	DsealManifest *m = calloc(1, sizeof(DsealManifest));
	uint32_t	magic = 0;
	bool		fail = false;

	if (m == NULL)
		goto nomem;
	get(&r, &magic, sizeof(magic));
	get(&r, m, sizeof(*m));
	/* none of the copied pointers is valid here: clear them before anything can free them */
	m->table = m->recipient_purpose = m->sealed_at = m->json = NULL;
	m->cols = NULL;
	m->rowgroups = NULL;
	if (!r.ok || magic != FLAT_MAGIC || m->ncols < 0 || m->ncols > 100000)
		goto bad;
	{
		int			ncols = m->ncols;
		uint32_t	ngroups = m->nrowgroups;

		m->ncols = 0;
		m->nrowgroups = 0;
		m->table = get_str(&r, &fail);
		m->recipient_purpose = get_str(&r, &fail);
		m->sealed_at = get_str(&r, &fail);
		if ((m->cols = calloc((size_t) (ncols ? ncols : 1), sizeof(DsealColumnDef))) == NULL)
			goto nomem;
		m->ncols = ncols;
		for (int c = 0; c < ncols && r.ok; c++)
		{
			get(&r, &m->cols[c], sizeof(DsealColumnDef));
			m->cols[c].name = get_str(&r, &fail);
			m->cols[c].type = get_str(&r, &fail);
		}
		if (!r.ok || ngroups > r.left / (sizeof(uint32_t) + sizeof(DsealChunkRef) * (size_t) (ncols ? ncols : 1)))
			goto bad;
		if ((m->rowgroups = calloc((size_t) (ngroups ? ngroups : 1), sizeof(DsealRowGroup))) == NULL)
			goto nomem;
		m->nrowgroups = ngroups;
		for (uint32_t g = 0; g < ngroups && r.ok; g++)
		{
			get(&r, &m->rowgroups[g].nrows, sizeof(uint32_t));
			if ((m->rowgroups[g].chunks = malloc(sizeof(DsealChunkRef) * (size_t) (ncols ? ncols : 1))) == NULL)
				goto nomem;
			get(&r, m->rowgroups[g].chunks, sizeof(DsealChunkRef) * (size_t) ncols);
		}
	}
	if (fail)
		goto nomem;
	if (!r.ok || r.left != 0)
		goto bad;
	return m;

nomem:
	dseal_manifest_free(m);
	derr_set(err, DERR_NOMEM, "out of memory copying a manifest");
	return NULL;
bad:
	dseal_manifest_free(m);
	derr_set(err, DERR_FORMAT, "the shared copy of a manifest is damaged");
	return NULL;
}
