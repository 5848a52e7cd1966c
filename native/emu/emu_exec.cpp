// emu_exec.cpp: runs kernels. Each CUDA thread of a block runs on a fiber (hand-written
// x86-64 context switch, ucontext elsewhere; stacks pooled per OS thread); a block runs
// entirely on one OS thread, blocks are spread over a small thread pool. __syncthreads, warp
// barriers, shuffles and votes are cooperative yields to the block's scheduler.
//
// Fast path: a fiber runs CUDA threads one after another (claiming the next unstarted thread
// when its current one returns), so a kernel that never synchronises runs a whole block on one
// fiber with no context switch per thread; a new fiber is only started when a thread blocks.
#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "emu_internal.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace mvq_emu {

__thread ThreadCtx* tls_thread = nullptr;
__thread BlockInfo* tls_block = nullptr;
__thread std::uintptr_t tls_shared_lo = 0;
__thread std::uintptr_t tls_shared_span = 0;

namespace {

// ---- fibers ---------------------------------------------------------------------------------
struct Block;
struct Fiber {
    void* sp = nullptr;
    char* mem = nullptr;
    std::size_t memSize = 0;
    ThreadCtx* ctx = nullptr;   // CUDA thread currently owned by this fiber
    Block* block = nullptr;
    bool finished = false;
#if !defined(__x86_64__)
    ucontext_t uc;
#endif
};

void fiber_entry(Fiber* f);

#if defined(__x86_64__)
// mvq_emu_switch(save, load): saves the callee-saved registers on the current stack, stores the
// stack pointer to *save and continues on the stack `load`. MXCSR and the x87 control word are
// not switched (ldmxcsr is slow, and kernels cannot change floating-point modes).
extern "C" void mvq_emu_switch(void** save, void* load);
extern "C" void mvq_emu_fiber_start();
asm(R"(
    .text
    .globl mvq_emu_switch
    .hidden mvq_emu_switch
    .type mvq_emu_switch,@function
mvq_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size mvq_emu_switch, .-mvq_emu_switch

    .globl mvq_emu_fiber_start
    .hidden mvq_emu_fiber_start
    .type mvq_emu_fiber_start,@function
mvq_emu_fiber_start:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size mvq_emu_fiber_start, .-mvq_emu_fiber_start
)");

__thread void* tls_sched_sp = nullptr;

void fiber_init(Fiber* f) {
    auto top = reinterpret_cast<std::uintptr_t>(f->mem + f->memSize) & ~std::uintptr_t(15);
    // Popped by mvq_emu_switch: r15 r14 r13 r12 rbx rbp, then `ret` into the start trampoline
    // with rsp = top (16-aligned), so the entry function sees the ABI's alignment after `call`.
    auto* sp = reinterpret_cast<std::uint64_t*>(top - 56);
    sp[0] = 0;                                                       // r15
    sp[1] = 0;                                                       // r14
    sp[2] = reinterpret_cast<std::uint64_t>(&fiber_entry);           // r13: entry
    sp[3] = reinterpret_cast<std::uint64_t>(f);                      // r12: argument
    sp[4] = 0;                                                       // rbx
    sp[5] = 0;                                                       // rbp
    sp[6] = reinterpret_cast<std::uint64_t>(&mvq_emu_fiber_start);   // return address
    f->sp = sp;
}
inline void resume(Fiber* f) { mvq_emu_switch(&tls_sched_sp, f->sp); }
inline void yield_to_scheduler(Fiber* f) { mvq_emu_switch(&f->sp, tls_sched_sp); }
#else
thread_local ucontext_t tls_sched_uc;
void fiber_trampoline(unsigned hi, unsigned lo) {
    fiber_entry(reinterpret_cast<Fiber*>((std::uintptr_t(hi) << 32) | lo));
}
void fiber_init(Fiber* f) {
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->mem;
    f->uc.uc_stack.ss_size = f->memSize;
    f->uc.uc_link = nullptr;
    auto v = reinterpret_cast<std::uintptr_t>(f);
    makecontext(&f->uc, reinterpret_cast<void (*)()>(&fiber_trampoline), 2, unsigned(v >> 32), unsigned(v));
}
inline void resume(Fiber* f) { swapcontext(&tls_sched_uc, &f->uc); }
inline void yield_to_scheduler(Fiber* f) { swapcontext(&f->uc, &tls_sched_uc); }
#endif

std::size_t stack_bytes() {
    static const std::size_t bytes = [] {
        std::size_t kb = 128;
        if (const char* e = std::getenv("MVQ_EMU_STACK_KB")) kb = std::max<std::size_t>(16, std::strtoul(e, nullptr, 10));
        std::size_t page = (std::size_t)sysconf(_SC_PAGESIZE);
        return (kb * 1024 + page - 1) / page * page;
    }();
    return bytes;
}

/// Per-OS-thread pool of fibers (stack with a PROT_NONE page below it to trap overflows).
struct FiberPool {
    std::vector<Fiber*> free;
    ~FiberPool() {
        for (Fiber* f : free) {
            munmap(f->mem - sysconf(_SC_PAGESIZE), f->memSize + sysconf(_SC_PAGESIZE));
            delete f;
        }
    }
    Fiber* acquire() {
        if (!free.empty()) {
            Fiber* f = free.back();
            free.pop_back();
            return f;
        }
        std::size_t page = (std::size_t)sysconf(_SC_PAGESIZE), size = stack_bytes();
        void* m = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (m == MAP_FAILED) {
            std::fprintf(stderr, "mvq_emu: cannot map a fiber stack\n");
            std::abort();
        }
        mprotect(m, page, PROT_NONE);
        auto* f = new Fiber();
        f->mem = static_cast<char*>(m) + page;
        f->memSize = size;
        return f;
    }
    void release(Fiber* f) {
        f->ctx = nullptr;
        f->block = nullptr;
        free.push_back(f);
    }
};
thread_local FiberPool tls_fibers;

// ---- blocks ---------------------------------------------------------------------------------
struct WarpState {
    std::uint32_t live = 0;       // lanes that exist and have not exited
    std::uint32_t arrived = 0;    // lanes waiting at the current warp barrier
    std::uint32_t need = 0;       // mask given by the first arriver
    std::uint32_t gen = 0;
    std::uint32_t released[2] = {0, 0};   // lanes that took part in barrier gen (by parity)
    std::uint64_t slot[2][32] = {};       // exchanged values, double-buffered by gen parity
};

struct Block {
    BlockInfo info{};
    const KernelDesc* k = nullptr;
    void** params = nullptr;
    unsigned n = 0, next = 0, live = 0;
    unsigned barArrived = 0, barGen = 0;
    int barAcc[2] = {0, 0};
    std::vector<ThreadCtx> threads = std::vector<ThreadCtx>(1024);
    std::vector<unsigned short> order = std::vector<unsigned short>(1024);   // thread start order
    WarpState warps[32];
    std::uint32_t present[32] = {};   // lanes of each warp that exist in this block
    std::vector<Fiber*> active;
    unsigned exited = 0;
    const char* barFile = nullptr;    // call site of the barrier being waited at (synccheck)
    int barLine = 0;
    unsigned barFirst = 0;            // first thread that arrived there
    unsigned flags = 0;
    std::uint64_t rng = 0;
    int error = 0;
    std::string message;
};
__thread Block* tls_cur = nullptr;
__thread std::uint32_t tls_epoch = 0;   // racecheck: advances at every block start and block barrier

inline std::uint64_t next_random(std::uint64_t& x) {   // splitmix64
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::string block_where(const Block* b, const ThreadCtx* t) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "kernel '%s' block (%u,%u,%u)", b->k ? b->k->name : "?", b->info.bidx.x,
                  b->info.bidx.y, b->info.bidx.z);
    std::string s = buf;
    if (t) {
        std::snprintf(buf, sizeof buf, " thread (%u,%u,%u)", t->tid.x, t->tid.y, t->tid.z);
        s += buf;
    }
    return s;
}

void release_block_barrier(Block* b) {
    for (unsigned i = 0; i < b->n; ++i)
        if (b->threads[i].wait_kind == 1) b->threads[i].wait_kind = 0;
    b->barArrived = 0;
    ++b->barGen;
    b->barAcc[b->barGen & 1] = 0;
    ++tls_epoch;
}

std::string thread_name(const Block* b, unsigned linear) {
    const ThreadCtx& t = b->threads[linear];
    char buf[64];
    std::snprintf(buf, sizeof buf, "thread (%u,%u,%u)", t.tid.x, t.tid.y, t.tid.z);
    return buf;
}

[[noreturn]] void fault_here(Block* b, ThreadCtx* t, int code, const std::string& what);

bool warp_complete(const WarpState& w) {
    std::uint32_t need = w.need & w.live;
    return (w.arrived & need) == need;
}

void release_warp(Block* b, WarpState& w, unsigned warp) {
    w.released[w.gen & 1] = w.arrived;
    for (std::uint32_t m = w.arrived; m; m &= m - 1) b->threads[warp * 32 + std::countr_zero(m)].wait_kind = 0;
    w.arrived = 0;
    ++w.gen;
}

inline void wait_here(ThreadCtx* t, unsigned char kind) {
    t->wait_kind = kind;
    yield_to_scheduler(static_cast<Fiber*>(t->fiber));
}

void warp_barrier(Block* b, ThreadCtx* t, unsigned mask) {
    WarpState& w = b->warps[t->warp];
    if (b->flags & kSynccheck) {
        char buf[300];
        if (!((mask >> t->lane) & 1u)) {
            std::snprintf(buf, sizeof buf, "synccheck: warp intrinsic called with mask 0x%08x that does not name the calling lane %u", mask, t->lane);
            fault_here(b, t, 719, buf);
        }
        if (mask & ~w.live) {
            std::snprintf(buf, sizeof buf,
                          "synccheck: warp intrinsic called with mask 0x%08x but lanes 0x%08x of warp %u %s (lanes present: 0x%08x)", mask,
                          mask & ~w.live, t->warp, (mask & ~b->present[t->warp]) ? "do not exist in this block" : "have exited",
                          w.live);
            fault_here(b, t, 719, buf);
        }
        if (w.arrived != 0 && w.need != mask) {
            std::snprintf(buf, sizeof buf, "synccheck: lanes of warp %u wait at warp intrinsics with different masks (0x%08x and 0x%08x)",
                          t->warp, w.need, mask);
            fault_here(b, t, 719, buf);
        }
    }
    if (w.arrived == 0) w.need = mask;
    w.arrived |= 1u << t->lane;
    if (warp_complete(w))
        release_warp(b, w, t->warp);
    else
        wait_here(t, 2);
}

void thread_exit(Block* b, ThreadCtx* t) {
    if (b->flags & kSynccheck) {
        WarpState& w = b->warps[t->warp];
        if (b->barArrived > 0)
            fault_here(b, t, 719, "synccheck: divergent __syncthreads: this thread exited without reaching the barrier at " +
                                      std::string(b->barFile ? b->barFile : "?") + ":" + std::to_string(b->barLine) + " where " + std::to_string(b->barArrived) + " thread(s) of the block wait (first " +
                                      thread_name(b, b->barFirst) + ")");
        if (w.arrived != 0 && ((w.need >> t->lane) & 1u)) {
            char buf[200];
            std::snprintf(buf, sizeof buf, "synccheck: this lane exited while lanes 0x%08x of warp %u wait for it at a warp intrinsic with mask 0x%08x",
                          w.arrived, t->warp, w.need);
            fault_here(b, t, 719, buf);
        }
    }
    ++b->exited;
    --b->live;
    WarpState& w = b->warps[t->warp];
    w.live &= ~(1u << t->lane);
    if (b->barArrived > 0 && b->barArrived >= b->live) release_block_barrier(b);
    if (w.arrived != 0 && warp_complete(w)) release_warp(b, w, t->warp);
}

void fiber_entry(Fiber* f) {
    Block* b = f->block;
    while (b->error == 0 && b->next < b->n) {
        ThreadCtx* t = &b->threads[b->order[b->next++]];
        t->fiber = f;
        f->ctx = t;
        tls_thread = t;
        b->k->thunk(b->params);
        thread_exit(b, t);
    }
    f->finished = true;
    f->ctx = nullptr;
    yield_to_scheduler(f);
    std::abort();  // a finished fiber is never resumed
}

void run_block(Block* b) {
    const dim3 bd = b->info.bdim;
    b->n = bd.x * bd.y * bd.z;
    b->next = 0;
    b->live = b->n;
    b->barArrived = 0;
    b->barGen = 0;
    b->barAcc[0] = b->barAcc[1] = 0;
    b->error = 0;
    b->exited = 0;
    b->barFile = nullptr;
    ++tls_epoch;
    for (unsigned i = 0; i < b->n; ++i) b->order[i] = (unsigned short)i;
    if (b->flags & kShuffle) {
        // Seeded per launch and block, so the order does not depend on which OS thread runs it.
        const BlockInfo& bi = b->info;
        b->rng = g_launch->seed ^ (((std::uint64_t)bi.bidx.z * bi.gdim.y + bi.bidx.y) * bi.gdim.x + bi.bidx.x) * 0x2545F4914F6CDD1Dull;
        for (unsigned i = b->n; i > 1; --i) std::swap(b->order[i - 1], b->order[next_random(b->rng) % i]);
    }
    for (unsigned i = 0; i < b->n; ++i) {
        ThreadCtx& t = b->threads[i];
        t.tid = uint3{i % bd.x, (i / bd.x) % bd.y, i / (bd.x * bd.y)};
        t.linear = i;
        t.lane = i & 31;
        t.warp = i >> 5;
        t.wait_kind = 0;
        t.fiber = nullptr;
    }
    for (unsigned w = 0; w * 32 < b->n; ++w) {
        unsigned lanes = std::min(32u, b->n - w * 32);
        WarpState& ws = b->warps[w];
        ws.live = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1);
        b->present[w] = ws.live;
        ws.arrived = ws.need = ws.gen = 0;
        ws.released[0] = ws.released[1] = 0;
    }
    tls_cur = b;
    tls_block = &b->info;
    FiberPool& pool = tls_fibers;
    b->active.clear();
    for (;;) {
        bool progress = false;
        std::size_t keep = 0;
        if ((b->flags & kShuffle) && b->active.size() > 1)
            for (std::size_t i = b->active.size(); i > 1; --i) std::swap(b->active[i - 1], b->active[next_random(b->rng) % i]);
        for (std::size_t i = 0; i < b->active.size(); ++i) {
            Fiber* f = b->active[i];
            if (b->error == 0 && f->ctx && f->ctx->wait_kind == 0) {
                tls_thread = f->ctx;
                resume(f);
                progress = true;
            }
            if (f->finished)
                pool.release(f);
            else
                b->active[keep++] = f;
        }
        b->active.resize(keep);
        while (b->error == 0 && b->next < b->n) {
            Fiber* f = pool.acquire();
            f->block = b;
            f->finished = false;
            f->ctx = nullptr;
            fiber_init(f);
            resume(f);
            progress = true;
            if (f->finished)
                pool.release(f);
            else
                b->active.push_back(f);
        }
        if (b->error != 0 || b->live == 0) break;
        if (!progress) {
            unsigned atBlock = 0, atWarp = 0;
            for (unsigned i = 0; i < b->n; ++i) {
                atBlock += b->threads[i].wait_kind == 1;
                atWarp += b->threads[i].wait_kind == 2;
            }
            char buf[200];
            std::snprintf(buf, sizeof buf,
                          ": deadlock, %u threads wait at __syncthreads and %u at a warp barrier (shuffle/vote/__syncwarp) "
                          "that the other %u live threads never reach",
                          atBlock, atWarp, b->live - atBlock - atWarp);
            b->error = 719;  // CUDA_ERROR_LAUNCH_FAILED
            b->message = block_where(b, nullptr) + buf;
            break;
        }
    }
    // Fibers still suspended belong to an aborted block: drop them (their stacks are reused).
    for (Fiber* f : b->active) pool.release(f);
    b->active.clear();
    tls_cur = nullptr;
    tls_thread = nullptr;
    tls_block = nullptr;
}

// ---- thread pool -----------------------------------------------------------------------------
class Pool {
public:
    explicit Pool(int workers) {
        for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { loop(); });
    }
    int workers() const { return (int)threads_.size(); }
    /// Runs fn on every worker and on the caller; returns when all are done.
    void run(const std::function<void()>& fn) {
        {
            std::lock_guard<std::mutex> lk(m_);
            job_ = &fn;
            ++epoch_;
            pending_ = (int)threads_.size();
        }
        cv_.notify_all();
        fn();
        std::unique_lock<std::mutex> lk(m_);
        done_.wait(lk, [this] { return pending_ == 0; });
        job_ = nullptr;
    }

private:
    void loop() {
        std::uint64_t seen = 0;
        std::unique_lock<std::mutex> lk(m_);
        for (;;) {
            cv_.wait(lk, [&] { return epoch_ != seen; });
            seen = epoch_;
            const std::function<void()>* j = job_;
            lk.unlock();
            (*j)();
            lk.lock();
            if (--pending_ == 0) done_.notify_all();
        }
    }
    std::vector<std::thread> threads_;
    std::mutex m_;
    std::condition_variable cv_, done_;
    const std::function<void()>* job_ = nullptr;
    std::uint64_t epoch_ = 0;
    int pending_ = 0;
};

int configured_threads() {
    static const int n = [] {
        int v = (int)std::thread::hardware_concurrency();
        if (const char* e = std::getenv("MVQ_EMU_THREADS")) v = std::atoi(e);
        return std::clamp(v, 1, 256);
    }();
    return n;
}

Pool& pool() {
    // Leaked on purpose: workers sleep on the condition variable until the process exits.
    static Pool* p = new Pool(configured_threads() - 1);
    return *p;
}

std::mutex& launch_mutex() {
    static std::mutex m;
    return m;
}

Block* worker_block() {
    static thread_local std::unique_ptr<Block> b;
    if (!b) b = std::make_unique<Block>();
    return b.get();
}

}  // namespace

// ---- device-side entry points (declared in cuda_emu.h) --------------------------------------
int syncthreads_impl(int pred, int mode, const char* file, int line) {
    Block* b = tls_cur;
    ThreadCtx* t = tls_thread;
    if (b->flags & kSynccheck) {
        auto here = [&](const char* f, int l) {
            std::string s = f ? f : "?";
            std::size_t k = s.find("/native/");
            return (k == std::string::npos ? s : s.substr(k + 1)) + ":" + std::to_string(l);
        };
        if (b->exited > 0)
            fault_here(b, t, 719, "synccheck: divergent __syncthreads at " + here(file, line) + ": " + std::to_string(b->exited) +
                                      " thread(s) of the block have exited and will never reach it");
        if (b->barArrived == 0) {
            b->barFile = file;
            b->barLine = line;
            b->barFirst = t->linear;
        } else if (file != b->barFile || line != b->barLine) {
            fault_here(b, t, 719, "synccheck: divergent __syncthreads: this thread waits at " + here(file, line) + " while " +
                                      thread_name(b, b->barFirst) + " (and " + std::to_string(b->barArrived - 1) + " more) wait at " +
                                      here(b->barFile, b->barLine));
        }
    }
    unsigned g = b->barGen & 1;
    if (mode == 1 || mode == 3) b->barAcc[g] += pred != 0;
    if (mode == 2) b->barAcc[g] += pred == 0;
    if (++b->barArrived >= b->live)
        release_block_barrier(b);
    else
        wait_here(t, 1);
    int acc = b->barAcc[g];
    return mode == 1 ? acc : mode == 2 ? acc == 0 : mode == 3 ? acc > 0 : 0;
}

void syncwarp_impl(unsigned mask) { warp_barrier(tls_cur, tls_thread, mask); }

unsigned long long shfl_impl(unsigned mask, unsigned long long v, int kind, int arg, int width) {
    Block* b = tls_cur;
    ThreadCtx* t = tls_thread;
    WarpState& w = b->warps[t->warp];
    unsigned g = w.gen & 1;
    w.slot[g][t->lane] = v;
    warp_barrier(b, t, mask);
    if (width <= 0 || width > 32 || (width & (width - 1))) width = 32;
    int lane = (int)t->lane, base = lane & ~(width - 1), src = lane;
    switch (kind) {
        case 0: src = base + (arg & (width - 1)); break;                       // __shfl_sync
        case 1: src = lane - base >= arg ? lane - arg : lane; break;           // __shfl_up_sync
        case 2: src = lane - base + arg < width ? lane + arg : lane; break;    // __shfl_down_sync
        default: src = lane ^ arg; if (src >= base + width) src = lane; break; // __shfl_xor_sync
    }
    if (src < 0 || src > 31 || !((w.released[g] >> src) & 1u)) return v;
    return w.slot[g][src];
}

unsigned vote_impl(unsigned mask, int pred, int kind) {
    Block* b = tls_cur;
    ThreadCtx* t = tls_thread;
    WarpState& w = b->warps[t->warp];
    unsigned g = w.gen & 1;
    w.slot[g][t->lane] = pred != 0;
    warp_barrier(b, t, mask);
    std::uint32_t parts = w.released[g] & (mask | (1u << t->lane)), ballot = 0;
    for (std::uint32_t m = parts; m; m &= m - 1)
        if (w.slot[g][std::countr_zero(m)]) ballot |= 1u << std::countr_zero(m);
    return kind == 0 ? ballot : kind == 1 ? (unsigned)(ballot == parts) : (unsigned)(ballot != 0);
}

long long reduce_impl(unsigned mask, long long v, int kind) {
    Block* b = tls_cur;
    ThreadCtx* t = tls_thread;
    WarpState& w = b->warps[t->warp];
    unsigned g = w.gen & 1;
    w.slot[g][t->lane] = (unsigned long long)v;
    warp_barrier(b, t, mask);
    std::uint32_t parts = w.released[g] & (mask | (1u << t->lane));
    long long r = v;
    bool first = true;
    for (std::uint32_t m = parts; m; m &= m - 1) {
        long long x = (long long)w.slot[g][std::countr_zero(m)];
        r = first ? x : kind == 0 ? r + x : kind == 1 ? std::min(r, x) : std::max(r, x);
        first = false;
    }
    return r;
}

unsigned activemask_impl() { return tls_cur->warps[tls_thread->warp].live; }

void trap_impl(const char* what, const char* file, int line) {
    Block* b = tls_cur;
    ThreadCtx* t = tls_thread;
    char buf[512];
    std::snprintf(buf, sizeof buf, ": %s failed at %s:%d", what, file, line);
    if (!b || !t) {
        std::fprintf(stderr, "mvq_emu%s outside a kernel\n", buf);
        std::abort();
    }
    if (b->error == 0) {
        b->error = 710;  // CUDA_ERROR_ASSERT
        b->message = block_where(b, t) + buf;
    }
    auto* f = static_cast<Fiber*>(t->fiber);
    f->finished = true;  // the rest of this CUDA thread (and block) is abandoned
    f->ctx = nullptr;
    yield_to_scheduler(f);
    std::abort();
}

void fault_impl(int code, const std::string& what) {
    Block* b = tls_cur;
    ThreadCtx* t = tls_thread;
    if (!b || !t) {
        std::fprintf(stderr, "mvq_emu: %s (outside a kernel)\n", what.c_str());
        std::abort();
    }
    fault_here(b, t, code, what);
}

namespace {
void fault_here(Block* b, ThreadCtx* t, int code, const std::string& what) {
    if (b->error == 0) {
        b->error = code;
        b->message = block_where(b, t) + ": " + what;
    }
    auto* f = static_cast<Fiber*>(t->fiber);
    f->finished = true;  // the rest of this CUDA thread (and block) is abandoned
    f->ctx = nullptr;
    yield_to_scheduler(f);
    std::abort();
}

// ---- racecheck -------------------------------------------------------------------------------
// One cell per byte of this OS thread's TLS block (where the block's __shared__ arrays live),
// valid for one barrier interval (epoch). Two accesses of one byte in an interval by different
// threads, at least one a write, are a hazard unless both threads are lanes of one warp and
// that warp passed a warp barrier (__syncwarp, shuffle, vote) in between.
struct RaceCell {
    std::uint32_t epoch;
    std::uint16_t writer, reader;     // thread + 1; 0 none; reader 0xFFFF: several
    std::uint32_t genW, genR;         // the accessing warp's barrier count at the access
    std::uint16_t readerWarp;         // warp of the readers, 0xFFFF: several warps
    std::uintptr_t pcW, pcR;
};
constexpr std::uint16_t kMany = 0xFFFF;
__thread RaceCell* tls_cells = nullptr;

void compute_tls_range() {
    Dl_info info{};
    if (!dladdr(reinterpret_cast<void*>(&compute_tls_range), &info)) return;
    struct Q {
        std::uintptr_t base, lo = 0, span = 0;
    } q{reinterpret_cast<std::uintptr_t>(info.dli_fbase)};
    dl_iterate_phdr(
        [](dl_phdr_info* pi, std::size_t, void* arg) -> int {
            auto* q = static_cast<Q*>(arg);
            if (pi->dlpi_addr != q->base) return 0;
            for (int i = 0; i < pi->dlpi_phnum; ++i)
                if (pi->dlpi_phdr[i].p_type == PT_TLS && pi->dlpi_tls_data) {
                    q->lo = reinterpret_cast<std::uintptr_t>(pi->dlpi_tls_data);
                    q->span = pi->dlpi_phdr[i].p_memsz;
                    return 1;
                }
            return 0;
        },
        &q);
    if (!q.span) return;
    void* cells = mmap(nullptr, q.span * sizeof(RaceCell), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (cells == MAP_FAILED) return;
    tls_cells = static_cast<RaceCell*>(cells);
    tls_shared_lo = q.lo;
    tls_shared_span = q.span;
}

[[noreturn]] void race_fault(Block* b, ThreadCtx* t, std::uintptr_t a, std::size_t n, bool write, std::uintptr_t pc, unsigned other,
                             bool otherWrote, std::uintptr_t otherPc) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "racecheck: shared-memory hazard (%s) at shared address 0x%llx (+%zu bytes): this thread %s it at ",
                  otherWrote ? (write ? "write after write" : "read after write") : "write after read",
                  (unsigned long long)a, n, write ? "writes" : "reads");
    std::string msg = buf + where_is(pc) + ", ";
    msg += other == kMany ? std::string("several threads") : thread_name(b, other);
    msg += std::string(otherWrote ? " wrote" : " read") + " it at " + where_is(otherPc) +
           ", with no __syncthreads (nor, within one warp, __syncwarp) in between";
    fault_here(b, t, 719, msg);
}
}  // namespace

void shared_access(std::uintptr_t a, std::size_t n, bool write, std::uintptr_t pc) {
    if (a == reinterpret_cast<std::uintptr_t>(&tls_thread) || a == reinterpret_cast<std::uintptr_t>(&tls_block)) return;
    Block* b = tls_cur;
    ThreadCtx* t = tls_thread;
    if (!b || !t) return;
    if (b->flags & kMemcheck) shared_bounds(a - tls_shared_lo, n, write, pc);
    if (!(b->flags & kRacecheck) || !tls_cells) return;
    const std::uint32_t ep = tls_epoch;
    const std::uint16_t me = (std::uint16_t)(t->linear + 1);
    const unsigned warp = t->warp;
    const std::uint32_t gen = b->warps[warp].gen;
    auto synced = [&](unsigned otherLinear, std::uint32_t otherGen) {
        return (otherLinear >> 5) == warp && gen != otherGen;  // same warp and a warp barrier since
    };
    RaceCell* c = tls_cells + (a - tls_shared_lo);
    for (std::size_t i = 0; i < n && a + i - tls_shared_lo < tls_shared_span; ++i, ++c) {
        if (c->epoch != ep) *c = RaceCell{ep, 0, 0, 0, 0, 0, 0, 0};
        if (c->writer && c->writer != me && !synced(c->writer - 1u, c->genW)) race_fault(b, t, a, n, write, pc, c->writer - 1u, true, c->pcW);
        if (write && c->reader && c->reader != me) {
            bool ok = c->reader == kMany ? (c->readerWarp == warp && gen != c->genR) : synced(c->reader - 1u, c->genR);
            if (!ok) race_fault(b, t, a, n, write, pc, c->reader == kMany ? kMany : c->reader - 1u, false, c->pcR);
        }
        if (write) {
            c->writer = me;
            c->genW = gen;
            c->pcW = pc;
            c->reader = 0;
        } else {
            if (!c->reader || c->reader == me) {
                if (!c->reader) c->readerWarp = (std::uint16_t)warp;
                c->reader = me;
            } else {
                if (c->readerWarp != warp) c->readerWarp = kMany;
                c->reader = kMany;
            }
            c->genR = gen;
            c->pcR = pc;
        }
    }
}

// ---- grid execution ------------------------------------------------------------------------
int execution_threads() { return configured_threads(); }

RunResult run_grid(const KernelDesc* k, dim3 grid, dim3 block, unsigned dynSmem, void** params, LaunchInfo* info) {
    std::lock_guard<std::mutex> launchLock(launch_mutex());
    g_launch = info;
    struct Reset {
        ~Reset() { g_launch = nullptr; }
    } reset;
    const std::uint64_t total = (std::uint64_t)grid.x * grid.y * grid.z;
    const std::uint64_t perBlock = (std::uint64_t)block.x * block.y * block.z;
    std::atomic<std::uint64_t> next{0};
    std::atomic<int> error{0};
    std::mutex msgMutex;
    RunResult result;
    std::function<void()> work = [&] {
        Block* b = worker_block();
        b->k = k;
        b->params = params;
        b->info.bdim = block;
        b->info.gdim = grid;
        b->info.dynamicSmemBytes = dynSmem;
        b->flags = info->flags;
        static thread_local bool tried = false;
        if (!tried && (info->flags & (kRacecheck | kMemcheck))) {
            tried = true;
            compute_tls_range();
        }
        for (std::uint64_t i; error.load(std::memory_order_relaxed) == 0 && (i = next.fetch_add(1)) < total;) {
            b->info.bidx = uint3{(unsigned)(i % grid.x), (unsigned)((i / grid.x) % grid.y), (unsigned)(i / ((std::uint64_t)grid.x * grid.y))};
            run_block(b);
            if (b->error != 0) {
                std::lock_guard<std::mutex> lk(msgMutex);
                if (result.code == 0) {
                    result.code = b->error;
                    result.message = b->message;
                }
                error.store(b->error);
            }
        }
    };
    // Small grids run on the caller: waking the pool costs more than it saves.
    if (total < 2 || total * perBlock < 2048 || configured_threads() == 1)
        work();
    else
        pool().run(work);
    return result;
}

void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body) {
    grain = std::max<std::size_t>(grain, 1);
    std::size_t chunks = (n + grain - 1) / grain;
    if (chunks <= 1 || configured_threads() == 1) {
        if (n) body(0, n);
        return;
    }
    std::lock_guard<std::mutex> launchLock(launch_mutex());
    std::atomic<std::size_t> next{0};
    pool().run([&] {
        for (std::size_t c; (c = next.fetch_add(1)) < chunks;) body(c * grain, std::min(n, (c + 1) * grain));
    });
}

}  // namespace mvq_emu
