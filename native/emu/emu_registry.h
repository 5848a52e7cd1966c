// emu_registry.h: the compiled-in kernel registry. Each generated wrapper TU includes one
// native/kernels/*.cu file and then lists its `extern "C" __global__` kernels with
// MVQ_EMU_KERNEL(name); the template below deduces the parameter types from the function
// pointer and builds an unpacker from the driver API's `void** kernelParams` to the real
// arguments, so cuLaunchKernel can call any registered kernel by name.
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

namespace mvq_emu {

/// One registered kernel: its name, the unpacking thunk and its parameter layout.
struct KernelDesc {
    const char* name;
    void (*thunk)(void** params);          // calls the kernel with *(T_i*)params[i]
    unsigned nparams;
    const unsigned short* sizes;           // sizeof of each parameter
    const unsigned short* aligns;          // alignof of each parameter (for the `extra` buffer form)
    const unsigned char* isPointer;        // 1 where the parameter is a pointer (checked at launch)
    const char* file;                      // source file, for messages
};

/// Adds kernels to the process-wide registry (called from static initialisers).
void register_kernels(const KernelDesc* descs, unsigned count);
/// Finds a registered kernel by name, or nullptr.
const KernelDesc* find_kernel(const char* name);

template <class F> struct KernelTraits;
template <class... A> struct KernelTraits<void (*)(A...)> {
    static constexpr unsigned count = sizeof...(A);
    static constexpr unsigned short sizes[sizeof...(A) + 1] = {(unsigned short)sizeof(A)..., 0};
    static constexpr unsigned short aligns[sizeof...(A) + 1] = {(unsigned short)alignof(A)..., 0};
    static constexpr unsigned char isPointer[sizeof...(A) + 1] = {(unsigned char)std::is_pointer_v<A>..., 0};
    template <auto Fn, std::size_t... I>
    static void call(void** p, std::index_sequence<I...>) {
        Fn(*static_cast<std::remove_cv_t<A>*>(p[I])...);
    }
};

template <auto Fn> void thunk(void** p) {
    using T = KernelTraits<decltype(Fn)>;
    T::template call<Fn>(p, std::make_index_sequence<T::count>{});
}

template <auto Fn> constexpr KernelDesc make_desc(const char* name, const char* file) {
    using T = KernelTraits<decltype(Fn)>;
    return KernelDesc{name, &thunk<Fn>, T::count, T::sizes, T::aligns, T::isPointer, file};
}

/// Registers a static table of kernels at load time.
struct Registrar {
    Registrar(const KernelDesc* d, unsigned n) { register_kernels(d, n); }
};

}  // namespace mvq_emu

#define MVQ_EMU_KERNEL(name) ::mvq_emu::make_desc<&name>(#name, __FILE__)
