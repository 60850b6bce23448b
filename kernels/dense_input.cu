// kernels/dense_input.cu — the input layer's gradient for a dense (bit-string) pass:
// dU (n × m) = Xᵀ · dS over the chunk's rows, X the rows × n inputs read from the masks.
//
// Where it sits (src/engine/cuda/device.rs, enqueue_pass): a dense pass runs the token
// pass's W-side kernels with the hidden layer σ(X·U) rebuilt from the masks instead of
// gathered (fwd_ce_bits_*, dw_partial_bits*, dhidden_bits; the operand loaders are in
// bit_inputs.cuh), then this product replaces embed_segsum's segmented sums: a token
// row touches one row of U, a bit-string row touches all n of them.
//
// Strategy: the contraction runs over the rows, which are many, while dU is small (n ≤ 32
// rows), so it is dw_partial's shape: one 32 (bits) × 64 (neurons) tile per block covers
// all n bits, the rows are split `splits` ways (blockIdx.z = model*splits + split), every
// split writes its own partial dU, and dw_reduce sums the partials in split order (no
// atomics: deterministic). A(j, r) = x_j(row r) comes straight from the masks
// (LoadBitsKRows, a select per element: no X tile in global memory), B(r, i) = dS[r][i]
// from the chunk buffer dhidden_bits wrote, read along the neurons (coalesced). The output
// of split s of model z is dw_part + (z·splits + s)·n·m; with one split and one chunk the
// host points dw_part at dU itself.

typedef TileCfg<32, 64, 16, 16, 32> DenseDuCfg;  // 2×2 warps, 128 threads

// grid (ceil(m/64), 1, B*splits); block 128. Needs bits <= 32 (one tile of bits).
extern "C" __global__ void __launch_bounds__(128, 3) dense_du_partial(BwdParams P) {
    typedef DenseDuCfg Cfg;
    __shared__ __align__(16) float smem[Cfg::SMEM];
    const int z = blockIdx.z / P.splits, split = blockIdx.z % P.splits;
    const int i0 = blockIdx.x * Cfg::BN;  // first neuron
    const int k_begin = split * P.rows_per_split;
    const int k_end = min(P.rows, k_begin + P.rows_per_split);

    LoadBitsKRows<Cfg::BM, Cfg::BK, Cfg::THREADS> la;
    la.pa = P.pa;
    la.bits = P.bits;
    la.kend = k_end;
    la.x_set = P.x_set;
    la.x_clear = P.x_clear;
    // B(r, i) = dS[r][i]: contiguous along the neuron index (the tile's columns).
    LoadKRows<Cfg::BN, Cfg::BK, Cfg::THREADS> lb;
    lb.p = P.ds + (size_t)z * P.ds_stride;
    lb.ld = P.m;
    lb.nrows = P.m;
    lb.row0 = i0;
    lb.kend = k_end;

    Frag<Cfg> f;
    gemm_mainloop<Cfg>(la, lb, k_begin, k_end, smem, f);

    float* out = P.dw_part + ((size_t)z * P.splits + split) * ((size_t)P.bits * P.m);
    for_each_acc<Cfg>(f, [&](int j, int c, float x) {
        const int i = i0 + c;
        if (j < P.bits && i < P.m) out[(size_t)j * P.m + i] = x;
    });
}
