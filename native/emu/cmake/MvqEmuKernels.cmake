# MvqEmuKernels.cmake: mvq_emu_kernel_sources(<out-var> <dir-for-generated> <cu files...>)
# returns the generated host C++ sources (wrapper + dynamic shared memory TU per .cu file),
# regenerated at build time whenever a .cu file changes.
set(MVQ_EMU_WRAPPER_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/EmuKernelWrapper.cmake")

function(mvq_emu_kernel_sources out gendir)
  set(result "")
  foreach(cu IN LISTS ARGN)
    get_filename_component(abs "${cu}" ABSOLUTE)
    get_filename_component(stem "${cu}" NAME_WE)
    get_filename_component(parent "${abs}" DIRECTORY)
    get_filename_component(parentName "${parent}" NAME)
    set(wrapper "${gendir}/${parentName}_${stem}.emu.cpp")
    set(dyn "${gendir}/${parentName}_${stem}.dynsmem.cpp")
    add_custom_command(
      OUTPUT "${wrapper}" "${dyn}"
      COMMAND "${CMAKE_COMMAND}" -DSRC=${abs} -DOUT=${wrapper} -DDYN_OUT=${dyn} -P "${MVQ_EMU_WRAPPER_SCRIPT}"
      DEPENDS "${abs}" "${MVQ_EMU_WRAPPER_SCRIPT}"
      COMMENT "Registering kernels of ${cu} for the emulator"
      VERBATIM)
    list(APPEND result "${wrapper}" "${dyn}")
  endforeach()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()
