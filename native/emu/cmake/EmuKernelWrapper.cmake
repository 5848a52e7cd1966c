# EmuKernelWrapper.cmake: run in script mode (cmake -DSRC=... -DOUT=... -DDYN_OUT=... -P) at
# build time. Scans one CUDA source for `extern "C" __global__ void NAME(` kernels and
# `extern __shared__ T NAME[];` dynamic shared memory, and writes
#   OUT:     a host C++ TU that includes the source after cuda_emu.h and registers each kernel
#            (name + type-deduced unpacker of cuLaunchKernel's kernelParams, see emu_registry.h);
#   DYN_OUT: weak thread-local definitions of the dynamic shared memory buffers (kept in their
#            own TU: the kernel declares them with its own element type).
cmake_minimum_required(VERSION 3.20)
file(READ "${SRC}" text)

# Drop comments so commented-out kernels are not registered.
string(REGEX REPLACE "//[^\n]*" "" text "${text}")
while(TRUE)
  string(FIND "${text}" "/*" open)
  if(open EQUAL -1)
    break()
  endif()
  string(SUBSTRING "${text}" ${open} -1 rest)
  string(FIND "${rest}" "*/" close)
  if(close EQUAL -1)
    string(SUBSTRING "${text}" 0 ${open} text)
    break()
  endif()
  string(SUBSTRING "${text}" 0 ${open} head)
  math(EXPR after "${close} + 2")
  string(SUBSTRING "${rest}" ${after} -1 tail)
  set(text "${head} ${tail}")
endwhile()

set(ws "[ \t\r\n]")
set(lb "(__launch_bounds__${ws}*\\([^)]*\\)${ws}+)?")
string(REGEX MATCHALL "extern${ws}+\"C\"${ws}+__global__${ws}+${lb}void${ws}+${lb}[A-Za-z_][A-Za-z0-9_]*${ws}*\\("
       decls "${text}")
set(names "")
foreach(d IN LISTS decls)
  string(REGEX REPLACE ".*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)${ws}*\\($" "\\1" name "${d}")
  list(APPEND names "${name}")
endforeach()
list(REMOVE_DUPLICATES names)

string(REGEX MATCHALL "extern${ws}+__shared__[^;]*[^A-Za-z0-9_][A-Za-z_][A-Za-z0-9_]*${ws}*\\[${ws}*\\]" dyns "${text}")
set(dynNames "")
foreach(d IN LISTS dyns)
  string(REGEX REPLACE ".*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)${ws}*\\[${ws}*\\]$" "\\1" name "${d}")
  list(APPEND dynNames "${name}")
endforeach()
list(REMOVE_DUPLICATES dynNames)

set(out "// Generated from ${SRC} by native/emu/cmake/EmuKernelWrapper.cmake; do not edit.\n")
string(APPEND out "#include \"cuda_emu.h\"\n#include \"${SRC}\"\n#include \"emu_registry.h\"\n")
list(LENGTH names count)
if(count GREATER 0)
  string(APPEND out "static const ::mvq_emu::KernelDesc mvq_emu_kernels[] = {\n")
  foreach(n IN LISTS names)
    string(APPEND out "    MVQ_EMU_KERNEL(${n}),\n")
  endforeach()
  string(APPEND out "};\nstatic ::mvq_emu::Registrar mvq_emu_registrar(mvq_emu_kernels, ${count});\n")
endif()

set(dyn "// Generated from ${SRC}: dynamic shared memory buffers, one per OS thread (= per running block).\n")
foreach(n IN LISTS dynNames)
  string(APPEND dyn "__attribute__((weak, aligned(256))) thread_local unsigned char ${n}[232448];\n")
endforeach()

foreach(pair "OUT;out" "DYN_OUT;dyn")
  list(GET pair 0 var)
  list(GET pair 1 content)
  set(old "")
  if(EXISTS "${${var}}")
    file(READ "${${var}}" old)
  endif()
  if(NOT old STREQUAL "${${content}}")
    file(WRITE "${${var}}" "${${content}}")
  endif()
endforeach()
