// emu_check.cpp: the emulator as a sanitizer. The kernels (native/kernels/*.cu compiled as host
// C++) are built with GCC's address-sanitizer instrumentation in its "call" form
// (-fsanitize=kernel-address, asan-instrumentation-with-call-threshold=0), which calls
// __asan_{load,store}{1,2,4,8,16,N}_noabort(address) before every memory access. The ASan run-time
// is not linked: this file defines those entry points and checks each access itself.
//   - An address in the device heap (emu_memory.cpp) is a global access: memcheck (inside the
//     requested bytes of a live allocation, inside the buffer of one of the launch's pointer
//     arguments or of a device pointer the kernel loaded from memory, naturally aligned) and
//     initcheck (bytes read were written since allocation).
//   - An address in this OS thread's TLS block (where `__shared__` arrays live) is a shared
//     access: racecheck (emu_exec.cpp).
//   - Anything else (the fiber's stack, the emulator's own state) is not checked.
// A failed check ends the CUDA thread and its launch (CUDA_ERROR_ILLEGAL_ADDRESS for memcheck,
// CUDA_ERROR_LAUNCH_FAILED for the others) with a message naming the kernel, block, thread,
// address, allocation and launch.
#include <dlfcn.h>
#include <elf.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <random>

#include "emu_internal.h"

namespace mvq_emu {

LaunchInfo* g_launch = nullptr;
std::atomic<unsigned long long> g_launches{0}, g_checked_launches{0};

unsigned check_flags() {
    static const unsigned f = [] {
        const char* e = std::getenv("MVQ_EMU_CHECKS");
        if (!e || !*e || !std::strcmp(e, "all")) return kMemcheck | kInitcheck | kRacecheck | kSynccheck | kShuffle;
        unsigned v = 0;
        std::string s = e;
        std::size_t pos = 0;
        while (pos <= s.size()) {
            std::size_t comma = s.find(',', pos);
            std::string w = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
            if (w == "memcheck") v |= kMemcheck;
            else if (w == "initcheck") v |= kInitcheck;
            else if (w == "racecheck") v |= kRacecheck;
            else if (w == "synccheck") v |= kSynccheck;
            else if (w == "shuffle") v |= kShuffle;
            else if (w == "none" || w.empty()) {}
            else std::fprintf(stderr, "mvq_emu: unknown checker '%s' in MVQ_EMU_CHECKS (ignored)\n", w.c_str());
            if (comma == std::string::npos) break;
            pos = comma + 1;
        }
        return v;
    }();
    return f;
}

std::uint64_t order_seed() {
    static const std::uint64_t s = [] {
        if (const char* e = std::getenv("MVQ_EMU_SEED")) return (std::uint64_t)std::strtoull(e, nullptr, 0);
        std::random_device rd;
        return ((std::uint64_t)rd() << 32) ^ rd();
    }();
    return s;
}

std::string checks_text() {
    static const char* names[] = {"memcheck", "initcheck", "racecheck", "synccheck", "shuffle"};
    std::string s;
    for (unsigned i = 0; i < 5; ++i)
        if (check_flags() & (1u << i)) s += (s.empty() ? "" : ",") + std::string(names[i]);
    return s.empty() ? "none" : s;
}

const std::vector<TlsSymbol>& tls_symbols() {
    // The emulator's ELF symbol table lists each function-local static `__shared__` array of an
    // extern "C" kernel as a TLS object named _ZZ<len><kernel>E..., with its offset in the TLS
    // segment and its size, and each generated `extern __shared__` buffer as a TLS object of
    // kMaxDynamicSmem bytes.
    static const std::vector<TlsSymbol> syms = [] {
        std::vector<TlsSymbol> out;
        Dl_info info{};
        if (!dladdr(reinterpret_cast<void*>(&tls_symbols), &info) || !info.dli_fname) return out;
        std::ifstream f(info.dli_fname, std::ios::binary);
        std::string img((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (img.size() < sizeof(Elf64_Ehdr)) return out;
        auto* eh = reinterpret_cast<const Elf64_Ehdr*>(img.data());
        if (eh->e_shoff + (std::size_t)eh->e_shnum * sizeof(Elf64_Shdr) > img.size()) return out;
        auto* sh = reinterpret_cast<const Elf64_Shdr*>(img.data() + eh->e_shoff);
        for (unsigned i = 0; i < eh->e_shnum; ++i) {
            if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
            const Elf64_Shdr& strs = sh[sh[i].sh_link];
            if (sh[i].sh_offset + sh[i].sh_size > img.size() || strs.sh_offset + strs.sh_size > img.size()) continue;
            auto* sy = reinterpret_cast<const Elf64_Sym*>(img.data() + sh[i].sh_offset);
            for (std::size_t j = 0; j < sh[i].sh_size / sizeof(Elf64_Sym); ++j) {
                if (ELF64_ST_TYPE(sy[j].st_info) != STT_TLS || sy[j].st_name >= strs.sh_size || sy[j].st_size == 0) continue;
                const char* nm = img.data() + strs.sh_offset + sy[j].st_name;
                TlsSymbol t;
                t.name = nm;
                t.off = sy[j].st_value;
                t.size = sy[j].st_size;
                t.dyn = sy[j].st_size == kMaxDynamicSmem;
                if (std::strncmp(nm, "_ZZ", 3) == 0) {
                    char* end = nullptr;
                    unsigned long len = std::strtoul(nm + 3, &end, 10);
                    if (end && std::strlen(end) >= len + 1 && end[len] == 'E') {
                        t.owner.assign(end, len);
                        // The array's own name: <len><name> after the 'E'.
                        char* e2 = nullptr;
                        unsigned long l2 = std::strtoul(end + len + 1, &e2, 10);
                        if (e2 && std::strlen(e2) >= l2) t.name.assign(e2, l2);
                    }
                }
                out.push_back(t);
            }
        }
        return out;
    }();
    return syms;
}

std::size_t static_smem_bytes(const KernelDesc* k) {
    std::size_t total = 0;
    for (const TlsSymbol& t : tls_symbols())
        if (!t.dyn && t.owner == k->name) total += t.size;
    return total;
}

void shared_layout_for(LaunchInfo* L) {
    const auto& syms = tls_symbols();
    L->sharedOk.assign(syms.size(), 0);
    for (std::size_t i = 0; i < syms.size(); ++i) {
        const TlsSymbol& t = syms[i];
        // A kernel may touch its own arrays, the dynamic buffers (up to the launch's size) and
        // arrays of helper functions (their owner is no kernel).
        L->sharedOk[i] = t.dyn || t.owner == L->k->name || (!t.owner.empty() && !find_kernel(t.owner.c_str()));
    }
}

void shared_bounds(std::uintptr_t off, std::size_t n, bool write, std::uintptr_t pc) {
    static const std::vector<int>* owner = nullptr;   // symbol index + 1 per TLS byte
    static std::once_flag once;
    std::call_once(once, [] {
        auto* o = new std::vector<int>(tls_shared_span, 0);
        const auto& syms = tls_symbols();
        for (std::size_t i = 0; i < syms.size(); ++i)
            for (std::size_t b = syms[i].off; b < syms[i].off + syms[i].size && b < o->size(); ++b) (*o)[b] = (int)i + 1;
        owner = o;
    });
    const LaunchInfo* L = g_launch;
    if (!L || !owner || off + n > owner->size()) return;
    int first = (*owner)[off];
    const auto& syms = tls_symbols();
    char buf[400];
    for (std::size_t i = 0; i < n; ++i) {
        int o = (*owner)[off + i];
        if (o == first && o && L->sharedOk[o - 1]) continue;
        // Describe the array before the address (the one an index ran past) and where it landed.
        std::string near = "";
        for (std::size_t k = off; k-- > 0 && off - k < 4096;)
            if ((*owner)[k]) {
                const TlsSymbol& t = syms[(*owner)[k] - 1];
                std::snprintf(buf, sizeof buf, "%zu bytes past the end of __shared__ '%s'%s%s (%zu bytes)", off - (t.off + t.size), t.name.c_str(),
                              t.owner.empty() ? "" : " of ", t.owner.c_str(), t.size);
                near = buf;
                break;
            }
        std::string into = o == 0 ? "padding between shared arrays" : "__shared__ '" + syms[o - 1].name + "'" + (syms[o - 1].owner.empty() ? "" : " of " + syms[o - 1].owner);
        std::snprintf(buf, sizeof buf, "memcheck: shared memory out of bounds: %s of %zu bytes (%s) lands in ", write ? "write" : "read", n,
                      where_is(pc).c_str());
        fault_impl(700, buf + into + (near.empty() ? "" : ", " + near));
    }
    const TlsSymbol& t = syms[first - 1];
    if (t.dyn && off + n - t.off > L->dynSmem) {
        std::snprintf(buf, sizeof buf,
                      "memcheck: shared memory out of bounds: %s of %zu bytes (%s) at byte %zu of extern __shared__ '%s', past the %u bytes of "
                      "dynamic shared memory the launch asked for",
                      write ? "write" : "read", n, where_is(pc).c_str(), (std::size_t)(off - t.off), t.name.c_str(), L->dynSmem);
        fault_impl(700, buf);
    }
}

namespace {

const char* kind_name(std::size_t n, bool write) {
    (void)n;
    return write ? "write" : "read";
}

// Regions reached through device pointers that this OS thread's blocks loaded from device
// memory during the current launch (e.g. a table of parameter pointers).
__thread std::vector<Region>* tls_loaded = nullptr;
__thread unsigned long long tls_loaded_launch = 0;

bool inside(const std::vector<Region>& rs, std::uintptr_t a, std::size_t n) {
    for (const Region& r : rs)
        if (a >= r.lo && a + n <= r.hi) return true;
    return false;
}

void note_pointer(const LaunchInfo* L, std::uintptr_t v) {
    if (!tls_loaded) tls_loaded = new std::vector<Region>();
    if (tls_loaded_launch != L->id) {
        tls_loaded->clear();
        tls_loaded_launch = L->id;
    }
    // Covered only if v is inside a known region (n = 1): a pointer equal to one region's end may be the start of the
    // next sub-region (gradients packed in one buffer), which must be looked up, not taken for the first one's end.
    if (inside(L->args, v, 1) || inside(*tls_loaded, v, 1)) return;
    Region r;
    if (mem_region_of(v, &r)) tls_loaded->push_back(r);
}

std::string args_text(const LaunchInfo* L) {
    std::string s;
    char buf[160];
    for (const Region& r : L->args) {
        std::snprintf(buf, sizeof buf, "%s#%llu%s [0x%" PRIxPTR ", +%zu)", s.empty() ? "" : ", ", r.id, r.sub ? " (sub-region)" : "", r.lo,
                      (std::size_t)(r.hi - r.lo));
        s += buf;
    }
    return s.empty() ? "none" : s;
}

[[noreturn]] void global_fault(const char* checker, int code, const char* problem, std::uintptr_t a, std::size_t n, bool write,
                               std::uintptr_t pc) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s: %s: %s of %zu bytes at 0x%" PRIxPTR " (%s), ", checker, problem, kind_name(n, write), n, a,
                  where_is(pc).c_str());
    std::string msg = buf + mem_describe(a, n) + "; buffers of the pointer arguments: " + args_text(g_launch);
    fault_impl(code, msg);
}

void global_access(std::uintptr_t a, std::size_t n, bool write, std::uintptr_t pc) {
    const LaunchInfo* L = g_launch;
    if (!L) return;
    const unsigned f = L->flags;
    if (!(f & (kMemcheck | kInitcheck))) return;
    unsigned char* s = g_shadow + (a - g_heap_lo);
    if (f & kMemcheck) {
        if ((n == 2 || n == 4 || n == 8 || n == 16) && (a & (n - 1)))
            global_fault("memcheck", 700, "misaligned access", a, n, write, pc);
        for (std::size_t i = 0; i < n; ++i)
            if (!(s[i] & 1)) global_fault("memcheck", 700, "out of bounds", a, n, write, pc);
        if (!inside(L->args, a, n) &&
            !(tls_loaded && tls_loaded_launch == L->id && inside(*tls_loaded, a, n)))
            global_fault("memcheck", 700, "outside the buffer of every pointer argument", a, n, write, pc);
    }
    if (write) {
        for (std::size_t i = 0; i < n; ++i) s[i] |= (unsigned char)((s[i] & 1) << 1);
        return;
    }
    if (f & kInitcheck)
        for (std::size_t i = 0; i < n; ++i)
            if ((s[i] & 3) == 1) global_fault("initcheck", 719, "uninitialized read", a, n, write, pc);
    if (n == 8 && !(a & 7) && (f & kMemcheck)) {
        std::uint64_t v;
        std::memcpy(&v, reinterpret_cast<const void*>(a), 8);
        if (v - g_heap_lo < g_heap_span) note_pointer(L, (std::uintptr_t)v);
    }
}

inline void on_access(std::uintptr_t a, std::size_t n, bool write, std::uintptr_t pc) {
    if (a - g_heap_lo < g_heap_span) {
        global_access(a, n, write, pc);
        return;
    }
    if (a - tls_shared_lo < tls_shared_span) shared_access(a, n, write, pc);
}

}  // namespace

// Atomics (cuda_emu.h) are not instrumented (they are not racy); they check their address here.
void atomic_check(void* p, std::size_t n) {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    if (a - g_heap_lo < g_heap_span) {
        auto pc = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
        global_access(a, n, false, pc);
        global_access(a, n, true, pc);
    }
}

std::string where_is(std::uintptr_t pc) {
    static std::mutex m;
    static std::map<std::uintptr_t, std::string> cache;
    std::lock_guard<std::mutex> lk(m);
    auto it = cache.find(pc);
    if (it != cache.end()) return it->second;
    Dl_info info{};
    std::string r = "?";
    if (dladdr(reinterpret_cast<void*>(pc), &info) && info.dli_fname) {
        auto off = pc - 1 - reinterpret_cast<std::uintptr_t>(info.dli_fbase);  // the call, not the return address
        char cmd[1200];
        std::snprintf(cmd, sizeof cmd, "addr2line -e '%s' 0x%" PRIxPTR " 2>/dev/null", info.dli_fname, off);
        char line[1024] = "";
        if (FILE* p = popen(cmd, "r")) {
            if (!std::fgets(line, sizeof line, p)) line[0] = 0;
            pclose(p);
        }
        std::size_t len = std::strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == ' ')) line[--len] = 0;
        if (len && line[0] != '?') {
            r = line;
            // Keep the path from native/ on (build trees differ).
            std::size_t k = r.find("/native/");
            if (k != std::string::npos) r = r.substr(k + 1);
            std::size_t d = r.find(" (discriminator");
            if (d != std::string::npos) r = r.substr(0, d);
            // GCC's -g1 tables sometimes name the generated wrapper (gen/<folder>_<stem>.emu.cpp) that
            // #includes the kernel file; the line is the kernel file's.
            std::size_t g = r.find("gen/"), e = r.find(".emu.cpp:");
            if (g != std::string::npos && e != std::string::npos && e > g) {
                std::string stem = r.substr(g + 4, e - g - 4), line = r.substr(e + 8);
                std::size_t us = stem.find('_');
                if (us != std::string::npos) {
                    std::string folder = stem.substr(0, us);
                    r = (folder == "kernels" ? "native/kernels/" : "native/emu/" + folder + "/") + stem.substr(us + 1) + ".cu" + line;
                }
            }
        } else {
            char b[64];
            std::snprintf(b, sizeof b, "%s+0x%" PRIxPTR, info.dli_sname ? info.dli_sname : "?", off);
            r = b;
        }
    }
    cache.emplace(pc, r);
    return r;
}

namespace {
struct StatsAtExit {
    ~StatsAtExit() {
        const char* path = std::getenv("MVQ_EMU_STATS");
        if (!path || !*path || g_launches.load() == 0) return;
        if (FILE* f = std::fopen(path, "a")) {
            std::fprintf(f, "launches %llu checked %llu flags %u seed %llu\n", g_launches.load(), g_checked_launches.load(),
                         check_flags(), (unsigned long long)order_seed());
            std::fclose(f);
        }
    }
} g_stats_at_exit;
}  // namespace

}  // namespace mvq_emu

using namespace mvq_emu;

#define MVQ_EMU_CB(n)                                                                                           \
    extern "C" __attribute__((visibility("hidden"))) void __asan_load##n##_noabort(std::uintptr_t a) {          \
        on_access(a, n, false, reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));                 \
    }                                                                                                           \
    extern "C" __attribute__((visibility("hidden"))) void __asan_store##n##_noabort(std::uintptr_t a) {         \
        on_access(a, n, true, reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));                  \
    }
MVQ_EMU_CB(1)
MVQ_EMU_CB(2)
MVQ_EMU_CB(4)
MVQ_EMU_CB(8)
MVQ_EMU_CB(16)
extern "C" __attribute__((visibility("hidden"))) void __asan_loadN_noabort(std::uintptr_t a, std::size_t n) {
    if (n) on_access(a, n, false, reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
}
extern "C" __attribute__((visibility("hidden"))) void __asan_storeN_noabort(std::uintptr_t a, std::size_t n) {
    if (n) on_access(a, n, true, reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
}
extern "C" __attribute__((visibility("hidden"))) void __asan_handle_no_return() {}
// Emitted around the kernels' static initialisers (the registrar); nothing to do.
extern "C" __attribute__((visibility("hidden"))) void __asan_before_dynamic_init(const char*) {}
extern "C" __attribute__((visibility("hidden"))) void __asan_after_dynamic_init() {}
