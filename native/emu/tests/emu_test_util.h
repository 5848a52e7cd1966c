// emu_test_util.h: shared helpers for the emulator tests: a fixture that initialises the
// driver API and makes the primary context current, device buffers and kernel lookup.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "mvq_emu_api.h"

#define CU_OK(call) ASSERT_EQ((call), CUDA_SUCCESS) << #call << ": " << mvqemu_last_error()

/// Initialises the emulated driver, retains the primary context and loads one module.
class EmuTest : public ::testing::Test {
protected:
    void SetUp() override {
        CU_OK(cuInit(0));
        CU_OK(cuDevicePrimaryCtxRetain(&ctx_, 0));
        CU_OK(cuCtxSetCurrent(ctx_));
        static const char image[] = "// emulator test image (not PTX)\n";
        CU_OK(cuModuleLoadData(&module_, image));
        live_ = mvqemu_live_allocations();
    }
    void TearDown() override {
        for (CUdeviceptr p : owned_) cuMemFree_v2(p);
        EXPECT_EQ(mvqemu_live_allocations(), live_) << "test leaked device buffers";
        EXPECT_EQ(cuModuleUnload(module_), CUDA_SUCCESS);
        EXPECT_EQ(cuDevicePrimaryCtxRelease_v2(0), CUDA_SUCCESS);
    }
    CUfunction fn(const char* name) {
        CUfunction f = nullptr;
        EXPECT_EQ(cuModuleGetFunction(&f, module_, name), CUDA_SUCCESS) << name << ": " << mvqemu_last_error();
        return f;
    }
    template <class T> CUdeviceptr upload(const std::vector<T>& host) {
        CUdeviceptr d = alloc(host.size() * sizeof(T));
        EXPECT_EQ(cuMemcpyHtoD_v2(d, host.data(), host.size() * sizeof(T)), CUDA_SUCCESS);
        return d;
    }
    CUdeviceptr alloc(size_t bytes) {
        CUdeviceptr d = 0;
        EXPECT_EQ(cuMemAlloc_v2(&d, bytes), CUDA_SUCCESS);
        owned_.push_back(d);
        return d;
    }
    template <class T> std::vector<T> download(CUdeviceptr d, size_t count) {
        std::vector<T> host(count);
        EXPECT_EQ(cuMemcpyDtoH_v2(host.data(), d, count * sizeof(T)), CUDA_SUCCESS);
        return host;
    }
    CUcontext ctx_ = nullptr;
    CUmodule module_ = nullptr;
    std::vector<CUdeviceptr> owned_;
    size_t live_ = 0;
};
