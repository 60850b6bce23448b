// kernels/emulate/emulate_pass.cpp — runs the fp32 kernels on the CPU (cuda_shim.hpp) and
// checks them against plain double-precision loops: the pass (every forward variant, the
// wide-output ce_rows path, split and chunked dW, the segmented dU/dV sums, statistics),
// the multi-head epilogue, the dense-input (bit-string) pass, and the optimizer step
// kernels (norms, regularizer, GD/AdamW/Grokfast, tied weights). The launch sequence
// mirrors src/engine/cuda/device.rs::enqueue_pass and src/engine/cuda/stepper.rs. Exit
// status 0 when everything matches.
//
// Past 600 lines on purpose: every pass case (tokens, heads, bits) goes through the one
// mirror of enqueue_pass (run_pass) and the one double-loop reference, so a change to the
// launch sequence is mirrored once; splitting the file would split those two.
//
// Build: g++ -std=c++20 -O2 -pthread kernels/emulate/emulate_pass.cpp -o emulate_pass
// (tests/cuda_emulation.rs does this when a C++ compiler is present).

#include "cuda_shim.hpp"

// clang-format off
#include "../common.cuh"
#include "../bit_inputs.cuh"
#include "../fused_forward_ce.cu"
#include "../fused_backward.cu"
#include "../dense_input.cu"
#include "../reduce.cu"
#include "../optimizer_update.cu"
// clang-format on

#include <cstdio>
#include <string>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform() {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static float normal(double scale) {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += uniform();
    return (float)((s - 6.0) * scale);
}

static int failures = 0;
static void check(const std::string& what, double err, double tol) {
    const bool ok = err <= tol;
    std::printf("%-70s rel err %.2e %s\n", what.c_str(), err, ok ? "ok" : "FAIL");
    if (!ok) ++failures;
}

static double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

static double act_d(int act, int k, double x) {
    if (act == 0) return x * x;
    if (act == 1) return x > 0 ? x : 0;
    return std::pow(x, k);
}
static double act_grad_d(int act, int k, double x) {
    if (act == 0) return 2 * x;
    if (act == 1) return x > 0 ? 1 : 0;
    return k * std::pow(x, k - 1);
}

struct Problem {
    int batch, n_in, n_out, m, act, act_k, loss;
    std::vector<uint32_t> a, b, y;
    std::vector<float> u, v, w;  // [B][n_in][m], [B][n_in][m], [B][n_out][m]
    // A head layout (src/task/heads.rs), empty for a plain pass: head h owns the logits
    // head_off[h] .. + head_size[h], its class is y mod head_size[h], weight head_w[h].
    std::vector<int> head_off, head_size;
    std::vector<float> head_w;
    // A dense (bit-string) pass when bits > 0: a holds masks, b is 0, n_in == bits, and
    // input j is x_set when bit j is set, else x_clear (src/task/bits.rs). V is unused.
    int bits = 0;
    float x_set = 0.f, x_clear = 0.f;
    int n() const { return (int)a.size(); }
    int heads() const { return (int)head_size.size(); }
    double x(int t, int j) const { return (a[t] >> j) & 1u ? x_set : x_clear; }
    // The pre-activation of neuron i of row t for model weights u, v (model-offset).
    double preact(const float* u, const float* v, int t, int i) const {
        if (bits == 0) return (double)u[a[t] * m + i] + v[b[t] * m + i];
        double s = 0;
        for (int j = 0; j < bits; ++j) s += x(t, j) * u[j * m + i];
        return s;
    }
};

struct Result {
    std::vector<double> loss, correct, min_margin;
    std::vector<double> du, dv, dw;  // reference only
    // [B][heads]: each head's mean loss, correct count, min margin (multi-head passes)
    std::vector<double> head_loss, head_correct, head_margin;
};

static Problem make(int batch, int n_in, int n_out, int m, int act, int act_k, int loss,
                    int n_pairs) {
    Problem p{batch, n_in, n_out, m, act, act_k, loss, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    const double scale = act == 2 ? 0.35 : 0.5;
    for (int i = 0; i < n_pairs; ++i) {
        const uint32_t a = (uint32_t)(uniform() * n_in), b = (uint32_t)(uniform() * n_in);
        p.a.push_back(a);
        p.b.push_back(b);
        p.y.push_back((a + b) % n_out);
    }
    for (size_t i = 0; i < (size_t)batch * n_in * m; ++i) p.u.push_back(normal(scale));
    for (size_t i = 0; i < (size_t)batch * n_in * m; ++i) p.v.push_back(normal(scale));
    for (size_t i = 0; i < (size_t)batch * n_out * m; ++i) p.w.push_back(normal(scale));
    return p;
}

static Result reference(const Problem& P, const float* v_ptr) {
    Result r;
    const int B = P.batch, m = P.m, C = P.n_out, N = P.n();
    std::vector<double> du((size_t)B * P.n_in * m), dv(du.size()), dw((size_t)B * C * m);
    for (int z = 0; z < B; ++z) {
        const float* u = P.u.data() + (size_t)z * P.n_in * m;
        const float* v = v_ptr + (size_t)z * P.n_in * m;
        const float* w = P.w.data() + (size_t)z * C * m;
        double loss = 0, correct = 0, mn = INFINITY;
        std::vector<double> hl(P.heads(), 0.0), hc(P.heads(), 0.0), hm(P.heads(), INFINITY);
        for (int t = 0; t < N; ++t) {
            const int a = P.a[t], b = P.b[t], y = P.heads() ? 0 : P.y[t];
            std::vector<double> h(m), f(C, 0.0), g(C);
            for (int i = 0; i < m; ++i) h[i] = act_d(P.act, P.act_k, P.preact(u, v, t, i));
            for (int c = 0; c < C; ++c)
                for (int i = 0; i < m; ++i) f[c] += h[i] * w[c * m + i];
            // One softmax (or MSE) over classes [off, off + n) with class yy, gradient
            // scaled by scale / N; returns (loss, margin).
            auto slice = [&](int off, int n, int yy, double scale) {
                double other = -INFINITY;
                for (int c = 0; c < n; ++c)
                    if (c != yy) other = std::max(other, f[off + c]);
                const double margin = f[off + yy] - other;
                double l = 0;
                if (P.loss == 0) {
                    double mx = -INFINITY, s = 0;
                    for (int c = 0; c < n; ++c) mx = std::max(mx, f[off + c]);
                    for (int c = 0; c < n; ++c) s += std::exp(f[off + c] - mx);
                    l = std::log(s) + mx - f[off + yy];
                    for (int c = 0; c < n; ++c)
                        g[off + c] = scale * (std::exp(f[off + c] - mx) / s - (c == yy)) / N;
                } else {
                    for (int c = 0; c < n; ++c) {
                        const double d = f[off + c] - (c == yy);
                        l += d * d / n;
                        g[off + c] = scale * 2 * d / ((double)N * n);
                    }
                }
                return std::make_pair(l, margin);
            };
            if (P.heads() == 0) {
                auto [l, margin] = slice(0, C, y, 1.0);
                loss += l / N;
                mn = std::min(mn, margin);
                correct += margin > 0;
            } else {
                double smallest = INFINITY;
                for (int h = 0; h < P.heads(); ++h) {
                    const int q = P.head_size[h];
                    auto [l, margin] = slice(P.head_off[h], q, (int)(P.y[t] % q), P.head_w[h]);
                    loss += P.head_w[h] * l / N;
                    hl[h] += l / N;
                    hc[h] += margin > 0;
                    hm[h] = std::min(hm[h], margin);
                    smallest = std::min(smallest, margin);
                }
                mn = std::min(mn, smallest);
                correct += smallest > 0;
            }
            for (int i = 0; i < m; ++i) {
                const double s = P.preact(u, v, t, i);
                double d = 0;
                for (int c = 0; c < C; ++c) {
                    dw[(size_t)z * C * m + c * m + i] += g[c] * h[i];
                    d += g[c] * w[c * m + i];
                }
                const double ds = d * act_grad_d(P.act, P.act_k, s);
                if (P.bits > 0) {
                    // dU[j][i] = Σ_t ds_i·x_j; V is absent (its gradient stays 0).
                    for (int j = 0; j < P.bits; ++j)
                        du[(size_t)z * P.n_in * m + j * m + i] += ds * P.x(t, j);
                    continue;
                }
                du[(size_t)z * P.n_in * m + a * m + i] += ds;
                dv[(size_t)z * P.n_in * m + b * m + i] += ds;
            }
        }
        r.loss.push_back(loss);
        r.correct.push_back(correct);
        r.min_margin.push_back(mn);
        r.head_loss.insert(r.head_loss.end(), hl.begin(), hl.end());
        r.head_correct.insert(r.head_correct.end(), hc.begin(), hc.end());
        r.head_margin.insert(r.head_margin.end(), hm.begin(), hm.end());
    }
    r.du = du;
    r.dv = dv;
    r.dw = dw;
    return r;
}

static void csr(const uint32_t* tok, int rows, int n_in, std::vector<int>& ptr,
                std::vector<int>& list) {
    std::vector<int> p(n_in + 1, 0);
    for (int r = 0; r < rows; ++r) p[tok[r] + 1]++;
    for (int i = 0; i < n_in; ++i) p[i + 1] += p[i];
    std::vector<int> fill = p;
    std::vector<int> l(rows);
    for (int r = 0; r < rows; ++r) l[fill[tok[r]]++] = r;
    ptr.insert(ptr.end(), p.begin(), p.end());
    list.insert(list.end(), l.begin(), l.end());
}

static unsigned cdiv(long long a, long long b) { return (unsigned)((a + b - 1) / b); }

// The pass, launched as enqueue_pass does. `v` may be the same buffer as u (tied).
static Result run_pass(const Problem& P, float* u, float* v, float* w, int chunk_rows,
                       int want_splits, std::vector<float>& du, std::vector<float>& dv,
                       std::vector<float>& dw) {
    const int B = P.batch, m = P.m, C = P.n_out, N = P.n();
    std::vector<float> g((size_t)B * chunk_rows * C), ds((size_t)B * chunk_rows * m);
    std::vector<float> row_loss((size_t)B * N), row_margin((size_t)B * N);
    // dW partials, and for a dense pass dU partials too (Workspace::dw_part).
    std::vector<float> part((size_t)B * 64 * std::max(C, P.n_in) * m);
    std::vector<double> stats(B * 3);
    du.assign((size_t)B * P.n_in * m, -7.f);  // garbage: must be overwritten
    dv = du;
    dw.assign((size_t)B * C * m, -7.f);
    const bool dense = P.bits > 0;
    if (dense) std::fill(dv.begin(), dv.end(), 0.f);  // enqueue_pass's memset of dV
    int bn = C <= 32 ? 32 : C <= 64 ? 64 : 128;
    const int H = P.heads();
    const bool fused = C <= bn && H == 0;  // a multi-head pass runs unfused + heads_rows
    std::vector<float> head_loss((size_t)B * H * N), head_margin((size_t)B * H * N);
    for (int c = 0, start = 0; start < N; ++c, start += chunk_rows) {
        const int rows = std::min(chunk_rows, N - start);
        FwdParams fp{};
        fp.u = u, fp.v = v, fp.w = w;
        fp.pa = P.a.data() + start, fp.pb = P.b.data() + start, fp.py = P.y.data() + start;
        fp.g = g.data();
        fp.row_loss = row_loss.data() + start, fp.row_margin = row_margin.data() + start;
        fp.emb_stride = (long long)P.n_in * m, fp.w_stride = (long long)C * m;
        fp.g_stride = (long long)rows * C, fp.row_stride = N;
        fp.rows = rows, fp.m = m, fp.n_out = C, fp.act = P.act, fp.act_k = P.act_k;
        fp.loss = P.loss, fp.write_g = 1, fp.fused = fused, fp.inv_n = (float)(1.0 / N);
        fp.bits = (short)P.bits, fp.x_set = (signed char)P.x_set, fp.x_clear = (signed char)P.x_clear;
        Dim3 grid{cdiv(C, bn), cdiv(rows, 64), (unsigned)B};
        if (bn == 32) emu::launch(grid, {128}, [&] { dense ? fwd_ce_bits_bn32(fp) : fwd_ce_bn32(fp); });
        if (bn == 64) emu::launch(grid, {128}, [&] { dense ? fwd_ce_bits_bn64(fp) : fwd_ce_bn64(fp); });
        if (bn == 128) emu::launch(grid, {256}, [&] { dense ? fwd_ce_bits_bn128(fp) : fwd_ce_bn128(fp); });
        if (H > 0)
            emu::launch({cdiv(rows, 8), 1, (unsigned)B}, {256}, [&] {
                heads_rows(fp, P.head_off.data(), P.head_size.data(), P.head_w.data(), H,
                           head_loss.data() + start, head_margin.data() + start);
            });
        else if (!fused)
            emu::launch({cdiv(rows, 8), 1, (unsigned)B}, {256}, [&] { ce_rows(fp); });
        int per = (int)cdiv(cdiv(rows, want_splits), 16) * 16;
        int splits = (int)cdiv(rows, per);
        const bool direct = splits == 1 && c == 0;
        BwdParams bp{};
        bp.u = u, bp.v = v, bp.w = w, bp.pa = fp.pa, bp.pb = fp.pb, bp.g = g.data();
        bp.dw_part = direct ? dw.data() : part.data();
        bp.ds = ds.data();
        bp.emb_stride = fp.emb_stride, bp.w_stride = fp.w_stride, bp.g_stride = fp.g_stride;
        bp.ds_stride = (long long)rows * m;
        bp.rows = rows, bp.m = m, bp.n_out = C, bp.act = P.act, bp.act_k = P.act_k;
        bp.splits = splits, bp.rows_per_split = per;
        bp.bits = fp.bits, bp.x_set = fp.x_set, bp.x_clear = fp.x_clear;
        if (C <= 32)
            emu::launch({cdiv(m, 64), cdiv(C, 32), (unsigned)(B * splits)}, {128},
                        [&] { dense ? dw_partial_bits_m32(bp) : dw_partial_m32(bp); });
        else
            emu::launch({cdiv(m, 64), cdiv(C, 64), (unsigned)(B * splits)}, {128},
                        [&] { dense ? dw_partial_bits(bp) : dw_partial(bp); });
        if (!direct)
            emu::launch({cdiv((long long)C * m, 256), (unsigned)B}, {256}, [&] {
                dw_reduce(part.data(), dw.data(), splits, (long long)C * m, c > 0);
            });
        emu::launch({cdiv(m, 64), cdiv(rows, 64), (unsigned)B}, {128},
                    [&] { dense ? dhidden_bits(bp) : dhidden(bp); });
        if (dense) {
            // dU = Xᵀ·dS with dW's splits, straight to dU when direct.
            bp.dw_part = direct ? du.data() : part.data();
            emu::launch({cdiv(m, 64), 1, (unsigned)(B * splits)}, {128},
                        [&] { dense_du_partial(bp); });
            if (!direct)
                emu::launch({cdiv((long long)P.n_in * m, 256), (unsigned)B}, {256}, [&] {
                    dw_reduce(part.data(), du.data(), splits, (long long)P.n_in * m, c > 0);
                });
            continue;
        }
        std::vector<int> pa, la, pb, lb;
        csr(P.a.data() + start, rows, P.n_in, pa, la);
        csr(P.b.data() + start, rows, P.n_in, pb, lb);
        emu::launch({cdiv(m, 128), (unsigned)(2 * P.n_in), (unsigned)B}, {128}, [&] {
            embed_segsum(ds.data(), bp.ds_stride, pa.data(), la.data(), pb.data(), lb.data(),
                         du.data(), dv.data(), fp.emb_stride, P.n_in, m, c > 0);
        });
    }
    emu::launch({(unsigned)B}, {256}, [&] {
        reduce_stats(row_loss.data(), row_margin.data(), N, N, 1.0 / N, stats.data());
    });
    Result r;
    for (int z = 0; z < B; ++z) {
        r.loss.push_back(stats[3 * z]);
        r.correct.push_back(stats[3 * z + 1]);
        r.min_margin.push_back(stats[3 * z + 2]);
    }
    // Per-head sums as src/engine/cuda/backend.rs (head_sums) does them on the host.
    for (int z = 0; z < B; ++z)
        for (int h = 0; h < H; ++h) {
            double l = 0, c = 0, mn = INFINITY;
            for (int t = 0; t < N; ++t) {
                const size_t at = ((size_t)z * H + h) * N + t;
                l += head_loss[at];
                c += head_margin[at] > 0;
                mn = std::min(mn, (double)head_margin[at]);
            }
            r.head_loss.push_back(l / N);
            r.head_correct.push_back(c);
            r.head_margin.push_back(mn);
        }
    return r;
}

// The pass on the emulator against the reference: the worst relative error of the loss,
// margin (scaled by 1e-2) and all gradients, or 1 when the correct counts differ by more
// than one flip.
static double pass_error(const Problem& P, int chunk_rows, int splits) {
    std::vector<float> du, dv, dw;
    Problem Q = P;
    Result got = run_pass(Q, Q.u.data(), Q.v.data(), Q.w.data(), chunk_rows, splits, du, dv, dw);
    Result ref = reference(P, P.v.data());
    double err = 0;
    for (int z = 0; z < P.batch; ++z) {
        err = std::max(err, std::fabs(got.loss[z] - ref.loss[z]) / std::max(std::fabs(ref.loss[z]), 1e-3));
        err = std::max(err, std::fabs(got.min_margin[z] - ref.min_margin[z]) /
                                std::max(std::fabs(ref.min_margin[z]), 1.0) * 1e-2);
        if (std::fabs(got.correct[z] - ref.correct[z]) > 1) err = 1;
    }
    return std::max({err, rel_err(du, ref.du), rel_err(dv, ref.dv), rel_err(dw, ref.dw)});
}

static void pass_case(int batch, int n_in, int n_out, int m, int act, int act_k, int loss,
                      int n_pairs, int chunk_rows, int splits) {
    Problem P = make(batch, n_in, n_out, m, act, act_k, loss, n_pairs);
    char name[160];
    std::snprintf(name, sizeof name, "pass B=%d p=%d n_out=%d m=%d act=%d^%d loss=%d N=%d chunk=%d splits=%d",
                  batch, n_in, n_out, m, act, act_k, loss, n_pairs, chunk_rows, splits);
    check(name, pass_error(P, chunk_rows, splits), 1e-4);
}

// A bit-string problem (src/task/bits.rs): n_pairs random n-bit masks, label = parity of
// the first 3 bits (mod n_out when n_out > 2: the wider outputs only exercise the other
// forward and dW tiles), encoding ±1 (pm1: set bit → −1) or 0/1.
static Problem make_bits(int batch, int bits, int n_out, int m, int act, int act_k, int loss,
                         int n_pairs, bool pm1) {
    Problem P = make(batch, bits, n_out, m, act, act_k, loss, 0);
    for (float& x : P.u) x *= (float)(1.0 / std::sqrt((double)bits));  // s = O(1)
    const uint64_t top = 1ull << bits;
    for (int t = 0; t < n_pairs; ++t) {
        const uint32_t mask = (uint32_t)(uniform() * (double)top);
        P.a.push_back(mask);
        P.b.push_back(0);
        const uint32_t parity = (uint32_t)__builtin_popcount(mask & 7u) & 1u;
        P.y.push_back(n_out > 2 ? parity + 2 * (mask % (uint32_t)(n_out / 2)) : parity);
    }
    P.bits = bits;
    P.x_set = pm1 ? -1.f : 1.f;
    P.x_clear = pm1 ? 1.f : 0.f;
    return P;
}

// The dense-input pass: fwd_ce_bits_*, dw_partial_bits*, dhidden_bits, dense_du_partial
// and the dU partial sums, against double loops.
static void bits_case(int batch, int bits, int n_out, int m, int act, int act_k, int loss,
                      int n_pairs, int chunk_rows, int splits, bool pm1) {
    Problem P = make_bits(batch, bits, n_out, m, act, act_k, loss, n_pairs, pm1);
    char name[160];
    std::snprintf(name, sizeof name, "bits B=%d n=%d %s n_out=%d m=%d act=%d^%d loss=%d N=%d chunk=%d splits=%d",
                  batch, bits, pm1 ? "pm1" : "01", n_out, m, act, act_k, loss, n_pairs, chunk_rows,
                  splits);
    check(name, pass_error(P, chunk_rows, splits), 1e-4);
}

// The comparison must see a kernel that drops an input bit (the last one: an off-by-one in
// the bit loops) or swaps the encoding: the kernels run on wrong parameters, the reference
// on the true problem, and the error must exceed the tolerance. ReLU, because a square
// activation cannot tell s from −s (the swapped ±1 encoding) at all.
static void bits_negative_case() {
    Problem P = make_bits(1, 9, 2, 40, 1, 1, 0, 150, true);
    struct Bug {
        const char* what;
        void (*apply)(Problem&);
    };
    const Bug bugs[] = {
        {"last bit dropped", [](Problem& Q) { Q.bits -= 1; }},
        {"encoding swapped", [](Problem& Q) { std::swap(Q.x_set, Q.x_clear); }},
    };
    for (const Bug& bug : bugs) {
        Problem Q = P;
        bug.apply(Q);
        std::vector<float> du, dv, dw;
        // Gradients sized for the true problem so they compare element for element.
        Q.n_in = P.n_in;
        Result got = run_pass(Q, Q.u.data(), Q.v.data(), Q.w.data(), 64, 2, du, dv, dw);
        Result ref = reference(P, P.v.data());
        double err = std::fabs(got.loss[0] - ref.loss[0]) / std::fabs(ref.loss[0]);
        err = std::max({err, rel_err(du, ref.du), rel_err(dw, ref.dw)});
        char name[160];
        std::snprintf(name, sizeof name, "bits negative check (%s) is caught: err %.2e > 1e-4",
                      bug.what, err);
        // Passes when the error is large: report 0 then, the error itself when it is not.
        check(name, err > 1e-2 ? 0.0 : err + 1.0, 1e-4);
    }
}

// Seed 002's multi-head table on the emulator: inputs x0, x1 < n_in, one head per prime
// q < n_in with class (x0 + x1·n_in) mod q, weight 1/ln q; every pair, cut in chunks.
static void heads_case(int batch, int n_in, int m, int act, int loss, int chunk_rows) {
    std::vector<int> primes;
    for (int q = 2; q < n_in; ++q) {
        bool prime = true;
        for (int d = 2; d * d <= q; ++d) prime &= q % d != 0;
        if (prime) primes.push_back(q);
    }
    int n_out = 0;
    for (int q : primes) n_out += q;
    Problem P = make(batch, n_in, n_out, m, act, 2, loss, 0);
    for (int x0 = 0; x0 < n_in; ++x0)
        for (int x1 = 0; x1 < n_in; ++x1) {
            P.a.push_back(x0);
            P.b.push_back(x1);
            P.y.push_back(x0 + x1 * n_in);
        }
    for (int off = 0, h = 0; h < (int)primes.size(); off += primes[h], ++h) {
        P.head_off.push_back(off);
        P.head_size.push_back(primes[h]);
        P.head_w.push_back((float)(1.0 / std::log((double)primes[h])));
    }
    std::vector<float> du, dv, dw;
    Result got = run_pass(P, P.u.data(), P.v.data(), P.w.data(), chunk_rows, 1, du, dv, dw);
    Result ref = reference(P, P.v.data());
    char name[160];
    std::snprintf(name, sizeof name, "heads B=%d p=%d heads=%d n_out=%d m=%d act=%d loss=%d chunk=%d",
                  batch, n_in, P.heads(), n_out, m, act, loss, chunk_rows);
    double err = 0;
    for (size_t i = 0; i < ref.loss.size(); ++i) {
        err = std::max(err, std::fabs(got.loss[i] - ref.loss[i]) / std::fabs(ref.loss[i]));
        if (std::fabs(got.correct[i] - ref.correct[i]) > 1) err = 1;
    }
    for (size_t i = 0; i < ref.head_loss.size(); ++i) {
        err = std::max(err, std::fabs(got.head_loss[i] - ref.head_loss[i]) / std::fabs(ref.head_loss[i]));
        err = std::max(err, std::fabs(got.head_margin[i] - ref.head_margin[i]) /
                                std::max(std::fabs(ref.head_margin[i]), 1.0) * 1e-2);
        if (std::fabs(got.head_correct[i] - ref.head_correct[i]) > 1) err = 1;
    }
    err = std::max({err, rel_err(du, ref.du), rel_err(dv, ref.dv), rel_err(dw, ref.dw)});
    check(name, err, 1e-4);
}

// ---- optimizer step kernels against the host semantics (src/optim.rs, regularizer.rs)

// reg: 0 none, 1 L2, 2 L23, 3 L2k with exponent q (ignored by the others). ma_window > 0
// runs Grokfast-MA over that many gradients (else the EMA), for enough steps to wrap the
// ring, with or without its warmup.
static void optimizer_case(int kind, int reg, double lambda, double grokfast, bool tied,
                           double q = 0.0, int ma_window = 0, bool ma_warmup = true) {
    const int B = 2, n_in = 7, C = 9, m = 20, steps = ma_window > 0 ? ma_window + 3 : 3;
    Problem P = make(B, n_in, C, m, 0, 2, 0, 40);
    const size_t e = (size_t)B * n_in * m, o = (size_t)B * C * m;
    std::vector<float> u = P.u, v = tied ? std::vector<float>() : P.v, w = P.w;
    const size_t n_params = (tied ? 1 : 2) * e + o;
    std::vector<float> am(n_params, 0), av(n_params, 0), ema(n_params, 0);
    std::vector<float> ma_ring((size_t)std::max(ma_window, 0) * n_params, 0);
    std::vector<double> norms(B * m), ring(4 * B * 4), ring_lr(4 * B), model_ctl(B * MCTL_WORDS);
    std::vector<u64> ctl(CTL_WORDS, 0), milestones = {1};
    std::vector<int> bad(B);
    std::vector<double> stats(B * 3, 0.5);
    // host mirror
    std::vector<float> hu = u, hv = tied ? u : v, hw = w;
    std::vector<float> hm(n_params, 0), hvv(n_params, 0), hema;
    std::vector<std::vector<float>> hwindow;  // the last ma_window gradients, oldest first
    const double factor = 2.0, b1 = 0.9, b2 = 0.98, eps = 1e-8, alpha = 0.98, warmup = 2.0;
    // Per-model settings: model 1 differs from model 0 in every one (and does not filter),
    // as a [per_model] batch does.
    const double lr0s[2] = {kind == 0 ? 0.05 : 1e-2, kind == 0 ? 0.02 : 3e-3};
    const double wds[2] = {kind == 1 ? 0.5 : 0.0, kind == 1 ? 1.5 : 0.0};
    const double lambdas[2] = {lambda, 3.0 * lambda};
    const double grokfasts[2] = {grokfast, 0.0};
    std::vector<double> hypers(B * HYPER_WORDS);
    for (int z = 0; z < B; ++z) {
        hypers[z * HYPER_WORDS + HYPER_LR] = lr0s[z];
        hypers[z * HYPER_WORDS + HYPER_WEIGHT_DECAY] = wds[z];
        hypers[z * HYPER_WORDS + HYPER_REG_LAMBDA] = lambdas[z];
        hypers[z * HYPER_WORDS + HYPER_GROKFAST_LAMBDA] = grokfasts[z];
    }
    double worst = 0;
    for (int step = 0; step < steps; ++step) {
        // gradients: any numbers will do
        std::vector<float> du(e), dv(e), dw(o);
        for (auto* g : {&du, &dv, &dw})
            for (float& x : *g) x = normal(0.1);
        float* pu = u.data();
        float* pv = tied ? u.data() : v.data();
        float* pw = w.data();
        emu::launch({cdiv(m, 32), (unsigned)B}, {32, 8}, [&] {
            neuron_norms(pu, pv, pw, (long long)n_in * m, (long long)C * m, n_in, C, m, norms.data());
        });
        FinalizeParams fp{stats.data(), norms.data(), ctl.data(), ring.data(), bad.data(),
                          hypers.data(), q, B, m, 4, reg};
        emu::launch({(unsigned)B}, {256}, [&] { finalize_models(fp); });
        ControlParams cp{ctl.data(), bad.data(), milestones.data(), ring_lr.data(), hypers.data(),
                         model_ctl.data(), factor, b1, b2, warmup, B, 1, 4, 0};
        emu::launch({1}, {32}, [&] { step_control(cp); });
        UpdateParams up{};
        up.u = pu, up.v = tied ? nullptr : v.data(), up.w = pw;
        up.du = du.data(), up.dv = dv.data(), up.dw = dw.data();
        up.adam_m = am.data(), up.adam_v = av.data(), up.ema = ema.data();
        up.norms = norms.data(), up.ctl = ctl.data();
        up.hypers = hypers.data(), up.model_ctl = model_ctl.data();
        up.emb_len = (long long)e, up.w_len = (long long)o, up.reg_q = q;
        up.n_in = n_in, up.n_out = C, up.m = m, up.tied = tied, up.kind = kind, up.reg = reg;
        up.beta1 = (float)b1, up.beta2 = (float)b2, up.one_minus_beta1 = (float)(1 - b1);
        up.one_minus_beta2 = (float)(1 - b2), up.eps = (float)eps, up.ga_alpha = (float)alpha;
        up.one_minus_ga_alpha = (float)(1 - alpha);
        up.grokfast = grokfast > 0 ? (ma_window > 0 ? 2 : 1) : 0;
        up.ma_ring = ma_ring.data(), up.ma_stride = (long long)n_params;
        up.ma_window = ma_window, up.ma_warmup = ma_warmup;
        emu::launch({4, 3}, {256}, [&] { update_params(up); });
        emu::launch({1}, {1}, [&] { advance_step(ctl.data(), ma_window); });

        // ---- host semantics: regularizer on effective weights, chain (tied), optimizer
        // milestone at step 1, linear warm-up over `warmup` steps (lr 0 at step 0)
        const double mult = (step >= 1 ? factor : 1.0) * (step < warmup ? step / warmup : 1.0);
        std::vector<double> hn(B * m, 0);
        for (int z = 0; z < B; ++z)
            for (int i = 0; i < m; ++i) {
                double s = 0;
                for (int r = 0; r < n_in; ++r) {
                    s += (double)hu[z * n_in * m + r * m + i] * hu[z * n_in * m + r * m + i];
                    s += (double)hv[z * n_in * m + r * m + i] * hv[z * n_in * m + r * m + i];
                }
                for (int r = 0; r < C; ++r) s += (double)hw[z * C * m + r * m + i] * hw[z * C * m + r * m + i];
                hn[z * m + i] = s;
            }
        for (int z = 0; z < B; ++z) {
            const double lz = lambdas[z];
            double reg_value = 0;
            for (int i = 0; i < m; ++i)
                reg_value += reg == 1   ? 0.5 * lz * hn[z * m + i]
                             : reg == 2 ? lz * hn[z * m + i] * std::sqrt(hn[z * m + i])
                             : reg == 3 ? lz * std::pow(hn[z * m + i], 0.5 * q)
                                        : 0;
            worst = std::max(worst, std::fabs(ring[((step % 4) * B + z) * 4 + 1] - reg_value) /
                                        std::max(reg_value, 1e-12));
            const double lr = lr0s[z] * mult;
            worst = std::max(worst, std::fabs(ring_lr[(step % 4) * B + z] - lr) / lr0s[z]);
        }
        auto coef = [&](int z, int i) -> float {
            const double lz = lambdas[z];
            const double n = hn[z * m + i];
            if (reg == 3) return n > 0 ? (float)(q * lz * std::pow(n, 0.5 * q - 1.0)) : 0.f;
            return reg == 1 ? (float)lz : reg == 2 ? (float)(3.0 * lz * std::sqrt(n)) : 0.f;
        };
        std::vector<float> gu(e), gv(e), gw(o);
        for (size_t q = 0; q < e; ++q) {
            const int z = (int)(q / (n_in * m)), i = (int)(q % m);
            gu[q] = du[q] + coef(z, i) * hu[q];
            gv[q] = dv[q] + coef(z, i) * hv[q];
        }
        for (size_t q = 0; q < o; ++q) gw[q] = dw[q] + coef((int)(q / (C * m)), (int)(q % m)) * hw[q];
        std::vector<float> params, grads;  // host Params order is per model; elementwise ops don't care
        for (size_t q = 0; q < e; ++q) grads.push_back(tied ? gu[q] + gv[q] : gu[q]);
        if (!tied) grads.insert(grads.end(), gv.begin(), gv.end());
        grads.insert(grads.end(), gw.begin(), gw.end());
        params = hu;
        if (!tied) params.insert(params.end(), hv.begin(), hv.end());
        params.insert(params.end(), hw.begin(), hw.end());
        // Model of element q in the [u | v | w] layout (each block model-major).
        const size_t emb_block = e, per_emb = (size_t)n_in * m, per_w = (size_t)C * m;
        auto model_of = [&](size_t q) -> int {
            const size_t blocks = tied ? 1 : 2;
            if (q < blocks * emb_block) return (int)((q % emb_block) / per_emb);
            return (int)((q - blocks * emb_block) / per_w);
        };
        if (grokfast > 0 && ma_window > 0) {
            hwindow.push_back(grads);
            if ((int)hwindow.size() > ma_window) hwindow.erase(hwindow.begin());
            const int len = (int)hwindow.size();
            if (!ma_warmup || len == ma_window)
                for (size_t q = 0; q < grads.size(); ++q) {
                    const float gl = (float)grokfasts[model_of(q)];
                    if (gl <= 0.f) continue;
                    float sum = hwindow[0][q];
                    for (int j = 1; j < len; ++j) sum += hwindow[j][q];
                    grads[q] += gl * (sum / (float)len);
                }
        } else if (grokfast > 0) {
            const bool fresh = hema.empty();
            if (fresh) hema = grads;
            for (size_t q = 0; q < grads.size(); ++q) {
                const float gl = (float)grokfasts[model_of(q)];
                if (gl <= 0.f) continue;
                if (!fresh) hema[q] = (float)alpha * hema[q] + (float)(1 - alpha) * grads[q];
                grads[q] += gl * hema[q];
            }
        }
        if (kind == 0) {
            for (size_t q = 0; q < params.size(); ++q)
                params[q] -= (float)(lr0s[model_of(q)] * mult) * grads[q];
        } else {
            const int t = step + 1;
            const double bias1 = 1 - std::pow(b1, t), bias2 = 1 - std::pow(b2, t);
            const float isb = (float)(1 / std::sqrt(bias2));
            for (size_t q = 0; q < params.size(); ++q) {
                const int z = model_of(q);
                const double lr = lr0s[z] * mult;
                const float decay = (float)(1 - lr * wds[z]), ss = (float)(lr / bias1);
                params[q] *= decay;
                hm[q] = (float)b1 * hm[q] + (float)(1 - b1) * grads[q];
                hvv[q] = (float)b2 * hvv[q] + (float)(1 - b2) * grads[q] * grads[q];
                params[q] -= ss * hm[q] / (std::sqrt(hvv[q]) * isb + (float)eps);
            }
        }
        hu.assign(params.begin(), params.begin() + e);
        if (tied) {
            hv = hu;
            hw.assign(params.begin() + e, params.end());
        } else {
            hv.assign(params.begin() + e, params.begin() + 2 * e);
            hw.assign(params.begin() + 2 * e, params.end());
        }
        std::vector<float> dev_params = u;
        if (!tied) dev_params.insert(dev_params.end(), v.begin(), v.end());
        dev_params.insert(dev_params.end(), w.begin(), w.end());
        std::vector<double> ref(params.begin(), params.end());
        worst = std::max(worst, rel_err(dev_params, ref));
    }
    if (ctl[CTL_STEP] != (u64)steps) worst = 1;
    if (ma_window > 0 && (ctl[CTL_MA_LEN] != (u64)std::min(steps, ma_window) ||
                          ctl[CTL_MA_HEAD] != (u64)(steps % ma_window)))
        worst = 1;
    char name[160];
    std::snprintf(name, sizeof name,
                  "optimizer kind=%d reg=%d q=%g lambda=%g grokfast=%g%s tied=%d (%d steps)", kind,
                  reg, q, lambda, grokfast,
                  ma_window > 0 ? (ma_warmup ? " ma(warmup)" : " ma") : "", (int)tied, steps);
    check(name, worst, 1e-5);
}

int main() {
    // Forward variants: bn32 (n_out <= 32), bn64, bn128 fused, n_out > 128 (ce_rows).
    pass_case(2, 13, 13, 40, 0, 2, 0, 150, 150, 1);
    pass_case(1, 11, 50, 70, 1, 1, 0, 100, 100, 3);
    pass_case(1, 9, 100, 24, 2, 3, 1, 90, 90, 1);
    pass_case(2, 10, 130, 33, 0, 2, 0, 70, 70, 2);
    pass_case(1, 10, 130, 17, 0, 2, 1, 75, 75, 1);
    // Chunks (accumulation across chunks) with and without splits.
    pass_case(2, 13, 13, 40, 0, 2, 1, 150, 64, 1);
    pass_case(1, 12, 40, 65, 1, 1, 0, 200, 64, 2);
    // Dense (bit-string) inputs: both encodings, every activation and loss, n_out 2 (the
    // bit tasks: bn32 + the m32 dW tile), 40 (bn64, 64-class dW) and 130 (bn128 unfused +
    // ce_rows), chunks with dU/dW accumulation, split dU partials, m not a tile multiple.
    bits_case(2, 8, 2, 40, 0, 2, 0, 150, 150, 1, true);
    bits_case(1, 11, 2, 70, 1, 1, 0, 200, 200, 3, false);
    bits_case(2, 5, 2, 33, 2, 3, 1, 90, 90, 1, true);
    bits_case(1, 32, 2, 24, 0, 2, 1, 120, 64, 2, false);
    bits_case(2, 13, 40, 65, 1, 1, 0, 130, 64, 1, true);
    bits_case(1, 7, 130, 20, 0, 2, 0, 100, 100, 2, false);
    bits_negative_case();
    // Multi-head epilogue: n_out 17 (one bn32 block) and 160 (several), CE and MSE, chunks.
    heads_case(2, 11, 24, 0, 0, 121);
    heads_case(1, 11, 20, 1, 1, 50);
    heads_case(2, 37, 16, 1, 0, 700);
    // Optimizer kernels.
    optimizer_case(0, 2, 1e-3, 0.0, false);
    optimizer_case(0, 1, 1e-2, 0.0, true);
    optimizer_case(1, 0, 0.0, 0.0, false);
    optimizer_case(1, 2, 1e-3, 2.0, false);
    optimizer_case(0, 0, 0.0, 2.0, true);
    // L2k: q = 3 (as L23), 2 (as L2 at 2λ), 5 (x⁴'s degree) and 1.5 (n^{q/2−1} unbounded at 0).
    optimizer_case(0, 3, 1e-3, 0.0, false, 3.0);
    optimizer_case(0, 3, 1e-2, 0.0, true, 2.0);
    optimizer_case(1, 3, 1e-3, 2.0, false, 5.0);
    optimizer_case(0, 3, 1e-3, 0.0, false, 1.5);
    // Grokfast-MA: GD and AdamW, tied and not, with and without warmup, window 1 and 3.
    optimizer_case(0, 2, 1e-3, 5.0, false, 0.0, 3, true);
    optimizer_case(0, 0, 0.0, 5.0, true, 0.0, 3, false);
    optimizer_case(1, 2, 1e-3, 5.0, false, 0.0, 3, false);
    optimizer_case(1, 1, 1e-2, 2.0, true, 0.0, 1, true);
    std::printf("%s\n", failures ? "EMULATION FAILED" : "emulation passed");
    return failures ? 1 : 0;
}
