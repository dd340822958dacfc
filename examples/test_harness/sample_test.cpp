// The GoogleTest binary that example.test_harness.gtest runs through
// test_harness: one case for each way a case can end, and two that write
// files, to show where a sandboxed case may write and where it may not.
// Run by hand it fails on purpose (sample.fails).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

TEST(sample, passes) { EXPECT_EQ(2 + 2, 4); }

TEST(sample, fails) { EXPECT_EQ(1 + 1, 3) << "arithmetic is broken on purpose"; }

TEST(sample, skips) { GTEST_SKIP() << "needs a feature this host lacks"; }

TEST(sample, DISABLED_not_ready) { FAIL() << "a disabled case never runs"; }

// Under test_harness the working directory is a scratch directory of the
// case's own, empty at the start.
TEST(sample, writes_to_its_working_directory) {
    EXPECT_TRUE(fs::is_empty(fs::current_path())) << fs::current_path();
    std::ofstream("result.txt") << "42\n";
    std::string line;
    std::getline(std::ifstream("result.txt"), line);
    EXPECT_EQ(line, "42");
}

// Under test_harness the binary's directory is read-only: this fails with
// EROFS, and the harness prints a hint.
TEST(sample, writes_beside_its_binary) {
    const fs::path file = fs::read_symlink("/proc/self/exe").parent_path() / "sample-test-output.txt";
    std::ofstream out(file);
    const int error = errno;
    ASSERT_TRUE(out.is_open()) << "open " << file << ": " << std::strerror(error);
    out.close();
    fs::remove(file);
}
