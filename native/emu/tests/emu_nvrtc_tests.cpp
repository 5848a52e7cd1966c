// emu_nvrtc_tests.cpp: compiles emu_test_kernels.cu with the real NVRTC (no GPU needed) to
// show that the file the emulator runs is also valid CUDA C, and that NVRTC emits PTX entries
// with the same extern "C" names the emulator registers. Built only where NVRTC is found.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using CreateFn = int (*)(void**, const char*, const char*, int, const char* const*, const char* const*);
using CompileFn = int (*)(void*, int, const char* const*);
using SizeFn = int (*)(void*, size_t*);
using GetFn = int (*)(void*, char*);
using DestroyFn = int (*)(void**);

TEST(Nvrtc, TestKernelsCompileForSm80) {
    void* lib = dlopen(MVQ_NVRTC_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib, nullptr) << dlerror();
    auto create = reinterpret_cast<CreateFn>(dlsym(lib, "nvrtcCreateProgram"));
    auto compile = reinterpret_cast<CompileFn>(dlsym(lib, "nvrtcCompileProgram"));
    auto logSize = reinterpret_cast<SizeFn>(dlsym(lib, "nvrtcGetProgramLogSize"));
    auto log = reinterpret_cast<GetFn>(dlsym(lib, "nvrtcGetProgramLog"));
    auto ptxSize = reinterpret_cast<SizeFn>(dlsym(lib, "nvrtcGetPTXSize"));
    auto ptx = reinterpret_cast<GetFn>(dlsym(lib, "nvrtcGetPTX"));
    auto destroy = reinterpret_cast<DestroyFn>(dlsym(lib, "nvrtcDestroyProgram"));
    ASSERT_TRUE(create && compile && logSize && log && ptxSize && ptx && destroy);
    std::ifstream f(MVQ_EMU_TEST_KERNELS);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string src = ss.str();
    void* prog = nullptr;
    ASSERT_EQ(create(&prog, src.c_str(), "emu_test_kernels.cu", 0, nullptr, nullptr), 0);
    const char* opts[] = {"--gpu-architecture=compute_80", "-lineinfo", "--std=c++17"};
    int rc = compile(prog, 3, opts);
    size_t n = 0;
    logSize(prog, &n);
    std::string logText(n, '\0');
    log(prog, logText.data());
    ASSERT_EQ(rc, 0) << logText;
    ptxSize(prog, &n);
    std::string p(n, '\0');
    ptx(prog, p.data());
    for (const char* k : {"emu_block_sum", "emu_warp_sum", "emu_dyn_reverse", "emu_tiled_matmul"})
        EXPECT_NE(p.find(std::string(".entry ") + k), std::string::npos) << k;
    destroy(&prog);
}

}  // namespace
