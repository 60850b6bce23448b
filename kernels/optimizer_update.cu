// kernels/optimizer_update.cu — the end of a device-resident training step.
//
// Order inside the captured step (after the data-loss pass):
//   neuron_norms   n_i = ‖u_i‖² + ‖v_i‖² + ‖w_i‖² per model (column sums, fixed order)
//   finalize_models  per model: regularizer value, total loss, non-finite flag, metrics ring
//   step_control   one warp: first diverged model (if any), the step's lr and AdamW scalars
//   update_params  ONE elementwise kernel over U, V, W: data gradient + regularizer
//                  gradient (L2: λx, L23: 3λ√n_i·x, L2k: qλn_i^{q/2−1}·x, 0 at n_i = 0),
//                  Grokfast filter (EMA, or the mean of a window of past gradients),
//                  GD or AdamW
//   advance_step   step += 1, the MA ring's head and length advance (unless diverged)
// The host never synchronizes inside this sequence; the whole step is one CUDA graph and
// the metrics ring is read back every N steps. Semantics mirror src/optim.rs and
// src/regularizer.rs exactly (AdamW: θ ← θ(1 − lr·wd), bias-corrected moments).
// After a non-finite loss the update and the step counter freeze, so the parameters stay
// the last good ones, as on the host.

// grid (ceil(m/32), B); block (32, 8). Thread (x, y) sums rows y, y+8, ... of column i over
// [U; V; W] (V is U when tied, which counts it twice, as the host's effective weights do).
extern "C" __global__ void __launch_bounds__(256)
    neuron_norms(const float* __restrict__ u, const float* __restrict__ v,
                 const float* __restrict__ w, long long emb_stride, long long w_stride,
                 int n_in, int n_out, int m, double* __restrict__ norms) {
    __shared__ double part[8][33];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int i = blockIdx.x * 32 + tx;
    const int z = blockIdx.y;
    double s = 0.0;
    if (i < m) {
        const float* pu = u + (size_t)z * emb_stride + i;
        const float* pv = v + (size_t)z * emb_stride + i;
        const float* pw = w + (size_t)z * w_stride + i;
        for (int r = ty; r < n_in; r += 8) {
            const double x = pu[(size_t)r * m];
            s += x * x;
        }
        for (int r = ty; r < n_in; r += 8) {
            const double x = pv[(size_t)r * m];
            s += x * x;
        }
        for (int r = ty; r < n_out; r += 8) {
            const double x = pw[(size_t)r * m];
            s += x * x;
        }
    }
    part[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && i < m) {
        double t = part[0][tx];
        for (int k = 1; k < 8; ++k) t += part[k][tx];
        norms[(size_t)z * m + i] = t;
    }
}

// grid (B); block 256.
extern "C" __global__ void __launch_bounds__(256) finalize_models(FinalizeParams P) {
    __shared__ double s_reg[256];
    const int z = blockIdx.x, t = threadIdx.x;
    const double* n = P.norms + (size_t)z * P.m;
    double r = 0.0;
    if (P.reg != 0)
        for (int i = t; i < P.m; i += 256)
            r += P.reg == 1 ? n[i] : P.reg == 2 ? n[i] * sqrt(n[i]) : pow(n[i], 0.5 * P.reg_q);
    s_reg[t] = r;
    __syncthreads();
    for (int o = 128; o > 0; o >>= 1) {
        if (t < o) s_reg[t] += s_reg[t + o];
        __syncthreads();
    }
    if (t == 0) {
        const double lambda = P.hypers[(size_t)z * HYPER_WORDS + HYPER_REG_LAMBDA];
        const double reg =
            P.reg == 0 || lambda == 0.0 ? 0.0 : (P.reg == 1 ? 0.5 * lambda : lambda) * s_reg[0];
        const double* st = P.stats + (size_t)z * 3;
        const double total = st[0] + reg;
        P.bad[z] = isfinite(total) ? 0 : 1;
        const long long step = (long long)P.ctl[CTL_STEP];
        double* slot = P.ring + ((size_t)(step % P.ring_len) * P.batch + z) * 4;
        slot[0] = st[0];
        slot[1] = reg;
        slot[2] = st[1];
        slot[3] = st[2];
    }
}

// grid 1; block 32. Lane 0 does the divergence bookkeeping; the lanes then share the
// per-model scalars (each model's own lr, as Recipe::lr_at).
extern "C" __global__ void __launch_bounds__(32) step_control(ControlParams P) {
    const int lane = threadIdx.x;
    int first = 0x7fffffff;
    for (int z = lane; z < P.batch; z += 32)
        if (P.bad[z] && z < first) first = z;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) first = min(first, __shfl_xor_sync(0xffffffffu, first, o));
    u64* ctl = P.ctl;
    const long long step = (long long)ctl[CTL_STEP];
    // lr_k · factor^(milestones <= step) · warm-up, as Recipe::lr_at.
    int passed = 0;
    for (int j = 0; j < P.n_milestones; ++j) passed += (long long)P.milestones[j] <= step;
    double mult = 1.0;
    for (int j = 0; j < passed; ++j) mult *= P.lr_factor;
    const double warm = (double)step < P.warmup_steps ? (double)step / P.warmup_steps : 1.0;
    const double t = (double)(step + 1);
    const double bias1 = 1.0 - pow(P.beta1, t);
    for (int z = lane; z < P.batch; z += 32) {
        const double* h = P.hypers + (size_t)z * HYPER_WORDS;
        const double lr = h[HYPER_LR] * mult * warm;
        double* mc = P.model_ctl + (size_t)z * MCTL_WORDS;
        mc[MCTL_LR] = lr;
        mc[MCTL_DECAY] = 1.0 - lr * h[HYPER_WEIGHT_DECAY];
        mc[MCTL_STEP_SIZE] = lr / bias1;
        P.ring_lr[(size_t)(step % P.ring_len) * P.batch + z] = lr;
    }
    if (lane != 0) return;
    if (first != 0x7fffffff && ctl[CTL_DIVERGED] == 0) {
        ctl[CTL_DIVERGED] = 1;
        ctl[CTL_DIVERGED_MODEL] = (u64)first;
        ctl[CTL_DIVERGED_STEP] = (u64)step;
    }
    const double bias2 = 1.0 - pow(P.beta2, t);
    ctl[CTL_INV_SQRT_BIAS2] = (u64)__double_as_longlong(1.0 / sqrt(bias2));
}

__device__ __forceinline__ float ctl_f(const u64* ctl, int word) {
    return (float)__longlong_as_double((long long)ctl[word]);
}

// grid (ceil(max(emb_len, w_len) / 256 / 4), 3); block 256. blockIdx.y: 0 U, 1 V, 2 W.
extern "C" __global__ void __launch_bounds__(256) update_params(UpdateParams P) {
    const u64* ctl = P.ctl;
    if (ctl[CTL_DIVERGED]) return;
    const int which = blockIdx.y;
    if (which == 1 && P.tied) return;
    float* x;
    const float* gx;
    long long len, base;
    int rows;
    if (which == 0) {
        x = P.u, gx = P.du, len = P.emb_len, base = 0, rows = P.n_in;
    } else if (which == 1) {
        x = P.v, gx = P.dv, len = P.emb_len, base = P.emb_len, rows = P.n_in;
    } else {
        x = P.w, gx = P.dw, len = P.w_len, base = P.tied ? P.emb_len : 2 * P.emb_len,
        rows = P.n_out;
    }
    const bool tied_u = P.tied && which == 0;
    const float inv_sqrt_bias2 = ctl_f(ctl, CTL_INV_SQRT_BIAS2);
    const bool ema_ready = ctl[CTL_EMA_READY] != 0;
    // Grokfast-MA (as src/grokfast.rs): this step's gradient goes to slot ma_head; the mean
    // runs over the ma_len newest slots, oldest first, once the window is full (warmup)
    // or from the first step.
    const int ma_w = P.ma_window;
    const int ma_head = P.grokfast == 2 ? (int)ctl[CTL_MA_HEAD] : 0;
    const int ma_len = P.grokfast == 2 ? min((int)ctl[CTL_MA_LEN] + 1, ma_w) : 0;
    const int ma_oldest = P.grokfast == 2 ? (ma_head + 1 + ma_w - ma_len) % ma_w : 0;
    const bool ma_apply = P.grokfast == 2 && (!P.ma_warmup || ma_len == ma_w);
    const long long per_model = (long long)rows * P.m;
    for (long long e = (long long)blockIdx.x * 256 + threadIdx.x; e < len;
         e += (long long)gridDim.x * 256) {
        const int z = (int)(e / per_model);
        const int i = (int)(e % P.m);
        const double* h = P.hypers + (size_t)z * HYPER_WORDS;
        const double* mc = P.model_ctl + (size_t)z * MCTL_WORDS;
        const float xe = x[e];
        float g = gx[e];
        const double reg_lambda = h[HYPER_REG_LAMBDA];
        if (P.reg != 0 && reg_lambda != 0.0) {
            const double n = P.norms[(size_t)z * P.m + i];
            // As src/regularizer.rs (l2k_coefficient: 0 at n = 0, not 0·∞).
            const float coef = P.reg == 1   ? (float)reg_lambda
                               : P.reg == 2 ? (float)(3.0 * reg_lambda * sqrt(n))
                               : n > 0.0    ? (float)(P.reg_q * reg_lambda * pow(n, 0.5 * P.reg_q - 1.0))
                                            : 0.f;
            g += coef * xe;
            if (tied_u) g += P.dv[e] + coef * xe;
        } else if (tied_u) {
            g += P.dv[e];
        }
        if (P.grokfast == 2) {
            float* slot0 = P.ma_ring + base + e;
            slot0[(size_t)ma_head * P.ma_stride] = g;
            const float lambda = (float)h[HYPER_GROKFAST_LAMBDA];
            if (ma_apply && lambda > 0.f) {
                int s = ma_oldest;
                float sum = slot0[(size_t)s * P.ma_stride];
                for (int j = 1; j < ma_len; ++j) {
                    s = s + 1 == ma_w ? 0 : s + 1;
                    sum += slot0[(size_t)s * P.ma_stride];
                }
                g += lambda * (sum / (float)ma_len);
            }
        } else if (P.grokfast == 1) {
            // As src/grokfast.rs: μ starts at the first gradient for every model; after that
            // only the models that filter (λ > 0) update and use it.
            const float lambda = (float)h[HYPER_GROKFAST_LAMBDA];
            if (!ema_ready) {
                P.ema[base + e] = g;
                if (lambda > 0.f) g += lambda * g;
            } else if (lambda > 0.f) {
                const float mu = P.ga_alpha * P.ema[base + e] + P.one_minus_ga_alpha * g;
                P.ema[base + e] = mu;
                g += lambda * mu;
            }
        }
        float nx;
        if (P.kind == 0) {
            nx = xe - (float)mc[MCTL_LR] * g;
        } else {
            const float m1 = P.beta1 * P.adam_m[base + e] + P.one_minus_beta1 * g;
            const float m2 = P.beta2 * P.adam_v[base + e] + P.one_minus_beta2 * g * g;
            P.adam_m[base + e] = m1;
            P.adam_v[base + e] = m2;
            nx = xe * (float)mc[MCTL_DECAY];
            nx -= (float)mc[MCTL_STEP_SIZE] * m1 / (sqrtf(m2) * inv_sqrt_bias2 + P.eps);
        }
        x[e] = nx;
    }
}

// grid 1; block 1. ma_window: slots of the Grokfast-MA ring (0: none).
extern "C" __global__ void advance_step(u64* ctl, int ma_window) {
    if (ctl[CTL_DIVERGED]) return;
    ctl[CTL_STEP] += 1;
    ctl[CTL_EMA_READY] = 1;
    if (ma_window > 0) {
        ctl[CTL_MA_HEAD] = (ctl[CTL_MA_HEAD] + 1) % (u64)ma_window;
        if (ctl[CTL_MA_LEN] < (u64)ma_window) ctl[CTL_MA_LEN] += 1;
    }
}
