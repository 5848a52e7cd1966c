// emu_internal.h: interfaces between the emulator's runtime parts (block execution and the
// thread pool in emu_exec.cpp, memory and guards in emu_memory.cpp, the driver API in
// emu_driver.cpp, cuBLAS in emu_cublas.cpp). Not included by kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "cuda_emu.h"
#include "emu_registry.h"

namespace mvq_emu {

/// Largest dynamic shared memory a launch may ask for (the opt-in limit of an sm_90 device)
/// and the size of each generated `extern __shared__` buffer.
constexpr unsigned kMaxDynamicSmem = 232448;
constexpr unsigned kDefaultDynamicSmem = 49152;

/// Outcome of running a grid: 0 or a CUresult code, with a message.
struct RunResult {
    int code = 0;
    std::string message;
};

/// Runs all blocks of a grid on the thread pool and returns when every block is done.
RunResult run_grid(const KernelDesc* k, dim3 grid, dim3 block, unsigned dynSmem, void** params);

/// Splits [0, n) into chunks run on the pool (the caller helps); used by the host cuBLAS.
void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body);

/// Number of OS threads that execute blocks (pool workers plus the caller).
int execution_threads();

// ---- memory (emu_memory.cpp) --------------------------------------------------------------
/// Allocates `bytes` with guard regions; returns nullptr when over the emulated capacity.
void* mem_alloc(std::size_t bytes);
/// Frees an allocation; false when p is not the start of a live allocation.
bool mem_free(void* p);
/// True when [p, p+bytes) lies inside one live allocation (bytes may be 0: p may be one past the end).
bool mem_range_ok(const void* p, std::size_t bytes);
/// Checks every live allocation's guards; restores them and describes the first violation.
/// Returns the number of damaged allocations.
int mem_check_guards(std::string* firstViolation);
std::size_t mem_used();
std::size_t mem_total();
std::size_t mem_live_count();

/// Records the message that mvqemu_last_error() returns.
void set_last_error(const std::string& msg);

}  // namespace mvq_emu
