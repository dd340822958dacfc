// Fifty small passing GoogleTest cases: the load of bench/harness/compare,
// which runs them one by one in a plain shell loop and through
// examples/test_harness (each case in a sandbox of its own).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace {
class fifty : public testing::TestWithParam<int> {};
}  // namespace

TEST_P(fifty, sums_what_it_is_given) {
    std::vector<int> values(static_cast<std::size_t>(GetParam()) + 1);
    std::iota(values.begin(), values.end(), 0);
    EXPECT_EQ(std::accumulate(values.begin(), values.end(), 0), GetParam() * (GetParam() + 1) / 2);
}

INSTANTIATE_TEST_SUITE_P(cases, fifty, testing::Range(0, 50));
