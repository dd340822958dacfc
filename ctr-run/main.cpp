// ctr-run: a small container runtime built only on ctr's public API.
//
//   ctr-run [OPTIONS] [--] COMMAND [ARG...]
//
// Flags follow Docker's and Podman's names. `ctr-run --help` documents them,
// docs/ctr-run.md walks through examples and compares them with Docker's.
// This file only dispatches (the OCI runtime's commands, `ctr-run create`
// and the rest, are oci/runtime.cpp; docs/oci.md): the flags are parsed in flags.hpp (values in
// values.hpp), the run command is run.cpp (what it makes of the flags:
// sandbox.hpp; what it reads from the system: lookup.hpp), and what ctr-run
// prints about a run is output.hpp.
//
// example-args: --hostname box /bin/sh -c "hostname && echo pid $$ && cat /proc/1/comm"
// expect-output: box
// expect-output: pid 2
// expect-output: ctr-init
#include "flags.hpp"
#include "help.hpp"
#include "oci/runtime.hpp"
#include "output.hpp"
#include "run.hpp"

#include <ctr/error.hpp>
#include <ctr/probe.hpp>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
    using namespace ctr_run;
    // `ctr-run create ...`, `ctr-run --root DIR state ID`: the OCI runtime
    // (oci/runtime.hpp, docs/oci.md).
    if (oci::is_runtime_invocation(argc, argv)) return oci::run_runtime(argc, argv);
    config c;
    try {
        c = parse_arguments(argc, argv);
    } catch (const usage_error& e) {
        std::cerr << "ctr-run: " << e.flag << ": " << e.message << std::endl;
        return exit_runtime_failed;
    }
    if (c.help) {
        std::cout << usage_text << refused_flags_text();
        return 0;
    }
    if (c.version) {
        std::cout << version_line;
        return 0;
    }
    if (c.probe) {
        std::cout << ctr::probe();
        return 0;
    }
    try {
        return run_command(c);
    } catch (const usage_error& e) {
        std::cerr << "ctr-run: " << e.flag << ": " << e.message << std::endl;
        if (c.result_json) print_json(nullptr, e.flag + ": " + e.message);
        return exit_runtime_failed;
    } catch (const ctr::error& e) {
        std::cerr << "ctr-run: " << e.what() << std::endl;
        if (c.result_json) print_json(nullptr, e.what());
        return exit_status_for(e);
    } catch (const std::exception& e) {
        std::cerr << "ctr-run: " << e.what() << std::endl;
        if (c.result_json) print_json(nullptr, e.what());
        return exit_runtime_failed;
    }
}
