# Compiles SOURCE and requires exactly EXPECTED "unused result" / nodiscard
# diagnostics (g++ and clang word them differently) and a failed compile.
#   cmake -DCOMPILER=... -DINCLUDE=... -DSOURCE=... -DEXPECTED=N -P count_warnings.cmake
execute_process(
  COMMAND ${COMPILER} -std=c++20 -fsyntax-only -Wall -Werror -I${INCLUDE} ${SOURCE}
  RESULT_VARIABLE rc ERROR_VARIABLE diagnostics OUTPUT_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but every line of it drops an owning value")
endif()
# One diagnostic per drop: g++ says "ignoring return value of ..." (a
# nodiscard function) or "ignoring returned value of type ..." (a nodiscard
# type); clang "ignoring return value of function/type ... 'nodiscard'".
string(REGEX MATCHALL "ignoring returne?d? value[^\n]*" drops "${diagnostics}")
list(LENGTH drops drop_count)
if(NOT drop_count EQUAL EXPECTED)
  message(FATAL_ERROR "expected ${EXPECTED} dropped-owner diagnostics, got ${drop_count}:\n${diagnostics}")
endif()
message(STATUS "${drop_count} dropped owners refused")
