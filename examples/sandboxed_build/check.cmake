# example.sandboxed_build.flags: sandboxed_build's command line on
# examples/sample_project, beside the demo (example.sandboxed_build):
# --cmake with --root and --out, a compile run from a directory inside the
# root with relative paths and -MD -MF into the build directory, an include
# directory given with -I, a compile error, and --help.
#   cmake -DPROGRAM=<sandboxed_build> -DPROJECT=<sample_project> -DWORK=<dir> -P check.cmake

foreach(var PROGRAM PROJECT WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "EXPECT_RC;DIRECTORY" "COMMAND")
  if(NOT arg_DIRECTORY)
    set(arg_DIRECTORY "${WORK}")
  endif()
  execute_process(COMMAND ${arg_COMMAND} WORKING_DIRECTORY "${arg_DIRECTORY}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE output
    ECHO_OUTPUT_VARIABLE ECHO_ERROR_VARIABLE)
  if(rc EQUAL 77)
    message("ctr-example: skipped (${PROGRAM} exited 77)")
    return()
  endif()
  if(NOT rc EQUAL arg_EXPECT_RC)
    message(FATAL_ERROR "${arg_COMMAND}: exit ${rc}, expected ${arg_EXPECT_RC}")
  endif()
  set(output "${output}" PARENT_SCOPE)
endfunction()

function(expect regex)
  if(NOT output MATCHES "${regex}")
    message(FATAL_ERROR "sandboxed_build: output does not match: ${regex}")
  endif()
endfunction()

find_program(CMAKE_PROGRAM cmake)
find_program(CC_PROGRAM cc)
if(NOT CMAKE_PROGRAM OR NOT CC_PROGRAM)
  message("ctr-example: skipped (no cmake or cc on PATH)")
  return()
endif()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# The whole project, configured with an argument of the caller's.
run(COMMAND "${PROGRAM}" --root "${PROJECT}" --out "${WORK}/build" --cmake -DCMAKE_BUILD_TYPE=Debug EXPECT_RC 0)
expect("configure of [^\n]*sample_project: ok")
expect("build of [^\n]*sample_project: ok")
if(NOT EXISTS "${WORK}/build/hello" OR NOT EXISTS "${WORK}/build/generated/sample_version.h")
  message(FATAL_ERROR "sandboxed_build --cmake: no hello or generated header in ${WORK}/build")
endif()
file(STRINGS "${WORK}/build/CMakeCache.txt" build_type REGEX "^CMAKE_BUILD_TYPE:")
if(NOT build_type MATCHES "=Debug$")
  message(FATAL_ERROR "sandboxed_build --cmake did not pass -DCMAKE_BUILD_TYPE=Debug: ${build_type}")
endif()
run(COMMAND "${WORK}/build/hello" CTest EXPECT_RC 0)
expect("^hello, CTest, from a sandboxed CMake build \\(sample 1\\.2\\.3, 1 vowels\\)")

# A compile from a directory inside the root, with the paths relative to
# it, the way a Makefile in a subdirectory calls the compiler: the header
# comes from the project's other directory.
run(COMMAND "${PROGRAM}" --root .. --out "${WORK}/by-hand"
            -- cc -I../include -c main.c -MD -MF "${WORK}/by-hand/main.d" -o "${WORK}/by-hand/main.o"
    DIRECTORY "${PROJECT}/app" EXPECT_RC 0)
expect("cc: ok")
file(READ "${WORK}/by-hand/main.d" depfile)
if(NOT depfile MATCHES "main\\.o:[ \\\\\n]+main\\.c .*\\.\\./include/greet/greet\\.h")
  message(FATAL_ERROR "sandboxed_build: unexpected dependency file: ${depfile}")
endif()

# An include directory that is not below the root: -I binds it and puts it
# on CPATH, so the compile finds <greet/greet.h> without a -I of its own.
file(MAKE_DIRECTORY "${WORK}/src")
file(WRITE "${WORK}/src/use.c" "#include <greet/greet.h>\nint main(void) { return count_vowels(\"a\") - 1; }\n")
run(COMMAND "${PROGRAM}" --root "${WORK}/src" --out "${WORK}/by-hand" -I "${PROJECT}/include"
            -- cc -c "${WORK}/src/use.c" -o "${WORK}/by-hand/use.o"
    EXPECT_RC 0)
if(NOT EXISTS "${WORK}/by-hand/use.o")
  message(FATAL_ERROR "sandboxed_build -I: no object")
endif()

# A compile error: the compiler's diagnostics, the step's end, exit 1.
file(WRITE "${WORK}/src/broken.c" "int main(void) {\n    return missing_variable;\n}\n")
run(COMMAND "${PROGRAM}" --root "${WORK}/src" --out "${WORK}/by-hand" -- cc -c broken.c -o "${WORK}/by-hand/broken.o"
    DIRECTORY "${WORK}/src" EXPECT_RC 1)
expect("broken\\.c:2:[0-9]+: error: [^\n]*missing_variable")
expect("cc: failed \\(exit 1\\)")

# Outside the root and the build directory the host is not there.
run(COMMAND "${PROGRAM}" --root "${WORK}/src" --out "${WORK}/by-hand" -- sh -c "ls ${PROJECT}/lib"
    EXPECT_RC 1)
expect("No such file or directory")

foreach(flag --help -h)
  run(COMMAND "${PROGRAM}" ${flag} EXPECT_RC 0)
  expect("^usage:\n  sandboxed_build ")
endforeach()
run(COMMAND "${PROGRAM}" --no-such-flag EXPECT_RC 2)
expect("unknown option --no-such-flag")
run(COMMAND "${PROGRAM}" --timeout soon -- true EXPECT_RC 2)
expect("--timeout takes a number, not 'soon'")
file(REMOVE_RECURSE "${WORK}")
