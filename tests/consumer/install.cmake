# Installs a ctr build tree into a fresh prefix for the consumer tests.
#   cmake -DBUILD_DIR=<build tree> -DPREFIX=<prefix> [-DCONFIG=<config>] -P install.cmake

foreach(var BUILD_DIR PREFIX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install.cmake: -D${var}=... is required")
  endif()
endforeach()

# Start empty, so a header that left include/ cannot linger here and hide a
# broken install.
file(REMOVE_RECURSE "${PREFIX}")

set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
execute_process(
  COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" ${config_args}
  COMMAND_ERROR_IS_FATAL ANY)
