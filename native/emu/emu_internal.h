// emu_internal.h: interfaces between the emulator's runtime parts (block execution and the
// thread pool in emu_exec.cpp, memory and guards in emu_memory.cpp, the driver API in
// emu_driver.cpp, cuBLAS in emu_cublas.cpp). Not included by kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "cuda_emu.h"
#include "emu_registry.h"

struct CUstream_st;

namespace mvq_emu {

// ---- stream capture (emu_driver.cpp), for cuBLAS calls on a capturing stream --------------------
/// True when stream s is capturing a graph.
bool stream_capturing(CUstream_st* s);
/// Appends an operation (returning a CUresult / cublasStatus_t code) to the graph s is capturing.
void stream_record(CUstream_st* s, std::string name, std::function<int()> node);
/// Runs the deferred (pinned-copy) work queued on s, as any operation on s must first; 0 or a CUresult.
int stream_flush(CUstream_st* s);

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
struct LaunchInfo;
RunResult run_grid(const KernelDesc* k, dim3 grid, dim3 block, unsigned dynSmem, void** params, LaunchInfo* info);

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

/// The device heap: every allocation lies in [g_heap_lo, g_heap_lo + g_heap_span); g_shadow
/// holds one state byte per heap byte (0 not addressable, 1 allocated, 3 allocated and written).
extern std::uintptr_t g_heap_lo;
extern std::uintptr_t g_heap_span;
extern unsigned char* g_shadow;
void mem_init();

/// A buffer a pointer argument stands for: an allocation's requested bytes or a registered
/// sub-region of it.
struct Region {
    std::uintptr_t lo = 0, hi = 0;
    unsigned long long id = 0;
    bool sub = false;
};
/// The innermost region holding p (p may be one past its end); false when p is in none.
bool mem_region_of(std::uintptr_t p, Region* out);
/// Where [p, p+n) lies relative to the allocations, for messages.
std::string mem_describe(std::uintptr_t p, std::size_t n);
/// Marks [p, p+bytes) as written (initcheck); ignores bytes outside the heap or not addressable.
void mem_mark_written(const void* p, std::size_t bytes);
int mem_register_sub(std::uintptr_t p, std::size_t bytes, const char* name, std::string* err);
int mem_unregister_sub(std::uintptr_t p);

// ---- checkers (emu_check.cpp) -------------------------------------------------------------
enum CheckBits : unsigned {
    kMemcheck = 1,      // global reads/writes inside the requested bytes of the argument's buffer, aligned
    kInitcheck = 2,     // global reads of bytes written since allocation
    kRacecheck = 4,     // shared-memory hazards between barriers
    kSynccheck = 8,     // divergent __syncthreads, warp masks naming absent lanes
    kShuffle = 16,      // seeded random thread order between barriers
};
/// The checkers in force (MVQ_EMU_CHECKS: "all" (default), "none" or a comma list of
/// memcheck, initcheck, racecheck, synccheck, shuffle).
unsigned check_flags();
/// The base seed of the thread order (MVQ_EMU_SEED, else drawn at start-up).
std::uint64_t order_seed();

/// What the checkers know about the running launch (one at a time: launches hold a lock).
struct LaunchInfo {
    const KernelDesc* k = nullptr;
    dim3 grid, block;
    unsigned dynSmem = 0;
    unsigned long long id = 0;
    unsigned flags = 0;
    std::uint64_t seed = 0;
    std::vector<Region> args;   // buffers of the pointer arguments
    std::vector<unsigned char> sharedOk;   // per TLS symbol: may this kernel touch it
};
/// A thread-local object of the emulator: a kernel's static __shared__ array (owner = kernel or
/// helper function), a dynamic shared buffer (dyn) or the emulator's own state.
struct TlsSymbol {
    std::string name, owner;
    std::size_t off = 0, size = 0;
    bool dyn = false;
};
const std::vector<TlsSymbol>& tls_symbols();
/// Fills L->sharedOk for L->k.
void shared_layout_for(LaunchInfo* L);
/// Memcheck of a shared access at byte `off` of the TLS block: inside one array the kernel may
/// use, and inside the launch's dynamic size for extern __shared__ buffers.
void shared_bounds(std::uintptr_t off, std::size_t n, bool write, std::uintptr_t pc);
extern LaunchInfo* g_launch;
/// Counts of launches and of launches that ran with memcheck on (for the test command's line).
extern std::atomic<unsigned long long> g_launches, g_checked_launches;

/// Ends the current CUDA thread and its block with `code` (e.g. 700) and `what` (called from
/// the checkers inside a kernel).
[[noreturn]] void fault_impl(int code, const std::string& what);
/// Racecheck of an access to shared memory (an address inside this OS thread's TLS block).
void shared_access(std::uintptr_t a, std::size_t n, bool write, std::uintptr_t pc);
/// This OS thread's TLS block of the emulator (where `__shared__` arrays live): lo and span.
extern __thread std::uintptr_t tls_shared_lo __attribute__((visibility("hidden")));
extern __thread std::uintptr_t tls_shared_span __attribute__((visibility("hidden")));
/// Source location of a code address in the emulator ("file:line" or "+0xOFFSET").
std::string where_is(std::uintptr_t pc);

/// "memcheck,initcheck,..." or "none".
std::string checks_text();
/// Bytes of static __shared__ arrays of a kernel (from the emulator's own ELF symbols).
std::size_t static_smem_bytes(const KernelDesc* k);

/// The emulated card (MVQ_EMU_CARD).
struct Card {
    const char* name;
    const char* arch;
    int major, minor;
    int smemOptin, smemPerSm, l2Bytes, memClockKhz, busBits;
};
const Card& card();

/// Records the message that mvqemu_last_error() returns.
void set_last_error(const std::string& msg);

}  // namespace mvq_emu
