# Configures, builds and runs one consumer project the way a user would.
#   cmake -DSOURCE_DIR=<consumer> -DBINARY_DIR=<scratch build dir>
#         -DGENERATOR=<gen> [-DMAKE_PROGRAM=<prog>] -DCXX_COMPILER=<c++> -DC_COMPILER=<cc>
#         [-DCONFIG=<config>]
#         [-DPREFIX=<install prefix>]      find_package consumer: where ctr is installed
#         [-DCTR_SOURCE_DIR=<ctr source>]  add_subdirectory consumer: where ctr's source is
#         -P run.cmake

foreach(var SOURCE_DIR BINARY_DIR GENERATOR CXX_COMPILER C_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer ${what} failed (${rc}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE "${BINARY_DIR}")

set(configure_args
  -S "${SOURCE_DIR}" -B "${BINARY_DIR}" -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DCMAKE_C_COMPILER=${C_COMPILER}")
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CONFIG)
  list(APPEND configure_args "-DCMAKE_BUILD_TYPE=${CONFIG}")
endif()
if(PREFIX)
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${PREFIX}")
endif()
if(CTR_SOURCE_DIR)
  list(APPEND configure_args "-DCTR_SOURCE_DIR=${CTR_SOURCE_DIR}")
endif()
run_step(configure "${CMAKE_COMMAND}" ${configure_args})

# Make sure the consumer used what we meant it to: the fresh install rather
# than some other ctr on the system, and ctr as a subproject with its own
# tests, benchmarks and examples off.
file(STRINGS "${BINARY_DIR}/CMakeCache.txt" cache REGEX "^(ctr_DIR|CTR_BUILD_[A-Z]+):")
if(PREFIX)
  list(FILTER cache INCLUDE REGEX "^ctr_DIR:")
  string(REGEX REPLACE "^[^=]*=" "" ctr_dir "${cache}")
  file(REAL_PATH "${PREFIX}" prefix)
  file(REAL_PATH "${ctr_dir}" ctr_dir)
  string(FIND "${ctr_dir}/" "${prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "find_package(ctr) found '${ctr_dir}', not the install in '${prefix}'")
  endif()
endif()
if(CTR_SOURCE_DIR)
  foreach(entry IN LISTS cache)
    if(entry MATCHES "^CTR_BUILD_[A-Z]+:BOOL=(.*)$" AND CMAKE_MATCH_1)
      message(FATAL_ERROR "ctr as a subproject turned on its own targets: ${entry}")
    endif()
  endforeach()
endif()

set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
run_step(build "${CMAKE_COMMAND}" --build "${BINARY_DIR}" ${config_args})

# Single-config generators put the program at the top, multi-config ones in a
# directory named after the configuration.
foreach(candidate "${BINARY_DIR}/consumer" "${BINARY_DIR}/${CONFIG}/consumer")
  if(EXISTS "${candidate}" AND NOT IS_DIRECTORY "${candidate}")
    run_step(run "${candidate}")
    return()
  endif()
endforeach()
message(FATAL_ERROR "consumer program not found under ${BINARY_DIR}")
