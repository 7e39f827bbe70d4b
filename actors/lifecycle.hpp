#pragma once

#include <chrono>
#include <string>

#include "caf/all.hpp"
#include "caf/io/middleman_actor.hpp"
#include "common/identity.hpp"
#include "common/result.hpp"

namespace framehive {

// -- TLS (CAF's openssl module) -----------------------------------------------------------

/// Adds --tls.ca, --tls.cert and --tls.key (INI: [tls] ca=, cert=, key=),
/// bound to `tls`. Call from a config's constructor with its custom_options_.
void add_tls_options(caf::config_option_set& opts, tls_files& tls);

/// After parsing: checks the files (the error names the file and the flag)
/// and, when `tls` is enabled, hands them to CAF (openssl.cafile,
/// openssl.certificate, openssl.key) and loads the openssl module, which then
/// requires a certificate of the same CA from every peer. No-op without TLS.
result<unit, std::string> use_tls(caf::actor_system_config& cfg, const tls_files& tls);

/// The actor that opens outgoing connections: the openssl module's when it is
/// loaded (TLS), else the middleman's. Both answer
/// (connect_atom, host, port) -> (node_id, strong_actor_ptr, set<string>),
/// so a non-blocking connect is the same request either way.
caf::io::middleman_actor connection_manager(caf::actor_system& sys);

// -- daemons ------------------------------------------------------------------------------

/// Registers the protocol, loads the middleman and parses flags and the INI
/// file into `cfg`. Returns -1 to go on, or the exit code (2 after printing
/// the error, 0 after --help).
int prepare_daemon(caf::actor_system_config& cfg, int argc, char** argv, const char* program);

/// The same, then use_tls(cfg, tls) on the parsed `tls` (2 after printing
/// the error when a file is missing or does not fit).
int prepare_daemon(caf::actor_system_config& cfg, int argc, char** argv, const char* program, const tls_files& tls);

/// Blocks SIGINT and SIGTERM in every thread (call before the actor system
/// starts threads) so that wait_for_shutdown_signal() receives them.
void block_shutdown_signals();

/// Waits for SIGINT or SIGTERM; returns the signal.
int wait_for_shutdown_signal();

/// Stops the daemon's root actor and ends the process once it is down (at most
/// `grace` later). It skips ~actor_system on purpose: in CAF 0.17 the
/// middleman keeps references to actors whose handles went to remote peers,
/// and ~actor_system then waits forever for detached actors' threads (seen
/// with the coordinator). Nothing is lost: the job store commits every
/// transaction, and the node actor's cleanup (workers, rings) runs when it goes down.
[[noreturn]] void stop_and_exit(caf::actor_system& sys, const caf::actor& root, int code,
                                std::chrono::seconds grace = std::chrono::seconds(10));

}  // namespace framehive
