/*
 * gs_kernels.cu: the CUDA kernels of gpu_scan.  Their per-row logic is in
 * gs_logic.h, which gs_host.c compiles for the host; here it only gets a
 * grid-stride loop around it.  Built by nvcc into a fatbin (sm_90 code and
 * compute_90 PTX for newer GPUs) that is embedded in dstack_fdw.so and
 * loaded through the CUDA driver API (gs_cuda.c); compiled with
 * --fmad=false so float arithmetic rounds as on the host.
 */
#include <stdint.h>
#include <string.h>

#include "gs_logic.h"

/*
 * Pre-aggregate rows [0, nrows) (joined with the inner table when p.join
 * has one); see gs_preagg_kernel_row.  "selected" counts outer rows that
 * contributed, summed per thread first.
 */
extern "C" __global__ void
gs_preagg(GsParams p, GsTable t, uint32_t *overflow_bits, GsCounters *ctr)
{
	unsigned long long selected = 0;

	for (uint32_t row = blockIdx.x * blockDim.x + threadIdx.x; row < p.nrows; row += gridDim.x * blockDim.x)
		selected += gs_preagg_kernel_row(&p, &t, overflow_bits, ctr, row);
	if (selected)
		atomicAdd(&ctr->selected, selected);
}

/* Filter rows [0, nrows) into a selection bitmap (LSB first). */
extern "C" __global__ void
gs_filter(GsParams p, uint32_t *sel_bits, GsCounters *ctr)
{
	unsigned long long selected = 0;

	for (uint32_t row = blockIdx.x * blockDim.x + threadIdx.x; row < p.nrows; row += gridDim.x * blockDim.x)
		selected += gs_filter_kernel_row(&p, sel_bits, row);
	if (selected)
		atomicAdd(&ctr->selected, selected);
}
