// emu_registry.cpp: the process-wide table of compiled-in kernels, filled by the static
// Registrar objects of the generated wrapper TUs (one per native/kernels/*.cu file).
#include "emu_registry.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>

namespace mvq_emu {
namespace {
std::unordered_map<std::string, const KernelDesc*>& table() {
    static std::unordered_map<std::string, const KernelDesc*> t;  // constructed on first use
    return t;
}
}  // namespace

void register_kernels(const KernelDesc* descs, unsigned count) {
    for (unsigned i = 0; i < count; ++i) {
        auto [it, inserted] = table().emplace(descs[i].name, &descs[i]);
        if (!inserted)
            std::fprintf(stderr, "mvq_emu: kernel '%s' defined in both %s and %s; keeping the first\n", descs[i].name,
                         it->second->file, descs[i].file);
    }
}

const KernelDesc* find_kernel(const char* name) {
    auto it = table().find(name);
    return it == table().end() ? nullptr : it->second;
}

/// Names of all registered kernels (for mvqemu_kernel_name).
const KernelDesc* kernel_at(unsigned i) {
    if (i >= table().size()) return nullptr;
    auto it = table().begin();
    std::advance(it, i);
    return it->second;
}
unsigned kernel_count() { return (unsigned)table().size(); }

}  // namespace mvq_emu
