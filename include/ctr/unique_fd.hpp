#pragma once
// ctr::unique_fd: the owner of one file descriptor.

#include <ctr/detail/syscall.hpp>

#include <utility>

namespace ctr {

// Move-only; closes its fd when it ends. No implicit conversion to int:
// get() borrows, release() hands ownership over.
class [[nodiscard]] unique_fd {
public:
    constexpr unique_fd() noexcept = default;
    constexpr explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    // Closes the current fd (errors from close are not actionable: the fd is
    // gone either way) and takes `fd`.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) detail::sys::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace ctr
