# Runs one example for CTest and shows its output as it comes.
#   cmake -DPROGRAM=<program> -DSOURCE=<its .cpp> -P run_example.cmake
#
# The example passes when it exits 0 and its output (stdout and stderr) matches
# every line of its source of the form
#   // expect-output: <CMake regular expression, without ';'>
# This stands in for CTest's PASS_REGULAR_EXPRESSION, which ignores the exit
# status. An example that exits 77 cannot run here and is reported as skipped.
# Its arguments, if it needs any, are on one line of the form
#   // example-args: <arguments, quoted as a POSIX shell would>
# (without ';', which CMake would take as a list separator).

foreach(var PROGRAM SOURCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_example.cmake: -D${var}=... is required")
  endif()
endforeach()

file(STRINGS "${SOURCE}" expectations REGEX "^[ \t]*//[ \t]*expect-output:")
list(TRANSFORM expectations REPLACE "^[ \t]*//[ \t]*expect-output:" "")
list(TRANSFORM expectations STRIP)

file(STRINGS "${SOURCE}" example_args REGEX "^[ \t]*//[ \t]*example-args:")
list(TRANSFORM example_args REPLACE "^[ \t]*//[ \t]*example-args:" "")
separate_arguments(example_args UNIX_COMMAND "${example_args}")

execute_process(COMMAND "${PROGRAM}" ${example_args}
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
