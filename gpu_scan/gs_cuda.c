/*
 * gs_cuda.c: gpu_scan's kernels on a GPU, through libcuda loaded at run time.
 *
 * Nothing links against CUDA: the driver API is dlopen()ed on first use, in
 * a backend, and any failure (no library, the toolkit's stub library, no
 * device, a device the embedded kernels cannot run on, kernels not built)
 * becomes a reason string for the one log line and the CPU path.
 *
 * A pre-aggregation streams row groups through two pinned staging buffers,
 * each with its own stream: while the GPU copies and aggregates batch i, the
 * backend decrypts batch i+1 into the other.  The device group table is
 * shared by both streams (its updates are atomic); rows whose group finds no
 * slot are flagged and aggregated on the host from the pinned copy, and the
 * table is merged into the host table at the end, so every row counts once.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs_cuda.h"

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef void *CUevent;
typedef unsigned long long CUdeviceptr;

#define CU_ATTR_SM_COUNT	16
#define CU_ATTR_CC_MAJOR	75
#define CU_ATTR_CC_MINOR	76

static struct
{
	void	   *lib;
	CUresult	(*Init) (unsigned int);
	CUresult	(*DriverGetVersion) (int *);
	CUresult	(*DeviceGetCount) (int *);
	CUresult	(*DeviceGet) (CUdevice *, int);
	CUresult	(*DeviceGetName) (char *, int, CUdevice);
	CUresult	(*DeviceGetAttribute) (int *, int, CUdevice);
	CUresult	(*DevicePrimaryCtxRetain) (CUcontext *, CUdevice);
	CUresult	(*CtxSetCurrent) (CUcontext);
	CUresult	(*ModuleLoadData) (CUmodule *, const void *);
	CUresult	(*ModuleGetFunction) (CUfunction *, CUmodule, const char *);
	CUresult	(*MemAlloc) (CUdeviceptr *, size_t);
	CUresult	(*MemFree) (CUdeviceptr);
	CUresult	(*MemAllocHost) (void **, size_t);
	CUresult	(*MemFreeHost) (void *);
	CUresult	(*MemcpyHtoDAsync) (CUdeviceptr, const void *, size_t, CUstream);
	CUresult	(*MemcpyDtoHAsync) (void *, CUdeviceptr, size_t, CUstream);
	CUresult	(*MemcpyDtoH) (void *, CUdeviceptr, size_t);
	CUresult	(*MemcpyHtoD) (CUdeviceptr, const void *, size_t);
	CUresult	(*MemsetD8Async) (CUdeviceptr, unsigned char, size_t, CUstream);
	CUresult	(*StreamCreate) (CUstream *, unsigned int);
	CUresult	(*StreamDestroy) (CUstream);
	CUresult	(*StreamSynchronize) (CUstream);
	CUresult	(*EventCreate) (CUevent *, unsigned int);
	CUresult	(*EventDestroy) (CUevent);
	CUresult	(*EventRecord) (CUevent, CUstream);
	CUresult	(*EventElapsedTime) (float *, CUevent, CUevent);
	CUresult	(*LaunchKernel) (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
								 unsigned, CUstream, void **, void **);
	CUresult	(*GetErrorString) (CUresult, const char **);
}			cu;

static int	probe_state = 0;	/* 0 not yet, 1 usable, -1 not */
static char probe_why[512];
static char device_name[192];
static CUfunction fn_preagg;
static CUfunction fn_filter;
static int	sm_count = 1;

/* "cuMemAlloc: out of memory (2)" into err. */
static bool
cu_fail(CUresult r, const char *what, char *err, size_t errlen)
{
	const char *s = NULL;

	if (cu.GetErrorString == NULL || cu.GetErrorString(r, &s) != 0 || s == NULL)
	{
		/* the toolkit's stub library cannot even describe its errors */
		s = r == 34 ? "CUDA_ERROR_STUB_LIBRARY: this libcuda is the toolkit's link stub, not a driver"
			: r == 35 ? "CUDA_ERROR_INSUFFICIENT_DRIVER" : r == 100 ? "CUDA_ERROR_NO_DEVICE"
			: "unknown error";
	}
	snprintf(err, errlen, "%s: %s (CUDA error %d)", what, s, r);
	return false;
}

#define CU_TRY(call, what) \
	do { CUresult _r = (call); if (_r != 0) return cu_fail(_r, (what), err, errlen); } while (0)

/* Look up every entry point; false names the first one missing. */
static bool
load_symbols(char *err, size_t errlen)
{
	static const struct
	{
		const char *name;
		size_t		off;
	}			syms[] = {
#define S(f, n) {n, offsetof(__typeof__(cu), f)}
		S(Init, "cuInit"), S(DriverGetVersion, "cuDriverGetVersion"),
		S(DeviceGetCount, "cuDeviceGetCount"), S(DeviceGet, "cuDeviceGet"),
		S(DeviceGetName, "cuDeviceGetName"), S(DeviceGetAttribute, "cuDeviceGetAttribute"),
		S(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"), S(CtxSetCurrent, "cuCtxSetCurrent"),
		S(ModuleLoadData, "cuModuleLoadData"), S(ModuleGetFunction, "cuModuleGetFunction"),
		S(MemAlloc, "cuMemAlloc_v2"), S(MemFree, "cuMemFree_v2"),
		S(MemAllocHost, "cuMemAllocHost_v2"), S(MemFreeHost, "cuMemFreeHost"),
		S(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"), S(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
		S(MemcpyDtoH, "cuMemcpyDtoH_v2"), S(MemcpyHtoD, "cuMemcpyHtoD_v2"),
		S(MemsetD8Async, "cuMemsetD8Async"),
		S(StreamCreate, "cuStreamCreate"), S(StreamDestroy, "cuStreamDestroy_v2"),
		S(StreamSynchronize, "cuStreamSynchronize"), S(EventCreate, "cuEventCreate"),
		S(EventDestroy, "cuEventDestroy_v2"), S(EventRecord, "cuEventRecord"),
		S(EventElapsedTime, "cuEventElapsedTime"), S(LaunchKernel, "cuLaunchKernel"),
		S(GetErrorString, "cuGetErrorString"),
#undef S
	};

	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
	{
		void	   *f = dlsym(cu.lib, syms[i].name);

		if (f == NULL)
		{
			snprintf(err, errlen, "libcuda has no %s", syms[i].name);
			return false;
		}
		memcpy((char *) &cu + syms[i].off, &f, sizeof(f));
	}
	return true;
}

/*
 * Is the GPU in confidential-computing mode?  Decrypted columns cross PCIe to
 * the GPU: only with CC on (H100/H200 with the CVM's TDX) is that link
 * encrypted and the GPU's memory protected, so that plaintext stays inside
 * the trust boundary the receipts attest.  Asked through NVML
 * (nvmlSystemGetConfComputeState), loaded like libcuda with dlopen().
 */
static bool
confidential(const char *nvml_path, char *err, size_t errlen)
{
	typedef struct
	{
		unsigned int environment;
		unsigned int ccFeature;		/* 1: NVML_CC_SYSTEM_FEATURE_ENABLED */
		unsigned int devToolsMode;	/* 1: CC with debugging, which weakens it */
	} CcState;
	void	   *lib = dlopen(nvml_path, RTLD_NOW | RTLD_LOCAL);
	int			(*init) (void);
	int			(*state) (CcState *);
	int			(*shutdown) (void);
	CcState		st = {0, 0, 0};
	int			r;

	if (lib == NULL)
	{
		snprintf(err, errlen, "cannot check the GPU's confidential-computing mode: cannot load %s: %s",
				 nvml_path, dlerror());
		return false;
	}
	init = (int (*) (void)) dlsym(lib, "nvmlInit_v2");
	state = (int (*) (CcState *)) dlsym(lib, "nvmlSystemGetConfComputeState");
	shutdown = (int (*) (void)) dlsym(lib, "nvmlShutdown");
	if (init == NULL || state == NULL || shutdown == NULL)
	{
		snprintf(err, errlen, "cannot check the GPU's confidential-computing mode: %s has no "
				 "nvmlSystemGetConfComputeState (driver older than r535?)", nvml_path);
		dlclose(lib);
		return false;
	}
	if ((r = init()) != 0)
	{
		snprintf(err, errlen, "cannot check the GPU's confidential-computing mode: nvmlInit_v2 failed (NVML error %d)", r);
		dlclose(lib);
		return false;
	}
	r = state(&st);
	shutdown();
	dlclose(lib);
	if (r != 0)
		snprintf(err, errlen, "cannot check the GPU's confidential-computing mode: "
				 "nvmlSystemGetConfComputeState failed (NVML error %d)", r);
	else if (st.ccFeature != 1)
		snprintf(err, errlen, "%s is not in confidential-computing mode, so decrypted columns would cross PCIe "
				 "in the clear", device_name);
	else if (st.devToolsMode != 0)
		snprintf(err, errlen, "%s is in confidential-computing devtools mode, which lets a debugger read its memory",
				 device_name);
	return r == 0 && st.ccFeature == 1 && st.devToolsMode == 0;
}

/* The probe proper: library, driver, device, context, module, kernels. */
static bool
probe(const char *path, const char *nvml_path, char *err, size_t errlen)
{
	int			n = 0,
				major = 0,
				minor = 0,
				ver = 0;
	CUdevice	dev;
	CUcontext	ctx;
	CUmodule	mod;

	cu.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (cu.lib == NULL)
	{
		snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
		return false;
	}
	if (!load_symbols(err, errlen))
		return false;
	CU_TRY(cu.Init(0), "cuInit");
	CU_TRY(cu.DriverGetVersion(&ver), "cuDriverGetVersion");
	CU_TRY(cu.DeviceGetCount(&n), "cuDeviceGetCount");
	if (n < 1)
	{
		snprintf(err, errlen, "the CUDA driver sees no device");
		return false;
	}
	CU_TRY(cu.DeviceGet(&dev, 0), "cuDeviceGet");
	CU_TRY(cu.DeviceGetAttribute(&major, CU_ATTR_CC_MAJOR, dev), "cuDeviceGetAttribute");
	CU_TRY(cu.DeviceGetAttribute(&minor, CU_ATTR_CC_MINOR, dev), "cuDeviceGetAttribute");
	CU_TRY(cu.DeviceGetAttribute(&sm_count, CU_ATTR_SM_COUNT, dev), "cuDeviceGetAttribute");
	{
		char		name[128] = "";

		CU_TRY(cu.DeviceGetName(name, sizeof(name), dev), "cuDeviceGetName");
		snprintf(device_name, sizeof(device_name), "%s (sm_%d%d, %d SMs, driver %d.%d)",
				 name, major, minor, sm_count, ver / 1000, (ver % 1000) / 10);
	}
	if (nvml_path != NULL && !confidential(nvml_path, err, errlen))
		return false;
	if (gs_fatbin_len == 0)
	{
		snprintf(err, errlen, "found %s, but this build has no GPU kernels (nvcc was not found when "
				 "dstack_fdw was built)", device_name);
		return false;
	}
	CU_TRY(cu.DevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
	CU_TRY(cu.CtxSetCurrent(ctx), "cuCtxSetCurrent");
	CU_TRY(cu.ModuleLoadData(&mod, gs_fatbin), "cuModuleLoadData (kernels are sm_90 + compute_90 PTX)");
	CU_TRY(cu.ModuleGetFunction(&fn_preagg, mod, "gs_preagg"), "cuModuleGetFunction gs_preagg");
	CU_TRY(cu.ModuleGetFunction(&fn_filter, mod, "gs_filter"), "cuModuleGetFunction gs_filter");
	return true;
}

bool
gs_cuda_probe(const char *libcuda_path, const char *nvml_path, char *why, size_t whylen)
{
	if (probe_state == 0)
	{
		probe_state = probe(libcuda_path, nvml_path, probe_why, sizeof(probe_why)) ? 1 : -1;
		if (probe_state < 0 && cu.lib != NULL)
		{
			dlclose(cu.lib);
			memset(&cu, 0, sizeof(cu));
		}
	}
	if (probe_state < 0)
		snprintf(why, whylen, "%s", probe_why);
	return probe_state > 0;
}

const char *
gs_cuda_device_name(void)
{
	return device_name;
}

size_t
gs_kind_width(int32_t kind)
{
	return gs_width(kind);
}

/* ---- staging ------------------------------------------------------------ */

#define ALIGN256(x) (((x) + 255) & ~(size_t) 255)

typedef struct Stage
{
	CUstream	stream;
	CUevent		ev_start;
	CUevent		ev_end;
	uint8_t    *pinned;			/* host copy of the batch */
	CUdeviceptr dev;			/* device copy */
	size_t		cap;
	uint32_t   *pinned_out;		/* overflow or selection bits, then 2 counters */
	CUdeviceptr dev_out;
	size_t		out_cap;
	GsParams	hostp;			/* the batch, pointing into pinned */
	bool		busy;
} Stage;

/* Bytes a batch needs in a staging buffer: each column's values and validity, the keep bitmap. */
static size_t
stage_bytes(const GsParams *p)
{
	size_t		n = 0;

	for (int c = 0; c < p->ncols; c++)
	{
		if (p->cols[c].side != 0)
			continue;			/* the join's inner table is on the device already */
		n += ALIGN256((size_t) p->nrows * gs_kind_width(p->cols[c].kind));
		if (p->cols[c].valid)
			n += ALIGN256(((size_t) p->nrows + 7) / 8);
	}
	if (p->keep)
		n += ALIGN256(((size_t) p->nrows + 7) / 8);
	return n;
}

static void
stage_free(Stage *st)
{
	if (st->pinned)
		cu.MemFreeHost(st->pinned);
	if (st->dev)
		cu.MemFree(st->dev);
	if (st->pinned_out)
		cu.MemFreeHost(st->pinned_out);
	if (st->dev_out)
		cu.MemFree(st->dev_out);
	if (st->ev_start)
		cu.EventDestroy(st->ev_start);
	if (st->ev_end)
		cu.EventDestroy(st->ev_end);
	if (st->stream)
		cu.StreamDestroy(st->stream);
	memset(st, 0, sizeof(*st));
}

/* Make room for `bytes` of batch and `words` of output bits (+ counters). */
static bool
stage_reserve(Stage *st, size_t bytes, size_t words, char *err, size_t errlen)
{
	if (st->stream == NULL)
	{
		CU_TRY(cu.StreamCreate(&st->stream, 1 /* non-blocking */ ), "cuStreamCreate");
		CU_TRY(cu.EventCreate(&st->ev_start, 0), "cuEventCreate");
		CU_TRY(cu.EventCreate(&st->ev_end, 0), "cuEventCreate");
	}
	if (bytes > st->cap)
	{
		if (st->pinned)
			cu.MemFreeHost(st->pinned);
		if (st->dev)
			cu.MemFree(st->dev);
		st->pinned = NULL;
		st->dev = 0;
		st->cap = 0;
		CU_TRY(cu.MemAllocHost((void **) &st->pinned, bytes), "cuMemAllocHost (pinned staging buffer)");
		CU_TRY(cu.MemAlloc(&st->dev, bytes), "cuMemAlloc (device staging buffer)");
		st->cap = bytes;
	}
	if ((words + 4) * 4 > st->out_cap)
	{
		if (st->pinned_out)
			cu.MemFreeHost(st->pinned_out);
		if (st->dev_out)
			cu.MemFree(st->dev_out);
		st->pinned_out = NULL;
		st->dev_out = 0;
		st->out_cap = 0;
		CU_TRY(cu.MemAllocHost((void **) &st->pinned_out, (words + 4) * 4), "cuMemAllocHost");
		CU_TRY(cu.MemAlloc(&st->dev_out, (words + 4) * 4), "cuMemAlloc");
		st->out_cap = (words + 4) * 4;
	}
	return true;
}

/* Device copies of a join's inner table (uploaded once per scan). */
typedef struct Inner
{
	bool		loaded;
	CUdeviceptr mem;
	const uint8_t *data[GS_MAX_COLS];
	const uint8_t *valid[GS_MAX_COLS];
	GsJoin		join;			/* with device pointers */
} Inner;

/*
 * Copy p's outer columns into the pinned buffer, point hostp at that copy
 * and *devp at the device copy (inner columns at inner's), and queue the
 * host-to-device transfer.
 */
static bool
stage_batch(Stage *st, const GsParams *p, const Inner *inner, GsParams *devp, uint64_t *h2d,
			char *err, size_t errlen)
{
	size_t		off = 0;
	size_t		words = gs_bitmap_words(p->nrows);
	size_t		bytes = stage_bytes(p);

	if (!stage_reserve(st, bytes, words, err, errlen))
		return false;
	st->hostp = *p;
	*devp = *p;
#define STAGE(src, len, hostfield, devfield) \
	do { \
		memcpy(st->pinned + off, (src), (len)); \
		(hostfield) = st->pinned + off; \
		(devfield) = (const uint8_t *) (uintptr_t) (st->dev + off); \
		off += ALIGN256(len); \
	} while (0)
	if (inner != NULL && inner->loaded)
	{
		devp->join = inner->join;
		for (int c = 0; c < p->ncols; c++)
			if (p->cols[c].side != 0)
			{
				devp->cols[c].data = inner->data[c];
				devp->cols[c].valid = inner->valid[c];
			}
	}
	for (int c = 0; c < p->ncols; c++)
	{
		if (p->cols[c].side != 0)
			continue;
		STAGE(p->cols[c].data, (size_t) p->nrows * gs_kind_width(p->cols[c].kind),
			  st->hostp.cols[c].data, devp->cols[c].data);
		if (p->cols[c].valid)
			STAGE(p->cols[c].valid, ((size_t) p->nrows + 7) / 8, st->hostp.cols[c].valid, devp->cols[c].valid);
	}
	if (p->keep)
		STAGE(p->keep, ((size_t) p->nrows + 7) / 8, st->hostp.keep, devp->keep);
#undef STAGE
	CU_TRY(cu.MemsetD8Async(st->dev_out, 0, (words + 4) * 4, st->stream), "cuMemsetD8Async");
	CU_TRY(cu.MemcpyHtoDAsync(st->dev, st->pinned, off, st->stream), "cuMemcpyHtoDAsync");
	*h2d += off;
	return true;
}

/* Grid for nrows: enough blocks to fill every SM several times, no more than the rows need. */
static unsigned
grid_for(uint32_t nrows)
{
	unsigned	blocks = (nrows + 255) / 256;
	unsigned	maxb = (unsigned) sm_count * 8;

	return blocks < 1 ? 1 : (blocks > maxb ? maxb : blocks);
}

/* ---- pre-aggregation ---------------------------------------------------- */

struct GsCudaPreagg
{
	uint32_t	cap;
	int			naggs;
	CUdeviceptr d_state,
				d_rows,
				d_keys,
				d_null,
				d_acc;
	GsTable		dtab;			/* device pointers */
	Stage		stage[2];
	Inner		inner;
	int			next;
	GsParams	last;			/* aggregates and keys, for the merge */
	bool		have_last;
	GsCudaStats stats;
};

GsCudaPreagg *
gs_cuda_preagg_begin(uint32_t table_cap, int naggs, char *err, size_t errlen)
{
	GsCudaPreagg *s = calloc(1, sizeof(GsCudaPreagg));
	size_t		accw = (size_t) table_cap * (naggs > 0 ? naggs : 1) * GS_ACC_WORDS;
	CUresult	r;

	if (s == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cap = table_cap;
	s->naggs = naggs;
	if ((r = cu.MemAlloc(&s->d_state, (size_t) table_cap * 4)) != 0 ||
		(r = cu.MemAlloc(&s->d_rows, (size_t) table_cap * 8)) != 0 ||
		(r = cu.MemAlloc(&s->d_keys, (size_t) table_cap * GS_MAX_KEYS * 8)) != 0 ||
		(r = cu.MemAlloc(&s->d_null, (size_t) table_cap * 4)) != 0 ||
		(r = cu.MemAlloc(&s->d_acc, accw * 8)) != 0 ||
		(r = cu.MemsetD8Async(s->d_state, 0, (size_t) table_cap * 4, NULL)) != 0)
	{
		cu_fail(r, "allocating the device group table", err, errlen);
		gs_cuda_preagg_free(s);
		return NULL;
	}
	s->dtab.cap = table_cap;
	s->dtab.naggs = naggs;
	s->dtab.state = (uint32_t *) (uintptr_t) s->d_state;
	s->dtab.rows = (uint64_t *) (uintptr_t) s->d_rows;
	s->dtab.keys = (int64_t *) (uintptr_t) s->d_keys;
	s->dtab.nullmask = (uint32_t *) (uintptr_t) s->d_null;
	s->dtab.acc = (uint64_t *) (uintptr_t) s->d_acc;
	return s;
}

bool
gs_cuda_preagg_set_inner(GsCudaPreagg *s, const GsParams *p, char *err, size_t errlen)
{
	Inner	   *in = &s->inner;
	uint32_t	n = p->join.inner_nrows;
	size_t		bytes = 0;
	size_t		off = 0;

	/* each piece gets its own 256-byte-aligned place, one byte longer so no piece is empty */
#define PLACE(len) ALIGN256((size_t) (len) + 1)
	bytes = PLACE((size_t) p->join.nbuckets * 4) + PLACE((size_t) n * 4) + PLACE((size_t) n * 8);
	for (int c = 0; c < p->ncols; c++)
		if (p->cols[c].side != 0)
			bytes += PLACE((size_t) n * gs_kind_width(p->cols[c].kind)) +
				(p->cols[c].valid ? PLACE(((size_t) n + 7) / 8) : 0);
	CU_TRY(cu.MemAlloc(&in->mem, bytes), "cuMemAlloc (the join's inner table)");
#define UPLOAD(src, len, field) \
	do { \
		if ((len) > 0) \
			CU_TRY(cu.MemcpyHtoD(in->mem + off, (src), (len)), "cuMemcpyHtoD (inner table)"); \
		field = (__typeof__(field)) (uintptr_t) (in->mem + off); \
		off += PLACE(len); \
	} while (0)
	in->join = p->join;
	UPLOAD(p->join.head, (size_t) p->join.nbuckets * 4, in->join.head);
	UPLOAD(p->join.next, (size_t) n * 4, in->join.next);
	UPLOAD(p->join.key, (size_t) n * 8, in->join.key);
	for (int c = 0; c < p->ncols; c++)
		if (p->cols[c].side != 0)
		{
			UPLOAD(p->cols[c].data, (size_t) n * gs_kind_width(p->cols[c].kind), in->data[c]);
			if (p->cols[c].valid)
				UPLOAD(p->cols[c].valid, ((size_t) n + 7) / 8, in->valid[c]);
			else
				in->valid[c] = NULL;
		}
#undef UPLOAD
#undef PLACE
	s->stats.bytes_h2d += off;
	in->loaded = true;
	return true;
}

/* A stage's batch is done: fold its overflow rows into host, count, time. */
static bool
drain(GsCudaPreagg *s, Stage *st, GsHostTable *host, char *err, size_t errlen)
{
	uint64_t	ctr[2];
	float		ms = 0;

	if (!st->busy)
		return true;
	CU_TRY(cu.StreamSynchronize(st->stream), "cuStreamSynchronize (pre-aggregation kernel)");
	st->busy = false;
	memcpy(ctr, st->pinned_out + gs_bitmap_words(st->hostp.nrows), sizeof(ctr));
	if (cu.EventElapsedTime(&ms, st->ev_start, st->ev_end) == 0)
		s->stats.kernel_ms += ms;
	s->stats.rows_selected += ctr[0];
	s->stats.rows_overflow += ctr[1];
	if (ctr[1] > 0 && gs_host_preagg(&st->hostp, host, st->pinned_out) < 0)
	{
		snprintf(err, errlen, "out of memory in the host group table");
		return false;
	}
	return true;
}

bool
gs_cuda_preagg_batch(GsCudaPreagg *s, const GsParams *p, GsHostTable *host, char *err, size_t errlen)
{
	Stage	   *st = &s->stage[s->next];
	GsParams	devp;
	CUdeviceptr ovf,
				ctr;
	size_t		words = gs_bitmap_words(p->nrows);
	void	   *args[4];

	s->next ^= 1;
	if (!drain(s, st, host, err, errlen))	/* the batch that used this buffer two batches ago */
		return false;
	if (!stage_batch(st, p, &s->inner, &devp, &s->stats.bytes_h2d, err, errlen))
		return false;
	ovf = st->dev_out;
	ctr = st->dev_out + words * 4;
	args[0] = &devp;
	args[1] = &s->dtab;
	args[2] = &ovf;
	args[3] = &ctr;
	CU_TRY(cu.EventRecord(st->ev_start, st->stream), "cuEventRecord");
	CU_TRY(cu.LaunchKernel(fn_preagg, grid_for(p->nrows), 1, 1, 256, 1, 1, 0, st->stream, args, NULL),
		   "cuLaunchKernel gs_preagg");
	CU_TRY(cu.EventRecord(st->ev_end, st->stream), "cuEventRecord");
	CU_TRY(cu.MemcpyDtoHAsync(st->pinned_out, st->dev_out, words * 4 + 16, st->stream), "cuMemcpyDtoHAsync");
	s->stats.bytes_d2h += words * 4 + 16;
	s->stats.rows_in += p->nrows;
	s->stats.batches++;
	st->busy = true;
	s->last = *p;
	s->have_last = true;
	return true;
}

bool
gs_cuda_preagg_finish(GsCudaPreagg *s, GsHostTable *host, char *err, size_t errlen)
{
	GsTable		t;
	size_t		accw = (size_t) s->cap * (s->naggs > 0 ? s->naggs : 1) * GS_ACC_WORDS;
	bool		ok;

	for (int i = 0; i < 2; i++)
		if (!drain(s, &s->stage[i], host, err, errlen))
			return false;
	if (!s->have_last)
		return true;			/* no batch: nothing on the device */
	if (!gs_table_alloc(&t, s->cap, s->naggs))
	{
		snprintf(err, errlen, "out of memory reading back the device group table");
		return false;
	}
	ok = cu.MemcpyDtoH(t.state, s->d_state, (size_t) s->cap * 4) == 0 &&
		cu.MemcpyDtoH(t.rows, s->d_rows, (size_t) s->cap * 8) == 0 &&
		cu.MemcpyDtoH(t.keys, s->d_keys, (size_t) s->cap * GS_MAX_KEYS * 8) == 0 &&
		cu.MemcpyDtoH(t.nullmask, s->d_null, (size_t) s->cap * 4) == 0 &&
		cu.MemcpyDtoH(t.acc, s->d_acc, accw * 8) == 0;
	s->stats.bytes_d2h += (size_t) s->cap * (16 + GS_MAX_KEYS * 8) + accw * 8;
	if (!ok)
		snprintf(err, errlen, "cuMemcpyDtoH of the device group table failed");
	else if (gs_host_merge(host, &s->last, &t) < 0)
	{
		snprintf(err, errlen, "out of memory merging the device group table");
		ok = false;
	}
	gs_table_free(&t);
	return ok;
}

void
gs_cuda_preagg_free(GsCudaPreagg *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < 2; i++)
	{
		if (s->stage[i].busy)
			cu.StreamSynchronize(s->stage[i].stream);
		stage_free(&s->stage[i]);
	}
	if (s->d_state)
		cu.MemFree(s->d_state);
	if (s->d_rows)
		cu.MemFree(s->d_rows);
	if (s->inner.mem)
		cu.MemFree(s->inner.mem);
	if (s->d_keys)
		cu.MemFree(s->d_keys);
	if (s->d_null)
		cu.MemFree(s->d_null);
	if (s->d_acc)
		cu.MemFree(s->d_acc);
	free(s);
}

void
gs_cuda_preagg_stats(const GsCudaPreagg *s, GsCudaStats *st)
{
	*st = s->stats;
}

/* ---- filter ------------------------------------------------------------- */

/* GpuScan's staging buffers: reused by every call of this backend, freed when it exits */
static Stage filter_stage;

bool
gs_cuda_filter(const GsParams *p, uint32_t *sel_bits, uint32_t *selected, uint64_t *bytes_h2d,
			   char *err, size_t errlen)
{
	Stage	   *st = &filter_stage;
	GsParams	devp;
	CUdeviceptr sel,
				ctr;
	size_t		words = gs_bitmap_words(p->nrows);
	void	   *args[3];
	uint64_t	c[2];

	/* a call that failed half-way may have left work queued on the buffers */
	if (st->stream != NULL)
		CU_TRY(cu.StreamSynchronize(st->stream), "cuStreamSynchronize (filter staging)");
	if (!stage_batch(st, p, NULL, &devp, bytes_h2d, err, errlen))
		return false;
	sel = st->dev_out;
	ctr = st->dev_out + words * 4;
	args[0] = &devp;
	args[1] = &sel;
	args[2] = &ctr;
	CU_TRY(cu.LaunchKernel(fn_filter, grid_for(p->nrows), 1, 1, 256, 1, 1, 0, st->stream, args, NULL),
		   "cuLaunchKernel gs_filter");
	CU_TRY(cu.MemcpyDtoHAsync(st->pinned_out, st->dev_out, words * 4 + 16, st->stream), "cuMemcpyDtoHAsync");
	CU_TRY(cu.StreamSynchronize(st->stream), "cuStreamSynchronize (filter kernel)");
	memcpy(sel_bits, st->pinned_out, words * 4);
	memcpy(c, st->pinned_out + words, sizeof(c));
	*selected = (uint32_t) c[0];
	return true;
}
