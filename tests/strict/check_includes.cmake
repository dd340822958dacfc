# Fails when a public header (include/ctr/*.hpp) is not included by
# tests/strict/all_headers.cpp, so that a new header cannot miss the strict
# builds.
#   cmake -DINCLUDE_DIR=<repo>/include -DSOURCE=<all_headers.cpp> -P check_includes.cmake
foreach(var INCLUDE_DIR SOURCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_includes.cmake: -D${var}=... is required")
  endif()
endforeach()

file(READ "${SOURCE}" text)
file(GLOB headers RELATIVE "${INCLUDE_DIR}" "${INCLUDE_DIR}/ctr/*.hpp")
set(missing "")
foreach(header IN LISTS headers)
  string(FIND "${text}" "#include <${header}>" at)
  if(at EQUAL -1)
    list(APPEND missing "${header}")
  endif()
endforeach()
if(missing)
  list(JOIN missing " " missing)
  message(FATAL_ERROR "not included by ${SOURCE}: ${missing}")
endif()
list(LENGTH headers count)
message(STATUS "all ${count} public headers are included")
