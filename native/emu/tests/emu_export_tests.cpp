// emu_export_tests.cpp: loads the shipped build/native/libmvq_emu.so with dlopen (as the C#
// bindings do) and checks that every driver API / cuBLAS symbol the bindings may bind is
// exported, and that legacy v1 names with a different ABI (32-bit pointers) are not.
#include <dlfcn.h>
#include <gtest/gtest.h>

namespace {

TEST(Exports, ShippedLibraryExportsTheDriverAndCublasSubset) {
    void* lib = dlopen(MVQ_EMU_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib, nullptr) << dlerror();
    const char* names[] = {
        "cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName", "cuDeviceGetAttribute",
        "cuDeviceTotalMem_v2", "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxReset_v2",
        "cuCtxCreate_v2", "cuCtxDestroy_v2", "cuCtxSetCurrent", "cuCtxGetCurrent", "cuCtxSynchronize", "cuMemAlloc_v2",
        "cuMemFree_v2", "cuMemGetInfo_v2", "cuMemHostAlloc", "cuMemAllocHost_v2", "cuMemFreeHost", "cuStreamWaitEvent", "cuEventQuery", "cuMemcpyHtoD_v2", "cuMemcpyDtoH_v2", "cuMemcpyDtoD_v2", "cuMemcpyHtoDAsync_v2",
        "cuMemcpyDtoHAsync_v2", "cuMemcpyDtoDAsync_v2", "cuMemsetD8_v2", "cuMemsetD32_v2", "cuMemsetD8Async",
        "cuMemsetD32Async", "cuModuleLoadData", "cuModuleLoadDataEx", "cuModuleUnload", "cuModuleGetFunction",
        "cuFuncGetAttribute", "cuFuncSetAttribute", "cuLaunchKernel", "cuStreamCreate", "cuStreamDestroy_v2",
        "cuStreamSynchronize", "cuEventCreate", "cuEventRecord", "cuEventSynchronize", "cuEventElapsedTime",
        "cuEventDestroy_v2", "cuProfilerStart", "cuProfilerStop", "cuGetErrorName", "cuGetErrorString", "cublasCreate_v2",
        "cublasDestroy_v2", "cublasSetStream_v2", "cublasSetMathMode", "cublasSgemm_v2", "cublasSgemmStridedBatched",
        "cublasGemmEx", "mvqemu_is_emulator", "mvqemu_last_error", "mvqemu_register_region",
        "mvqemu_unregister_region", "mvqemu_launch_count", "mvqemu_checked_launch_count", "mvqemu_checkers", "mvqemu_card",
        "mvqemu_seed"};
    for (const char* n : names) EXPECT_NE(dlsym(lib, n), nullptr) << n;
    for (const char* n : {"cuMemAlloc", "cuMemFree", "cuMemcpyHtoD", "cuMemGetInfo", "cuCtxCreate", "cuDeviceTotalMem"})
        EXPECT_EQ(dlsym(lib, n), nullptr) << n << " (v1 ABI) must not be exported";
    // Internal symbols stay hidden.
    EXPECT_EQ(dlsym(lib, "mvq_emu_switch"), nullptr);
    auto isEmu = reinterpret_cast<int (*)()>(dlsym(lib, "mvqemu_is_emulator"));
    ASSERT_NE(isEmu, nullptr);
    EXPECT_EQ(isEmu(), 1);
}

}  // namespace
