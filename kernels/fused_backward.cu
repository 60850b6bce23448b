// kernels/fused_backward.cu — the two backward products, with the hidden layer recomputed.
//
// dw_partial: dW (n_out × m) = Gᵀ · H over this chunk's rows. The contraction runs over
//   the pairs, which are many while dW is small, so the rows are split `splits` ways
//   (blockIdx.z = model*splits + split) and every split writes its own partial dW; reduce.cu
//   sums the partials in split order (deterministic: no atomics anywhere). The B operand
//   H = σ(U[a]+V[b]) is recomputed inside the operand load (LoadHiddenKRows) instead of
//   being read back: it was never stored.
//
// dhidden: D (rows × m) = G · W, and in the epilogue dS = σ'(U[a]+V[b]) ⊙ D, recomputing
//   the pre-activation from the embeddings. dS goes to a chunk buffer from which
//   embed_segsum (reduce.cu) forms dU[a] = Σ_b dS and dV[b] = Σ_a dS as fixed-order
//   segmented sums (the deterministic alternative to scattering with atomics).
//
// Both use 64×64 tiles of 4 warps (32×32 each); dw_partial_m32 is the variant for
// n_out <= 32, where a 64-row class tile would be mostly padding.
//
// Dense (bit-string) passes run the same products with H = σ(X·U) built from the masks
// (dw_partial_bits*, LoadBitsHiddenKRows) and dS = σ'(X·U) ⊙ D (dhidden_bits,
// bits_act_grad_tile; both in bit_inputs.cuh); their dU = Xᵀ·dS is dense_input.cu's, in
// place of embed_segsum.

typedef TileCfg<64, 64, 16, 32, 32> BwdCfg64;   // 128 threads
typedef TileCfg<32, 64, 16, 16, 32> BwdCfg32;   // 128 threads

// `Hidden` builds the B operand: LoadHiddenKRows (tokens) or LoadBitsHiddenKRows (bits).
template <class Cfg, template <int, int, int> class Hidden>
__device__ __forceinline__ void dw_body(const BwdParams& P) {
    __shared__ __align__(16) float smem[Cfg::SMEM];
    const int z = blockIdx.z / P.splits, split = blockIdx.z % P.splits;
    const int c0 = blockIdx.y * Cfg::BM;  // first class
    const int i0 = blockIdx.x * Cfg::BN;  // first neuron
    const int k_begin = split * P.rows_per_split;
    const int k_end = min(P.rows, k_begin + P.rows_per_split);

    // A(c, r) = G[r][c]: contiguous along the class index (the tile's rows).
    LoadKRows<Cfg::BM, Cfg::BK, Cfg::THREADS> la;
    la.p = P.g + (size_t)z * P.g_stride;
    la.ld = P.n_out;
    la.nrows = P.n_out;
    la.row0 = c0;
    la.kend = k_end;
    // B(r, i) = σ(s_i(row r)), recomputed.
    Hidden<Cfg::BN, Cfg::BK, Cfg::THREADS> lb;
    lb.setup(P, z, i0, k_end);

    Frag<Cfg> f;
    gemm_mainloop<Cfg>(la, lb, k_begin, k_end, smem, f);

    float* out = P.dw_part + ((size_t)z * P.splits + split) * ((size_t)P.n_out * P.m);
    for_each_acc<Cfg>(f, [&](int r, int c, float x) {
        const int cls = c0 + r, i = i0 + c;
        if (cls < P.n_out && i < P.m) out[(size_t)cls * P.m + i] = x;
    });
}

// grid (ceil(m/64), ceil(n_out/64), B*splits); block 128.
extern "C" __global__ void __launch_bounds__(128, 3) dw_partial(BwdParams P) {
    dw_body<BwdCfg64, LoadHiddenKRows>(P);
}
// grid (ceil(m/64), ceil(n_out/32), B*splits); block 128.
extern "C" __global__ void __launch_bounds__(128, 3) dw_partial_m32(BwdParams P) {
    dw_body<BwdCfg32, LoadHiddenKRows>(P);
}
// The same two for a dense (bit-string) pass: H = σ(X·U) from the masks in pa.
extern "C" __global__ void __launch_bounds__(128, 3) dw_partial_bits(BwdParams P) {
    dw_body<BwdCfg64, LoadBitsHiddenKRows>(P);
}
extern "C" __global__ void __launch_bounds__(128, 3) dw_partial_bits_m32(BwdParams P) {
    dw_body<BwdCfg32, LoadBitsHiddenKRows>(P);
}

// D = G·W for the 64×64 tile of rows from r0 and neurons from i0 of model z.
__device__ __forceinline__ void dhidden_product(const BwdParams& P, int z, int r0, int i0,
                                                float* smem, Frag<BwdCfg64>& f) {
    typedef BwdCfg64 Cfg;
    // A(r, c) = G[r][c]: contiguous along k (classes).
    LoadRowsK<Cfg::BM, Cfg::BK, Cfg::THREADS> la;
    la.p = P.g + (size_t)z * P.g_stride;
    la.ld = P.n_out;
    la.nrows = P.rows;
    la.row0 = r0;
    la.kend = P.n_out;
    // B(c, i) = W[c][i]: contiguous along the neuron index (the tile's columns).
    LoadKRows<Cfg::BN, Cfg::BK, Cfg::THREADS> lb;
    lb.p = P.w + (size_t)z * P.w_stride;
    lb.ld = P.m;
    lb.nrows = P.m;
    lb.row0 = i0;
    lb.kend = P.n_out;

    gemm_mainloop<Cfg>(la, lb, 0, P.n_out, smem, f);
}

// grid (ceil(m/64), ceil(rows/64), B); block 128.
extern "C" __global__ void __launch_bounds__(128, 3) dhidden(BwdParams P) {
    typedef BwdCfg64 Cfg;
    __shared__ __align__(16) float smem[Cfg::SMEM];
    const int z = blockIdx.z;
    const int r0 = blockIdx.y * Cfg::BM;  // first row (pair)
    const int i0 = blockIdx.x * Cfg::BN;  // first neuron
    const float* u = P.u + (size_t)z * P.emb_stride;
    const float* v = P.v + (size_t)z * P.emb_stride;
    Frag<Cfg> f;
    dhidden_product(P, z, r0, i0, smem, f);

    // Epilogue: dS = D ⊙ σ'(U[a]+V[b]). The embedding-row offsets of this lane's rows
    // are looked up once per row (2·MT rows per lane), not once per element.
    float* ds = P.ds + (size_t)z * P.ds_stride;
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int wm0 = warp_row0<Cfg>(), wn0 = warp_col0<Cfg>();
#pragma unroll
    for (int mt = 0; mt < Cfg::MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = r0 + wm0 + mt * 16 + g + 8 * h;
            if (row >= P.rows) continue;
            const float* ua = u + (size_t)__ldg(P.pa + row) * P.m;
            const float* vb = v + (size_t)__ldg(P.pb + row) * P.m;
            float* out = ds + (size_t)row * P.m;
#pragma unroll
            for (int nt = 0; nt < Cfg::NT; ++nt)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int i = i0 + wn0 + nt * 8 + 2 * t + c;
                    if (i < P.m)
                        out[i] = f.acc[mt][nt][2 * h + c] *
                                 act_grad(P.act, P.act_k, __ldg(ua + i) + __ldg(vb + i));
                }
        }
}

// dhidden for a dense (bit-string) pass: dS = D ⊙ σ'(X·U), σ'(X·U) of the tile recomputed
// from the masks into shared memory once the product is done (bits_act_grad_tile,
// bit_inputs.cuh).
// grid (ceil(m/64), ceil(rows/64), B); block 128.
extern "C" __global__ void __launch_bounds__(128, 3) dhidden_bits(BwdParams P) {
    typedef BwdCfg64 Cfg;
    __shared__ __align__(16) float smem[Cfg::SMEM];
    const int z = blockIdx.z;
    const int r0 = blockIdx.y * Cfg::BM;
    const int i0 = blockIdx.x * Cfg::BN;
    Frag<Cfg> f;
    dhidden_product(P, z, r0, i0, smem, f);  // ends with a barrier: smem is free
    float* dg = smem;                        // [BM][BN+1] σ'(s), 16.6 KB of the 18 KB
    static_assert(Cfg::BM * (Cfg::BN + 1) <= Cfg::SMEM, "σ' tile fits the main loop's smem");
    bits_act_grad_tile<Cfg::BM, Cfg::BN, Cfg::THREADS>(P, z, r0, i0, dg);
    __syncthreads();
    float* ds = P.ds + (size_t)z * P.ds_stride;
    for_each_acc<Cfg>(f, [&](int r, int c, float x) {
        const int row = r0 + r, i = i0 + c;
        if (row < P.rows && i < P.m) ds[(size_t)row * P.m + i] = x * dg[r * (Cfg::BN + 1) + c];
    });
}
