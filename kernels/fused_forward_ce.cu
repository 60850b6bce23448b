// kernels/fused_forward_ce.cu — logits = σ(U[a]+V[b]) · Wᵀ with the loss in the epilogue.
//
// Strategy: one block computes a 64-row (pairs) × BN-column (classes) tile of the logits,
// batch index in blockIdx.z. The A operand (hidden activations, rows × m) is gathered
// and activated inside the operand load (LoadHiddenRowsK; for a dense bit-string pass,
// the fwd_ce_bits_* kernels build σ(X·U) there from the masks: LoadBitsHiddenRowsK in
// bit_inputs.cuh), so the pairs × m hidden matrix never touches global memory. When the whole output row fits in one block
// (n_out <= BN, the usual case: BN is 32, 64 or 128, picked by the host as the smallest
// that holds n_out) the accumulators go to shared memory and one warp per row runs the
// softmax-CE / MSE epilogue there: it writes dL/dlogits G (already divided by N) and the
// row's loss and margin; the logits themselves never reach global memory. Wider outputs
// (n_out > 128) write logits to the chunk buffer and `ce_rows` runs the same epilogue.
//
// Every reduction is a fixed-order warp butterfly, so results are bit-reproducible. The
// per-row loss and margin are reduced per model by `reduce_stats` (reduce.cu).

// One row's epilogue, by one warp. `f` (logits) and `gout` may alias. Writes G when
// write_g, and returns the row's loss (before the 1/N mean) and margin in every lane.
__device__ __forceinline__ void row_epilogue(const float* f, float* gout, int n, int y,
                                             int loss_kind, float inv_n, int write_g,
                                             float& loss, float& margin) {
    const int lane = threadIdx.x & 31;
    const float fy = f[y];
    float other = -CW_INF;
    for (int c = lane; c < n; c += 32)
        if (c != y) other = fmaxf(other, f[c]);
    other = warp_max(other);
    margin = fy - other;
    if (loss_kind == 0) {
        // softmax cross-entropy: loss = log Σ exp(f − mx) + mx − f_y
        const float mx = fmaxf(fy, other);
        float s = 0.f;
        for (int c = lane; c < n; c += 32) s += expf(f[c] - mx);
        s = warp_sum(s);
        loss = logf(s) + (mx - fy);
        if (write_g) {
            const float scale = inv_n / s;
            for (int c = lane; c < n; c += 32) {
                float gc = expf(f[c] - mx) * scale;
                if (c == y) gc -= inv_n;
                gout[c] = gc;
            }
        }
    } else {
        // MSE against one-hot: loss = Σ_c (f_c − 1[c=y])² / n_out, G = 2(f − 1)/(N·n_out)
        const float scale = 2.f * inv_n / (float)n;
        float sq = 0.f;
        for (int c = lane; c < n; c += 32) {
            const float d = f[c] - (c == y ? 1.f : 0.f);
            sq += d * d;
            if (write_g) gout[c] = d * scale;
        }
        loss = warp_sum(sq) / (float)n;
    }
}

template <int BN>
struct FwdCfg;
template <>
struct FwdCfg<32> {
    typedef TileCfg<64, 32, 16, 32, 16> T;  // 2×2 warps, 128 threads
};
template <>
struct FwdCfg<64> {
    typedef TileCfg<64, 64, 16, 32, 32> T;  // 2×2 warps, 128 threads
};
template <>
struct FwdCfg<128> {
    typedef TileCfg<64, 128, 16, 32, 32> T;  // 2×4 warps, 256 threads
};

// `Hidden` builds the A operand: LoadHiddenRowsK (token gather, common.cuh) or
// LoadBitsHiddenRowsK (dense bit-string input, bit_inputs.cuh).
template <int BN, template <int, int, int> class Hidden>
__device__ __forceinline__ void fwd_body(const FwdParams& P) {
    typedef typename FwdCfg<BN>::T Cfg;
    // Main-loop buffers and the epilogue's logits tile share the same shared memory.
    constexpr int EPI = Cfg::BM * (BN + 1);
    constexpr int SMEM = Cfg::SMEM > EPI ? Cfg::SMEM : EPI;
    __shared__ __align__(16) float smem[SMEM];

    const int z = blockIdx.z;
    const int m0 = blockIdx.y * Cfg::BM;  // first row (pair) of the tile
    const int n0 = blockIdx.x * BN;       // first class of the tile
    const float* w = P.w + (size_t)z * P.w_stride;
    float* g = P.g + (size_t)z * P.g_stride;

    Hidden<Cfg::BM, Cfg::BK, Cfg::THREADS> la;
    la.setup(P, z, m0, P.rows);
    // B(k = neuron, n = class) = W[class][neuron]: contiguous along k.
    LoadRowsK<BN, Cfg::BK, Cfg::THREADS> lb;
    lb.p = w;
    lb.ld = P.m;
    lb.nrows = P.n_out;
    lb.row0 = n0;
    lb.kend = P.m;

    Frag<Cfg> f;
    gemm_mainloop<Cfg>(la, lb, 0, P.m, smem, f);

    if (!P.fused) {
        // Wide output: raw logits to the chunk buffer; ce_rows finishes the rows.
        for_each_acc<Cfg>(f, [&](int r, int c, float x) {
            const int row = m0 + r, col = n0 + c;
            if (row < P.rows && col < P.n_out) g[(size_t)row * P.n_out + col] = x;
        });
        return;
    }
    // Fused epilogue: the block holds whole rows (n0 == 0, n_out <= BN).
    float* tile = smem;  // [BM][BN+1]
    for_each_acc<Cfg>(f, [&](int r, int c, float x) { tile[r * (BN + 1) + c] = x; });
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    constexpr int WARPS = Cfg::THREADS / 32;
    float* row_loss = P.row_loss + (size_t)z * P.row_stride;
    float* row_margin = P.row_margin + (size_t)z * P.row_stride;
    for (int r = warp; r < Cfg::BM; r += WARPS) {
        const int row = m0 + r;
        if (row >= P.rows) break;
        float loss, margin;
        row_epilogue(tile + r * (BN + 1), g + (size_t)row * P.n_out, P.n_out,
                     (int)__ldg(P.py + row), P.loss, P.inv_n, P.write_g, loss, margin);
        if (lane == 0) {
            row_loss[row] = loss;
            row_margin[row] = margin;
        }
    }
}

// grid (ceil(n_out/BN), ceil(rows/64), B); block FwdCfg<BN>::T::THREADS.
extern "C" __global__ void __launch_bounds__(128, 3) fwd_ce_bn32(FwdParams P) {
    fwd_body<32, LoadHiddenRowsK>(P);
}
extern "C" __global__ void __launch_bounds__(128, 3) fwd_ce_bn64(FwdParams P) {
    fwd_body<64, LoadHiddenRowsK>(P);
}
extern "C" __global__ void __launch_bounds__(256, 2) fwd_ce_bn128(FwdParams P) {
    fwd_body<128, LoadHiddenRowsK>(P);
}
// The same for a dense (bit-string) pass: hidden = σ(X·U) built from the masks in pa.
extern "C" __global__ void __launch_bounds__(128, 3) fwd_ce_bits_bn32(FwdParams P) {
    fwd_body<32, LoadBitsHiddenRowsK>(P);
}
extern "C" __global__ void __launch_bounds__(128, 3) fwd_ce_bits_bn64(FwdParams P) {
    fwd_body<64, LoadBitsHiddenRowsK>(P);
}
extern "C" __global__ void __launch_bounds__(256, 2) fwd_ce_bits_bn128(FwdParams P) {
    fwd_body<128, LoadBitsHiddenRowsK>(P);
}

// The epilogue for outputs wider than one block: one warp per row, in place on the chunk
// buffer. grid (ceil(rows/8), 1, B); block 256.
extern "C" __global__ void __launch_bounds__(256) ce_rows(FwdParams P) {
    const int z = blockIdx.z;
    const int row = blockIdx.x * 8 + (threadIdx.x >> 5);
    if (row >= P.rows) return;
    float* g = P.g + (size_t)z * P.g_stride + (size_t)row * P.n_out;
    float loss, margin;
    row_epilogue(g, g, P.n_out, (int)__ldg(P.py + row), P.loss, P.inv_n, P.write_g, loss,
                 margin);
    if ((threadIdx.x & 31) == 0) {
        P.row_loss[(size_t)z * P.row_stride + row] = loss;
        P.row_margin[(size_t)z * P.row_stride + row] = margin;
    }
}

// The multi-head epilogue (a head layout on the pair set: src/task/heads.rs). The forward
// kernels run unfused for such a pass (raw logits to the chunk buffer); this kernel then
// runs row_epilogue on each head's slice of each row, in place: head h owns the logits
// head_off[h] .. head_off[h] + head_size[h], its class is label mod head_size[h], and its
// gradient is scaled by head_w[h] / N. Per row it writes the weighted loss Σ_h w_h·loss_h
// and the smallest head margin to row_loss / row_margin (so reduce_stats gives the
// objective and "all heads right"), and each head's own loss and margin to head_loss /
// head_margin ([B][n_heads] × row_stride, chunk-offset like row_loss), which the host
// sums per head. One warp per row, heads in order: deterministic.
// grid (ceil(rows/8), 1, B); block 256.
extern "C" __global__ void __launch_bounds__(256)
    heads_rows(FwdParams P, const int* __restrict__ head_off, const int* __restrict__ head_size,
               const float* __restrict__ head_w, int n_heads, float* __restrict__ head_loss,
               float* __restrict__ head_margin) {
    const int z = blockIdx.z;
    const int row = blockIdx.x * 8 + (threadIdx.x >> 5);
    if (row >= P.rows) return;
    const int lane = threadIdx.x & 31;
    float* g = P.g + (size_t)z * P.g_stride + (size_t)row * P.n_out;
    const u32 label = __ldg(P.py + row);
    float total = 0.f, smallest = CW_INF;
    for (int h = 0; h < n_heads; ++h) {
        const int off = __ldg(head_off + h), size = __ldg(head_size + h);
        const float w = __ldg(head_w + h);
        float loss, margin;
        row_epilogue(g + off, g + off, size, (int)(label % (u32)size), P.loss, P.inv_n * w,
                     P.write_g, loss, margin);
        total += w * loss;
        smallest = fminf(smallest, margin);
        if (lane == 0) {
            const size_t at = ((size_t)z * n_heads + h) * P.row_stride + row;
            head_loss[at] = loss;
            head_margin[at] = margin;
        }
    }
    if (lane == 0) {
        P.row_loss[(size_t)z * P.row_stride + row] = total;
        P.row_margin[(size_t)z * P.row_stride + row] = smallest;
    }
}
