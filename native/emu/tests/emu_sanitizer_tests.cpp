// emu_sanitizer_tests.cpp: each checker of the emulator's sanitizer (emu_check.cpp,
// emu_exec.cpp) against a kernel of emu_test_kernels.cu that commits exactly its fault, and the
// same kernel without the fault passing. The report must name the checker, kernel, block,
// thread and the allocation or source line involved.
#include <cstdlib>
#include <set>

#include "emu_test_util.h"

namespace {

class Sanitizer : public EmuTest {
protected:
    /// Launches with a 1-D grid; returns the CUresult and leaves the message in msg_.
    CUresult launch(const char* name, unsigned grid, unsigned block, std::vector<void*> args, unsigned smem = 0) {
        mvqemu_clear_error();
        CUresult r = cuLaunchKernel(fn(name), grid, 1, 1, block, 1, 1, smem, nullptr, args.data(), nullptr);
        msg_ = mvqemu_last_error();
        return r;
    }
    void expect_in_msg(std::initializer_list<const char*> parts) {
        for (const char* p : parts) EXPECT_NE(msg_.find(p), std::string::npos) << "'" << p << "' not in: " << msg_;
    }
    std::string msg_;
};

TEST_F(Sanitizer, MemcheckCatchesAReadOnePastTheEnd) {
    const int n = 100;
    CUdeviceptr x = upload(std::vector<float>(n, 1.0f)), y = alloc(n * 4);
    int nn = n, extra = 0;
    EXPECT_EQ(launch("emu_oob_read", 1, 128, {&x, &y, &nn, &extra}), CUDA_SUCCESS) << msg_;
    extra = 1;  // thread 100 reads x[100]: inside the 256-byte rounding, outside the 400 bytes asked for
    EXPECT_EQ(launch("emu_oob_read", 1, 128, {&x, &y, &nn, &extra}), CUDA_ERROR_ILLEGAL_ADDRESS);
    expect_in_msg({"memcheck", "out of bounds", "read of 4 bytes", "emu_oob_read", "thread (100,0,0)", "block (0,0,0)",
                   "0 bytes past the end of allocation", "400 bytes", "emu_test_kernels.cu:", "launch #"});
}

TEST_F(Sanitizer, MemcheckCatchesAWriteIntoTheNextSubRegion) {
    // One allocation holding two registered buffers of 64 floats back to back (an arena):
    // a write past the first lands inside the second, which the guard bytes cannot see.
    CUdeviceptr arena = alloc(128 * 4);
    CUdeviceptr first = arena, second = arena + 64 * 4;
    ASSERT_EQ(mvqemu_register_region(first, 64 * 4, "first"), 0) << mvqemu_last_error();
    ASSERT_EQ(mvqemu_register_region(second, 64 * 4, "second"), 0) << mvqemu_last_error();
    EXPECT_NE(mvqemu_register_region(first + 4, 8, "overlap"), 0);
    int limit = 64;
    EXPECT_EQ(launch("emu_write_upto", 1, 128, {&first, &limit}), CUDA_SUCCESS) << msg_;
    limit = 65;
    EXPECT_EQ(launch("emu_write_upto", 1, 128, {&first, &limit}), CUDA_ERROR_ILLEGAL_ADDRESS);
    expect_in_msg({"memcheck", "outside the buffer of every pointer argument", "write of 4 bytes", "thread (64,0,0)",
                   "sub-region 'second'"});
    EXPECT_EQ(mvqemu_unregister_region(first), 0);
    EXPECT_EQ(mvqemu_unregister_region(second), 0);
    EXPECT_NE(mvqemu_unregister_region(second), 0);
    // Without sub-regions the whole allocation is the argument's buffer again.
    EXPECT_EQ(launch("emu_write_upto", 1, 128, {&first, &limit}), CUDA_SUCCESS) << msg_;
}

TEST_F(Sanitizer, MemcheckCatchesMisalignedAccess) {
    CUdeviceptr x = upload(std::vector<float>(4, 1.0f)), y = alloc(4);
    int offset = 4;
    EXPECT_EQ(launch("emu_misaligned", 1, 32, {&x, &y, &offset}), CUDA_SUCCESS) << msg_;
    offset = 2;
    EXPECT_EQ(launch("emu_misaligned", 1, 32, {&x, &y, &offset}), CUDA_ERROR_ILLEGAL_ADDRESS);
    expect_in_msg({"memcheck", "misaligned", "read of 4 bytes"});
}

TEST_F(Sanitizer, InitcheckCatchesAReadOfMemoryNeverWritten) {
    const int n = 64;
    CUdeviceptr x = alloc(n * 4), y = alloc(n * 4);
    int nn = n;
    EXPECT_EQ(launch("emu_read_input", 1, 64, {&x, &y, &nn}), CUDA_ERROR_LAUNCH_FAILED);
    expect_in_msg({"initcheck", "uninitialized read", "emu_read_input"});
    CU_OK(cuMemsetD32_v2(x, 0, n / 2));  // half written: the first unwritten float is caught
    EXPECT_EQ(launch("emu_read_input", 1, 64, {&x, &y, &nn}), CUDA_ERROR_LAUNCH_FAILED);
    {
        // Threads run in a seeded random order: whichever reads first, it is one of the unwritten half.
        std::size_t at = msg_.find("thread (");
        ASSERT_NE(at, std::string::npos) << msg_;
        EXPECT_GE(std::atoi(msg_.c_str() + at + 8), n / 2) << msg_;
    }
    CU_OK(cuMemsetD32_v2(x, 0, n));
    EXPECT_EQ(launch("emu_read_input", 1, 64, {&x, &y, &nn}), CUDA_SUCCESS) << msg_;
    // What a kernel wrote counts as written: y (written above) can be read now.
    EXPECT_EQ(launch("emu_read_input", 1, 64, {&y, &x, &nn}), CUDA_SUCCESS) << msg_;
}

TEST_F(Sanitizer, RacecheckCatchesSharedMemoryHazardWithoutBarrier) {
    CUdeviceptr y = alloc(128 * 4);
    int sync = 1;
    EXPECT_EQ(launch("emu_neighbour", 2, 128, {&y, &sync}), CUDA_SUCCESS) << msg_;
    sync = 0;
    EXPECT_EQ(launch("emu_neighbour", 2, 128, {&y, &sync}), CUDA_ERROR_LAUNCH_FAILED);
    expect_in_msg({"racecheck", "shared-memory hazard", "emu_test_kernels.cu:", "emu_neighbour"});
}

TEST_F(Sanitizer, RacecheckExposesLockstepWarpAssumption) {
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = (float)i;
    CUdeviceptr dx = upload(x), y = alloc(4);
    int sync = 1;
    EXPECT_EQ(launch("emu_warp_tree", 1, 32, {&dx, &y, &sync}), CUDA_SUCCESS) << msg_;
    EXPECT_EQ(download<float>(y, 1)[0], 496.0f);
    sync = 0;
    EXPECT_EQ(launch("emu_warp_tree", 1, 32, {&dx, &y, &sync}), CUDA_ERROR_LAUNCH_FAILED);
    expect_in_msg({"racecheck", "__syncwarp"});
}

TEST_F(Sanitizer, SynccheckCatchesDivergentBarriers) {
    CUdeviceptr y = alloc(64 * 4);
    EXPECT_EQ(launch("emu_divergent_barrier", 1, 32, {&y}), CUDA_ERROR_LAUNCH_FAILED);
    expect_in_msg({"synccheck", "divergent __syncthreads", "emu_test_kernels.cu:"});
    int n = 64;
    EXPECT_EQ(launch("emu_exit_before_barrier", 1, 64, {&y, &n}), CUDA_SUCCESS) << msg_;
    n = 40;
    EXPECT_EQ(launch("emu_exit_before_barrier", 1, 64, {&y, &n}), CUDA_ERROR_LAUNCH_FAILED);
    expect_in_msg({"synccheck", "exited"});
}

TEST_F(Sanitizer, SynccheckCatchesWarpMaskNamingAbsentLanes) {
    CUdeviceptr y = alloc(32 * 4);
    EXPECT_EQ(launch("emu_full_mask_partial_warp", 1, 32, {&y}), CUDA_SUCCESS) << msg_;
    EXPECT_EQ(launch("emu_full_mask_partial_warp", 1, 16, {&y}), CUDA_ERROR_LAUNCH_FAILED);
    expect_in_msg({"synccheck", "mask 0xffffffff", "do not exist"});
}

TEST_F(Sanitizer, MemcheckCatchesSharedArrayTooSmallAndDynamicOverrun) {
    CUdeviceptr y = alloc(64 * 4);
    EXPECT_EQ(launch("emu_small_shared", 1, 63, {&y}), CUDA_SUCCESS) << msg_;
    EXPECT_EQ(launch("emu_small_shared", 1, 64, {&y}), CUDA_ERROR_ILLEGAL_ADDRESS);
    expect_in_msg({"memcheck", "shared memory out of bounds", "past the end of __shared__ 's' of emu_small_shared"});
    int upto = 32;
    EXPECT_EQ(launch("emu_dyn_upto", 1, 64, {&y, &upto}, 32 * 4), CUDA_SUCCESS) << msg_;
    upto = 33;
    EXPECT_EQ(launch("emu_dyn_upto", 1, 64, {&y, &upto}, 32 * 4), CUDA_ERROR_ILLEGAL_ADDRESS);
    expect_in_msg({"memcheck", "dynamic shared memory", "128 bytes"});
}

TEST_F(Sanitizer, ThreadOrderChangesFromLaunchToLaunch) {
    CUdeviceptr y = alloc(4);
    std::set<int> last;
    for (int i = 0; i < 8; ++i) {
        ASSERT_EQ(launch("emu_last_writer", 1, 256, {&y}), CUDA_SUCCESS) << msg_;
        last.insert(download<int>(y, 1)[0]);
    }
    EXPECT_GT(last.size(), 1u) << "the same thread ran last in 8 launches: the order is not shuffled";
    EXPECT_NE(std::string(mvqemu_checkers()).find("shuffle"), std::string::npos);
    EXPECT_GT(mvqemu_checked_launch_count(), 0u);
}

TEST_F(Sanitizer, LimitsOfTheEmulatedCard) {
    CUfunction f = fn("emu_big_static_shared");
    int v = 0;
    CU_OK(cuFuncGetAttribute(&v, 1, f));  // SHARED_SIZE_BYTES: the static array
    EXPECT_EQ(v, 10240 * 4);
    CUdeviceptr y = alloc(64 * 4);
    EXPECT_EQ(launch("emu_big_static_shared", 1, 64, {&y}, 1024), CUDA_SUCCESS) << msg_;
    // 200 KiB dynamic needs the opt-in, and with 40 KiB static it is over an sm_90 block's 227 KiB.
    EXPECT_EQ(launch("emu_big_static_shared", 1, 64, {&y}, 200 * 1024), CUDA_ERROR_INVALID_VALUE);
    EXPECT_NE(cuFuncSetAttribute(f, 8, 200 * 1024), CUDA_SUCCESS);
    CU_OK(cuFuncSetAttribute(f, 8, 180 * 1024));
    EXPECT_EQ(launch("emu_big_static_shared", 1, 64, {&y}, 180 * 1024), CUDA_SUCCESS) << msg_;
    EXPECT_EQ(launch("emu_big_static_shared", 1, 1025, {&y}), CUDA_ERROR_INVALID_VALUE);
    CUdevice dev = 0;
    CU_OK(cuDeviceGet(&dev, 0));
    const char* was = std::getenv("MVQ_EMU_CARD");
    std::string saved = was ? was : "";
    setenv("MVQ_EMU_CARD", "sm_90", 1);
    CU_OK(cuDeviceGetAttribute(&v, (CUdevice_attribute)97, dev));
    EXPECT_EQ(v, 232448);
    // The A100 (sm_80): 163 KiB per block, so the same launch no longer fits.
    setenv("MVQ_EMU_CARD", "sm_80", 1);
    EXPECT_STREQ(mvqemu_card(), "sm_80");
    CU_OK(cuDeviceGetAttribute(&v, (CUdevice_attribute)97, dev));
    EXPECT_EQ(v, 166912);
    CU_OK(cuDeviceGetAttribute(&v, (CUdevice_attribute)75, dev));
    EXPECT_EQ(v, 8);
    char name[128];
    CU_OK(cuDeviceGetName(name, sizeof name, dev));
    EXPECT_NE(std::string(name).find("A100"), std::string::npos) << name;
    EXPECT_EQ(launch("emu_big_static_shared", 1, 64, {&y}, 180 * 1024), CUDA_ERROR_INVALID_VALUE);
    expect_in_msg({"sm_80", "static", "dynamic"});
    if (was) setenv("MVQ_EMU_CARD", saved.c_str(), 1); else unsetenv("MVQ_EMU_CARD");
}

}  // namespace
