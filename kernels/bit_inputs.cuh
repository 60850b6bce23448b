// kernels/bit_inputs.cuh — the dense (bit-string) input layer as GEMM operands. Prepended
// by the host after common.cuh to every kernels/*.cu (src/engine/cuda/kernels.rs).
//
// A bit-string row stores its input as a mask in `pa` (bit j = input j, src/task/bits.rs);
// input j is x_j = x_set when the bit is set, else x_clear (±1 or 0/1: BitEncoding; the
// parameter structs carry them as small integers, common.cuh). The first layer is a dense
// n × m matrix U (n ≤ 32), so the pre-activation of neuron i is s_i = Σ_j x_j U[j][i], a
// K = n product. It is recomputed where it is needed — inside the operand load of the
// forward product (LoadBitsHiddenRowsK) and of the dW product (LoadBitsHiddenKRows), and
// in the dhidden epilogue (bits_act_grad_tile) — so X, S and σ(S) never exist in global
// memory: the same trade the token gather makes (LoadHidden* in common.cuh), at n FMAs
// per element instead of one add. All three are laid out so that a thread's elements
// share one neuron column: the n reads of U[·][i] serve all of the thread's rows (E·n
// FMAs per n loads, U stays in L1).
// The one product that must see X explicitly, dU = Xᵀ·dS, is in dense_input.cu
// (LoadBitsKRows is its A operand).
//
// Sums over the bits run j = 0, 1, …, n−1 with fmaf: the same order every time, so a
// dense pass is as bit-reproducible as a token pass.

__device__ __forceinline__ float bit_x(u32 mask, int j, float x_set, float x_clear) {
    return ((mask >> j) & 1u) ? x_set : x_clear;
}

// Forward product's A operand, rows = pairs, k = neurons: X[r][i] = σ(s_i(row r)).
// A thread's column i = k0 + threadIdx.x % BK is the same for all its E rows
// (threadIdx.x / BK + j·THREADS/BK), whose masks are read once in setup. A row past the
// last reads as mask 0: a row of A only reaches the same row of C, which the epilogue
// never writes, so it needs no zeroing (one register less than a validity flag; this is
// what keeps fwd_ce_bits_bn128 at 128 registers without spills under TF32). Neurons past
// m are the contraction index and must be zero.
template <int ROWS, int BK, int THREADS>
struct LoadBitsHiddenRowsK {
    static_assert(THREADS % BK == 0, "a thread's elements must share one neuron column");
    static constexpr int E = ROWS * BK / THREADS, STEP = THREADS / BK;
    const float* u;
    int m, bits, act, act_k;
    float x_set, x_clear;
    u32 mask[E];
    float r[E];
    template <class Params>
    __device__ __forceinline__ void setup(const Params& P, int z, int row0, int nrows) {
        u = P.u + (size_t)z * P.emb_stride;
        m = P.m;
        bits = P.bits;
        act = P.act;
        act_k = P.act_k;
        x_set = P.x_set;
        x_clear = P.x_clear;
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int row = row0 + (int)threadIdx.x / BK + j * STEP;
            mask[j] = row < nrows ? __ldg(P.pa + row) : 0u;
        }
    }
    __device__ __forceinline__ void load(int k0) {
        const int i = k0 + (int)threadIdx.x % BK;
        float s[E];
#pragma unroll
        for (int j = 0; j < E; ++j) s[j] = 0.f;
        if (i < m)
            for (int b = 0; b < bits; ++b) {
                const float ub = __ldg(u + (size_t)b * m + i);
#pragma unroll
                for (int j = 0; j < E; ++j) s[j] = fmaf(bit_x(mask[j], b, x_set, x_clear), ub, s[j]);
            }
#pragma unroll
        for (int j = 0; j < E; ++j)
            r[j] = i < m ? act_value(act, act_k, s[j]) : 0.f;
    }
    __device__ __forceinline__ void store(float* S) const {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int e = threadIdx.x + j * THREADS;
            S[(e % BK) * (ROWS + 8) + e / BK] = smem_value(r[j]);
        }
    }
};

// dW product's B operand, rows = neurons, k = pairs: X[i][r] = σ(s_i(row r)). A thread's
// neuron i = row0 + threadIdx.x % ROWS is fixed for the whole kernel; its E pairs of a slab
// are k0 + threadIdx.x / ROWS + j·THREADS/ROWS.
template <int ROWS, int BK, int THREADS>
struct LoadBitsHiddenKRows {
    static_assert(THREADS % ROWS == 0, "a thread's elements must share one neuron");
    static constexpr int E = ROWS * BK / THREADS, STEP = THREADS / ROWS;
    const float* u;
    const u32* pa;
    int m, i, kend, bits, act, act_k;
    float x_set, x_clear;
    float r[E];
    template <class Params>
    __device__ __forceinline__ void setup(const Params& P, int z, int i0, int k_end) {
        u = P.u + (size_t)z * P.emb_stride;
        pa = P.pa;
        m = P.m;
        i = i0 + (int)threadIdx.x % ROWS;
        kend = k_end;
        bits = P.bits;
        act = P.act;
        act_k = P.act_k;
        x_set = P.x_set;
        x_clear = P.x_clear;
    }
    // Pairs past kend are the contraction index and must be zero; a neuron past m is a
    // column of C never written, and its s stays 0 (σ(0) = 0 for every activation).
    __device__ __forceinline__ void load(int k0) {
        const int k = k0 + (int)threadIdx.x / ROWS;
        u32 mask[E];
#pragma unroll
        for (int j = 0; j < E; ++j) {
            mask[j] = k + j * STEP < kend ? __ldg(pa + k + j * STEP) : 0u;
            r[j] = 0.f;
        }
        if (i < m)
            for (int b = 0; b < bits; ++b) {
                const float ub = __ldg(u + (size_t)b * m + i);
#pragma unroll
                for (int j = 0; j < E; ++j) r[j] = fmaf(bit_x(mask[j], b, x_set, x_clear), ub, r[j]);
            }
#pragma unroll
        for (int j = 0; j < E; ++j)
            r[j] = k + j * STEP < kend ? act_value(act, act_k, r[j]) : 0.f;
    }
    __device__ __forceinline__ void store(float* S) const {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int e = threadIdx.x + j * THREADS;
            S[(e / ROWS) * (ROWS + 8) + e % ROWS] = smem_value(r[j]);
        }
    }
};

// dU product's A operand, rows = input bits, k = pairs: X[j][r] = x_j(row r). A thread's
// bit j = threadIdx.x % ROWS is fixed; bits past `bits` (and pairs past kend) are zero.
template <int ROWS, int BK, int THREADS>
struct LoadBitsKRows {
    static_assert(THREADS % ROWS == 0, "a thread's elements must share one bit");
    static constexpr int E = ROWS * BK / THREADS, STEP = THREADS / ROWS;
    const u32* pa;
    int bits, kend;
    float x_set, x_clear;
    float r[E];
    __device__ __forceinline__ void load(int k0) {
        const int j = (int)threadIdx.x % ROWS;
#pragma unroll
        for (int e = 0; e < E; ++e) {
            const int k = k0 + (int)threadIdx.x / ROWS + e * STEP;
            r[e] = (j < bits && k < kend) ? bit_x(__ldg(pa + k), j, x_set, x_clear) : 0.f;
        }
    }
    __device__ __forceinline__ void store(float* S) const {
#pragma unroll
        for (int e = 0; e < E; ++e) {
            const int idx = threadIdx.x + e * THREADS;
            S[(idx / ROWS) * (ROWS + 8) + idx % ROWS] = smem_value(r[e]);
        }
    }
};

// σ'(s) of a BM (pairs, from r0) × BN (neurons, from i0) tile of a dense pass, into
// shared memory `dg` ([BM][BN+1]), for the dhidden epilogue. Thread t owns neuron
// i0 + t % BN and BM·BN/THREADS of the rows, taken 8 at a time: per 8 rows, n loads of
// U[·][i] and 8·n FMAs, with only 8 masks and 8 sums live. (Recomputing s straight into
// the accumulator layout put the accumulators in local memory: the unrolled loops around
// a runtime loop over the bits were not unrolled.)
template <int BM, int BN, int THREADS, class Params>
__device__ __forceinline__ void bits_act_grad_tile(const Params& P, int z, int r0, int i0,
                                                   float* dg) {
    static_assert(THREADS % BN == 0 && BM % (THREADS / BN * 8) == 0, "whole 8-row groups");
    constexpr int ROWS = BM / (THREADS / BN);  // rows per thread
    const int col = (int)threadIdx.x % BN, first = (int)threadIdx.x / BN * ROWS;
    const int i = i0 + col;
    const float* u = P.u + (size_t)z * P.emb_stride;
    const float x_set = P.x_set, x_clear = P.x_clear;
    for (int r = first; r < first + ROWS; r += 8) {
        u32 mask[8];
        float s[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const int row = r0 + r + j;
            mask[j] = row < P.rows ? __ldg(P.pa + row) : 0u;
            s[j] = 0.f;
        }
        if (i < P.m)
            for (int b = 0; b < P.bits; ++b) {
                const float ub = __ldg(u + (size_t)b * P.m + i);
#pragma unroll
                for (int j = 0; j < 8; ++j) s[j] = fmaf(bit_x(mask[j], b, x_set, x_clear), ub, s[j]);
            }
#pragma unroll
        for (int j = 0; j < 8; ++j) dg[(r + j) * (BN + 1) + col] = act_grad(P.act, P.act_k, s[j]);
    }
}
