# Find the CUTLASS 4.2 headers. Default: the pinned PyPI package nvidia-cutlass==4.2.0.0, whose wheel
# carries them under cutlass_library/source/include (and tools/util/include). Nothing is downloaded here.
if(NOT INT8DIT_CUTLASS_DIR)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  execute_process(
    COMMAND ${Python3_EXECUTABLE} -c "import os, cutlass_library; print(os.path.join(os.path.dirname(cutlass_library.__file__), 'source', 'include'))"
    OUTPUT_VARIABLE _cutlass_inc OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _cutlass_rc ERROR_QUIET)
  if(NOT _cutlass_rc EQUAL 0)
    message(FATAL_ERROR
      "CUTLASS headers not found: ${Python3_EXECUTABLE} cannot import cutlass_library.\n"
      "Install the pinned package:  python3 -m pip install --no-deps nvidia-cutlass==4.2.0.0\n"
      "or point -DINT8DIT_CUTLASS_DIR=<dir holding cutlass/ and cute/> at another copy.")
  endif()
  set(INT8DIT_CUTLASS_DIR "${_cutlass_inc}" CACHE PATH "" FORCE)
endif()
if(NOT EXISTS "${INT8DIT_CUTLASS_DIR}/cutlass/cutlass.h")
  message(FATAL_ERROR "INT8DIT_CUTLASS_DIR=${INT8DIT_CUTLASS_DIR} holds no cutlass/cutlass.h")
endif()
file(STRINGS "${INT8DIT_CUTLASS_DIR}/cutlass/version.h" _v REGEX "define CUTLASS_(MAJOR|MINOR) ")
string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*" "\\1.\\2" INT8DIT_CUTLASS_VERSION "${_v}")
message(STATUS "CUTLASS ${INT8DIT_CUTLASS_VERSION}: ${INT8DIT_CUTLASS_DIR}")
get_filename_component(_cutlass_src "${INT8DIT_CUTLASS_DIR}" DIRECTORY)
set(INT8DIT_CUTLASS_UTIL_DIR "${_cutlass_src}/tools/util/include")
