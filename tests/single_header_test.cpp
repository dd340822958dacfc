// The generated single header, compiled with include/ off the include path.
#include <ctr/ctr.hpp>

#include <gtest/gtest.h>

TEST(single_header, spawns_and_reports) {
    auto r = ctr::process::spawn({CTR_PROBE_HELPER, "exit", "4"}).wait();
    EXPECT_EQ(r.exit_code, 4);
    try {
        ctr::process::spawn({"/nonexistent/program"});
        FAIL() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::exec);
        EXPECT_EQ(e.code().value(), ENOENT);
    }
    EXPECT_FALSE(ctr::probe().kernel_release.empty());
}
