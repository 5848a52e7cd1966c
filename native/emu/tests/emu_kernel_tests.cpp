// emu_kernel_tests.cpp: runs the kernels of emu_test_kernels.cu through cuLaunchKernel and
// checks their results against plain host loops: shared-memory reductions with barriers,
// warp shuffles and votes, atomics, 3-D grids, dynamic shared memory, packed parameters,
// and that planted faults (out-of-bounds write, deadlock, trap) are reported, not crashes.
#include <cmath>
#include <numeric>
#include <random>

#include "emu_test_util.h"

namespace {

std::vector<float> random_floats(size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

class Kernels : public EmuTest {};

TEST_F(Kernels, BlockReductionWithSharedMemoryAndSyncthreads) {
    const int n = 256 * 37 + 11;  // odd tail: the last block is partly empty
    auto x = random_floats(n, 1);
    int blocks = (n + 255) / 256;
    CUdeviceptr dx = upload(x), dout = alloc(blocks * sizeof(float));
    int nn = n;
    void* args[] = {&dx, &dout, &nn};
    CU_OK(cuLaunchKernel(fn("emu_block_sum"), blocks, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr));
    auto out = download<float>(dout, blocks);
    for (int b = 0; b < blocks; ++b) {
        double ref = 0;
        for (int i = b * 256; i < std::min(n, (b + 1) * 256); ++i) ref += x[i];
        EXPECT_NEAR(out[b], ref, 1e-4) << "block " << b;
    }
}

TEST_F(Kernels, WarpShuffleReductions) {
    const int n = 32 * 24;
    auto x = random_floats(n, 2);
    CUdeviceptr dx = upload(x), down = alloc(24 * 4), dxor = alloc(n * 4);
    int nn = n;
    void* args[] = {&dx, &down, &dxor, &nn};
    CU_OK(cuLaunchKernel(fn("emu_warp_sum"), 3, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr));
    auto d = download<float>(down, 24);
    auto xr = download<float>(dxor, n);
    for (int w = 0; w < 24; ++w) {
        double ref = 0;
        for (int l = 0; l < 32; ++l) ref += x[w * 32 + l];
        EXPECT_NEAR(d[w], ref, 1e-4);
        for (int l = 0; l < 32; ++l) EXPECT_NEAR(xr[w * 32 + l], ref, 1e-4) << "warp " << w << " lane " << l;
    }
}

TEST_F(Kernels, ShuffleUpBroadcastWidthAndDouble) {
    const int n = 64;
    std::vector<int> x(n);
    for (int i = 0; i < n; ++i) x[i] = (i * 7) % 13 - 3;
    CUdeviceptr dx = upload(x), scan = alloc(n * 4), bc = alloc(n * 4), rot = alloc(n * 4), dbl = alloc(n * 8);
    void* args[] = {&dx, &scan, &bc, &rot, &dbl};
    CU_OK(cuLaunchKernel(fn("emu_warp_scan"), 1, 1, 1, n, 1, 1, 0, nullptr, args, nullptr));
    auto s = download<int>(scan, n), b = download<int>(bc, n), r = download<int>(rot, n);
    auto dd = download<double>(dbl, n);
    for (int w = 0; w < 2; ++w) {
        int acc = 0;
        for (int l = 0; l < 32; ++l) {
            int i = w * 32 + l;
            acc += x[i];
            EXPECT_EQ(s[i], acc) << i;
            EXPECT_EQ(b[i], x[w * 32 + 5]) << i;
            EXPECT_EQ(r[i], x[w * 32 + (l & 16) + ((l + 1) & 15)]) << i;
            EXPECT_EQ(dd[i], x[w * 32 + (l ^ 1)] + 0.5) << i;
        }
    }
}

TEST_F(Kernels, BallotAllAnyAndSyncthreadsCount) {
    const int n = 96;  // three warps: mixed, all positive, none positive
    std::vector<int> x(n);
    for (int i = 0; i < 32; ++i) x[i] = (i % 3 == 0) ? 1 : -1;
    for (int i = 32; i < 64; ++i) x[i] = 5;
    for (int i = 64; i < 96; ++i) x[i] = 0;
    CUdeviceptr dx = upload(x), ballot = alloc(3 * 4), all = alloc(3 * 4), any = alloc(3 * 4), count = alloc(4);
    void* args[] = {&dx, &ballot, &all, &any, &count};
    CU_OK(cuLaunchKernel(fn("emu_votes"), 1, 1, 1, n, 1, 1, 0, nullptr, args, nullptr));
    auto b = download<unsigned>(ballot, 3);
    auto a = download<int>(all, 3), y = download<int>(any, 3), c = download<int>(count, 1);
    unsigned ref0 = 0;
    for (int i = 0; i < 32; ++i) ref0 |= (x[i] > 0 ? 1u : 0u) << i;
    EXPECT_EQ(b[0], ref0);
    EXPECT_EQ(b[1], 0xffffffffu);
    EXPECT_EQ(b[2], 0u);
    EXPECT_EQ(a[0], 0);
    EXPECT_NE(a[1], 0);
    EXPECT_EQ(a[2], 0);
    EXPECT_NE(y[0], 0);
    EXPECT_NE(y[1], 0);
    EXPECT_EQ(y[2], 0);
    EXPECT_EQ(c[0], std::popcount(ref0) + 32);
}

TEST_F(Kernels, AtomicsAcrossManyBlocks) {
    const int n = 50000;  // enough blocks to run on the thread pool
    std::vector<int> x(n);
    std::mt19937 rng(3);
    for (auto& v : x) v = (int)(rng() % 2001) - 1000;
    CUdeviceptr dx = upload(x), hist = alloc(8 * 4), fsum = alloc(4), imax = alloc(4), imin = alloc(4), cas = alloc(4),
                exch = alloc(4);
    CU_OK(cuMemsetD32_v2(hist, 0, 8));
    CU_OK(cuMemsetD32_v2(fsum, 0, 1));
    CU_OK(cuMemsetD32_v2(imax, (unsigned)INT32_MIN, 1));
    CU_OK(cuMemsetD32_v2(imin, (unsigned)INT32_MAX, 1));
    CU_OK(cuMemsetD32_v2(cas, 0, 1));
    CU_OK(cuMemsetD32_v2(exch, 0, 1));
    int nn = n;
    void* args[] = {&dx, &nn, &hist, &fsum, &imax, &imin, &cas, &exch};
    CU_OK(cuLaunchKernel(fn("emu_atomics"), (n + 127) / 128, 1, 1, 128, 1, 1, 0, nullptr, args, nullptr));
    std::vector<int> ref(8, 0);
    for (int v : x) ref[v & 7]++;
    EXPECT_EQ(download<int>(hist, 8), ref);
    EXPECT_EQ(download<float>(fsum, 1)[0], 0.5f * n);  // exact: multiples of 0.5 below 2^24
    EXPECT_EQ(download<int>(imax, 1)[0], *std::max_element(x.begin(), x.end()));
    EXPECT_EQ(download<int>(imin, 1)[0], *std::min_element(x.begin(), x.end()));
    EXPECT_EQ(download<unsigned>(cas, 1)[0], (unsigned)n);
    EXPECT_EQ(download<int>(exch, 1)[0], 7);
}

TEST_F(Kernels, ThreeDimensionalGridAndBlock) {
    const unsigned nx = 13, ny = 7, nz = 5;
    const unsigned bx = 4, by = 3, bz = 2;
    unsigned gx = (nx + bx - 1) / bx, gy = (ny + by - 1) / by, gz = (nz + bz - 1) / bz;
    CUdeviceptr out = alloc(nx * ny * nz * 4);
    unsigned ax = nx, ay = ny, az = nz;
    void* args[] = {&out, &ax, &ay, &az};
    CU_OK(cuLaunchKernel(fn("emu_grid3d"), gx, gy, gz, bx, by, bz, 0, nullptr, args, nullptr));
    auto o = download<unsigned>(out, nx * ny * nz);
    for (unsigned z = 0; z < nz; ++z)
        for (unsigned y = 0; y < ny; ++y)
            for (unsigned x = 0; x < nx; ++x) {
                unsigned blk = x / bx + gx * (y / by + gy * (z / bz));
                unsigned thr = x % bx + bx * (y % by + by * (z % bz));
                EXPECT_EQ(o[x + nx * (y + ny * z)], blk * bx * by * bz + thr) << x << "," << y << "," << z;
            }
}

TEST_F(Kernels, DynamicSharedMemory) {
    const int block = 128, blocks = 40;
    auto x = random_floats(block * blocks, 4);
    CUdeviceptr dx = upload(x), dy = alloc(x.size() * 4);
    void* args[] = {&dx, &dy};
    CU_OK(cuLaunchKernel(fn("emu_dyn_reverse"), blocks, 1, 1, block, 1, 1, block * sizeof(float), nullptr, args, nullptr));
    auto y = download<float>(dy, x.size());
    for (int b = 0; b < blocks; ++b)
        for (int t = 0; t < block; ++t) EXPECT_EQ(y[b * block + t], x[b * block + block - 1 - t]);
}

TEST_F(Kernels, DynamicSharedMemoryAboveDefaultNeedsOptIn) {
    CUfunction f = fn("emu_dyn_reverse");
    CUdeviceptr dx = alloc(1024 * 4), dy = alloc(1024 * 4);
    void* args[] = {&dx, &dy};
    EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 1024, 1, 1, 64 * 1024, nullptr, args, nullptr), CUDA_ERROR_INVALID_VALUE);
    CU_OK(cuFuncSetAttribute(f, 8, 100 * 1024));
    int v = 0;
    CU_OK(cuFuncGetAttribute(&v, 8, f));
    EXPECT_EQ(v, 100 * 1024);
    CU_OK(cuMemsetD32_v2(dx, 0, 1024));
    CU_OK(cuLaunchKernel(f, 1, 1, 1, 1024, 1, 1, 64 * 1024, nullptr, args, nullptr));
    EXPECT_EQ(cuFuncSetAttribute(f, 8, 300 * 1024), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(Kernels, PackedParametersThroughExtra) {
    CUdeviceptr out = alloc(5 * 4);
    // Layout by C rules: char @0, double @8, int @16, float* @24, short @32, long long @40.
    alignas(8) unsigned char buf[48] = {};
    char c = 3;
    double d = 2.5;
    int i = -7;
    short s = 11;
    long long ll = 1LL << 40;
    std::memcpy(buf + 0, &c, 1);
    std::memcpy(buf + 8, &d, 8);
    std::memcpy(buf + 16, &i, 4);
    std::memcpy(buf + 24, &out, 8);
    std::memcpy(buf + 32, &s, 2);
    std::memcpy(buf + 40, &ll, 8);
    size_t size = sizeof buf;
    void* extra[] = {(void*)1, buf, (void*)2, &size, (void*)0};
    CU_OK(cuLaunchKernel(fn("emu_mixed_args"), 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, extra));
    auto o = download<float>(out, 5);
    EXPECT_EQ(o[0], 3.0f);
    EXPECT_EQ(o[1], 2.5f);
    EXPECT_EQ(o[2], -7.0f);
    EXPECT_EQ(o[3], 11.0f);
    EXPECT_EQ(o[4], (float)(1LL << 40));
}

TEST_F(Kernels, TiledMatmulWithManyBarriers) {
    const int m = 45, n = 37, k = 70;
    auto a = random_floats(m * k, 5), b = random_floats(k * n, 6);
    CUdeviceptr da = upload(a), db = upload(b), dc = alloc(m * n * 4);
    int mm = m, nn = n, kk = k;
    void* args[] = {&da, &db, &dc, &mm, &nn, &kk};
    CU_OK(cuLaunchKernel(fn("emu_tiled_matmul"), (n + 15) / 16, (m + 15) / 16, 1, 16, 16, 1, 0, nullptr, args, nullptr));
    auto c = download<float>(dc, m * n);
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            double ref = 0;
            for (int p = 0; p < k; ++p) ref += (double)a[i * k + p] * b[p * n + j];
            EXPECT_NEAR(c[i * n + j], ref, 1e-4);
        }
}

TEST_F(Kernels, MathIntrinsicsMatchHostLibm) {
    std::vector<float> x = {-2.5f, -1.0f, -0.1f, 0.0f, 0.3f, 1.0f, 4.0f, 9.5f};
    CUdeviceptr dx = upload(x), dy = alloc(x.size() * 4);
    void* args[] = {&dx, &dy};
    CU_OK(cuLaunchKernel(fn("emu_math"), 1, 1, 1, (unsigned)x.size(), 1, 1, 0, nullptr, args, nullptr));
    auto y = download<float>(dy, x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        double v = x[i];
        double r = std::exp(v) + std::log(std::fabs(v) + 1) + std::sqrt(std::fabs(v)) + 1 / std::sqrt(std::fabs(v) + 1) +
                   std::exp(-v) + v / 3 + std::max(v, 0.0) + std::min(v, 0.0) + (2 * v + 1) + (v < 0 ? -1.0 : 1.0) +
                   std::tanh(v) + v + v;
        EXPECT_NEAR(y[i], r, 1e-4 * std::max(1.0, std::fabs(r))) << "x = " << v;
    }
}

TEST_F(Kernels, OutOfBoundsWriteIsCaughtByGuards) {
    const int n = 100;
    CUdeviceptr y = alloc(n * 4);
    int nn = n;
    void* args[] = {&y, &nn};
    mvqemu_clear_error();
    EXPECT_EQ(cuLaunchKernel(fn("emu_oob_write"), 1, 1, 1, 128, 1, 1, 0, nullptr, args, nullptr), CUDA_ERROR_ILLEGAL_ADDRESS);
    std::string msg = mvqemu_last_error();
    EXPECT_NE(msg.find("emu_oob_write"), std::string::npos) << msg;
    EXPECT_NE(msg.find("400 bytes"), std::string::npos) << msg;       // names the allocation by size
    EXPECT_NE(msg.find("past the end"), std::string::npos) << msg;
    // The guard was repaired: the next correct launch is clean.
    CU_OK(cuLaunchKernel(fn("emu_grid3d"), 1, 1, 1, 1, 1, 1, 0, nullptr, std::vector<void*>{&y, &nn, &nn, &nn}.data(), nullptr));
    EXPECT_EQ(mvqemu_check_guards(), 0);
}

TEST_F(Kernels, HostPointerArgumentIsRejected) {
    std::vector<float> host(4);
    float* hp = host.data();
    int n = 4;
    void* args[] = {&hp, &n};
    EXPECT_EQ(cuLaunchKernel(fn("emu_oob_write"), 1, 1, 1, 1, 1, 1, 0, nullptr, args, nullptr), CUDA_ERROR_ILLEGAL_ADDRESS);
    EXPECT_NE(std::string(mvqemu_last_error()).find("argument #0"), std::string::npos) << mvqemu_last_error();
}

TEST_F(Kernels, DeadlockIsReportedNotHung) {
    CUdeviceptr out = alloc(4);
    void* args[] = {&out};
    EXPECT_EQ(cuLaunchKernel(fn("emu_deadlock"), 2, 1, 1, 64, 1, 1, 0, nullptr, args, nullptr), CUDA_ERROR_LAUNCH_FAILED);
    EXPECT_NE(std::string(mvqemu_last_error()).find("deadlock"), std::string::npos) << mvqemu_last_error();
}

TEST_F(Kernels, TrapIsReportedAsAssert) {
    std::vector<float> x(300, 1.0f);
    x[217] = -1.0f;
    CUdeviceptr dx = upload(x);
    int n = (int)x.size();
    void* args[] = {&dx, &n};
    EXPECT_EQ(cuLaunchKernel(fn("emu_trap_negative"), 3, 1, 1, 128, 1, 1, 0, nullptr, args, nullptr), CUDA_ERROR_ASSERT);
    std::string msg = mvqemu_last_error();
    EXPECT_NE(msg.find("block (1,0,0) thread (89,0,0)"), std::string::npos) << msg;
    // The emulator keeps working after a faulting kernel.
    x[217] = 1.0f;
    CU_OK(cuMemcpyHtoD_v2(dx, x.data(), x.size() * 4));
    CU_OK(cuLaunchKernel(fn("emu_trap_negative"), 3, 1, 1, 128, 1, 1, 0, nullptr, args, nullptr));
}

TEST_F(Kernels, ConcurrentBlocksGetDistinctSharedMemory) {
    // Many blocks of a barrier-heavy kernel on the pool: any sharing of __shared__ between
    // concurrently running blocks would corrupt the sums.
    const int blocks = 400, n = 256 * blocks;
    auto x = random_floats(n, 7, 0.0f, 1.0f);
    CUdeviceptr dx = upload(x), dout = alloc(blocks * 4);
    int nn = n;
    void* args[] = {&dx, &dout, &nn};
    for (int rep = 0; rep < 3; ++rep) {
        CU_OK(cuLaunchKernel(fn("emu_block_sum"), blocks, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr));
        auto out = download<float>(dout, blocks);
        for (int b = 0; b < blocks; ++b) {
            double ref = std::accumulate(x.begin() + b * 256, x.begin() + (b + 1) * 256, 0.0);
            ASSERT_NEAR(out[b], ref, 1e-3) << "block " << b;
        }
    }
}

}  // namespace
