// emu_driver.cpp: the CUDA driver API subset exported by libmvq_emu.so (names and C ABI of
// CUDA 12's cuda.h, `_v2` symbols where the header maps to them). One emulated device with
// the limits of the card chosen by MVQ_EMU_CARD (sm_90: H100/H200, the default; sm_80: A100);
// contexts, modules, functions, streams and events are validated
// handles; work runs synchronously at the call (streams are ordered anyway), so
// asynchronous variants complete before they return, with one exception that makes a missing
// event wait visible: a host-to-device copy from pinned memory (cuMemHostAlloc) on a created
// stream is deferred, queued on that stream with the event records behind it, and runs only when
// something orders it: cuStreamWaitEvent or cuEventSynchronize on an event recorded after it,
// any other operation on the same stream, a synchronisation of that stream or the context, or a
// free. A kernel on another stream that reads the destination without waiting sees the old bytes
// (or initcheck flags never-written ones), as it could on a GPU. Failures also leave a message
// for mvqemu_last_error().
#include <chrono>
#include <deque>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "emu_internal.h"
#include "mvq_emu_api.h"

struct CUctx_st {
    bool primary = false;
};
struct CUmod_st {
    std::vector<unsigned char> image;
    bool ptx = false;
    std::map<std::string, std::unique_ptr<struct CUfunc_st>> funcs;
};
struct CUfunc_st {
    const mvq_emu::KernelDesc* k = nullptr;
    CUmod_st* mod = nullptr;
    int maxDynamicSmem = (int)mvq_emu::kDefaultDynamicSmem;
    int carveout = -1;
};
struct CUgraph_st;
struct CUevent_st;
/// A deferred operation of a stream: a pinned host-to-device copy (op) or an event record behind one (event, seq).
struct Deferred {
    std::function<CUresult()> op;
    CUevent_st* event = nullptr;
    std::uint64_t seq = 0;
};
struct CUstream_st {
    std::deque<Deferred> deferred;  // in stream order; empty unless a pinned copy is pending
    unsigned flags = 0;
    CUgraph_st* capture = nullptr;  // the graph being recorded while the stream captures
    int captureMode = 0;            // CU_STREAM_CAPTURE_MODE_GLOBAL 0, THREAD_LOCAL 1, RELAXED 2
    bool captureInvalid = false;    // a prohibited call happened during capture: EndCapture fails
    std::thread::id captureThread;  // the thread that began the capture (THREAD_LOCAL mode)
};
/// A captured graph: the recorded operations of the stream, replayed in order (the emulator keeps
/// no dependency edges: a stream capture is a chain anyway).
struct CUgraph_st {
    std::vector<std::function<CUresult()>> nodes;
    std::vector<std::string> names;
};
struct CUgraphExec_st {
    std::vector<std::function<CUresult()>> nodes;
    std::vector<std::string> names;
};
struct CUevent_st {
    unsigned flags = 0;
    bool recorded = false;
    CUstream_st* pendingOn = nullptr;  // the stream whose deferred queue holds this event's latest record
    std::uint64_t pendingSeq = 0;      // that record's sequence number (0: none pending)
    std::chrono::steady_clock::time_point when;
};

namespace mvq_emu {

const Card& card() {
    // Read at every call (cheap), so a test process may choose the card before it needs it.
    {
        // Per-block shared memory: sm_90 227 KiB opt-in (228 KiB per SM), sm_80 163 KiB (164 KiB).
        static const Card h100{"NVIDIA H100/H200 sm_90 (MvqNative host emulator)", "sm_90", 9, 0, 232448, 233472, 50 * 1024 * 1024, 2619000, 5120};
        static const Card a100{"NVIDIA A100 sm_80 (MvqNative host emulator)", "sm_80", 8, 0, 166912, 167936, 40 * 1024 * 1024, 1593000, 5120};
        const char* e = std::getenv("MVQ_EMU_CARD");
        if (!e || !*e || !std::strcmp(e, "sm_90") || !std::strcmp(e, "h100") || !std::strcmp(e, "h200")) return h100;
        if (!std::strcmp(e, "sm_80") || !std::strcmp(e, "a100")) return a100;
        static bool warned = false;
        if (!warned) std::fprintf(stderr, "mvq_emu: unknown MVQ_EMU_CARD '%s' (sm_90 or sm_80); using sm_90\n", e);
        warned = true;
        return h100;
    }
}

namespace {

struct State {
    std::mutex m;
    bool initialized = false;
    CUctx_st primaryCtx{true};
    int primaryRefs = 0;
    unsigned primaryFlags = 0;
    std::set<CUctx_st*> contexts{&primaryCtx};
    std::set<CUmod_st*> modules;
    std::set<CUfunc_st*> functions;
    std::set<CUstream_st*> streams;
    std::set<CUevent_st*> events;
    std::set<CUgraph_st*> graphs;
    std::set<CUgraphExec_st*> execs;
    int capturing = 0;  // streams capturing now
    std::map<const void*, std::size_t> pinned;  // cuMemHostAlloc allocations: start -> bytes
    std::uint64_t deferredSeq = 0;
    std::string lastError;
};
State& st() {
    static State* s = new State();  // leaked: handles may be released during process exit
    return *s;
}
thread_local std::vector<CUctx_st*> tls_ctx_stack;

CUresult fail(CUresult code, const std::string& msg) {
    set_last_error(msg);
    return code;
}

CUctx_st* current_ctx() { return tls_ctx_stack.empty() ? nullptr : tls_ctx_stack.back(); }

/// The checks every call that needs a context makes: cuInit was called and a live context is current.
CUresult need_ctx(const char* call) {
    State& S = st();
    bool init, ok;
    {
        std::lock_guard<std::mutex> lk(S.m);
        init = S.initialized;
        CUctx_st* c = current_ctx();
        ok = c && S.contexts.count(c) && !(c->primary && S.primaryRefs == 0);
    }
    if (!init) return fail(CUDA_ERROR_NOT_INITIALIZED, std::string(call) + ": cuInit was not called");
    if (!ok)
        return fail(CUDA_ERROR_INVALID_CONTEXT,
                    std::string(call) + ": no live current context on this thread (cuCtxSetCurrent must be called on each thread)");
    return CUDA_SUCCESS;
}

bool stream_ok(CUstream s) {
    auto v = reinterpret_cast<std::uintptr_t>(s);
    if (v == 0 || v == 1 || v == 2) return true;  // NULL, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD
    std::lock_guard<std::mutex> lk(st().m);
    return st().streams.count(s) != 0;
}

bool is_capturing(CUstream s) {
    auto v = reinterpret_cast<std::uintptr_t>(s);
    if (v <= 2) return false;  // the legacy and per-thread default streams cannot capture
    std::lock_guard<std::mutex> lk(st().m);
    return st().streams.count(s) && s->capture;
}

/// True when a capture forbids unsafe calls (synchronisation, allocation, synchronous copies) from
/// this thread: a GLOBAL-mode capture on any thread, or a THREAD_LOCAL one begun on this thread.
bool any_capturing() {
    std::lock_guard<std::mutex> lk(st().m);
    if (st().capturing == 0) return false;
    for (auto* x : st().streams)
        if (x->capture && (x->captureMode == 0 || (x->captureMode == 1 && x->captureThread == std::this_thread::get_id())))
            return true;
    return false;
}

/// A call CUDA refuses during capture: the capture is invalidated (EndCapture will fail) and the
/// call returns CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, as on a GPU.
CUresult refuse_in_capture(CUstream s, const std::string& call) {
    {
        std::lock_guard<std::mutex> lk(st().m);
        if (s) s->captureInvalid = true;
        else
            for (auto* x : st().streams)
                if (x->capture && (x->captureMode == 0 || (x->captureMode == 1 && x->captureThread == std::this_thread::get_id())))
                    x->captureInvalid = true;
    }
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                call + ": not permitted while a stream is capturing a graph (it would synchronise with the host or allocate)");
}

/// Appends an operation to the graph s is capturing.
void record(CUstream s, std::string name, std::function<CUresult()> node) {
    std::lock_guard<std::mutex> lk(st().m);
    s->capture->nodes.push_back(std::move(node));
    s->capture->names.push_back(std::move(name));
}

bool real_stream(CUstream s) { return reinterpret_cast<std::uintptr_t>(s) > 2; }

/// True when [p, p + bytes) lies inside one cuMemHostAlloc allocation.
bool pinned_range(const void* p, std::size_t bytes) {
    std::lock_guard<std::mutex> lk(st().m);
    auto& m = st().pinned;
    auto it = m.upper_bound(p);
    if (it == m.begin()) return false;
    --it;
    auto* b = static_cast<const char*>(it->first);
    auto* q = static_cast<const char*>(p);
    return q >= b && q + bytes <= b + it->second;
}

bool has_deferred(CUstream s) {
    if (!real_stream(s)) return false;
    std::lock_guard<std::mutex> lk(st().m);
    return st().streams.count(s) && !s->deferred.empty();
}

/// Runs the deferred operations of s in order: all of them, or up to the record of event `upto` (its pending one).
CUresult flush(CUstream s, CUevent_st* upto = nullptr, std::uint64_t uptoSeq = 0) {
    if (!real_stream(s)) return CUDA_SUCCESS;
    for (;;) {
        Deferred d;
        {
            std::lock_guard<std::mutex> lk(st().m);
            if (!st().streams.count(s) || s->deferred.empty()) return CUDA_SUCCESS;
            d = std::move(s->deferred.front());
            s->deferred.pop_front();
        }
        CUresult r = d.op ? d.op() : CUDA_SUCCESS;
        if (d.event) {
            std::lock_guard<std::mutex> lk(st().m);
            if (st().events.count(d.event) && d.event->pendingSeq == d.seq) {
                d.event->pendingSeq = 0;
                d.event->pendingOn = nullptr;
                d.event->recorded = true;
                d.event->when = std::chrono::steady_clock::now();
            }
        }
        if (r) return r;
        if (upto && d.event == upto && d.seq == uptoSeq) return CUDA_SUCCESS;
    }
}

/// Runs the deferred operations of every stream (a context synchronisation, a free).
CUresult flush_all() {
    std::vector<CUstream> all;
    {
        std::lock_guard<std::mutex> lk(st().m);
        for (auto* x : st().streams)
            if (!x->deferred.empty()) all.push_back(x);
    }
    for (auto* x : all)
        if (CUresult r = flush(x)) return r;
    return CUDA_SUCCESS;
}

/// Completes the pending record of e, if any (what a wait on e orders before it).
CUresult flush_event(CUevent_st* e) {
    CUstream on;
    std::uint64_t seq;
    {
        std::lock_guard<std::mutex> lk(st().m);
        on = e->pendingOn;
        seq = e->pendingSeq;
    }
    return on && seq ? flush(on, e, seq) : CUDA_SUCCESS;
}

bool func_ok(CUfunction f) {
    std::lock_guard<std::mutex> lk(st().m);
    return f && st().functions.count(f) != 0;
}

/// Guard check run after every operation that writes device memory.
CUresult check_guards(const std::string& after) {
    std::string msg;
    if (mem_check_guards(&msg) == 0) return CUDA_SUCCESS;
    return fail(CUDA_ERROR_ILLEGAL_ADDRESS, "out-of-bounds write detected after " + after + ": " + msg);
}

std::string hex(const void* p) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%llx", (unsigned long long)reinterpret_cast<std::uintptr_t>(p));
    return b;
}

CUresult copy(const char* call, void* dst, bool dstDev, const void* src, bool srcDev, std::size_t bytes, CUstream s) {
    if (CUresult r = need_ctx(call)) return r;
    if (!stream_ok(s)) return fail(CUDA_ERROR_INVALID_HANDLE, std::string(call) + ": invalid stream");
    if (is_capturing(s)) {
        // Host memory in a graph would be read or written at replay time, long after the call: refused
        // here (the project keeps every per-step input on the device; pinned staging is the GPU answer).
        if (!dstDev || !srcDev) return refuse_in_capture(s, std::string(call) + " (host memory)");
        record(s, call, [=]() { return copy(call, dst, true, src, true, bytes, nullptr); });
        return CUDA_SUCCESS;
    }
    if (s == nullptr && any_capturing()) return refuse_in_capture(nullptr, std::string(call) + " (synchronous copy)");
    if (bytes == 0) return CUDA_SUCCESS;
    if (!dst || !src) return fail(CUDA_ERROR_INVALID_VALUE, std::string(call) + ": null pointer");
    if (real_stream(s) && dstDev && !srcDev && pinned_range(src, bytes)) {
        // A DMA from pinned memory: queued, run when something orders it (see the top of this file). The
        // host bytes are read when it runs, so a buffer refilled before its copy ran delivers the new bytes.
        if (!mem_range_ok(dst, bytes))
            return fail(CUDA_ERROR_INVALID_VALUE, std::string(call) + ": destination " + hex(dst) + " + " + std::to_string(bytes) +
                                                      " bytes is not inside one cuMemAlloc allocation");
        std::string name = call;
        std::lock_guard<std::mutex> lk(st().m);
        s->deferred.push_back({[=]() -> CUresult {
            if (!mem_range_ok(dst, bytes) || !pinned_range(src, bytes))
                return fail(CUDA_ERROR_ILLEGAL_ADDRESS, name + " (deferred): the destination or the pinned source was freed before the copy ran");
            std::memmove(dst, src, bytes);
            mem_mark_written(dst, bytes);
            return check_guards(name);
        }});
        return CUDA_SUCCESS;
    }
    if (CUresult r = flush(s)) return r;  // stream order: the stream's deferred copies run first
    if (dstDev && !mem_range_ok(dst, bytes))
        return fail(CUDA_ERROR_INVALID_VALUE, std::string(call) + ": destination " + hex(dst) + " + " + std::to_string(bytes) +
                                                  " bytes is not inside one cuMemAlloc allocation");
    if (srcDev && !mem_range_ok(src, bytes))
        return fail(CUDA_ERROR_INVALID_VALUE, std::string(call) + ": source " + hex(src) + " + " + std::to_string(bytes) +
                                                  " bytes is not inside one cuMemAlloc allocation");
    std::memmove(dst, src, bytes);
    if (dstDev) mem_mark_written(dst, bytes);
    return check_guards(call);
}

CUresult memset_n(const char* call, CUdeviceptr d, const void* value, std::size_t elem, std::size_t count, CUstream s) {
    if (CUresult r = need_ctx(call)) return r;
    if (!stream_ok(s)) return fail(CUDA_ERROR_INVALID_HANDLE, std::string(call) + ": invalid stream");
    if (is_capturing(s)) {
        unsigned v = 0;
        std::memcpy(&v, value, elem);
        record(s, call, [=]() { return memset_n(call, d, &v, elem, count, nullptr); });
        return CUDA_SUCCESS;
    }
    if (s == nullptr && any_capturing()) return refuse_in_capture(nullptr, std::string(call) + " (synchronous memset)");
    if (CUresult r = flush(s)) return r;
    if (count == 0) return CUDA_SUCCESS;
    auto* p = reinterpret_cast<unsigned char*>(d);
    if (elem == 4 && (d & 3)) return fail(CUDA_ERROR_INVALID_VALUE, std::string(call) + ": pointer not 4-byte aligned");
    if (!mem_range_ok(p, elem * count))
        return fail(CUDA_ERROR_INVALID_VALUE, std::string(call) + ": " + hex(p) + " + " + std::to_string(elem * count) +
                                                  " bytes is not inside one cuMemAlloc allocation");
    if (elem == 1)
        std::memset(p, *static_cast<const unsigned char*>(value), count);
    else
        for (std::size_t i = 0; i < count; ++i) std::memcpy(p + 4 * i, value, 4);
    mem_mark_written(p, elem * count);
    return check_guards(call);
}

/// Size of a module image: NUL-terminated PTX text, an ELF cubin or a fatbinary.
std::size_t image_size(const unsigned char* img, bool* ptx) {
    *ptx = false;
    if (img[0] == 0x7f && img[1] == 'E' && img[2] == 'L' && img[3] == 'F') {
        std::uint64_t shoff, phoff;
        std::uint16_t shentsize, shnum, phentsize, phnum;
        std::memcpy(&phoff, img + 0x20, 8);
        std::memcpy(&shoff, img + 0x28, 8);
        std::memcpy(&phentsize, img + 0x36, 2);
        std::memcpy(&phnum, img + 0x38, 2);
        std::memcpy(&shentsize, img + 0x3A, 2);
        std::memcpy(&shnum, img + 0x3C, 2);
        return std::max<std::uint64_t>({64, shoff + (std::uint64_t)shentsize * shnum, phoff + (std::uint64_t)phentsize * phnum});
    }
    std::uint32_t magic;
    std::memcpy(&magic, img, 4);
    if (magic == 0xBA55ED50u) {  // fatbinary: magic, version(2), header size(2), payload size(8)
        std::uint16_t hdr;
        std::uint64_t payload;
        std::memcpy(&hdr, img + 6, 2);
        std::memcpy(&payload, img + 8, 8);
        return hdr + payload;
    }
    std::size_t n = std::strlen(reinterpret_cast<const char*>(img));
    *ptx = std::strstr(reinterpret_cast<const char*>(img), ".entry") != nullptr;
    return n + 1;
}

bool ptx_has_entry(const std::vector<unsigned char>& img, const std::string& name) {
    const char* text = reinterpret_cast<const char*>(img.data());
    std::string pat = ".entry " + name;
    for (const char* p = std::strstr(text, pat.c_str()); p; p = std::strstr(p + 1, pat.c_str())) {
        char c = p[pat.size()];
        if (c == '(' || c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
    }
    return false;
}

}  // namespace

bool stream_capturing(CUstream_st* s) { return is_capturing(s); }
int stream_flush(CUstream_st* s) { return (int)flush(s); }
void stream_record(CUstream_st* s, std::string name, std::function<int()> node) {
    record(s, std::move(name), [n = std::move(node)]() { return (CUresult)n(); });
}

void set_last_error(const std::string& msg) {
    std::lock_guard<std::mutex> lk(st().m);
    st().lastError = msg;
}

}  // namespace mvq_emu

using namespace mvq_emu;

extern "C" {

// ---- initialisation and device ---------------------------------------------------------------
CUresult cuInit(unsigned int flags) {
    if (flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuInit: flags must be 0");
    std::lock_guard<std::mutex> lk(st().m);
    st().initialized = true;
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = 12040;
    return CUDA_SUCCESS;
}

static CUresult need_init() {
    std::lock_guard<std::mutex> lk(st().m);
    return st().initialized ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult cuDeviceGetCount(int* count) {
    if (CUresult r = need_init()) return r;
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal) {
    if (CUresult r = need_init()) return r;
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
    if (CUresult r = need_init()) return r;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::snprintf(name, (std::size_t)len, "%s", card().name);
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
    if (CUresult r = need_init()) return r;
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    int sms = execution_threads();
    if (const char* e = std::getenv("MVQ_EMU_SM_COUNT")) sms = std::max(1, std::atoi(e));
    int v = 0;
    switch (attrib) {
        case 1: v = 1024; break;              // MAX_THREADS_PER_BLOCK
        case 2: v = 1024; break;              // MAX_BLOCK_DIM_X
        case 3: v = 1024; break;              // MAX_BLOCK_DIM_Y
        case 4: v = 64; break;                // MAX_BLOCK_DIM_Z
        case 5: v = 2147483647; break;        // MAX_GRID_DIM_X
        case 6: v = 65535; break;             // MAX_GRID_DIM_Y
        case 7: v = 65535; break;             // MAX_GRID_DIM_Z
        case 8: v = 49152; break;             // MAX_SHARED_MEMORY_PER_BLOCK
        case 9: v = 65536; break;             // TOTAL_CONSTANT_MEMORY
        case 10: v = 32; break;               // WARP_SIZE
        case 11: v = 2147483647; break;       // MAX_PITCH
        case 12: v = 65536; break;            // MAX_REGISTERS_PER_BLOCK
        case 13: v = 1755000; break;          // CLOCK_RATE (kHz)
        case 14: v = 512; break;              // TEXTURE_ALIGNMENT
        case 15: v = 1; break;                // GPU_OVERLAP
        case 16: v = sms; break;              // MULTIPROCESSOR_COUNT (= host execution threads)
        case 19: v = 1; break;                // CAN_MAP_HOST_MEMORY
        case 30: v = 512; break;              // SURFACE_ALIGNMENT
        case 31: v = 1; break;                // CONCURRENT_KERNELS
        case 36: v = card().memClockKhz; break;  // MEMORY_CLOCK_RATE
        case 37: v = card().busBits; break;   // GLOBAL_MEMORY_BUS_WIDTH
        case 38: v = card().l2Bytes; break;   // L2_CACHE_SIZE
        case 39: v = 2048; break;             // MAX_THREADS_PER_MULTIPROCESSOR
        case 40: v = 2; break;                // ASYNC_ENGINE_COUNT
        case 41: v = 1; break;                // UNIFIED_ADDRESSING
        case 75: v = card().major; break;     // COMPUTE_CAPABILITY_MAJOR
        case 76: v = card().minor; break;     // COMPUTE_CAPABILITY_MINOR
        case 81: v = card().smemPerSm; break; // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
        case 82: v = 65536; break;            // MAX_REGISTERS_PER_MULTIPROCESSOR
        case 97: v = card().smemOptin; break; // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
        case 106: v = 32; break;              // MAX_BLOCKS_PER_MULTIPROCESSOR
        default:
            if (attrib <= 0 || attrib > 200) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetAttribute: unknown attribute");
            v = 0;  // features the emulator does not offer
    }
    *pi = v;
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
    if (CUresult r = need_init()) return r;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = mem_total();
    return CUDA_SUCCESS;
}

CUresult cuDeviceComputeCapability(int* major, int* minor, CUdevice dev) {
    if (CUresult r = need_init()) return r;
    if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    *major = card().major;
    *minor = card().minor;
    return CUDA_SUCCESS;
}

// ---- contexts ---------------------------------------------------------------------------------
CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
    if (CUresult r = need_init()) return r;
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard<std::mutex> lk(st().m);
    ++st().primaryRefs;
    *pctx = &st().primaryCtx;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
    if (CUresult r = need_init()) return r;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard<std::mutex> lk(st().m);
    if (st().primaryRefs == 0) return CUDA_ERROR_INVALID_CONTEXT;
    --st().primaryRefs;
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return cuDevicePrimaryCtxRelease_v2(dev); }

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
    if (CUresult r = need_init()) return r;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard<std::mutex> lk(st().m);
    st().primaryRefs = 0;
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxReset(CUdevice dev) { return cuDevicePrimaryCtxReset_v2(dev); }

CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
    if (CUresult r = need_init()) return r;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard<std::mutex> lk(st().m);
    st().primaryFlags = flags;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
    if (CUresult r = need_init()) return r;
    if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard<std::mutex> lk(st().m);
    *flags = st().primaryFlags;
    *active = st().primaryRefs > 0;
    return CUDA_SUCCESS;
}

CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int, CUdevice dev) {
    if (CUresult r = need_init()) return r;
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    auto* c = new CUctx_st();
    {
        std::lock_guard<std::mutex> lk(st().m);
        st().contexts.insert(c);
    }
    tls_ctx_stack.push_back(c);
    *pctx = c;
    return CUDA_SUCCESS;
}

CUresult cuCtxDestroy_v2(CUcontext ctx) {
    if (CUresult r = need_init()) return r;
    {
        std::lock_guard<std::mutex> lk(st().m);
        if (!ctx || ctx->primary || !st().contexts.erase(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    }
    std::erase(tls_ctx_stack, ctx);
    delete ctx;
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
    if (CUresult r = need_init()) return r;
    if (ctx) {
        std::lock_guard<std::mutex> lk(st().m);
        if (!st().contexts.count(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (!ctx) {
        if (!tls_ctx_stack.empty()) tls_ctx_stack.pop_back();
    } else if (tls_ctx_stack.empty()) {
        tls_ctx_stack.push_back(ctx);
    } else {
        tls_ctx_stack.back() = ctx;
    }
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* pctx) {
    if (CUresult r = need_init()) return r;
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    *pctx = current_ctx();
    return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
    if (CUresult r = need_init()) return r;
    std::lock_guard<std::mutex> lk(st().m);
    if (!ctx || !st().contexts.count(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    tls_ctx_stack.push_back(ctx);
    return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext* pctx) {
    if (CUresult r = need_init()) return r;
    if (tls_ctx_stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
    if (pctx) *pctx = tls_ctx_stack.back();
    tls_ctx_stack.pop_back();
    return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice* dev) {
    if (CUresult r = need_ctx("cuCtxGetDevice")) return r;
    if (!dev) return CUDA_ERROR_INVALID_VALUE;
    *dev = 0;
    return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
    if (CUresult r = need_ctx("cuCtxSynchronize")) return r;
    if (any_capturing()) return refuse_in_capture(nullptr, "cuCtxSynchronize");
    if (CUresult r = flush_all()) return r;
    return check_guards("cuCtxSynchronize");
}

// ---- memory -------------------------------------------------------------------------------------
CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) {
    if (CUresult r = need_ctx("cuMemAlloc_v2")) return r;
    if (!dptr || bytes == 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc_v2: null result pointer or 0 bytes");
    if (any_capturing()) return refuse_in_capture(nullptr, "cuMemAlloc_v2");
    void* p = mem_alloc(bytes);
    if (!p) return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc_v2: out of emulated device memory (" + std::to_string(bytes) + " bytes asked)");
    *dptr = reinterpret_cast<CUdeviceptr>(p);
    return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
    if (CUresult r = need_ctx("cuMemFree_v2")) return r;
    if (dptr == 0) return CUDA_SUCCESS;
    if (any_capturing()) return refuse_in_capture(nullptr, "cuMemFree_v2");
    void* p = reinterpret_cast<void*>(dptr);
    if (CUresult r = flush_all()) return r;  // cuMemFree synchronises the device
    // Check this allocation's guards before it disappears.
    if (CUresult r = check_guards("cuMemFree_v2")) {
        mem_free(p);
        return r;
    }
    if (!mem_free(p)) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemFree_v2: " + hex(p) + " is not a live cuMemAlloc allocation");
    return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
    if (CUresult r = need_ctx("cuMemGetInfo_v2")) return r;
    if (!free || !total) return CUDA_ERROR_INVALID_VALUE;
    *total = mem_total();
    *free = mem_total() - std::min(mem_total(), mem_used());
    return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void** pp, size_t bytes, unsigned int flags) {
    if (CUresult r = need_ctx("cuMemHostAlloc")) return r;
    if (!pp || bytes == 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemHostAlloc: null result pointer or 0 bytes");
    if (flags & ~7u) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemHostAlloc: unknown flags");
    if (any_capturing()) return refuse_in_capture(nullptr, "cuMemHostAlloc");
    void* p = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
    if (!p) return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemHostAlloc: out of host memory (" + std::to_string(bytes) + " bytes asked)");
    std::lock_guard<std::mutex> lk(st().m);
    st().pinned[p] = bytes;
    *pp = p;
    return CUDA_SUCCESS;
}

CUresult cuMemAllocHost_v2(void** pp, size_t bytes) { return cuMemHostAlloc(pp, bytes, 0); }

CUresult cuMemFreeHost(void* p) {
    if (CUresult r = need_ctx("cuMemFreeHost")) return r;
    if (any_capturing()) return refuse_in_capture(nullptr, "cuMemFreeHost");
    if (CUresult r = flush_all()) return r;  // like cuMemFree, it waits for the device
    {
        std::lock_guard<std::mutex> lk(st().m);
        if (!st().pinned.erase(p)) {
            st().lastError = "cuMemFreeHost: " + hex(p) + " is not a live cuMemHostAlloc allocation";
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    std::free(p);
    return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) {
    return copy("cuMemcpyHtoD_v2", reinterpret_cast<void*>(dst), true, src, false, bytes, nullptr);
}
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) {
    return copy("cuMemcpyDtoH_v2", dst, false, reinterpret_cast<void*>(src), true, bytes, nullptr);
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    return copy("cuMemcpyDtoD_v2", reinterpret_cast<void*>(dst), true, reinterpret_cast<void*>(src), true, bytes, nullptr);
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream s) {
    return copy("cuMemcpyHtoDAsync_v2", reinterpret_cast<void*>(dst), true, src, false, bytes, s);
}
CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream s) {
    return copy("cuMemcpyDtoHAsync_v2", dst, false, reinterpret_cast<void*>(src), true, bytes, s);
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) {
    return copy("cuMemcpyDtoDAsync_v2", reinterpret_cast<void*>(dst), true, reinterpret_cast<void*>(src), true, bytes, s);
}
CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t count) {
    return memset_n("cuMemsetD8_v2", dst, &value, 1, count, nullptr);
}
CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, size_t count) {
    return memset_n("cuMemsetD32_v2", dst, &value, 4, count, nullptr);
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t count, CUstream s) {
    return memset_n("cuMemsetD8Async", dst, &value, 1, count, s);
}
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int value, size_t count, CUstream s) {
    return memset_n("cuMemsetD32Async", dst, &value, 4, count, s);
}

// ---- modules and functions ------------------------------------------------------------------------
CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int, CUjit_option*, void**) {
    if (CUresult r = need_ctx("cuModuleLoadData")) return r;
    if (!module || !image) return fail(CUDA_ERROR_INVALID_VALUE, "cuModuleLoadData: null module or image");
    auto* img = static_cast<const unsigned char*>(image);
    auto* m = new CUmod_st();
    std::size_t n = image_size(img, &m->ptx);
    m->image.assign(img, img + n);
    if (m->image.back() != 0) m->image.push_back(0);  // keeps text searches bounded
    std::lock_guard<std::mutex> lk(st().m);
    st().modules.insert(m);
    *module = m;
    return CUDA_SUCCESS;
}

CUresult cuModuleLoadData(CUmodule* module, const void* image) { return cuModuleLoadDataEx(module, image, 0, nullptr, nullptr); }

CUresult cuModuleUnload(CUmodule module) {
    if (CUresult r = need_ctx("cuModuleUnload")) return r;
    std::lock_guard<std::mutex> lk(st().m);
    if (!module || !st().modules.erase(module)) return CUDA_ERROR_INVALID_HANDLE;
    for (auto& [name, f] : module->funcs) st().functions.erase(f.get());
    delete module;
    return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* func, CUmodule module, const char* name) {
    if (CUresult r = need_ctx("cuModuleGetFunction")) return r;
    if (!func || !name) return CUDA_ERROR_INVALID_VALUE;
    {
        std::lock_guard<std::mutex> lk(st().m);
        if (!module || !st().modules.count(module)) return CUDA_ERROR_INVALID_HANDLE;
        auto it = module->funcs.find(name);
        if (it != module->funcs.end()) {
            *func = it->second.get();
            return CUDA_SUCCESS;
        }
    }
    const KernelDesc* k = find_kernel(name);
    if (!k)
        return fail(CUDA_ERROR_NOT_FOUND, std::string("cuModuleGetFunction: kernel '") + name +
                                              "' is not compiled into the emulator (add it to native/kernels and rebuild libmvq_emu)");
    if (module->ptx && !ptx_has_entry(module->image, name))
        return fail(CUDA_ERROR_NOT_FOUND, std::string("cuModuleGetFunction: the module's PTX has no entry '") + name + "'");
    auto f = std::make_unique<CUfunc_st>();
    f->k = k;
    f->mod = module;
    std::lock_guard<std::mutex> lk(st().m);
    *func = f.get();
    st().functions.insert(f.get());
    module->funcs.emplace(name, std::move(f));
    return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction func) {
    if (CUresult r = need_ctx("cuFuncGetAttribute")) return r;
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    if (!func_ok(func)) return CUDA_ERROR_INVALID_HANDLE;
    switch (attrib) {
        case 0: *pi = 1024; break;                  // MAX_THREADS_PER_BLOCK
        case 1: *pi = (int)static_smem_bytes(func->k); break;  // SHARED_SIZE_BYTES (static, from the emulator's symbols)
        case 2: *pi = 0; break;                     // CONST_SIZE_BYTES
        case 3: *pi = 0; break;                     // LOCAL_SIZE_BYTES
        case 4: *pi = 32; break;                    // NUM_REGS
        case 5: *pi = card().major * 10 + card().minor; break;  // PTX_VERSION
        case 6: *pi = card().major * 10 + card().minor; break;  // BINARY_VERSION
        case 7: *pi = 0; break;                     // CACHE_MODE_CA
        case 8: *pi = func->maxDynamicSmem; break;  // MAX_DYNAMIC_SHARED_SIZE_BYTES
        case 9: *pi = func->carveout; break;        // PREFERRED_SHARED_MEMORY_CARVEOUT
        default:
            if (attrib < 0 || attrib > 20) return CUDA_ERROR_INVALID_VALUE;
            *pi = 0;
    }
    return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(CUfunction func, CUfunction_attribute attrib, int value) {
    if (CUresult r = need_ctx("cuFuncSetAttribute")) return r;
    if (!func_ok(func)) return CUDA_ERROR_INVALID_HANDLE;
    if (attrib == 8) {
        int limit = card().smemOptin - (int)static_smem_bytes(func->k);
        if (value < 0 || value > limit)
            return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute: MAX_DYNAMIC_SHARED_SIZE_BYTES " + std::to_string(value) +
                                                      " above the " + card().arch + " opt-in limit of " + std::to_string(card().smemOptin) +
                                                      " bytes less the kernel's " + std::to_string(static_smem_bytes(func->k)) +
                                                      " bytes of static shared memory");
        func->maxDynamicSmem = value;
        return CUDA_SUCCESS;
    }
    if (attrib == 9) {
        if (value < -1 || value > 100) return CUDA_ERROR_INVALID_VALUE;
        func->carveout = value;
        return CUDA_SUCCESS;
    }
    if (attrib >= 10 && attrib <= 14) return CUDA_SUCCESS;  // cluster attributes: accepted, no effect
    return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute: attribute is read-only");
}

CUresult cuFuncSetCacheConfig(CUfunction func, int) {
    if (CUresult r = need_ctx("cuFuncSetCacheConfig")) return r;
    return func_ok(func) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult launch_now(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                           unsigned int bz, unsigned int sharedMemBytes, CUstream stream, void** kernelParams, void** extra,
                           const std::vector<Region>* captured = nullptr);

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                        unsigned int bz, unsigned int sharedMemBytes, CUstream stream, void** kernelParams, void** extra) {
    if (CUresult r = need_ctx("cuLaunchKernel")) return r;
    if (!func_ok(f)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel: invalid function handle");
    if (!stream_ok(stream)) return fail(CUDA_ERROR_INVALID_HANDLE, std::string("cuLaunchKernel '") + f->k->name + "': invalid stream");
    if (!is_capturing(stream)) {
        if (CUresult r = flush(stream)) return r;  // stream order: its deferred copies run first
        return launch_now(f, gx, gy, gz, bx, by, bz, sharedMemBytes, stream, kernelParams, extra);
    }
    // Capture: the argument values are copied now (as cuLaunchKernel does), the launch runs at each
    // replay through launch_now, so every check and the sanitizer apply to replayed launches too.
    const KernelDesc* k = f->k;
    if (!kernelParams && !extra && k->nparams > 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel: kernelParams is null");
    std::vector<std::size_t> offsets;
    std::size_t total = 0;
    for (unsigned i = 0; i < k->nparams; ++i) {
        offsets.push_back(total);
        total += (k->sizes[i] + 15) / 16 * 16;
    }
    auto bytes = std::make_shared<std::vector<unsigned char>>(std::max<std::size_t>(total, 16));
    if (kernelParams) {
        for (unsigned i = 0; i < k->nparams; ++i) std::memcpy(bytes->data() + offsets[i], kernelParams[i], k->sizes[i]);
    } else if (extra) {
        const char* buf = nullptr;
        std::size_t size = 0;
        for (void** e = extra; *e; e += 2) {
            auto key = reinterpret_cast<std::uintptr_t>(e[0]);
            if (key == 1) buf = static_cast<const char*>(e[1]);
            else if (key == 2) size = *static_cast<std::size_t*>(e[1]);
            else return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel: unknown entry in extra");
        }
        std::size_t off = 0;
        for (unsigned i = 0; i < k->nparams; ++i) {
            off = (off + k->aligns[i] - 1) / k->aligns[i] * k->aligns[i];
            if (!buf || off + k->sizes[i] > size) return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel: the extra parameter buffer is too small");
            std::memcpy(bytes->data() + offsets[i], buf + off, k->sizes[i]);
            off += k->sizes[i];
        }
    }
    unsigned n = k->nparams;
    // The buffer each pointer argument stands for now, so that a sub-region registered only while the op was
    // captured (e.g. the workspace bytes it locked) still bounds the replayed launch.
    auto regions = std::make_shared<std::vector<Region>>(n);
    for (unsigned i = 0; i < n; ++i) {
        if (!k->isPointer[i]) continue;
        std::uintptr_t v;
        std::memcpy(&v, bytes->data() + offsets[i], sizeof v);
        if (v) mem_region_of(v, &(*regions)[i]);
    }
    record(stream, std::string("kernel ") + k->name, [=]() {
        std::vector<void*> ptrs(std::max(1u, n));
        for (unsigned i = 0; i < n; ++i) ptrs[i] = bytes->data() + offsets[i];
        return launch_now(f, gx, gy, gz, bx, by, bz, sharedMemBytes, nullptr, ptrs.data(), nullptr, regions.get());
    });
    return CUDA_SUCCESS;
}

static CUresult launch_now(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                           unsigned int bz, unsigned int sharedMemBytes, CUstream stream, void** kernelParams, void** extra,
                           const std::vector<Region>* captured) {
    if (!func_ok(f)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel: invalid function handle");
    const KernelDesc* k = f->k;
    std::string who = std::string("cuLaunchKernel '") + k->name + "'";
    if (!stream_ok(stream)) return fail(CUDA_ERROR_INVALID_HANDLE, who + ": invalid stream");
    if (!gx || !gy || !gz || !bx || !by || !bz || gy > 65535 || gz > 65535 || gx > 2147483647u || bx > 1024 || by > 1024 ||
        bz > 64 || (unsigned long long)bx * by * bz > 1024)
        return fail(CUDA_ERROR_INVALID_VALUE, who + ": invalid grid (" + std::to_string(gx) + "," + std::to_string(gy) + "," +
                                                  std::to_string(gz) + ") or block (" + std::to_string(bx) + "," +
                                                  std::to_string(by) + "," + std::to_string(bz) + ")");
    if (sharedMemBytes > (unsigned)f->maxDynamicSmem)
        return fail(CUDA_ERROR_INVALID_VALUE, who + ": " + std::to_string(sharedMemBytes) +
                                                  " bytes of dynamic shared memory exceed the function's limit of " +
                                                  std::to_string(f->maxDynamicSmem) +
                                                  " (raise it with cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES)");
    {
        std::size_t stat = static_smem_bytes(k);
        if (stat + sharedMemBytes > (std::size_t)card().smemOptin)
            return fail(CUDA_ERROR_INVALID_VALUE, who + ": " + std::to_string(stat) + " bytes of static and " + std::to_string(sharedMemBytes) +
                                                      " bytes of dynamic shared memory exceed the " + card().arch + " limit of " +
                                                      std::to_string(card().smemOptin) + " bytes per block");
        if (stat > 49152)
            return fail(CUDA_ERROR_INVALID_VALUE, who + ": " + std::to_string(stat) + " bytes of static shared memory exceed 48 KiB");
    }
    // Parameters: either kernelParams, or one packed buffer through `extra`.
    std::vector<void*> packed;
    void** params = kernelParams;
    if (!params && extra) {
        const char* buf = nullptr;
        std::size_t size = 0;
        for (void** e = extra; *e; e += 2) {
            auto key = reinterpret_cast<std::uintptr_t>(e[0]);
            if (key == 1) buf = static_cast<const char*>(e[1]);
            else if (key == 2) size = *static_cast<std::size_t*>(e[1]);
            else return fail(CUDA_ERROR_INVALID_VALUE, who + ": unknown entry in extra");
        }
        std::size_t off = 0;
        for (unsigned i = 0; i < k->nparams; ++i) {
            off = (off + k->aligns[i] - 1) / k->aligns[i] * k->aligns[i];
            packed.push_back(const_cast<char*>(buf) + off);
            off += k->sizes[i];
        }
        if (!buf || off > size) return fail(CUDA_ERROR_INVALID_VALUE, who + ": the extra parameter buffer is too small");
        params = packed.data();
    }
    if (!params && k->nparams > 0) return fail(CUDA_ERROR_INVALID_VALUE, who + ": kernelParams is null");
    // A pointer argument that is not device memory would fault on a GPU. Each one's buffer
    // (allocation or registered sub-region) is what memcheck lets the kernel touch.
    LaunchInfo info;
    info.k = k;
    info.grid = dim3(gx, gy, gz);
    info.block = dim3(bx, by, bz);
    info.dynSmem = sharedMemBytes;
    info.id = ++g_launches;
    info.flags = check_flags();
    info.seed = order_seed() ^ (info.id * 0x9E3779B97F4A7C15ull);
    for (unsigned i = 0; i < k->nparams; ++i) {
        if (!k->isPointer[i]) continue;
        void* p = *static_cast<void**>(params[i]);
        Region reg;
        if (p && !mem_region_of(reinterpret_cast<std::uintptr_t>(p), &reg))
            return fail(CUDA_ERROR_ILLEGAL_ADDRESS, who + ": pointer argument #" + std::to_string(i) + " (" + hex(p) +
                                                       ") does not point into a live cuMemAlloc allocation");
        // A replayed launch: the sub-region captured with it, when it still lies inside this live allocation.
        if (p && captured && i < captured->size()) {
            const Region& c = (*captured)[i];
            auto v = reinterpret_cast<std::uintptr_t>(p);
            if (c.sub && c.lo <= v && v <= c.hi && reg.lo <= c.lo && c.hi <= reg.hi) reg = c;
        }
        if (p) info.args.push_back(reg);
    }
    // Device pointers passed inside structures (e.g. a {a, b} pair of buffers) count as arguments too.
    for (unsigned i = 0; i < k->nparams; ++i) {
        if (k->isPointer[i] || k->sizes[i] < 8) continue;
        const char* bytes = static_cast<const char*>(params[i]);
        for (unsigned off = 0; off + 8 <= k->sizes[i]; off += 8) {
            std::uintptr_t v;
            std::memcpy(&v, bytes + off, 8);
            Region reg;
            if (v - g_heap_lo < g_heap_span && mem_region_of(v, &reg)) info.args.push_back(reg);
        }
    }
    if (info.flags & kMemcheck) shared_layout_for(&info);
    if (info.flags & (kMemcheck | kInitcheck | kRacecheck | kSynccheck)) ++g_checked_launches;
    RunResult r = run_grid(k, dim3(gx, gy, gz), dim3(bx, by, bz), sharedMemBytes, params, &info);
    std::string launch = "kernel '" + std::string(k->name) + "' grid (" + std::to_string(gx) + "," + std::to_string(gy) + "," +
                         std::to_string(gz) + ") block (" + std::to_string(bx) + "," + std::to_string(by) + "," +
                         std::to_string(bz) + ")";
    CUresult g = check_guards(launch);
    if (r.code != 0) {
        char seed[120];
        std::snprintf(seed, sizeof seed, " [launch #%llu; thread order seed MVQ_EMU_SEED=%llu, checkers %s]", info.id,
                      (unsigned long long)order_seed(), checks_text().c_str());
        return fail(r.code, "cuLaunchKernel: " + r.message + " (" + launch + ")" + seed);
    }
    return g;
}

// ---- streams and events ---------------------------------------------------------------------------
CUresult cuStreamCreate(CUstream* phStream, unsigned int flags) {
    if (CUresult r = need_ctx("cuStreamCreate")) return r;
    if (!phStream) return CUDA_ERROR_INVALID_VALUE;
    auto* s = new CUstream_st();
    s->flags = flags;
    std::lock_guard<std::mutex> lk(st().m);
    st().streams.insert(s);
    *phStream = s;
    return CUDA_SUCCESS;
}
CUresult cuStreamCreateWithPriority(CUstream* phStream, unsigned int flags, int) { return cuStreamCreate(phStream, flags); }

CUresult cuStreamDestroy_v2(CUstream s) {
    if (CUresult r = need_ctx("cuStreamDestroy")) return r;
    if (stream_ok(s) && real_stream(s))
        if (CUresult r = flush(s)) return r;  // queued work completes after a destroy
    std::lock_guard<std::mutex> lk(st().m);
    if (!s || !st().streams.erase(s)) return CUDA_ERROR_INVALID_HANDLE;
    delete s;
    return CUDA_SUCCESS;
}
CUresult cuStreamDestroy(CUstream s) { return cuStreamDestroy_v2(s); }

CUresult cuStreamSynchronize(CUstream s) {
    if (CUresult r = need_ctx("cuStreamSynchronize")) return r;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    if (is_capturing(s) || (reinterpret_cast<std::uintptr_t>(s) <= 2 && any_capturing())) return refuse_in_capture(s, "cuStreamSynchronize");
    if (CUresult r = flush(s)) return r;
    return check_guards("cuStreamSynchronize");
}

CUresult cuStreamQuery(CUstream s) {
    if (CUresult r = need_ctx("cuStreamQuery")) return r;
    if (is_capturing(s)) return refuse_in_capture(s, "cuStreamQuery");
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    return has_deferred(s) ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

static bool event_ok(CUevent e) {
    std::lock_guard<std::mutex> lk(st().m);
    return e && st().events.count(e) != 0;
}

CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int) {
    if (CUresult r = need_ctx("cuStreamWaitEvent")) return r;
    if (!stream_ok(s) || !event_ok(e)) return CUDA_ERROR_INVALID_HANDLE;
    // Work queued on s after this call runs after e's record: run the deferred work before that record now.
    return flush_event(e);
}

CUresult cuEventCreate(CUevent* phEvent, unsigned int flags) {
    if (CUresult r = need_ctx("cuEventCreate")) return r;
    if (!phEvent) return CUDA_ERROR_INVALID_VALUE;
    auto* e = new CUevent_st();
    e->flags = flags;
    std::lock_guard<std::mutex> lk(st().m);
    st().events.insert(e);
    *phEvent = e;
    return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream s) {
    if (CUresult r = need_ctx("cuEventRecord")) return r;
    if (!event_ok(e) || !stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    if (is_capturing(s)) {
        record(s, "event record", [=]() { return cuEventRecord(e, nullptr); });
        return CUDA_SUCCESS;
    }
    if (real_stream(s)) {
        std::lock_guard<std::mutex> lk(st().m);
        if (!s->deferred.empty()) {
            // Behind a deferred copy: the event completes when the copy has run.
            std::uint64_t seq = ++st().deferredSeq;
            s->deferred.push_back({nullptr, e, seq});
            e->pendingOn = s;
            e->pendingSeq = seq;
            return CUDA_SUCCESS;
        }
    }
    std::lock_guard<std::mutex> lk(st().m);
    e->pendingOn = nullptr;
    e->pendingSeq = 0;
    e->recorded = true;
    e->when = std::chrono::steady_clock::now();  // work before it on the stream has already run
    return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent e) {
    if (CUresult r = need_ctx("cuEventQuery")) return r;
    if (!event_ok(e)) return CUDA_ERROR_INVALID_HANDLE;
    std::lock_guard<std::mutex> lk(st().m);
    return e->pendingSeq ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent e) {
    if (CUresult r = need_ctx("cuEventSynchronize")) return r;
    if (any_capturing()) return refuse_in_capture(nullptr, "cuEventSynchronize");
    if (!event_ok(e)) return CUDA_ERROR_INVALID_HANDLE;
    return flush_event(e);
}

CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
    if (CUresult r = need_ctx("cuEventElapsedTime")) return r;
    if (!ms) return CUDA_ERROR_INVALID_VALUE;
    if (!event_ok(start) || !event_ok(end)) return CUDA_ERROR_INVALID_HANDLE;
    if ((start->flags | end->flags) & 2u)  // CU_EVENT_DISABLE_TIMING
        return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: event created with CU_EVENT_DISABLE_TIMING");
    if (start->pendingSeq || end->pendingSeq) return CUDA_ERROR_NOT_READY;
    if (!start->recorded || !end->recorded) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: event not recorded");
    *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
    return CUDA_SUCCESS;
}
CUresult cuEventElapsedTime_v2(float* ms, CUevent start, CUevent end) { return cuEventElapsedTime(ms, start, end); }

CUresult cuEventDestroy_v2(CUevent e) {
    if (CUresult r = need_ctx("cuEventDestroy")) return r;
    std::lock_guard<std::mutex> lk(st().m);
    if (!e || !st().events.erase(e)) return CUDA_ERROR_INVALID_HANDLE;
    for (auto* x : st().streams)  // a pending record of a destroyed event still orders the queue, but marks nothing
        for (auto& d : x->deferred)
            if (d.event == e) d.event = nullptr;
    delete e;
    return CUDA_SUCCESS;
}
CUresult cuEventDestroy(CUevent e) { return cuEventDestroy_v2(e); }

// ---- stream capture and graphs ---------------------------------------------------------------------
CUresult cuStreamBeginCapture_v2(CUstream s, int mode) {
    if (CUresult r = need_ctx("cuStreamBeginCapture")) return r;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    if (reinterpret_cast<std::uintptr_t>(s) <= 2)
        return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamBeginCapture: the legacy default stream cannot capture");
    if (mode < 0 || mode > 2) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamBeginCapture: invalid capture mode");
    std::lock_guard<std::mutex> lk(st().m);  // (errors below set lastError directly: fail() takes this lock)
    if (s->capture) {
        st().lastError = "cuStreamBeginCapture: the stream is already capturing";
        return CUDA_ERROR_ILLEGAL_STATE;
    }
    s->capture = new CUgraph_st();
    s->captureMode = mode;
    s->captureInvalid = false;
    s->captureThread = std::this_thread::get_id();
    ++st().capturing;
    return CUDA_SUCCESS;
}
CUresult cuStreamBeginCapture(CUstream s, int mode) { return cuStreamBeginCapture_v2(s, mode); }

CUresult cuStreamEndCapture(CUstream s, CUgraph* phGraph) {
    if (CUresult r = need_ctx("cuStreamEndCapture")) return r;
    if (!phGraph) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    std::lock_guard<std::mutex> lk(st().m);
    if (reinterpret_cast<std::uintptr_t>(s) <= 2 || !s->capture) {
        st().lastError = "cuStreamEndCapture: the stream is not capturing";
        return CUDA_ERROR_ILLEGAL_STATE;
    }
    CUgraph_st* g = s->capture;
    bool invalid = s->captureInvalid;
    s->capture = nullptr;
    s->captureInvalid = false;
    --st().capturing;
    if (invalid) {
        delete g;
        *phGraph = nullptr;
        st().lastError = "cuStreamEndCapture: the capture was invalidated by a call not permitted during capture";
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
    st().graphs.insert(g);
    *phGraph = g;
    return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing(CUstream s, int* status) {
    if (CUresult r = need_ctx("cuStreamIsCapturing")) return r;
    if (!status) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    std::lock_guard<std::mutex> lk(st().m);
    bool cap = reinterpret_cast<std::uintptr_t>(s) > 2 && s->capture;
    *status = !cap ? 0 : s->captureInvalid ? 2 : 1;  // NONE, ACTIVE, INVALIDATED
    return CUDA_SUCCESS;
}

CUresult cuGraphGetNodes(CUgraph g, void** nodes, size_t* numNodes) {
    if (!numNodes) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::mutex> lk(st().m);
    if (!g || !st().graphs.count(g)) return CUDA_ERROR_INVALID_HANDLE;
    if (nodes) {
        // Node handles are not modelled; the emulator fills indices + 1 so that callers can count.
        for (std::size_t i = 0; i < std::min(*numNodes, g->nodes.size()); ++i) nodes[i] = reinterpret_cast<void*>(i + 1);
    } else {
        *numNodes = g->nodes.size();
    }
    return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec* phExec, CUgraph g, unsigned long long) {
    if (CUresult r = need_ctx("cuGraphInstantiate")) return r;
    if (!phExec) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::mutex> lk(st().m);
    if (!g || !st().graphs.count(g)) return CUDA_ERROR_INVALID_HANDLE;
    auto* e = new CUgraphExec_st();
    e->nodes = g->nodes;
    e->names = g->names;
    st().execs.insert(e);
    *phExec = e;
    return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
    if (CUresult r = need_ctx("cuGraphLaunch")) return r;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    if (is_capturing(s)) return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuGraphLaunch: launching a graph into a capture is not emulated");
    if (CUresult r = flush(s)) return r;
    std::vector<std::function<CUresult()>> nodes;
    std::vector<std::string> names;
    {
        std::lock_guard<std::mutex> lk(st().m);
        if (!e || !st().execs.count(e)) return CUDA_ERROR_INVALID_HANDLE;
        nodes = e->nodes;
        names = e->names;
    }
    for (std::size_t i = 0; i < nodes.size(); ++i)
        if (CUresult r = nodes[i]()) {
            std::string prev;
            {
                std::lock_guard<std::mutex> lk(st().m);
                prev = st().lastError;
            }
            return fail(r, "cuGraphLaunch: node " + std::to_string(i) + " (" + names[i] + ") failed: " + prev);
        }
    return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec e) {
    std::lock_guard<std::mutex> lk(st().m);
    if (!e || !st().execs.erase(e)) return CUDA_ERROR_INVALID_HANDLE;
    delete e;
    return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph g) {
    std::lock_guard<std::mutex> lk(st().m);
    if (!g || !st().graphs.erase(g)) return CUDA_ERROR_INVALID_HANDLE;
    delete g;
    return CUDA_SUCCESS;
}

CUresult cuProfilerStart(void) { return CUDA_SUCCESS; }
CUresult cuProfilerStop(void) { return CUDA_SUCCESS; }

// ---- errors -------------------------------------------------------------------------------------
static const struct {
    int code;
    const char* name;
    const char* text;
} kErrors[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {5, "CUDA_ERROR_PROFILER_DISABLED", "profiler disabled while using a system-wide profiling tool"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {209, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
    {218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {300, "CUDA_ERROR_INVALID_SOURCE", "device kernel image is invalid"},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {600, "CUDA_ERROR_NOT_READY", "device not ready"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {702, "CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"},
    {709, "CUDA_ERROR_CONTEXT_IS_DESTROYED", "context is destroyed"},
    {710, "CUDA_ERROR_ASSERT", "device-side assert triggered"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {401, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
    {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {900, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
    {901, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
    {999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

CUresult cuGetErrorName(CUresult error, const char** pStr) {
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    for (auto& e : kErrors)
        if (e.code == error) {
            *pStr = e.name;
            return CUDA_SUCCESS;
        }
    *pStr = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char** pStr) {
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    for (auto& e : kErrors)
        if (e.code == error) {
            *pStr = e.text;
            return CUDA_SUCCESS;
        }
    *pStr = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
}

// ---- emulator extras --------------------------------------------------------------------------------
int mvqemu_is_emulator(void) { return 1; }

const char* mvqemu_last_error(void) {
    static thread_local std::string copy;
    std::lock_guard<std::mutex> lk(st().m);
    copy = st().lastError;
    return copy.c_str();
}

void mvqemu_clear_error(void) { set_last_error(""); }

int mvqemu_check_guards(void) {
    std::string msg;
    int bad = mem_check_guards(&msg);
    if (bad) set_last_error("out-of-bounds write detected by mvqemu_check_guards: " + msg);
    return bad;
}

size_t mvqemu_live_allocations(void) { return mem_live_count(); }

const void* mvqemu_module_image(CUmodule module, size_t* bytes) {
    std::lock_guard<std::mutex> lk(st().m);
    if (!module || !st().modules.count(module)) return nullptr;
    if (bytes) *bytes = module->image.size();
    return module->image.data();
}

}  // extern "C"

namespace mvq_emu {
const KernelDesc* kernel_at(unsigned i);
unsigned kernel_count();
}  // namespace mvq_emu

extern "C" int mvqemu_kernel_count(void) { return (int)mvq_emu::kernel_count(); }
extern "C" const char* mvqemu_kernel_name(int index) {
    const mvq_emu::KernelDesc* k = index < 0 ? nullptr : mvq_emu::kernel_at((unsigned)index);
    return k ? k->name : nullptr;
}
extern "C" int mvqemu_execution_threads(void) { return mvq_emu::execution_threads(); }

// ---- sanitizer extras ---------------------------------------------------------------------------
extern "C" int mvqemu_register_region(CUdeviceptr p, size_t bytes, const char* name) {
    std::string err;
    if (mem_register_sub(p, bytes, name, &err)) {
        set_last_error("mvqemu_register_region: " + mvq_emu::hex(reinterpret_cast<void*>(p)) + " + " + std::to_string(bytes) + " bytes " + err);
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}
extern "C" int mvqemu_unregister_region(CUdeviceptr p) {
    if (mem_unregister_sub(p)) {
        set_last_error("mvqemu_unregister_region: no sub-region starts at " + mvq_emu::hex(reinterpret_cast<void*>(p)));
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}
extern "C" unsigned long long mvqemu_launch_count(void) { return mvq_emu::g_launches.load(); }
extern "C" unsigned long long mvqemu_checked_launch_count(void) { return mvq_emu::g_checked_launches.load(); }
extern "C" const char* mvqemu_checkers(void) {
    static const std::string s = mvq_emu::checks_text();
    return s.c_str();
}
extern "C" const char* mvqemu_card(void) { return mvq_emu::card().arch; }
extern "C" unsigned long long mvqemu_seed(void) { return mvq_emu::order_seed(); }
