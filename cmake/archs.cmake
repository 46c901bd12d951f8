# Split INT8DIT_CUDA_ARCHS into the families' architecture lists. Trimming an architecture trims
# the family's kernels and its dispatch entries with it: a request for it then says "not built".
set(CMAKE_CUDA_ARCHITECTURES ${INT8DIT_CUDA_ARCHS})

set(INT8DIT_SM90_ARCHS "")
set(INT8DIT_SM80_ARCHS "")
foreach(a IN LISTS INT8DIT_CUDA_ARCHS)
  if(a STREQUAL "90a")
    list(APPEND INT8DIT_SM90_ARCHS 90a)
    # The mma.sync family is also built for Hopper so the full test suite can check it there.
    list(APPEND INT8DIT_SM80_ARCHS 90)
  elseif(a MATCHES "^(80|86|87|89)$")
    list(APPEND INT8DIT_SM80_ARCHS ${a})
  elseif(a MATCHES "^90$")
    message(WARNING "INT8DIT_CUDA_ARCHS holds 90 without the 'a': the wgmma kernels need 90a; building the mma.sync family for sm_90 only.")
    list(APPEND INT8DIT_SM80_ARCHS 90)
  else()
    message(FATAL_ERROR "INT8DIT_CUDA_ARCHS: unsupported architecture '${a}' (supported: 80 86 87 89 90a)")
  endif()
endforeach()
list(REMOVE_DUPLICATES INT8DIT_SM80_ARCHS)
message(STATUS "int8dit: sm90 wgmma family for [${INT8DIT_SM90_ARCHS}], sm80 mma.sync family for [${INT8DIT_SM80_ARCHS}]")
