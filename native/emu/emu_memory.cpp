// emu_memory.cpp: emulated device memory. All allocations come from one reserved range of
// address space (the "device heap"), so the checker (emu_check.cpp) tells a device address
// from any other with one compare. Beside it lies a shadow byte per heap byte:
//   0 = not addressable (guards, padding, free space, bytes past the requested size),
//   1 = addressable but never written since allocation, 3 = addressable and written.
// Every allocation also keeps guard bytes of a known pattern before and after the user bytes;
// guard checks find (and repair) damaged guards so that out-of-bounds writes by host code
// (cuBLAS, memcpy) are reported too. Fresh allocations are filled with 0xFF bytes (NaN as
// float, -1 as int). Sub-regions (mvqemu_register_region) name a part of an allocation that a
// kernel argument stands for, e.g. the prefix of a workspace that an op locked.
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "emu_internal.h"

namespace mvq_emu {

std::uintptr_t g_heap_lo = 0;
std::uintptr_t g_heap_span = 0;
unsigned char* g_shadow = nullptr;

namespace {

constexpr std::size_t kGuard = 256;   // bytes before the user region (keeps 256-byte alignment)
constexpr std::size_t kAlign = 256;
constexpr std::size_t kMargin = std::size_t(1) << 30;   // never-allocated address space at both ends

struct Sub {
    std::size_t size;
    std::string name;
};

struct Alloc {
    char* raw;
    std::size_t size;       // user bytes
    std::size_t tail;       // guard bytes after the user region (padding + kGuard)
    unsigned long long id;  // allocation number, for messages
    std::map<std::uintptr_t, Sub> subs;   // registered sub-regions, by start
};

struct Memory {
    std::mutex m;
    std::map<std::uintptr_t, Alloc> live;   // keyed by user pointer
    std::map<std::uintptr_t, std::size_t> freeList;   // free heap blocks: start -> bytes
    std::size_t used = 0;
    unsigned long long nextId = 1;
    unsigned char pattern[2 * kGuard + kAlign];
    Memory();
};

std::size_t total_bytes() {
    static const std::size_t t = [] {
        std::size_t mb = 16384;
        if (const char* e = std::getenv("MVQ_EMU_MEM_MB")) mb = std::strtoull(e, nullptr, 10);
        return mb << 20;
    }();
    return t;
}

Memory::Memory() {
    for (std::size_t i = 0; i < sizeof pattern; ++i) pattern[i] = (unsigned char)(0xA5 ^ (i * 29));
    // Room for the capacity with every allocation's guards and padding (at most 2x for tiny
    // allocations is not needed: the capacity check counts padded bytes, guards are extra).
    std::size_t span = 2 * kMargin + total_bytes() + total_bytes() / 2 + (std::size_t(1) << 30);
    void* h = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void* s = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (h == MAP_FAILED || s == MAP_FAILED) {
        std::fprintf(stderr, "mvq_emu: cannot reserve %zu bytes of address space for the device heap\n", span);
        std::abort();
    }
    g_heap_lo = reinterpret_cast<std::uintptr_t>(h);
    g_heap_span = span;
    g_shadow = static_cast<unsigned char*>(s);
    freeList.emplace(g_heap_lo + kMargin, span - 2 * kMargin);
}

Memory& mem() {
    static Memory* m = new Memory();  // leaked: allocations may be freed during process exit
    return *m;
}

inline unsigned char* shadow_of(const void* p) { return g_shadow + (reinterpret_cast<std::uintptr_t>(p) - g_heap_lo); }

/// Gives whole pages inside [p, p+n) back to the system (they read as zero afterwards).
void release_pages(void* p, std::size_t n) {
    const std::uintptr_t page = 4096;
    std::uintptr_t a = (reinterpret_cast<std::uintptr_t>(p) + page - 1) & ~(page - 1);
    std::uintptr_t b = (reinterpret_cast<std::uintptr_t>(p) + n) & ~(page - 1);
    if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
}

char* heap_take(Memory& M, std::size_t bytes) {
    for (auto it = M.freeList.begin(); it != M.freeList.end(); ++it) {
        if (it->second < bytes) continue;
        std::uintptr_t start = it->first;
        std::size_t rest = it->second - bytes;
        M.freeList.erase(it);
        if (rest) M.freeList.emplace(start + bytes, rest);
        return reinterpret_cast<char*>(start);
    }
    return nullptr;
}

void heap_give(Memory& M, char* p, std::size_t bytes) {
    auto start = reinterpret_cast<std::uintptr_t>(p);
    auto next = M.freeList.lower_bound(start);
    if (next != M.freeList.end() && start + bytes == next->first) {
        bytes += next->second;
        next = M.freeList.erase(next);
    }
    if (next != M.freeList.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second == start) {
            prev->second += bytes;
            return;
        }
    }
    M.freeList.emplace(start, bytes);
}

std::map<std::uintptr_t, Alloc>::iterator find_containing(Memory& M, std::uintptr_t key) {
    auto it = M.live.upper_bound(key);
    if (it == M.live.begin()) return M.live.end();
    --it;
    if (key > it->first + it->second.size) return M.live.end();
    return it;
}

}  // namespace

void* mem_alloc(std::size_t bytes) {
    Memory& M = mem();
    std::size_t padded = (bytes + kAlign - 1) / kAlign * kAlign;
    std::size_t tail = padded - bytes + kGuard;
    std::lock_guard<std::mutex> lk(M.m);
    if (M.used + padded > total_bytes()) return nullptr;
    char* raw = heap_take(M, kGuard + padded + kGuard);
    if (!raw) return nullptr;
    M.used += padded;
    char* user = raw + kGuard;
    std::memcpy(raw, M.pattern, kGuard);
    std::memset(user, 0xFF, bytes);
    std::memcpy(user + bytes, M.pattern, tail);
    std::memset(shadow_of(user), 1, bytes);
    M.live.emplace(reinterpret_cast<std::uintptr_t>(user), Alloc{raw, bytes, tail, M.nextId++, {}});
    return user;
}

bool mem_free(void* p) {
    Memory& M = mem();
    std::lock_guard<std::mutex> lk(M.m);
    auto it = M.live.find(reinterpret_cast<std::uintptr_t>(p));
    if (it == M.live.end()) return false;
    Alloc& a = it->second;
    std::size_t whole = kGuard + a.size + a.tail;
    M.used -= a.tail - kGuard + a.size;
    std::memset(shadow_of(p), 0, a.size);
    release_pages(a.raw, whole);
    release_pages(shadow_of(a.raw), whole);
    heap_give(M, a.raw, whole);
    M.live.erase(it);
    return true;
}

bool mem_range_ok(const void* p, std::size_t bytes) {
    Memory& M = mem();
    std::lock_guard<std::mutex> lk(M.m);
    auto key = reinterpret_cast<std::uintptr_t>(p);
    auto it = find_containing(M, key);
    if (it == M.live.end()) return false;
    return key + bytes <= it->first + it->second.size && key + bytes >= key;
}

void mem_mark_written(const void* p, std::size_t bytes) {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    if (a - g_heap_lo >= g_heap_span || bytes == 0) return;
    unsigned char* s = shadow_of(p);
    for (std::size_t i = 0; i < bytes; ++i) s[i] |= s[i] ? 2 : 0;
}

bool mem_region_of(std::uintptr_t p, Region* out) {
    Memory& M = mem();
    std::lock_guard<std::mutex> lk(M.m);
    auto it = find_containing(M, p);
    if (it == M.live.end()) return false;
    const Alloc& a = it->second;
    out->lo = it->first;
    out->hi = it->first + a.size;
    out->id = a.id;
    out->sub = false;
    // The innermost registered sub-region holding p (or ending at p) stands for the argument.
    auto s = a.subs.upper_bound(p);
    while (s != a.subs.begin()) {
        --s;
        if (p <= s->first + s->second.size) {
            out->lo = s->first;
            out->hi = s->first + s->second.size;
            out->sub = true;
            break;
        }
    }
    return true;
}

std::string mem_describe(std::uintptr_t p, std::size_t n) {
    Memory& M = mem();
    std::lock_guard<std::mutex> lk(M.m);
    auto fmt = [](const char* f, auto... a) {
        char buf[400];
        std::snprintf(buf, sizeof buf, f, a...);
        return std::string(buf);
    };
    auto desc = [&](std::map<std::uintptr_t, Alloc>::const_iterator it) {
        const Alloc& a = it->second;
        std::string s = fmt("allocation #%llu (0x%llx, %zu bytes)", a.id, (unsigned long long)it->first, a.size);
        auto sub = a.subs.upper_bound(p);
        if (sub != a.subs.begin()) {
            --sub;
            if (p < sub->first + sub->second.size + 256)
                s += fmt(", sub-region '%s' at offset %llu (%zu bytes)", sub->second.name.c_str(),
                         (unsigned long long)(sub->first - it->first), sub->second.size);
        }
        return s;
    };
    // The allocation that p is in or nearest after the end of, and the one nearest above it.
    auto after = M.live.upper_bound(p);
    std::string s;
    if (after != M.live.begin()) {
        auto it = std::prev(after);
        std::uintptr_t end = it->first + it->second.size;
        if (p < end) {
            s = fmt("at offset %llu of ", (unsigned long long)(p - it->first)) + desc(it);
            if (p + n > end) s += fmt(", running %llu bytes past its end", (unsigned long long)(p + n - end));
            return s;
        }
        if (p - end < (1u << 20)) s = fmt("%llu bytes past the end of ", (unsigned long long)(p - end)) + desc(it);
    }
    if (after != M.live.end() && after->first - p < (1u << 20))
        s += fmt("%s%llu bytes before the start of ", s.empty() ? "" : "; ", (unsigned long long)(after->first - p)) + desc(after);
    if (s.empty()) s = "in no allocation (freed or never allocated device memory)";
    return s;
}

int mem_register_sub(std::uintptr_t p, std::size_t bytes, const char* name, std::string* err) {
    Memory& M = mem();
    std::lock_guard<std::mutex> lk(M.m);
    auto it = find_containing(M, p);
    if (it == M.live.end() || p + bytes > it->first + it->second.size) {
        *err = "is not inside one live allocation";
        return 1;
    }
    auto& subs = it->second.subs;
    auto nx = subs.lower_bound(p);
    if ((nx != subs.end() && nx->first < p + bytes) ||
        (nx != subs.begin() && std::prev(nx)->first + std::prev(nx)->second.size > p)) {
        *err = "overlaps a registered sub-region";
        return 1;
    }
    subs.emplace(p, Sub{bytes, name ? name : "?"});
    return 0;
}

int mem_unregister_sub(std::uintptr_t p) {
    Memory& M = mem();
    std::lock_guard<std::mutex> lk(M.m);
    auto it = find_containing(M, p);
    if (it == M.live.end()) return 1;
    return it->second.subs.erase(p) ? 0 : 1;
}

int mem_check_guards(std::string* first) {
    Memory& M = mem();
    std::lock_guard<std::mutex> lk(M.m);
    int bad = 0;
    for (auto& [key, a] : M.live) {
        char* user = reinterpret_cast<char*>(key);
        bool front = std::memcmp(a.raw, M.pattern, kGuard) != 0;
        bool back = std::memcmp(user + a.size, M.pattern, a.tail) != 0;
        if (!front && !back) continue;
        if (bad++ == 0 && first) {
            // Report the damaged byte nearest to the user region on each side.
            long before = 0, after = -1;
            for (std::size_t i = 0; i < kGuard; ++i)
                if ((unsigned char)a.raw[i] != M.pattern[i]) before = (long)(kGuard - i);
            for (std::size_t i = a.tail; i-- > 0;)
                if ((unsigned char)user[a.size + i] != M.pattern[i]) after = (long)i;
            char buf[320];
            std::snprintf(buf, sizeof buf, "allocation #%llu (0x%llx, %zu bytes) has its guard %s damaged: ",
                          a.id, (unsigned long long)key, a.size, front && back ? "regions" : front ? "before the start" : "after the end");
            *first = buf;
            if (back) {
                std::snprintf(buf, sizeof buf, "a write %ld bytes past the end (byte offset %zu)", after, a.size + (std::size_t)after);
                *first += buf;
            }
            if (front) {
                std::snprintf(buf, sizeof buf, "%sa write %ld bytes before the start", back ? " and " : "", before);
                *first += buf;
            }
        }
        std::memcpy(a.raw, M.pattern, kGuard);
        std::memcpy(user + a.size, M.pattern, a.tail);
    }
    return bad;
}

std::size_t mem_used() {
    std::lock_guard<std::mutex> lk(mem().m);
    return mem().used;
}
std::size_t mem_total() { return total_bytes(); }
std::size_t mem_live_count() {
    std::lock_guard<std::mutex> lk(mem().m);
    return mem().live.size();
}
void mem_init() { (void)mem(); }

}  // namespace mvq_emu
