// emu_memory.cpp: emulated device memory. Every allocation is host memory with guard regions
// of a known pattern before and after the user bytes; checks find (and repair) damaged guards
// so that out-of-bounds writes by kernels, cuBLAS or host code are reported, not silent.
// Fresh allocations are filled with 0xFF bytes (NaN as float, -1 as int) like uninitialised
// device memory should never be trusted.
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "emu_internal.h"

namespace mvq_emu {
namespace {

constexpr std::size_t kGuard = 256;   // bytes before the user region (keeps 256-byte alignment)
constexpr std::size_t kAlign = 256;

struct Alloc {
    char* raw;
    std::size_t size;       // user bytes
    std::size_t tail;       // guard bytes after the user region (padding + kGuard)
    unsigned long long id;  // allocation number, for messages
};

struct Memory {
    std::mutex m;
    std::map<std::uintptr_t, Alloc> live;   // keyed by user pointer
    std::size_t used = 0;
    unsigned long long nextId = 1;
    unsigned char pattern[2 * kGuard + kAlign];
    Memory() {
        for (std::size_t i = 0; i < sizeof pattern; ++i) pattern[i] = (unsigned char)(0xA5 ^ (i * 29));
    }
};
Memory& mem() {
    static Memory* m = new Memory();  // leaked: allocations may be freed during process exit
    return *m;
}

std::size_t total_bytes() {
    static const std::size_t t = [] {
        std::size_t mb = 16384;
        if (const char* e = std::getenv("MVQ_EMU_MEM_MB")) mb = std::strtoull(e, nullptr, 10);
        return mb << 20;
    }();
    return t;
}

const std::pair<const std::uintptr_t, Alloc>* find_containing(Memory& M, const void* p) {
    auto key = reinterpret_cast<std::uintptr_t>(p);
    auto it = M.live.upper_bound(key);
    if (it == M.live.begin()) return nullptr;
    --it;
    if (key > it->first + it->second.size) return nullptr;
    return &*it;
}

}  // namespace

void* mem_alloc(std::size_t bytes) {
    Memory& M = mem();
    std::size_t padded = (bytes + kAlign - 1) / kAlign * kAlign;
    std::size_t tail = padded - bytes + kGuard;
    {
        std::lock_guard<std::mutex> lk(M.m);
        if (M.used + padded > total_bytes()) return nullptr;
        M.used += padded;
    }
    char* raw = static_cast<char*>(std::aligned_alloc(kAlign, kGuard + padded + kGuard));
    if (!raw) {
        std::lock_guard<std::mutex> lk(M.m);
        M.used -= padded;
        return nullptr;
    }
    char* user = raw + kGuard;
    std::memcpy(raw, M.pattern, kGuard);
    std::memset(user, 0xFF, bytes);
    std::memcpy(user + bytes, M.pattern, tail);
    std::lock_guard<std::mutex> lk(M.m);
    M.live.emplace(reinterpret_cast<std::uintptr_t>(user), Alloc{raw, bytes, tail, M.nextId++});
    return user;
}

bool mem_free(void* p) {
    Memory& M = mem();
    char* raw;
    {
        std::lock_guard<std::mutex> lk(M.m);
        auto it = M.live.find(reinterpret_cast<std::uintptr_t>(p));
        if (it == M.live.end()) return false;
        raw = it->second.raw;
        M.used -= it->second.tail - kGuard + it->second.size;
        M.live.erase(it);
    }
    std::free(raw);
    return true;
}

bool mem_range_ok(const void* p, std::size_t bytes) {
    Memory& M = mem();
    std::lock_guard<std::mutex> lk(M.m);
    auto* a = find_containing(M, p);
    if (!a) return false;
    auto key = reinterpret_cast<std::uintptr_t>(p);
    return key + bytes <= a->first + a->second.size && key + bytes >= key;
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

}  // namespace mvq_emu
