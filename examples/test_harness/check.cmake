# example.test_harness.gtest: runs test_harness on sample_test (a GoogleTest
# binary with a passing, failing, skipped and disabled case, and two that
# write files) and checks the table, the hint and the JUnit report; then
# checks the other outcomes and XML escaping on shell commands, and that
# --help and -h print the usage and run nothing.
#   cmake -DHARNESS=<test_harness> -DSAMPLE=<sample_test> -DWORK=<dir> -P check.cmake

foreach(var HARNESS SAMPLE WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check.cmake: -D${var}=... is required")
  endif()
endforeach()

function(expect text regex)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "test_harness: expected to match: ${regex}")
  endif()
endfunction()

# Well-formed XML, where a checker is at hand.
find_program(XMLLINT xmllint)
function(expect_well_formed file)
  if(XMLLINT)
    execute_process(COMMAND "${XMLLINT}" --noout "${file}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "xmllint: ${file} is not well-formed XML")
    endif()
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(junit "${WORK}/junit.xml")
# The scratch directories go below $TMPDIR: here, where the test can see
# that they are removed.
file(MAKE_DIRECTORY "${WORK}/tmp")
execute_process(COMMAND "${CMAKE_COMMAND}" -E env "TMPDIR=${WORK}/tmp" "${HARNESS}" --jobs 2 --junit "${junit}" --gtest "${SAMPLE}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE output ERROR_VARIABLE output
  ECHO_OUTPUT_VARIABLE ECHO_ERROR_VARIABLE)

# Two cases fail, so the run fails; skipped and disabled ones do not count.
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "test_harness exited ${rc}, expected 1 (two cases fail)")
endif()
expect("${output}" "\nsample\\.passes +passed +exit 0")
expect("${output}" "\nsample\\.fails +failed +exit 1")
expect("${output}" "\nsample\\.skips +skipped +needs a feature this host lacks")
expect("${output}" "\nsample\\.DISABLED_not_ready +disabled")
expect("${output}" "\nsample\\.writes_to_its_working_directory +passed")
expect("${output}" "\nsample\\.writes_beside_its_binary +failed")
expect("${output}" "6 tests: 2 passed, 2 failed, 0 crashed, 0 timed out, 0 out of memory, 1 skipped, 1 disabled\n")
expect("${output}" "peak charge: the most memory the case's cgroup was charged at once")
expect("${output}" "Read-only file system.*\nhint: the case wrote outside its working directory")
# A disabled case never runs, so its failure message never shows.
if(output MATCHES "a disabled case never runs")
  message(FATAL_ERROR "test_harness ran the disabled case")
endif()

file(READ "${junit}" xml)
expect("${xml}" "^<\\?xml version=\"1\\.0\" encoding=\"UTF-8\"\\?>\n<testsuites ")
expect("${xml}" "<testsuites name=\"test_harness\" tests=\"6\" failures=\"2\" errors=\"0\" skipped=\"2\" time=\"[0-9.]+\">")
expect("${xml}" "<testsuite name=\"sample\" tests=\"6\" failures=\"2\" errors=\"0\" skipped=\"2\" time=\"[0-9.]+\">")
expect("${xml}" "<testcase name=\"passes\" classname=\"sample\" time=\"[0-9.]+\">\n    </testcase>")
expect("${xml}" "<testcase name=\"fails\" classname=\"sample\" time=\"[0-9.]+\">\n      <failure type=\"failed\" message=\"[^\"]*Expected equality[^\"]*arithmetic is broken on purpose\">")
expect("${xml}" "<testcase name=\"skips\" classname=\"sample\" time=\"[0-9.]+\">\n      <skipped message=\"[^\"]*needs a feature this host lacks\"/>")
expect("${xml}" "<testcase name=\"DISABLED_not_ready\" classname=\"sample\" time=\"[0-9.]+\">\n      <skipped message=\"disabled\"/>")
expect("${xml}" "<testcase name=\"writes_beside_its_binary\" classname=\"sample\" time=\"[0-9.]+\">\n      <failure type=\"failed\" [^>]*>[^<]*Read-only file system[^<]*hint: ")
expect("${xml}" "</testsuites>\n$")
expect_well_formed("${junit}")

# The scratch directories are gone.
file(GLOB left "${WORK}/tmp/*")
if(left)
  message(FATAL_ERROR "test_harness left its scratch directories: ${left}")
endif()

# Commands: the other outcomes in JUnit, and names and output that XML must
# escape. A command may start with '-' after "--".
set(junit "${WORK}/commands.xml")
execute_process(COMMAND "${CMAKE_COMMAND}" -E env "TMPDIR=${WORK}/tmp"
    "${HARNESS}" --timeout 1 --junit "${junit}" "kill -SEGV $$" "sleep 30" "exit 77" "echo '<&>' && exit 3"
    -- "-x"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE output ERROR_VARIABLE output
  ECHO_OUTPUT_VARIABLE ECHO_ERROR_VARIABLE)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "test_harness on commands exited ${rc}, expected 1")
endif()
expect("${output}" "5 tests: 0 passed, 2 failed, 1 crashed, 1 timed out, 0 out of memory, 1 skipped, 0 disabled\n")
file(READ "${junit}" xml)
expect("${xml}" "<testsuite name=\"commands\" tests=\"5\" failures=\"4\" errors=\"0\" skipped=\"1\" time=\"[0-9.]+\">")
expect("${xml}" "<testcase name=\"kill -SEGV \\$\\$\" classname=\"commands\" time=\"[0-9.]+\">\n      <failure type=\"crashed\" message=\"crashed \\(signal 11\\)\">")
expect("${xml}" "<testcase name=\"sleep 30\" [^>]*>\n      <failure type=\"timed out\" message=\"timed out \\(after 1\\.0 s\\)\">")
expect("${xml}" "<testcase name=\"exit 77\" [^>]*>\n      <skipped message=\"exit 77\"/>")
expect("${xml}" "<testcase name=\"echo '&lt;&amp;&gt;' &amp;&amp; exit 3\" [^>]*>\n      <failure type=\"failed\" message=\"failed \\(exit 3\\)\">&lt;&amp;&gt;\n</failure>")
expect("${xml}" "<testcase name=\"-x\" [^>]*>\n      <failure type=\"failed\" message=\"failed \\(exit 127\\)\">[^<]*-x: [a-z ]*not found")
expect_well_formed("${junit}")

# --fresh-sandboxes: a whole sandbox per case, the same outcomes, and a
# peak charge of each case's own group where the host can make one.
execute_process(COMMAND "${CMAKE_COMMAND}" -E env "TMPDIR=${WORK}/tmp"
    "${HARNESS}" --fresh-sandboxes --timeout 1 "kill -SEGV $$" "sleep 30" "exit 77" "echo hi > made && cat made"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE output ERROR_VARIABLE output
  ECHO_OUTPUT_VARIABLE ECHO_ERROR_VARIABLE)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "test_harness --fresh-sandboxes exited ${rc}, expected 1")
endif()
expect("${output}" "4 tests: 1 passed, 0 failed, 1 crashed, 1 timed out, 0 out of memory, 1 skipped, 0 disabled\n")

foreach(flag --help -h)
  execute_process(COMMAND "${HARNESS}" ${flag} RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "test_harness ${flag} exited ${rc}")
  endif()
  expect("${output}" "^usage:\n  test_harness ")
  if(output MATCHES "tests: ")
    message(FATAL_ERROR "test_harness ${flag} ran something as a test")
  endif()
endforeach()
execute_process(COMMAND "${HARNESS}" --no-such-flag RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT rc EQUAL 2 OR NOT output MATCHES "unknown option --no-such-flag")
  message(FATAL_ERROR "test_harness --no-such-flag: exit ${rc}, ${output}")
endif()
execute_process(COMMAND "${HARNESS}" --timeout soon true RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT rc EQUAL 2 OR NOT output MATCHES "--timeout takes a number, not 'soon'")
  message(FATAL_ERROR "test_harness --timeout soon: exit ${rc}, ${output}")
endif()
file(REMOVE_RECURSE "${WORK}")
