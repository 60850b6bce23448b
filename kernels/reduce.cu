// kernels/reduce.cu — the deterministic reductions of a pass.
//
// No atomics: every sum has one fixed order, so a pass gives bit-identical results on
// every run and for any grid size the host picks.
//  * dw_reduce: dW = [dW +] Σ_split partial[split], splits in order (one thread per element).
//  * embed_segsum: dU[a] = [dU[a] +] Σ_{rows r with a_r = a} dS[r] and the same for dV[b],
//    over CSR lists of rows per token built once per pair set on the host (rows in
//    ascending order). One thread per (token, neuron); reads of dS are coalesced along m.
//  * reduce_stats: per model, mean loss (double accumulation, strided per-thread sums then
//    a fixed shared-memory tree), number of correct rows and the smallest margin.
//  * cw_param_sizes: sizeof of every parameter struct, checked by the host at start-up
//    against its #[repr(C)] mirrors.

// grid (ceil(n/256), B); block 256. n = n_out*m.
extern "C" __global__ void __launch_bounds__(256)
    dw_reduce(const float* __restrict__ part, float* __restrict__ dw, int splits, long long n,
              int accumulate) {
    const long long e = (long long)blockIdx.x * 256 + threadIdx.x;
    if (e >= n) return;
    const int z = blockIdx.y;
    const float* p = part + (size_t)z * splits * n + e;
    float s = p[0];
    for (int k = 1; k < splits; ++k) s += p[(size_t)k * n];
    float* out = dw + (size_t)z * n + e;
    *out = accumulate ? *out + s : s;
}

// grid (ceil(m/128), 2*n_in, B); block 128. blockIdx.y < n_in: token of the first input
// (dU), else of the second (dV).
extern "C" __global__ void __launch_bounds__(128)
    embed_segsum(const float* __restrict__ ds, long long ds_stride,
                 const int* __restrict__ ptr_a, const int* __restrict__ rows_a,
                 const int* __restrict__ ptr_b, const int* __restrict__ rows_b,
                 float* __restrict__ du, float* __restrict__ dv, long long emb_stride,
                 int n_in, int m, int accumulate) {
    const int i = blockIdx.x * 128 + threadIdx.x;
    if (i >= m) return;
    const int z = blockIdx.z;
    const bool second = blockIdx.y >= n_in;
    const int tok = second ? blockIdx.y - n_in : blockIdx.y;
    const int* ptr = second ? ptr_b : ptr_a;
    const int* rows = second ? rows_b : rows_a;
    const float* d = ds + (size_t)z * ds_stride + i;
    float s = 0.f;
    const int end = __ldg(ptr + tok + 1);
    for (int j = __ldg(ptr + tok); j < end; ++j) s += d[(size_t)__ldg(rows + j) * m];
    float* out = (second ? dv : du) + (size_t)z * emb_stride + (size_t)tok * m + i;
    *out = accumulate ? *out + s : s;
}

// grid (B); block 256. out[z] = {mean loss, correct, min margin}.
extern "C" __global__ void __launch_bounds__(256)
    reduce_stats(const float* __restrict__ row_loss, const float* __restrict__ row_margin,
                 long long row_stride, int n_rows, double inv_n, double* __restrict__ out) {
    __shared__ double s_loss[256];
    __shared__ int s_correct[256];
    __shared__ float s_min[256];
    const int z = blockIdx.x, t = threadIdx.x;
    const float* loss = row_loss + (size_t)z * row_stride;
    const float* margin = row_margin + (size_t)z * row_stride;
    double l = 0.0;
    int correct = 0;
    float mn = CW_INF;
    for (int r = t; r < n_rows; r += 256) {
        l += (double)loss[r];
        const float mg = margin[r];
        correct += mg > 0.f ? 1 : 0;
        mn = fminf(mn, mg);
    }
    s_loss[t] = l;
    s_correct[t] = correct;
    s_min[t] = mn;
    __syncthreads();
    for (int o = 128; o > 0; o >>= 1) {
        if (t < o) {
            s_loss[t] += s_loss[t + o];
            s_correct[t] += s_correct[t + o];
            s_min[t] = fminf(s_min[t], s_min[t + o]);
        }
        __syncthreads();
    }
    if (t == 0) {
        out[z * 3 + 0] = s_loss[0] * inv_n;
        out[z * 3 + 1] = (double)s_correct[0];
        out[z * 3 + 2] = (double)s_min[0];
    }
}

// grid 1, block 1.
extern "C" __global__ void cw_param_sizes(int* out) {
    out[0] = (int)sizeof(FwdParams);
    out[1] = (int)sizeof(BwdParams);
    out[2] = (int)sizeof(FinalizeParams);
    out[3] = (int)sizeof(ControlParams);
    out[4] = (int)sizeof(UpdateParams);
}
