// kernels/emulate/cuda_shim.hpp — just enough CUDA to run the fp32 kernels on the CPU.
//
// Used by kernels/emulate/emulate_pass.cpp (built and run by tests/cuda_emulation.rs) to
// check the kernels' indexing, tiling, bounds and reductions without a GPU. Every CUDA
// thread of a block is a std::thread; blocks run one after another, so `__shared__`
// can simply be `static`. __syncthreads is a block-wide std::barrier and warp shuffles go
// through a per-warp exchange with a 32-thread barrier. Threads that return early drop
// out of both barriers, as exited threads do on the GPU. Slow, exact, for small problems.
#pragma once

#include <math.h>

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define CW_HOST_EMULATION 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __restrict__
#define __align__(n) __attribute__((aligned(n)))

struct float2 {
    float x, y;
};

struct Dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local Dim3 threadIdx, blockIdx;
inline Dim3 gridDim, blockDim;

namespace emu {
struct Warp {
    explicit Warp(int n) : bar(n) {}
    std::barrier<> bar;
    uint64_t slot[32];
};
inline std::barrier<>* block_bar = nullptr;
inline std::vector<std::unique_ptr<Warp>>* warps = nullptr;
inline thread_local int linear = 0;
}  // namespace emu

inline void __syncthreads() { emu::block_bar->arrive_and_wait(); }

template <class T>
inline T __shfl_xor_sync(unsigned, T v, int o) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    emu::Warp& w = *(*emu::warps)[emu::linear >> 5];
    const int lane = emu::linear & 31;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    w.slot[lane] = bits;
    w.bar.arrive_and_wait();
    const uint64_t got = w.slot[lane ^ o];
    w.bar.arrive_and_wait();
    T r;
    std::memcpy(&r, &got, sizeof(T));
    return r;
}

template <class T>
inline T __ldg(const T* p) {
    return *p;
}
inline float __int_as_float(int x) {
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}
inline long long __double_as_longlong(double x) {
    long long r;
    std::memcpy(&r, &x, 8);
    return r;
}
inline double __longlong_as_double(long long x) {
    double r;
    std::memcpy(&r, &x, 8);
    return r;
}
inline int min(int a, int b) { return a < b ? a : b; }
using std::isfinite;

namespace emu {
// Runs `kernel()` for every thread of every block of `grid`.
inline void launch(Dim3 grid, Dim3 block, const std::function<void()>& kernel) {
    gridDim = grid;
    blockDim = block;
    const int n = (int)(block.x * block.y * block.z);
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                std::barrier<> bar(n);
                std::vector<std::unique_ptr<Warp>> ws;
                for (int w = 0; w < (n + 31) / 32; ++w)
                    ws.push_back(std::make_unique<Warp>(std::min(32, n - 32 * w)));
                block_bar = &bar;
                warps = &ws;
                std::vector<std::thread> threads;
                threads.reserve(n);
                for (int t = 0; t < n; ++t)
                    threads.emplace_back([&, t] {
                        threadIdx = Dim3{t % block.x, (t / block.x) % block.y,
                                         t / (block.x * block.y)};
                        blockIdx = Dim3{x, y, z};
                        linear = t;
                        kernel();
                        (*warps)[t >> 5]->bar.arrive_and_drop();
                        block_bar->arrive_and_drop();
                    });
                for (auto& th : threads) th.join();
            }
}
}  // namespace emu
