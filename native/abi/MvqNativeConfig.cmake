# find_package(MvqNative PATHS <folder holding this file>): the imported target MvqNative::mvqnative, i.e.
# libmvqnative.so (NativeAOT; the runtime and the kernel sources are inside it) and include/mvq.h beside it.
if(NOT TARGET MvqNative::mvqnative)
  add_library(MvqNative::mvqnative SHARED IMPORTED)
  set_target_properties(MvqNative::mvqnative PROPERTIES
    IMPORTED_LOCATION "${CMAKE_CURRENT_LIST_DIR}/libmvqnative.so"
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_LIST_DIR}/include")
endif()
set(MvqNative_FOUND TRUE)
