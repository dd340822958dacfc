#pragma once
// The run command: `ctr-run [run] [OPTIONS] [--] COMMAND [ARG...]`.

#include "flags.hpp"

namespace ctr_run {

// Runs the command the config describes and returns ctr-run's exit status:
// the command's own, 128+N for signal N, 124 when --timeout fired. Throws
// usage_error for a value the system refuses (a --cpus above the CPUs
// there are) and ctr::error for a failed step; main turns those into 125,
// 126 or 127.
int run_command(const config& c);

}  // namespace ctr_run
