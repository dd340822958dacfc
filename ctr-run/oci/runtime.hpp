#pragma once
// ctr-run as an OCI runtime: the command-line contract runc defined, which
// Podman (through conmon), CRI-O and containerd's runc shim call
// (docs/oci.md):
//
//   ctr-run [--root DIR] [--log FILE] [--log-format text|json] [--debug]
//           create --bundle DIR [--pid-file FILE] [--console-socket SOCKET] ID
//   ctr-run start ID | kill [--all] ID [SIGNAL] | delete [--force] ID | state ID
//   ctr-run exec [--process FILE] [--detach] [--pid-file FILE] [--console-socket SOCKET] ID [COMMAND...]
//   ctr-run run [create's flags] [--detach] ID | list | features
//
// A first argument that is one of these commands, or one of the global
// flags above, selects this mode; anything else is the Docker-style
// `ctr-run [OPTIONS] [--] COMMAND` (a program named like a command runs as
// `ctr-run -- start`).

namespace ctr_run::oci {

bool is_runtime_invocation(int argc, char** argv);
// Runs one runtime command; returns the process's exit status.
int run_runtime(int argc, char** argv);

}  // namespace ctr_run::oci
