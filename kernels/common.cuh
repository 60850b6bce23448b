// kernels/common.cuh — prepended by the host to every kernels/*.cu before NVRTC compiles
// it (NVRTC gets one self-contained source string: no include paths, no CUDA headers),
// followed by bit_inputs.cuh (the dense-input loaders, which build on this file's).
//
// What lives here:
//  * the parameter structs every kernel takes by value (mirrored field for field by
//    #[repr(C)] structs in src/engine/cuda/params.rs; `cw_param_sizes` in reduce.cu lets
//    the host check the two layouts agree on the device at start-up),
//  * σ and σ' (runtime-selected: a uniform branch, not worth a template instance each),
//  * warp reductions with a fixed butterfly order (so every reduction is deterministic),
//  * the block-tiled GEMM main loop used by the forward product and both backward
//    products, with three inner-product engines chosen at compile time by CW_MMA:
//        0: exact fp32 FMA on the CUDA cores (the default),
//        1: TF32 tensor cores, mma.sync.m16n8k8, fp32 accumulate (opt-in),
//        2: bf16 tensor cores, mma.sync.m16n8k16, fp32 accumulate (opt-in).
//    All three give every lane the same accumulators (the mma C-fragment layout), so each
//    epilogue is written once.
//
// GEMM tiling: a block computes a BM×BN tile of C = A·B with (BM/WM)×(BN/WN) warps; a
// warp owns WM×WN = MT×NT fragments of 16×8. The K loop walks BK-deep slabs. Operands
// travel global → registers → shared memory, where both are stored k-major (S[k][row]),
// padded by 8 floats per k so the fragment reads of all three engines hit 32 distinct
// banks. Shared memory is double-buffered: slab k+1 is loaded into registers while slab k
// is multiplied, so there is one __syncthreads per slab. Operands are produced by
// "loader" structs, so an operand can be computed on the fly: the hidden activation
// σ(U[a]+V[b]) is made inside the operand load and never exists in global memory.

#ifndef CW_MMA
#define CW_MMA 0
#endif

typedef unsigned int u32;
typedef unsigned long long u64;

#define CW_INF __int_as_float(0x7f800000)

// ---------------------------------------------------------------------------------------
// Parameter structs (8-byte fields first, then 4-byte fields; each padded to 8 bytes).
// Keep in sync with src/engine/cuda/params.rs.

// Forward product + loss epilogue, and the stand-alone row epilogue (ce_rows).
struct FwdParams {
    const float* u;        // model 0's U (n_in × m, token-major); model z at + z*emb_stride
    const float* v;        // model 0's V (may equal u: tied embeddings)
    const float* w;        // model 0's W (n_out × m); model z at + z*w_stride
    const u32* pa;         // first input of each row of this chunk
    const u32* pb;         // second input
    const u32* py;         // label
    float* g;              // chunk buffer [B][rows][n_out]: logits, then dL/dlogits
    float* row_loss;       // per-row loss (before the 1/N mean), [B] × row_stride, chunk-offset
    float* row_margin;     // per-row margin f_y − max_{c≠y} f_c, same layout
    long long emb_stride;  // elements between consecutive models' U (and V)
    long long w_stride;    // elements between consecutive models' W
    long long g_stride;    // elements between consecutive models' chunk buffers (rows*n_out)
    long long row_stride;  // elements between consecutive models' row stats (all rows)
    int rows;              // rows (pairs) in this chunk
    int m;                 // hidden width
    int n_out;             // classes
    int act;               // 0 square, 1 relu, 2 pow
    int act_k;             // power for act == 2
    int loss;              // 0 cross-entropy, 1 mse
    int write_g;           // 1: write dL/dlogits (training), 0: statistics only
    int fused;             // 1: the whole row is in this block (n_out <= BN): epilogue here
    float inv_n;           // 1 / (number of pairs of the whole pass)
    // Dense (bit-string) input of `bits` bits, pa = masks; 0: tokens. A set bit is the
    // input x_set, a clear one x_clear (bit_inputs.cuh; ±1 or 0/1, so integers). Packed
    // in the 4 bytes that were padding: a larger struct changes how NVVM schedules the
    // parameter loads, and with it the token kernels' registers (dw_partial_m32 fp32
    // went from 128 to 146: 3 blocks per SM instead of 4).
    short bits;
    signed char x_set;
    signed char x_clear;
};

// dW partial products (split over rows) and D = G·W with the σ' epilogue.
struct BwdParams {
    const float* u;
    const float* v;
    const float* w;
    const u32* pa;
    const u32* pb;
    const float* g;        // chunk buffer [B][rows][n_out] holding dL/dlogits
    float* dw_part;        // [B][splits][n_out][m] partial dW (dw_partial)
    float* ds;             // [B][rows][m] σ'(s) ⊙ (G·W) (dhidden)
    long long emb_stride;
    long long w_stride;
    long long g_stride;
    long long ds_stride;   // rows*m
    int rows;
    int m;
    int n_out;
    int act;
    int act_k;
    int splits;            // row splits of dw_partial (blockIdx.z = model*splits + split)
    int rows_per_split;    // multiple of the K slab
    short bits;            // as FwdParams (the padding slot, for the same reason)
    signed char x_set;
    signed char x_clear;
};

// Per-model end of a training step: regularizer value, divergence flag, metrics ring.
struct FinalizeParams {
    const double* stats;   // [B][3]: mean data loss, correct count, min margin (reduce_stats)
    const double* norms;   // [B][m]: ‖u_i‖² + ‖v_i‖² + ‖w_i‖² (neuron_norms)
    const u64* ctl;        // control block (read: step)
    double* ring;          // [ring_len][B][4]: loss, reg, correct, min margin
    int* bad;              // [B]: 1 when the model's total loss is not finite
    const double* hypers;  // [B][HYPER_WORDS]: per-model lr, weight decay, reg λ, Grokfast λ
    double reg_q;          // q of L2k (reg == 3)
    int batch;
    int m;
    int ring_len;
    int reg;               // 0 none, 1 L2 = (λ/2)Σn_i, 2 L23 = λΣn_i^{3/2}, 3 L2k = λΣn_i^{q/2}
};

// Once per step, one warp: divergence bookkeeping and the step's optimizer scalars.
struct ControlParams {
    u64* ctl;
    const int* bad;        // [B]
    const u64* milestones; // sorted steps at which lr is multiplied by lr_factor
    double* ring_lr;       // [ring_len][B]: each model's lr of the step
    const double* hypers;  // [B][HYPER_WORDS]
    double* model_ctl;     // [B][MCTL_WORDS]: the step's lr, AdamW decay and step size
    double lr_factor;
    double beta1;
    double beta2;
    double warmup_steps;   // linear warm-up length (0: none), as Recipe::warmup_factor
    int batch;
    int n_milestones;
    int ring_len;
    int pad0;
};

// The fused regularizer-gradient + Grokfast + GD/AdamW update over U, V, W.
struct UpdateParams {
    float* u;              // parameters = effective weights (unfactored models)
    float* v;              // unused when tied
    float* w;
    const float* du;       // gradients of the data loss w.r.t. the effective weights
    const float* dv;
    const float* dw;
    float* adam_m;         // [u | v | w] moments (null unless AdamW), same layout as params
    float* adam_v;
    float* ema;            // Grokfast EMA (null unless grokfast == 1)
    float* ma_ring;        // Grokfast-MA window: ma_window slots of ma_stride floats, each
                           // laid out like [u | v | w] (null unless grokfast == 2)
    const double* norms;   // [B][m]
    const u64* ctl;        // diverged flag, ema_ready, AdamW's bias-2 correction
    const double* hypers;  // [B][HYPER_WORDS]: reg λ and Grokfast λ per model
    const double* model_ctl; // [B][MCTL_WORDS]: the step's lr, decay, step size per model
    long long emb_len;     // B*n_in*m
    long long w_len;       // B*n_out*m
    long long ma_stride;   // floats per ring slot: all parameters of the batch
    double reg_q;          // q of L2k (reg == 3)
    int n_in;
    int n_out;
    int m;
    int tied;
    int kind;              // 0 gd, 1 adamw
    int reg;               // 0 none, 1 L2, 2 L23, 3 L2k
    // f32 constants converted on the host from f64 exactly as src/optim.rs does
    float beta1;
    float beta2;
    float one_minus_beta1;
    float one_minus_beta2;
    float eps;
    float ga_alpha;
    float one_minus_ga_alpha;
    int grokfast;          // 0 no model filters, 1 EMA, 2 MA (its buffer exists)
    int ma_window;         // slots of the MA ring (>= 1 when grokfast == 2)
    int ma_warmup;         // 1: no MA filtering until the ring is full
    int pad0;
};

// Control block layout (u64 words, f64 stored as bits).
#define CTL_STEP 0
#define CTL_DIVERGED 1
#define CTL_DIVERGED_MODEL 2
#define CTL_DIVERGED_STEP 3
#define CTL_EMA_READY 4
#define CTL_INV_SQRT_BIAS2 5
#define CTL_MA_HEAD 6      // Grokfast-MA ring slot this step writes
#define CTL_MA_LEN 7       // gradients the ring holds before this step's
#define CTL_WORDS 8

// Per-model hyperparameters (f64 words of `hypers`, uploaded once) and per-model step
// scalars (f64 words of `model_ctl`, written by step_control every step).
#define HYPER_LR 0
#define HYPER_WEIGHT_DECAY 1
#define HYPER_REG_LAMBDA 2
#define HYPER_GROKFAST_LAMBDA 3
#define HYPER_WORDS 4
#define MCTL_LR 0
#define MCTL_DECAY 1
#define MCTL_STEP_SIZE 2
#define MCTL_WORDS 3

// ---------------------------------------------------------------------------------------
// Activations. Pow(k): x^k by repeated multiplication, exactly as the CPU engine does.

__device__ __forceinline__ float act_value(int act, int k, float x) {
    if (act == 0) return x * x;
    if (act == 1) return x > 0.f ? x : 0.f;
    float r = x;
    for (int j = 1; j < k; ++j) r *= x;
    return r;
}

__device__ __forceinline__ float act_grad(int act, int k, float x) {
    if (act == 0) return x + x;
    if (act == 1) return x > 0.f ? 1.f : 0.f;
    float r = 1.f;
    for (int j = 1; j < k; ++j) r *= x;
    return r * (float)k;
}

// ---------------------------------------------------------------------------------------
// Warp reductions: xor butterflies, so every lane ends with the same value and the order
// of the additions is fixed (bit-identical results run to run).

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

__device__ __forceinline__ double warp_sum_d(double x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

// ---------------------------------------------------------------------------------------
// Tensor-core helpers (inline PTX; sm_80+). Left out of the host-side emulation of the
// fp32 path (kernels/emulate/), which has no PTX.
#ifndef CW_HOST_EMULATION

__device__ __forceinline__ u32 to_tf32(float x) {
    u32 r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// Packs two floats as bf16x2: `lo` in the low half (the smaller k index), `hi` high.
__device__ __forceinline__ u32 pack_bf16(float lo, float hi) {
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

__device__ __forceinline__ void mma_tf32(float (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3,
                                         u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3,
                                         u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

#endif  // CW_HOST_EMULATION

// Value as stored in shared memory: TF32 operands are rounded once, at the store.
__device__ __forceinline__ float smem_value(float x) {
#if CW_MMA == 1
    return __uint_as_float(to_tf32(x));
#else
    return x;
#endif
}

// ---------------------------------------------------------------------------------------
// Tile configuration.

template <int BM_, int BN_, int BK_, int WM_, int WN_>
struct TileCfg {
    static constexpr int BM = BM_, BN = BN_, BK = BK_, WM = WM_, WN = WN_;
    static constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN;
    static constexpr int THREADS = WARPS_M * WARPS_N * 32;
    static constexpr int MT = WM / 16, NT = WN / 8;
    static constexpr int LDA = BM + 8, LDB = BN + 8;
    // floats of shared memory the main loop needs (two buffers of each operand)
    static constexpr int SMEM = 2 * BK * (LDA + LDB);
    static_assert(WM % 16 == 0 && WN % 8 == 0, "warp tile must be whole fragments");
    static_assert(BK % 16 == 0, "slab depth must be a multiple of 16 (bf16 k16 steps)");
    static_assert((BM * BK) % THREADS == 0 && (BN * BK) % THREADS == 0, "even loads");
};

// ---------------------------------------------------------------------------------------
// Loaders. Each fills a ROWS×BK operand tile, stored k-major as S[k*(ROWS+8) + row].
// `load(k0)` reads slab k0 into registers; `store(S)` writes them to shared memory.
// Out-of-range elements (row >= nrows, k >= kend) are zero, so partial tiles just work.

// X[row][k] = p[row*ld + k]: contiguous along k. Thread mapping: k fastest (coalesced).
template <int ROWS, int BK, int THREADS>
struct LoadRowsK {
    static constexpr int E = ROWS * BK / THREADS;
    const float* p;
    int ld, nrows, row0, kend;
    float r[E];
    __device__ __forceinline__ void load(int k0) {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int e = threadIdx.x + j * THREADS;
            const int row = row0 + e / BK, k = k0 + e % BK;
            r[j] = (row < nrows && k < kend) ? __ldg(p + (size_t)row * ld + k) : 0.f;
        }
    }
    __device__ __forceinline__ void store(float* S) const {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int e = threadIdx.x + j * THREADS;
            S[(e % BK) * (ROWS + 8) + e / BK] = smem_value(r[j]);
        }
    }
};

// X[row][k] = p[k*ld + row]: contiguous along row. Thread mapping: row fastest.
template <int ROWS, int BK, int THREADS>
struct LoadKRows {
    static constexpr int E = ROWS * BK / THREADS;
    const float* p;
    int ld, nrows, row0, kend;
    float r[E];
    __device__ __forceinline__ void load(int k0) {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int e = threadIdx.x + j * THREADS;
            const int row = row0 + e % ROWS, k = k0 + e / ROWS;
            r[j] = (row < nrows && k < kend) ? __ldg(p + (size_t)k * ld + row) : 0.f;
        }
    }
    __device__ __forceinline__ void store(float* S) const {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int e = threadIdx.x + j * THREADS;
            S[(e / ROWS) * (ROWS + 8) + e % ROWS] = smem_value(r[j]);
        }
    }
};

// Hidden activations with rows = pairs and k = neurons (forward product's A operand):
// X[r][i] = σ(U[a_r][i] + V[b_r][i]). A thread's rows are the same in every slab, so
// their embedding-row offsets are looked up once (row_off_u/v, -1 past the last row).
template <int ROWS, int BK, int THREADS>
struct LoadHiddenRowsK {
    static constexpr int E = ROWS * BK / THREADS;
    const float* u;
    const float* v;
    int kend, act, act_k;
    int off_u[E], off_v[E];
    float r[E];
    // Model z's tile from row `row0` of `nrows` (P: FwdParams or BwdParams).
    template <class Params>
    __device__ __forceinline__ void setup(const Params& P, int z, int row0, int nrows) {
        u = P.u + (size_t)z * P.emb_stride;
        v = P.v + (size_t)z * P.emb_stride;
        kend = P.m;
        act = P.act;
        act_k = P.act_k;
        init(P.pa, P.pb, row0, nrows, P.m);
    }
    __device__ __forceinline__ void init(const u32* pa, const u32* pb, int row0, int nrows,
                                         int m) {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int row = row0 + (threadIdx.x + j * THREADS) / BK;
            off_u[j] = row < nrows ? (int)__ldg(pa + row) * m : -1;
            off_v[j] = row < nrows ? (int)__ldg(pb + row) * m : -1;
        }
    }
    __device__ __forceinline__ void load(int k0) {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int k = k0 + (threadIdx.x + j * THREADS) % BK;
            r[j] = (off_u[j] >= 0 && k < kend)
                       ? act_value(act, act_k, __ldg(u + off_u[j] + k) + __ldg(v + off_v[j] + k))
                       : 0.f;
        }
    }
    __device__ __forceinline__ void store(float* S) const {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int e = threadIdx.x + j * THREADS;
            S[(e % BK) * (ROWS + 8) + e / BK] = smem_value(r[j]);
        }
    }
};

// Hidden activations with k = pairs and rows = neurons (dW product's B operand):
// X[i][r] = σ(U[a_r][i] + V[b_r][i]), contiguous along i. The pair indices of a slab
// are read through the read-only cache (every lane of a warp reads the same ones).
template <int ROWS, int BK, int THREADS>
struct LoadHiddenKRows {
    static constexpr int E = ROWS * BK / THREADS;
    const float* u;
    const float* v;
    const u32* pa;
    const u32* pb;
    int m, row0, kend, act, act_k;
    float r[E];
    // Model z's neurons from `i0`, pairs below `k_end` (P: BwdParams).
    template <class Params>
    __device__ __forceinline__ void setup(const Params& P, int z, int i0, int k_end) {
        u = P.u + (size_t)z * P.emb_stride;
        v = P.v + (size_t)z * P.emb_stride;
        pa = P.pa;
        pb = P.pb;
        m = P.m;
        row0 = i0;
        kend = k_end;
        act = P.act;
        act_k = P.act_k;
    }
    __device__ __forceinline__ void load(int k0) {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int e = threadIdx.x + j * THREADS;
            const int i = row0 + e % ROWS, k = k0 + e / ROWS;
            float x = 0.f;
            if (i < m && k < kend) {
                const int a = (int)__ldg(pa + k), b = (int)__ldg(pb + k);
                x = act_value(act, act_k, __ldg(u + a * m + i) + __ldg(v + b * m + i));
            }
            r[j] = x;
        }
    }
    __device__ __forceinline__ void store(float* S) const {
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int e = threadIdx.x + j * THREADS;
            S[(e / ROWS) * (ROWS + 8) + e % ROWS] = smem_value(r[j]);
        }
    }
};

// ---------------------------------------------------------------------------------------
// The main loop. acc[mt][nt][q] holds C at
//   row = wm0 + mt*16 + (lane>>2) + 8*(q>>1),  col = wn0 + nt*8 + 2*(lane&3) + (q&1)
// (block-relative), for every engine. K runs over [k_begin, k_end) in BK slabs.

template <class Cfg>
struct Frag {
    float acc[Cfg::MT][Cfg::NT][4];
};

template <class Cfg>
__device__ __forceinline__ int warp_row0() {
    return ((threadIdx.x >> 5) / Cfg::WARPS_N) * Cfg::WM;
}
template <class Cfg>
__device__ __forceinline__ int warp_col0() {
    return ((threadIdx.x >> 5) % Cfg::WARPS_N) * Cfg::WN;
}

template <class Cfg>
__device__ __forceinline__ void mma_slab(const float* __restrict__ As,
                                         const float* __restrict__ Bs, Frag<Cfg>& f) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int wm0 = warp_row0<Cfg>(), wn0 = warp_col0<Cfg>();
    constexpr int LDA = Cfg::LDA, LDB = Cfg::LDB, MT = Cfg::MT, NT = Cfg::NT;
#if CW_MMA == 0
    // Exact fp32: rank-1 updates, in k order (deterministic, same as a plain loop).
#pragma unroll
    for (int k = 0; k < Cfg::BK; ++k) {
        float a[MT][2], b[NT][2];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            a[mt][0] = As[k * LDA + wm0 + mt * 16 + g];
            a[mt][1] = As[k * LDA + wm0 + mt * 16 + g + 8];
        }
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            const float2 bb =
                *reinterpret_cast<const float2*>(Bs + k * LDB + wn0 + nt * 8 + 2 * t);
            b[nt][0] = bb.x;
            b[nt][1] = bb.y;
        }
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                f.acc[mt][nt][0] = fmaf(a[mt][0], b[nt][0], f.acc[mt][nt][0]);
                f.acc[mt][nt][1] = fmaf(a[mt][0], b[nt][1], f.acc[mt][nt][1]);
                f.acc[mt][nt][2] = fmaf(a[mt][1], b[nt][0], f.acc[mt][nt][2]);
                f.acc[mt][nt][3] = fmaf(a[mt][1], b[nt][1], f.acc[mt][nt][3]);
            }
    }
#elif CW_MMA == 1
    // TF32: m16n8k8 fragments; the values were rounded to tf32 when stored.
#pragma unroll
    for (int kk = 0; kk < Cfg::BK; kk += 8) {
        u32 a[MT][4], b[NT][2];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            const int r0 = wm0 + mt * 16 + g;
            a[mt][0] = __float_as_uint(As[(kk + t) * LDA + r0]);
            a[mt][1] = __float_as_uint(As[(kk + t) * LDA + r0 + 8]);
            a[mt][2] = __float_as_uint(As[(kk + t + 4) * LDA + r0]);
            a[mt][3] = __float_as_uint(As[(kk + t + 4) * LDA + r0 + 8]);
        }
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            const int c0 = wn0 + nt * 8 + g;
            b[nt][0] = __float_as_uint(Bs[(kk + t) * LDB + c0]);
            b[nt][1] = __float_as_uint(Bs[(kk + t + 4) * LDB + c0]);
        }
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
                mma_tf32(f.acc[mt][nt], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b[nt][0],
                         b[nt][1]);
    }
#else
    // bf16 inputs, fp32 accumulate: m16n8k16 fragments packed from the fp32 tiles.
#pragma unroll
    for (int kk = 0; kk < Cfg::BK; kk += 16) {
        u32 a[MT][4], b[NT][2];
        const int k0 = kk + 2 * t;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            const int r0 = wm0 + mt * 16 + g;
            a[mt][0] = pack_bf16(As[k0 * LDA + r0], As[(k0 + 1) * LDA + r0]);
            a[mt][1] = pack_bf16(As[k0 * LDA + r0 + 8], As[(k0 + 1) * LDA + r0 + 8]);
            a[mt][2] = pack_bf16(As[(k0 + 8) * LDA + r0], As[(k0 + 9) * LDA + r0]);
            a[mt][3] = pack_bf16(As[(k0 + 8) * LDA + r0 + 8], As[(k0 + 9) * LDA + r0 + 8]);
        }
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            const int c0 = wn0 + nt * 8 + g;
            b[nt][0] = pack_bf16(Bs[k0 * LDB + c0], Bs[(k0 + 1) * LDB + c0]);
            b[nt][1] = pack_bf16(Bs[(k0 + 8) * LDB + c0], Bs[(k0 + 9) * LDB + c0]);
        }
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
                mma_bf16(f.acc[mt][nt], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b[nt][0],
                         b[nt][1]);
    }
#endif
}

// C tile += A[k_begin..k_end) · B[k_begin..k_end). `smem` holds Cfg::SMEM floats.
// Ends with a __syncthreads, so the caller may reuse `smem` right away.
template <class Cfg, class LA, class LB>
__device__ __forceinline__ void gemm_mainloop(LA& la, LB& lb, int k_begin, int k_end,
                                              float* smem, Frag<Cfg>& f) {
    float* As = smem;                          // [2][BK][LDA]
    float* Bs = smem + 2 * Cfg::BK * Cfg::LDA; // [2][BK][LDB]
#pragma unroll
    for (int mt = 0; mt < Cfg::MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < Cfg::NT; ++nt)
#pragma unroll
            for (int q = 0; q < 4; ++q) f.acc[mt][nt][q] = 0.f;
    if (k_begin >= k_end) return;
    la.load(k_begin);
    lb.load(k_begin);
    la.store(As);
    lb.store(Bs);
    __syncthreads();
    int buf = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += Cfg::BK) {
        const bool next = k0 + Cfg::BK < k_end;
        if (next) {
            la.load(k0 + Cfg::BK);
            lb.load(k0 + Cfg::BK);
        }
        mma_slab<Cfg>(As + buf * Cfg::BK * Cfg::LDA, Bs + buf * Cfg::BK * Cfg::LDB, f);
        if (next) {
            la.store(As + (buf ^ 1) * Cfg::BK * Cfg::LDA);
            lb.store(Bs + (buf ^ 1) * Cfg::BK * Cfg::LDB);
        }
        __syncthreads();
        buf ^= 1;
    }
}

// Calls fn(row, col, value) for every accumulator of this lane (block-relative coords).
template <class Cfg, class Fn>
__device__ __forceinline__ void for_each_acc(const Frag<Cfg>& f, Fn fn) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int wm0 = warp_row0<Cfg>(), wn0 = warp_col0<Cfg>();
#pragma unroll
    for (int mt = 0; mt < Cfg::MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < Cfg::NT; ++nt)
#pragma unroll
            for (int q = 0; q < 4; ++q)
                fn(wm0 + mt * 16 + g + 8 * (q >> 1), wn0 + nt * 8 + 2 * t + (q & 1),
                   f.acc[mt][nt][q]);
}
