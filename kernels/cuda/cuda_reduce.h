/* kernels/cuda/cuda_reduce.h: warp and block reductions for the row kernels.
 *
 * Block reductions assume blockDim.x is a multiple of 32 and <= 1024, and
 * that every thread of the block calls them (they contain __syncthreads).
 * The result is returned to every thread.  `shared` must hold 32 values and
 * may be reused by the next call (the trailing barrier protects it). */
#ifndef FLAB_KERNELS_CUDA_REDUCE_H
#define FLAB_KERNELS_CUDA_REDUCE_H
#include <cuda_runtime.h>

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

template <typename T>
__device__ T block_sum(T v, T *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    T t = lane < nw ? shared[lane] : (T)0;
    t = warp_sum(t);
    __syncthreads();
    return t;
}

__device__ __forceinline__ float block_max(float v, float *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_max(v);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float t = lane < nw ? shared[lane] : -INFINITY;
    t = warp_max(t);
    __syncthreads();
    return t;
}
#endif
