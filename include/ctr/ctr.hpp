#pragma once
// ctr: header-only Linux process isolation. Include this one header.

#include <ctr/error.hpp>
#include <ctr/probe.hpp>
#include <ctr/process.hpp>
#include <ctr/unique_fd.hpp>
