/*
 * libcuda-sim.c: a SIMULATOR of the part of the CUDA driver API that
 * gpu_scan uses, for machines without a GPU (CI, this repository's dev box).
 * It is not a GPU and not fast; it exists so that gpu_scan/gs_cuda.c, the
 * production code that drives a real libcuda.so.1, runs end to end in tests:
 * probing, module loading, pinned staging, two streams, the device group
 * table, overflow to the host, the join's inner upload, read-back and merge.
 *
 * Faithful where it matters for catching host-side bugs:
 *   - device memory is not host memory: every cuMemAlloc is its own mapping,
 *     kept PROT_NONE except while a simulated copy, memset or kernel runs, so
 *     host code that dereferences a device pointer crashes as it would on a
 *     real GPU (where it would read garbage or fault);
 *   - pointers passed to the API must be ones it handed out (device, or
 *     pinned host), with the size in bounds: CUDA_ERROR_INVALID_VALUE else;
 *   - cuModuleLoadData wants a fatbin (magic 0xBA55ED50) and cuModuleGetFunction
 *     knows only the kernels gs_kernels.cu defines (CUDA_ERROR_NOT_FOUND);
 *   - the CUDA error codes and cuGetErrorString texts are the driver's.
 * Simplified: streams run each operation at once (in order, which is what a
 * stream guarantees); kernels run row after row on the host, through the same
 * per-row bodies (gs_logic.h) nvcc compiles into the real kernels.
 *
 * The device it reports is "libcuda simulator", compute capability 9.0.
 * Point gpu_scan at it with gpu_scan.libcuda = '<path>/libcuda-sim.so'.
 *
 * It also answers the three NVML calls gpu_scan makes to check the GPU's
 * confidential-computing mode (point gpu_scan.libnvidia_ml at it): CC on,
 * or, when loaded from a copy whose file name contains "cc-off" or
 * "devtools", CC off or CC in devtools mode (the Makefile makes both copies).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kernels/gs_logic.h"

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

#define CUDA_SUCCESS					0
#define CUDA_ERROR_INVALID_VALUE		1
#define CUDA_ERROR_OUT_OF_MEMORY		2
#define CUDA_ERROR_NOT_INITIALIZED		3
#define CUDA_ERROR_INVALID_DEVICE		101
#define CUDA_ERROR_INVALID_IMAGE		200
#define CUDA_ERROR_INVALID_CONTEXT		201
#define CUDA_ERROR_INVALID_HANDLE		400
#define CUDA_ERROR_NOT_FOUND			500
#define CUDA_ERROR_LAUNCH_FAILED		719

static int	initialized;
static int	have_context;

/* ---- allocations ---------------------------------------------------------- */

typedef struct Alloc
{
	uint8_t    *base;
	size_t		size;			/* requested */
	size_t		mapped;			/* page-rounded */
	int			device;			/* 1: device memory (PROT_NONE at rest), 0: pinned host */
	struct Alloc *next;
} Alloc;

static Alloc *allocs;

static Alloc *
find_alloc(const void *p, size_t len, int device)
{
	for (Alloc *a = allocs; a; a = a->next)
		if (a->device == device && (const uint8_t *) p >= a->base &&
			(const uint8_t *) p + len <= a->base + a->size)
			return a;
	return NULL;
}

/* Device memory is reachable only while the simulated device works on it. */
static void
device_access(int on)
{
	for (Alloc *a = allocs; a; a = a->next)
		if (a->device)
			mprotect(a->base, a->mapped, on ? PROT_READ | PROT_WRITE : PROT_NONE);
}

static CUresult
do_alloc(void **out, size_t size, int device)
{
	Alloc	   *a = calloc(1, sizeof(Alloc));
	size_t		pg = 4096;

	if (a == NULL || size == 0)
	{
		free(a);
		return size == 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_OUT_OF_MEMORY;
	}
	a->mapped = (size + pg - 1) / pg * pg;
	a->base = mmap(NULL, a->mapped, device ? PROT_NONE : PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->base == MAP_FAILED)
	{
		free(a);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	a->size = size;
	a->device = device;
	a->next = allocs;
	allocs = a;
	*out = a->base;
	return CUDA_SUCCESS;
}

static CUresult
do_free(const void *p, int device)
{
	for (Alloc **pp = &allocs; *pp; pp = &(*pp)->next)
		if ((*pp)->base == p && (*pp)->device == device)
		{
			Alloc	   *a = *pp;

			*pp = a->next;
			munmap(a->base, a->mapped);
			free(a);
			return CUDA_SUCCESS;
		}
	return CUDA_ERROR_INVALID_VALUE;
}

/* ---- initialisation, device, context ------------------------------------------ */

CUresult
cuInit(unsigned int flags)
{
	if (flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	initialized = 1;
	return CUDA_SUCCESS;
}

CUresult
cuDriverGetVersion(int *v)
{
	if (v == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	*v = 13000;
	return CUDA_SUCCESS;
}

CUresult
cuDeviceGetCount(int *n)
{
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	*n = 1;
	return CUDA_SUCCESS;
}

CUresult
cuDeviceGet(CUdevice *d, int ordinal)
{
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (ordinal != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	*d = 0;
	return CUDA_SUCCESS;
}

CUresult
cuDeviceGetName(char *name, int len, CUdevice d)
{
	if (d != 0 || name == NULL || len <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(name, (size_t) len, "libcuda simulator");
	return CUDA_SUCCESS;
}

CUresult
cuDeviceGetAttribute(int *v, int attr, CUdevice d)
{
	if (d != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	switch (attr)
	{
		case 16:				/* multiprocessor count */
			*v = 4;
			return CUDA_SUCCESS;
		case 75:				/* compute capability major */
			*v = 9;
			return CUDA_SUCCESS;
		case 76:				/* minor */
			*v = 0;
			return CUDA_SUCCESS;
		default:
			return CUDA_ERROR_INVALID_VALUE;
	}
}

CUresult
cuDevicePrimaryCtxRetain(void **ctx, CUdevice d)
{
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (d != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	*ctx = (void *) &have_context;
	return CUDA_SUCCESS;
}

CUresult
cuCtxSetCurrent(void *ctx)
{
	if (ctx != (void *) &have_context)
		return CUDA_ERROR_INVALID_CONTEXT;
	have_context = 1;
	return CUDA_SUCCESS;
}

/* ---- modules ------------------------------------------------------------------ */

static int	module_token;

CUresult
cuModuleLoadData(void **mod, const void *image)
{
	uint32_t	magic;

	if (!have_context)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (image == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(&magic, image, 4);
	if (magic != 0xBA55ED50u)	/* a fatbin, as nvcc -fatbin writes it */
		return CUDA_ERROR_INVALID_IMAGE;
	*mod = &module_token;
	return CUDA_SUCCESS;
}

enum
{
	K_PREAGG = 1, K_FILTER = 2
};
static int	k_preagg = K_PREAGG,
			k_filter = K_FILTER;

CUresult
cuModuleGetFunction(void **fn, void *mod, const char *name)
{
	if (mod != &module_token)
		return CUDA_ERROR_INVALID_HANDLE;
	if (strcmp(name, "gs_preagg") == 0)
		*fn = &k_preagg;
	else if (strcmp(name, "gs_filter") == 0)
		*fn = &k_filter;
	else
		return CUDA_ERROR_NOT_FOUND;
	return CUDA_SUCCESS;
}

/* ---- memory ---------------------------------------------------------------------- */

CUresult
cuMemAlloc_v2(CUdeviceptr *p, size_t size)
{
	void	   *q;
	CUresult	r;

	if (!have_context)
		return CUDA_ERROR_INVALID_CONTEXT;
	r = do_alloc(&q, size, 1);
	if (r == CUDA_SUCCESS)
		*p = (CUdeviceptr) (uintptr_t) q;
	return r;
}

CUresult
cuMemFree_v2(CUdeviceptr p)
{
	return do_free((void *) (uintptr_t) p, 1);
}

CUresult
cuMemAllocHost_v2(void **p, size_t size)
{
	if (!have_context)
		return CUDA_ERROR_INVALID_CONTEXT;
	return do_alloc(p, size, 0);
}

CUresult
cuMemFreeHost(void *p)
{
	return do_free(p, 0);
}

/* A copy between a device range and host memory (pinned or not). */
static CUresult
copy(void *dst, const void *src, size_t n, int dst_device, int src_device)
{
	if (n == 0)
		return CUDA_SUCCESS;
	if ((dst_device && !find_alloc(dst, n, 1)) || (src_device && !find_alloc(src, n, 1)))
		return CUDA_ERROR_INVALID_VALUE;
	device_access(1);
	memcpy(dst, src, n);
	device_access(0);
	return CUDA_SUCCESS;
}

CUresult
cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
	return copy((void *) (uintptr_t) dst, src, n, 1, 0);
}

CUresult
cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, void *stream)
{
	return copy((void *) (uintptr_t) dst, src, n, 1, 0);
}

CUresult
cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
	return copy(dst, (const void *) (uintptr_t) src, n, 0, 1);
}

CUresult
cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, void *stream)
{
	return copy(dst, (const void *) (uintptr_t) src, n, 0, 1);
}

CUresult
cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void *stream)
{
	if (!find_alloc((void *) (uintptr_t) dst, n, 1))
		return CUDA_ERROR_INVALID_VALUE;
	device_access(1);
	memset((void *) (uintptr_t) dst, v, n);
	device_access(0);
	return CUDA_SUCCESS;
}

/* ---- streams and events ----------------------------------------------------------- */

static int	stream_token,
			event_token;

CUresult
cuStreamCreate(void **s, unsigned int flags)
{
	*s = &stream_token;
	return CUDA_SUCCESS;
}

CUresult
cuStreamDestroy_v2(void *s)
{
	return s == &stream_token ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult
cuStreamSynchronize(void *s)
{
	return s == NULL || s == &stream_token ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

typedef struct SimEvent
{
	int		   *token;
	double		ms;
} SimEvent;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

CUresult
cuEventCreate(void **e, unsigned int flags)
{
	SimEvent   *ev = calloc(1, sizeof(SimEvent));

	if (ev == NULL)
		return CUDA_ERROR_OUT_OF_MEMORY;
	ev->token = &event_token;
	*e = ev;
	return CUDA_SUCCESS;
}

CUresult
cuEventDestroy_v2(void *e)
{
	if (e == NULL || ((SimEvent *) e)->token != &event_token)
		return CUDA_ERROR_INVALID_HANDLE;
	free(e);
	return CUDA_SUCCESS;
}

CUresult
cuEventRecord(void *e, void *stream)
{
	if (e == NULL || ((SimEvent *) e)->token != &event_token)
		return CUDA_ERROR_INVALID_HANDLE;
	((SimEvent *) e)->ms = now_ms();
	return CUDA_SUCCESS;
}

CUresult
cuEventElapsedTime(float *ms, void *a, void *b)
{
	if (a == NULL || b == NULL)
		return CUDA_ERROR_INVALID_HANDLE;
	*ms = (float) (((SimEvent *) b)->ms - ((SimEvent *) a)->ms);
	return CUDA_SUCCESS;
}

/* ---- kernels ----------------------------------------------------------------------- */

/* Every device pointer a kernel is given must be device memory the simulator handed out. */
static int
params_on_device(const GsParams *p)
{
	for (int c = 0; c < p->ncols; c++)
	{
		size_t		n = p->cols[c].side ? p->join.inner_nrows : p->nrows;
		size_t		w = gs_width(p->cols[c].kind);

		if (n > 0 && !find_alloc(p->cols[c].data, n * w, 1))
			return 0;
		if (n > 0 && p->cols[c].valid && !find_alloc(p->cols[c].valid, (n + 7) / 8, 1))
			return 0;
	}
	if (p->keep && p->nrows > 0 && !find_alloc(p->keep, (p->nrows + 7) / 8, 1))
		return 0;
	if (p->join.nbuckets && (!find_alloc(p->join.head, (size_t) p->join.nbuckets * 4, 1) ||
							 (p->join.inner_nrows && !find_alloc(p->join.key, (size_t) p->join.inner_nrows * 8, 1))))
		return 0;
	return 1;
}

CUresult
cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
			   unsigned shmem, void *stream, void **args, void **extra)
{
	const GsParams *p;

	if (fn == NULL || args == NULL || extra != NULL || gx == 0 || bx == 0 || bx > 1024 ||
		gy != 1 || gz != 1 || by != 1 || bz != 1)
		return CUDA_ERROR_INVALID_VALUE;
	p = (const GsParams *) args[0];
	if (!params_on_device(p))
		return CUDA_ERROR_LAUNCH_FAILED;	/* a host pointer in a kernel: an illegal address */
	device_access(1);
	if (fn == &k_preagg)
	{
		GsTable		t = *(const GsTable *) args[1];
		uint32_t   *ovf = *(uint32_t **) args[2];
		GsCounters *ctr = *(GsCounters **) args[3];
		unsigned long long selected = 0;

		for (uint32_t row = 0; row < p->nrows; row++)
			selected += gs_preagg_kernel_row(p, &t, ovf, ctr, row);
		ctr->selected += selected;
	}
	else if (fn == &k_filter)
	{
		uint32_t   *sel = *(uint32_t **) args[1];
		GsCounters *ctr = *(GsCounters **) args[2];

		for (uint32_t row = 0; row < p->nrows; row++)
			ctr->selected += gs_filter_kernel_row(p, sel, row);
	}
	device_access(0);
	return fn == &k_preagg || fn == &k_filter ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* ---- errors ---------------------------------------------------------------------- */

CUresult
cuGetErrorString(CUresult r, const char **s)
{
	switch (r)
	{
		case CUDA_SUCCESS:
			*s = "no error";
			break;
		case CUDA_ERROR_INVALID_VALUE:
			*s = "invalid argument";
			break;
		case CUDA_ERROR_OUT_OF_MEMORY:
			*s = "out of memory";
			break;
		case CUDA_ERROR_NOT_INITIALIZED:
			*s = "initialization error";
			break;
		case CUDA_ERROR_INVALID_DEVICE:
			*s = "invalid device ordinal";
			break;
		case CUDA_ERROR_INVALID_IMAGE:
			*s = "device kernel image is invalid";
			break;
		case CUDA_ERROR_INVALID_CONTEXT:
			*s = "invalid device context";
			break;
		case CUDA_ERROR_INVALID_HANDLE:
			*s = "invalid resource handle";
			break;
		case CUDA_ERROR_NOT_FOUND:
			*s = "named symbol not found";
			break;
		case CUDA_ERROR_LAUNCH_FAILED:
			*s = "unspecified launch failure";
			break;
		default:
			*s = NULL;
			return CUDA_ERROR_INVALID_VALUE;
	}
	return CUDA_SUCCESS;
}

/* ---- NVML: confidential-computing state ------------------------------------------ */

int
nvmlInit_v2(void)
{
	return 0;
}

int
nvmlShutdown(void)
{
	return 0;
}

typedef struct
{
	unsigned int environment;
	unsigned int ccFeature;
	unsigned int devToolsMode;
} SimCcState;

int
nvmlSystemGetConfComputeState(SimCcState *st)
{
	Dl_info		info;
	const char *name = "";

	if (st == NULL)
		return 2;				/* NVML_ERROR_INVALID_ARGUMENT */
	if (dladdr((void *) nvmlSystemGetConfComputeState, &info) && info.dli_fname)
		name = info.dli_fname;
	st->environment = 2;		/* NVML_CC_SYSTEM_ENVIRONMENT_PROD */
	st->ccFeature = strstr(name, "cc-off") ? 0 : 1;
	st->devToolsMode = strstr(name, "devtools") ? 1 : 0;
	return 0;
}
