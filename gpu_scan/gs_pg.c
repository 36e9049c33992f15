/*
 * gs_pg.c: gpu_scan's settings, hooks and the lazy GPU probe.
 *
 * Nothing touches CUDA at load time: _PG_init runs in the postmaster, whose
 * children would inherit a CUDA context that does not survive fork().  The
 * first backend that plans a query over a sealed table probes libcuda once;
 * with no usable GPU it logs one line saying why and plans the CPU path.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "gpu_scan.h"
#include "gs_cuda.h"

bool		gs_guc_enabled = true;
bool		gs_guc_enable_preagg = true;
bool		gs_guc_enable_scan = true;
bool		gs_guc_host_path = true;
bool		gs_guc_use_gpu = true;
bool		gs_guc_debug_planner = false;
int			gs_guc_join_max_inner_rows = 50000000;
int			gs_guc_device_table_slots = 0;
int			gs_guc_max_groups = 10000000;
char	   *gs_guc_libcuda = NULL;
bool		gs_guc_require_cc = true;
char	   *gs_guc_libnvml = NULL;

static int	probed = 0;			/* 0 not yet, 1 GPU, -1 none */
static char why_not[600];

void
gpu_scan_init(void)
{
	DefineCustomBoolVariable("gpu_scan.enabled",
							 "Plan GPU custom scans (GpuPreAgg, GpuScan) over sealed foreign tables.",
							 "Off: sealed tables are read by the foreign scan and PostgreSQL's own nodes only.",
							 &gs_guc_enabled, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("gpu_scan.enable_preagg",
							 "Plan GpuPreAgg: scan, filter and partial aggregation of a sealed table in one node.",
							 NULL, &gs_guc_enable_preagg, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("gpu_scan.enable_scan",
							 "Plan GpuScan: scan and filter of a sealed table, rows out as tuples.",
							 NULL, &gs_guc_enable_scan, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("gpu_scan.host_path",
							 "Plan the custom scans without a GPU too, running their kernels' host build.",
							 "The host build is the same per-row logic as the CUDA kernels, compiled for the CPU; "
							 "it aggregates column arrays instead of tuples, 2.3-3.2x faster than the plain "
							 "plan in bench/gpu.sh (78M rows). Off: without a GPU, PostgreSQL's own nodes only.",
							 &gs_guc_host_path, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("gpu_scan.use_gpu",
							 "Run the custom scans on the GPU when there is one.",
							 "Off: run their kernels' host build even with a GPU (to compare the two, as "
							 "tools/gpucheck.sh does).",
							 &gs_guc_use_gpu, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("gpu_scan.debug_planner",
							 "Say (as NOTICEs) why a GPU path was or was not offered to the planner.",
							 NULL, &gs_guc_debug_planner, false, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("gpu_scan.join_max_inner_rows",
							"Largest smaller table GpuPreAgg joins (it is loaded whole into memory, and the GPU's).",
							NULL, &gs_guc_join_max_inner_rows, 50000000, 0, INT_MAX, PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gpu_scan.device_table_slots",
							"Slots of GpuPreAgg's group table on the GPU; 0: twice the planner's estimate, 64k to 16M.",
							"Groups that find no slot are aggregated on the host (EXPLAIN ANALYZE counts those rows). "
							"A small table is a test aid for that path.",
							&gs_guc_device_table_slots, 0, 0, 1 << 24, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("gpu_scan.max_groups",
							"Most groups one GpuPreAgg keeps in memory before it stops with an error.",
							"Its group table does not spill to disk as HashAggregate does.",
							&gs_guc_max_groups, 10000000, 1000, INT_MAX, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("gpu_scan.libcuda",
							   "The CUDA driver library gpu_scan loads with dlopen() on first use.",
							   "Takes effect before the first query over a sealed table in a session.",
							   &gs_guc_libcuda, "libcuda.so.1", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("gpu_scan.require_confidential_gpu",
							 "Use a GPU only in confidential-computing mode (checked through NVML).",
							 "Decrypted columns are copied to the GPU; outside CC mode they cross PCIe in the "
							 "clear and sit in unprotected GPU memory. Off only on test machines with test data.",
							 &gs_guc_require_cc, true, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("gpu_scan.libnvidia_ml",
							   "The NVML library gpu_scan asks for the GPU's confidential-computing mode.",
							   NULL, &gs_guc_libnvml, "libnvidia-ml.so.1", PGC_SUSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("gpu_scan");
	gs_plan_init();
	gs_exec_init();
}

/* Probe the GPU once per backend; no GPU is a LOG line, never an error. */
bool
gs_device_available(void)
{
	if (!gs_guc_use_gpu)
		return false;
	if (probed == 0)
	{
		if (gs_cuda_probe(gs_guc_libcuda, gs_guc_require_cc ? gs_guc_libnvml : NULL, why_not, sizeof(why_not)))
		{
			probed = 1;
			ereport(LOG, (errmsg("gpu_scan: using GPU %s", gs_cuda_device_name())));
		}
		else
		{
			probed = -1;
			ereport(LOG,
					(errmsg("gpu_scan: no usable GPU, sealed tables are scanned on the CPU"),
					 errdetail("%s.", why_not)));
		}
	}
	return probed > 0;
}

const char *
gs_device_unavailable_reason(void)
{
	return gs_guc_use_gpu ? why_not : "gpu_scan.use_gpu is off";
}

void
gs_debug(const char *fmt,...)
{
	va_list		ap;
	char		buf[1024];

	if (!gs_guc_debug_planner)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ereport(NOTICE, (errmsg_internal("gpu_scan: %s", buf)));
}
