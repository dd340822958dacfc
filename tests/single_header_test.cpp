// The generated single header, compiled with include/ off the include path.
#include <ctr/ctr.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

TEST(single_header, spawns_and_reports) {
    // Where the build put the helper, or where a lane that runs a copy of
    // this test elsewhere says (as tests/support.hpp does for ctr_tests).
    const char* moved = std::getenv("CTR_TEST_PROBE_HELPER");
    const std::string helper = moved && *moved ? moved : CTR_PROBE_HELPER;
    auto r = ctr::process::spawn({helper, "exit", "4"}).wait();
    EXPECT_EQ(r.exit_code, 4);
    try {
        (void)ctr::process::spawn({"/nonexistent/program"});
        FAIL() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::exec);
        EXPECT_EQ(e.code().value(), ENOENT);
    }
    EXPECT_FALSE(ctr::probe().kernel_release.empty());
}
