// emu_api_tests.cpp: the emulated driver API outside kernels: device attributes, error names,
// memory (copies, memsets, invalid pointers, capacity, guards on host-side overruns),
// contexts per thread, modules (image kept, PTX entry check, unknown names), launch
// validation, streams and events.
#include <cmath>
#include <thread>

#include "emu_test_util.h"

namespace {

class Api : public EmuTest {};

TEST_F(Api, DeviceDescribesAnSm90LikeDevice) {
    int v = 0, count = 0, version = 0;
    CU_OK(cuDeviceGetCount(&count));
    EXPECT_EQ(count, 1);
    CU_OK(cuDriverGetVersion(&version));
    EXPECT_GE(version, 12000);
    auto attr = [&](int a) {
        int r = -1;
        EXPECT_EQ(cuDeviceGetAttribute(&r, a, 0), CUDA_SUCCESS) << a;
        return r;
    };
    EXPECT_EQ(attr(75), 9);
    EXPECT_EQ(attr(76), 0);
    EXPECT_EQ(attr(10), 32);
    EXPECT_EQ(attr(1), 1024);
    EXPECT_EQ(attr(8), 48 * 1024);
    EXPECT_EQ(attr(97), 227 * 1024);
    EXPECT_GE(attr(16), 1);
    EXPECT_EQ(cuDeviceGetAttribute(&v, 10, 1), CUDA_ERROR_INVALID_DEVICE);
    char name[128];
    CU_OK(cuDeviceGetName(name, sizeof name, 0));
    EXPECT_NE(std::string(name).find("emulator"), std::string::npos);
    size_t total = 0;
    CU_OK(cuDeviceTotalMem_v2(&total, 0));
    EXPECT_GT(total, 0u);
    EXPECT_EQ(mvqemu_is_emulator(), 1);
}

TEST_F(Api, ErrorNamesAndStrings) {
    const char* s = nullptr;
    CU_OK(cuGetErrorName(700, &s));
    EXPECT_STREQ(s, "CUDA_ERROR_ILLEGAL_ADDRESS");
    CU_OK(cuGetErrorName(500, &s));
    EXPECT_STREQ(s, "CUDA_ERROR_NOT_FOUND");
    CU_OK(cuGetErrorString(2, &s));
    EXPECT_STREQ(s, "out of memory");
    EXPECT_EQ(cuGetErrorName(12345, &s), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(s, nullptr);
}

TEST_F(Api, CopiesAndMemsets) {
    std::vector<float> x = {1, 2, 3, 4, 5, 6, 7};
    CUdeviceptr a = upload(x), b = alloc(7 * 4);
    CUstream s;
    CU_OK(cuStreamCreate(&s, 0));
    CU_OK(cuMemcpyDtoDAsync_v2(b, a, 7 * 4, s));
    CU_OK(cuStreamSynchronize(s));
    EXPECT_EQ(download<float>(b, 7), x);
    CU_OK(cuMemsetD32Async(b + 4, 0x3f800000u, 3, s));  // 1.0f
    CU_OK(cuMemsetD8_v2(a, 0, 8));
    std::vector<float> y(7);
    CU_OK(cuMemcpyDtoHAsync_v2(y.data(), b, 28, s));
    EXPECT_EQ(y, (std::vector<float>{1, 1, 1, 1, 5, 6, 7}));
    auto z = download<float>(a, 7);
    EXPECT_EQ(z[0], 0.0f);
    EXPECT_EQ(z[1], 0.0f);
    EXPECT_EQ(z[2], 3.0f);
    CU_OK(cuMemcpyHtoDAsync_v2(a, x.data(), 4, s));
    EXPECT_EQ(download<float>(a, 1)[0], 1.0f);
    CU_OK(cuStreamDestroy_v2(s));
    EXPECT_EQ(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
}

TEST_F(Api, FreshAllocationsHoldNaN) {
    CUdeviceptr a = alloc(16);
    auto v = download<float>(a, 4);
    for (float f : v) EXPECT_TRUE(std::isnan(f));
}

TEST_F(Api, InvalidPointersAreErrorsNotCrashes) {
    std::vector<float> host(16);
    CUdeviceptr a = alloc(64);
    EXPECT_EQ(cuMemFree_v2(reinterpret_cast<CUdeviceptr>(host.data())), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemFree_v2(a + 4), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemcpyHtoD_v2(reinterpret_cast<CUdeviceptr>(host.data()), host.data(), 64), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemcpyHtoD_v2(a, host.data(), 68), CUDA_ERROR_INVALID_VALUE);  // 4 bytes too many
    EXPECT_EQ(cuMemcpyDtoH_v2(host.data(), a + 8, 60), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemcpyDtoD_v2(a, 0x1000, 4), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemsetD32_v2(a + 2, 0, 1), CUDA_ERROR_INVALID_VALUE);   // misaligned
    EXPECT_EQ(cuMemsetD32_v2(a, 0, 17), CUDA_ERROR_INVALID_VALUE);
    EXPECT_NE(std::string(mvqemu_last_error()).find("cuMemsetD32_v2"), std::string::npos);
    CUdeviceptr b = 0;
    CU_OK(cuMemAlloc_v2(&b, 8));
    CU_OK(cuMemFree_v2(b));
    EXPECT_EQ(cuMemFree_v2(b), CUDA_ERROR_INVALID_VALUE);  // double free
    EXPECT_EQ(cuMemAlloc_v2(&b, 0), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(Api, CapacityAndMemInfo) {
    size_t free0 = 0, total = 0, free1 = 0;
    CU_OK(cuMemGetInfo_v2(&free0, &total));
    CUdeviceptr a = alloc(1 << 20);
    CU_OK(cuMemGetInfo_v2(&free1, &total));
    EXPECT_EQ(free0 - free1, size_t(1) << 20);
    CUdeviceptr huge = 0;
    EXPECT_EQ(cuMemAlloc_v2(&huge, total + 1), CUDA_ERROR_OUT_OF_MEMORY);
    (void)a;
}

TEST_F(Api, HostSideOverrunIsCaughtAtSynchronize) {
    CUdeviceptr a = alloc(40);
    reinterpret_cast<unsigned char*>(a)[40] = 0;  // device memory is host memory in the emulator
    EXPECT_EQ(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    EXPECT_NE(std::string(mvqemu_last_error()).find("40 bytes"), std::string::npos) << mvqemu_last_error();
    CU_OK(cuCtxSynchronize());  // repaired, reported once
    reinterpret_cast<unsigned char*>(a)[-1] = 0;
    EXPECT_EQ(mvqemu_check_guards(), 1);
    EXPECT_NE(std::string(mvqemu_last_error()).find("before the start"), std::string::npos) << mvqemu_last_error();
}

TEST_F(Api, EveryThreadNeedsACurrentContext) {
    CUresult without = CUDA_SUCCESS, with = 999;
    CUdeviceptr p = 0;
    std::thread t([&] {
        without = cuMemAlloc_v2(&p, 16);
        cuCtxSetCurrent(ctx_);
        with = cuMemAlloc_v2(&p, 16);
    });
    t.join();
    EXPECT_EQ(without, CUDA_ERROR_INVALID_CONTEXT);
    EXPECT_EQ(with, CUDA_SUCCESS);
    owned_.push_back(p);
}

TEST_F(Api, ContextStack) {
    CUcontext c = nullptr, cur = nullptr, popped = nullptr;
    CU_OK(cuCtxCreate_v2(&c, 0, 0));
    CU_OK(cuCtxGetCurrent(&cur));
    EXPECT_EQ(cur, c);
    CU_OK(cuCtxPushCurrent_v2(ctx_));
    CU_OK(cuCtxGetCurrent(&cur));
    EXPECT_EQ(cur, ctx_);
    CU_OK(cuCtxPopCurrent_v2(&popped));
    EXPECT_EQ(popped, ctx_);
    CU_OK(cuCtxDestroy_v2(c));
    EXPECT_EQ(cuCtxDestroy_v2(c), CUDA_ERROR_INVALID_CONTEXT);
    CU_OK(cuCtxSetCurrent(ctx_));
    CUdevice d = -1;
    CU_OK(cuCtxGetDevice(&d));
    EXPECT_EQ(d, 0);
}

TEST_F(Api, ModulesKeepTheImageAndCheckPtxEntries) {
    static const char ptx[] = ".version 8.0\n.target sm_90\n.visible .entry emu_block_sum(\n.param .u64 p0\n)\n{ ret; }\n";
    CUmodule m = nullptr;
    CU_OK(cuModuleLoadDataEx(&m, ptx, 0, nullptr, nullptr));
    size_t bytes = 0;
    const void* img = mvqemu_module_image(m, &bytes);
    ASSERT_NE(img, nullptr);
    EXPECT_EQ(bytes, sizeof ptx);
    EXPECT_EQ(std::memcmp(img, ptx, sizeof ptx), 0);
    CUfunction f = nullptr;
    CU_OK(cuModuleGetFunction(&f, m, "emu_block_sum"));
    EXPECT_EQ(cuModuleGetFunction(&f, m, "emu_warp_sum"), CUDA_ERROR_NOT_FOUND);  // compiled in, but not in this PTX
    EXPECT_EQ(cuModuleGetFunction(&f, module_, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
    EXPECT_NE(std::string(mvqemu_last_error()).find("no_such_kernel"), std::string::npos);
    CU_OK(cuModuleUnload(m));
    EXPECT_EQ(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_GE(mvqemu_kernel_count(), 10);
}

TEST_F(Api, LaunchValidation) {
    CUfunction f = fn("emu_block_sum");
    CUdeviceptr x = alloc(1024), y = alloc(1024);
    CU_OK(cuMemsetD32_v2(x, 0, 256));  // initcheck: the kernel reads x
    int n = 1;
    void* args[] = {&x, &y, &n};
    EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 2048, 1, 1, 0, nullptr, args, nullptr), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 32, 32, 2, 0, nullptr, args, nullptr), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuLaunchKernel(f, 0, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuLaunchKernel(nullptr, 1, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr), CUDA_ERROR_INVALID_HANDLE);
    CU_OK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr));
    int v = 0;
    CU_OK(cuFuncGetAttribute(&v, 0, f));
    EXPECT_EQ(v, 1024);
}

TEST_F(Api, StreamsAndEvents) {
    CUstream s;
    CUevent a, b, notiming;
    CU_OK(cuStreamCreate(&s, 1));
    CU_OK(cuEventCreate(&a, 0));
    CU_OK(cuEventCreate(&b, 0));
    CU_OK(cuEventCreate(&notiming, 2));
    float ms = -1;
    EXPECT_EQ(cuEventElapsedTime(&ms, a, b), CUDA_ERROR_INVALID_HANDLE);  // not recorded yet
    CU_OK(cuEventRecord(a, s));
    CU_OK(cuEventRecord(b, s));
    CU_OK(cuStreamWaitEvent(s, b, 0));
    CU_OK(cuEventSynchronize(b));
    CU_OK(cuEventQuery(b));
    CU_OK(cuEventElapsedTime(&ms, a, b));
    EXPECT_GE(ms, 0.0f);
    CU_OK(cuEventRecord(notiming, s));
    EXPECT_EQ(cuEventElapsedTime(&ms, a, notiming), CUDA_ERROR_INVALID_HANDLE);
    CU_OK(cuProfilerStart());
    CU_OK(cuProfilerStop());
    CU_OK(cuEventDestroy_v2(a));
    CU_OK(cuEventDestroy_v2(b));
    CU_OK(cuEventDestroy_v2(notiming));
    EXPECT_EQ(cuEventDestroy_v2(a), CUDA_ERROR_INVALID_HANDLE);
    CU_OK(cuStreamQuery(s));
    CU_OK(cuStreamDestroy_v2(s));
}

TEST_F(Api, StreamCaptureRecordsAndReplaysInOrder) {
    CUfunction f = fn("emu_block_sum");
    CUdeviceptr x = alloc(256 * 4), y = alloc(4);
    int n = 256;
    CUstream s;
    CU_OK(cuStreamCreate(&s, 1));
    CU_OK(cuStreamBeginCapture_v2(s, 1));
    int status = -1;
    CU_OK(cuStreamIsCapturing(s, &status));
    EXPECT_EQ(status, 1);
    CU_OK(cuMemsetD32Async(x, 0x3f800000u, 256, s));  // x = 1.0f
    void* args[] = {&x, &y, &n};
    CU_OK(cuLaunchKernel(f, 1, 1, 1, 256, 1, 1, 0, s, args, nullptr));
    n = 7;  // argument values are copied at capture: the replay still sums 256
    CUgraph g = nullptr;
    CU_OK(cuStreamEndCapture(s, &g));
    size_t nodes = 0;
    CU_OK(cuGraphGetNodes(g, nullptr, &nodes));
    EXPECT_EQ(nodes, 2u);
    CUgraphExec e = nullptr;
    CU_OK(cuGraphInstantiateWithFlags(&e, g, 0));
    unsigned long long launches = mvqemu_launch_count();
    CU_OK(cuGraphLaunch(e, s));
    CU_OK(cuStreamSynchronize(s));
    EXPECT_EQ(download<float>(y, 1)[0], 256.0f);
    EXPECT_EQ(mvqemu_launch_count(), launches + 1);  // a replayed kernel is a launch of the emulator
    CU_OK(cuGraphExecDestroy(e));
    CU_OK(cuGraphDestroy(g));
    CU_OK(cuStreamDestroy_v2(s));
}

TEST_F(Api, ReplayedLaunchesRunUnderTheSanitizer) {
    // memcheck on a replayed kernel: the out-of-bounds write of emu_oob_write fails the graph launch, named.
    CUdeviceptr y = alloc(100 * 4);
    int n = 100;
    CUstream s;
    CU_OK(cuStreamCreate(&s, 1));
    CU_OK(cuStreamBeginCapture_v2(s, 1));
    void* args[] = {&y, &n};
    CU_OK(cuLaunchKernel(fn("emu_oob_write"), 1, 1, 1, 128, 1, 1, 0, s, args, nullptr));
    CUgraph g = nullptr;
    CU_OK(cuStreamEndCapture(s, &g));
    CUgraphExec e = nullptr;
    CU_OK(cuGraphInstantiateWithFlags(&e, g, 0));
    EXPECT_EQ(cuGraphLaunch(e, s), CUDA_ERROR_ILLEGAL_ADDRESS);
    std::string msg = mvqemu_last_error();
    EXPECT_NE(msg.find("cuGraphLaunch: node 0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("emu_oob_write"), std::string::npos) << msg;
    // A sub-region registered during capture bounds the replay: 64 of the 100 floats, the kernel writes all 100.
    CUdeviceptr z = alloc(100 * 4);
    CU_OK(cuStreamBeginCapture_v2(s, 1));
    ASSERT_EQ(mvqemu_register_region(z, 64 * 4, "locked part"), 0);
    void* args2[] = {&z, &n};
    CU_OK(cuLaunchKernel(fn("emu_oob_write"), 1, 1, 1, 128, 1, 1, 0, s, args2, nullptr));
    ASSERT_EQ(mvqemu_unregister_region(z), 0);
    CUgraph g2 = nullptr;
    CU_OK(cuStreamEndCapture(s, &g2));
    CUgraphExec e2 = nullptr;
    CU_OK(cuGraphInstantiateWithFlags(&e2, g2, 0));
    EXPECT_EQ(cuGraphLaunch(e2, s), CUDA_ERROR_ILLEGAL_ADDRESS);
    msg = mvqemu_last_error();
    EXPECT_NE(msg.find("(sub-region) [") , std::string::npos) << msg;
    EXPECT_NE(msg.find(", +256)"), std::string::npos) << msg;  // the 64 floats registered at capture
    CU_OK(cuGraphExecDestroy(e));
    CU_OK(cuGraphDestroy(g));
    CU_OK(cuGraphExecDestroy(e2));
    CU_OK(cuGraphDestroy(g2));
    CU_OK(cuStreamDestroy_v2(s));
}

TEST_F(Api, CaptureRefusesSynchronisationHostCopiesAndAllocation) {
    CUstream s;
    CU_OK(cuStreamCreate(&s, 1));
    CUdeviceptr x = alloc(64);
    std::vector<float> host(16, 1.0f);
    auto refused = [&](auto call) {
        CU_OK(cuStreamBeginCapture_v2(s, 0));
        EXPECT_EQ(call(), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
        CUgraph g = nullptr;
        EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
        EXPECT_EQ(g, nullptr);
    };
    refused([&] { return cuStreamSynchronize(s); });
    refused([&] { return cuCtxSynchronize(); });
    refused([&] { return cuMemcpyHtoDAsync_v2(x, host.data(), 64, s); });
    refused([&] { return cuMemcpyDtoHAsync_v2(host.data(), x, 64, s); });
    refused([&] {
        CUdeviceptr p = 0;
        return cuMemAlloc_v2(&p, 64);
    });
    // Thread-local mode: another thread may still allocate and synchronise.
    CU_OK(cuStreamBeginCapture_v2(s, 1));
    CUresult other = 999;
    CUcontext ctx = nullptr;
    CU_OK(cuCtxGetCurrent(&ctx));
    std::thread t([&] {
        cuCtxSetCurrent(ctx);
        CUdeviceptr p = 0;
        other = cuMemAlloc_v2(&p, 64);
        if (other == CUDA_SUCCESS) other = cuMemFree_v2(p);
    });
    t.join();
    EXPECT_EQ(other, CUDA_SUCCESS);
    CUgraph g = nullptr;
    CU_OK(cuStreamEndCapture(s, &g));
    CU_OK(cuGraphDestroy(g));
    EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_ILLEGAL_STATE);  // not capturing any more
    CU_OK(cuStreamDestroy_v2(s));
}

// Pinned host memory and a copy stream: a host-to-device copy from pinned memory on a created stream is
// deferred until something orders it, so a reader that skips the event wait sees the old bytes.
TEST_F(Api, PinnedCopiesAreDeferredUntilAnEventWaitOrdersThem) {
    void* pinned = nullptr;
    CU_OK(cuMemHostAlloc(&pinned, 4 * sizeof(float), 0));
    auto* h = static_cast<float*>(pinned);
    for (int i = 0; i < 4; ++i) h[i] = 10.0f + i;
    CUdeviceptr d = upload(std::vector<float>{1, 2, 3, 4});
    CUstream copy, compute;
    CU_OK(cuStreamCreate(&copy, 1));
    CU_OK(cuStreamCreate(&compute, 1));
    CUevent done;
    CU_OK(cuEventCreate(&done, 2));
    CU_OK(cuMemcpyHtoDAsync_v2(d, pinned, 4 * sizeof(float), copy));
    CU_OK(cuEventRecord(done, copy));
    EXPECT_EQ(cuEventQuery(done), CUDA_ERROR_NOT_READY);
    EXPECT_EQ(cuStreamQuery(copy), CUDA_ERROR_NOT_READY);
    // A read on another stream with no wait: the copy has not run.
    std::vector<float> seen(4);
    CU_OK(cuMemcpyDtoHAsync_v2(seen.data(), d, 16, compute));
    EXPECT_EQ(seen, (std::vector<float>{1, 2, 3, 4}));
    // The host refills the pinned buffer before the copy ran: the copy delivers the new bytes (a DMA reads late).
    h[0] = 20.0f;
    // The wait orders the copy before later work of the compute stream.
    CU_OK(cuStreamWaitEvent(compute, done, 0));
    EXPECT_EQ(cuEventQuery(done), CUDA_SUCCESS);
    CU_OK(cuMemcpyDtoHAsync_v2(seen.data(), d, 16, compute));
    EXPECT_EQ(seen, (std::vector<float>{20, 11, 12, 13}));
    // Other operations on the copy stream run its deferred copies first (stream order); so does an event sync.
    h[1] = 30.0f;
    CU_OK(cuMemcpyHtoDAsync_v2(d, pinned, 16, copy));
    CU_OK(cuMemsetD32Async(d + 12, 0, 1, copy));
    EXPECT_EQ(download<float>(d, 4), (std::vector<float>{20, 30, 12, 0}));
    h[2] = 40.0f;
    CU_OK(cuMemcpyHtoDAsync_v2(d, pinned, 16, copy));
    CU_OK(cuEventRecord(done, copy));
    CU_OK(cuEventSynchronize(done));
    EXPECT_EQ(download<float>(d, 4)[2], 40.0f);
    // Pageable sources are copied at the call, as the driver stages them.
    std::vector<float> pageable = {5, 6, 7, 8};
    CU_OK(cuMemcpyHtoDAsync_v2(d, pageable.data(), 16, copy));
    EXPECT_EQ(download<float>(d, 4), pageable);
    EXPECT_EQ(cuMemFreeHost(reinterpret_cast<void*>(0x1000)), CUDA_ERROR_INVALID_VALUE);
    CU_OK(cuEventDestroy_v2(done));
    CU_OK(cuStreamDestroy_v2(copy));
    CU_OK(cuStreamDestroy_v2(compute));
    CU_OK(cuMemFreeHost(pinned));
}

}  // namespace
