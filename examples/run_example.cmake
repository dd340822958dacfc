# Runs one example for CTest and shows its output as it comes.
#   cmake -DPROGRAM=<program> -DSOURCE=<its .cpp> -P run_example.cmake
#
# The example passes when it exits 0 and its output (stdout and stderr) matches
# every line of its source of the form
#   // expect-output: <CMake regular expression, without ';'>
# This stands in for CTest's PASS_REGULAR_EXPRESSION, which ignores the exit
# status. An example that exits 77 cannot run here and is reported as skipped.

foreach(var PROGRAM SOURCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_example.cmake: -D${var}=... is required")
  endif()
endforeach()

file(STRINGS "${SOURCE}" expectations REGEX "^[ \t]*//[ \t]*expect-output:")
list(TRANSFORM expectations REPLACE "^[ \t]*//[ \t]*expect-output:" "")
list(TRANSFORM expectations STRIP)

execute_process(COMMAND "${PROGRAM}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE output ERROR_VARIABLE output
  ECHO_OUTPUT_VARIABLE ECHO_ERROR_VARIABLE)

if(rc EQUAL 77)
  message("ctr-example: skipped (${PROGRAM} exited 77)")
  return()
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} failed: ${rc}")
endif()
foreach(regex IN LISTS expectations)
  if(NOT output MATCHES "${regex}")
    message(FATAL_ERROR "${PROGRAM}: output does not match expect-output: ${regex}")
  endif()
endforeach()
