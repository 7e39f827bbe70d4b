#pragma once

// The coordinator's web view: a read-only page of the jobs (a progress bar per
// video) and the live actor tree, with the JSON API it polls every second:
//
//   GET /                 the page (HTML, CSS and JavaScript in this binary)
//   GET /api/status       every job              (`framehive status --json`)
//   GET /api/jobs/ID      one job                (`framehive status ID --json`)
//   GET /api/tree         the live actor tree    (`framehive tree --json`)
//   GET /api/nodes        nodes and refusals     (`framehive nodes --json`)
//
// Where: on loopback (127.0.0.0/8) plain HTTP, served by civetweb. Beyond
// loopback HTTPS only, with the cluster's certificates and a client
// certificate of the cluster CA required, served by our own TLS server
// (coordinator/web_tls.hpp; Debian 12's civetweb cannot do HTTPS with
// OpenSSL 3); without the certificates start() refuses. Both answer with
// the same routes, on their own threads. Each request asks the coordinator
// actor through the typed query messages with a deadline, so a slow or dead
// coordinator costs an HTTP 503, never a server thread. The JSON is
// cli/render's, the one place the query replies become text.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "common/identity.hpp"
#include "common/result.hpp"
#include "coordinator/web_tls.hpp"

struct mg_context;
struct mg_connection;

namespace framehive {

inline constexpr uint16_t default_web_port = 9470;

/// Where the coordinator serves the web view ([web] in coordinator.ini).
struct web_options {
  std::string bind = "127.0.0.1";  ///< an IPv4 address; beyond 127.0.0.0/8 the view is HTTPS
  uint16_t port = 0;               ///< 0: no web view
  /// The cluster's TLS files (--tls.ca/.cert/.key): required beyond loopback,
  /// where the view is HTTPS with this certificate and admits only clients
  /// with a certificate of this CA. Not used on loopback.
  tls_files certificates{};
  /// HTTPS only: from accept to a finished handshake, and (after it) for the
  /// whole request head to arrive, then for the whole answer to be taken.
  std::chrono::milliseconds handshake_timeout = web_tls_limits{}.handshake_timeout;
  std::chrono::milliseconds idle_timeout = web_tls_limits{}.idle_timeout;
};

/// Why a query has no answer, as HTTP tells it.
enum class query_failure : uint8_t {
  not_found,    ///< 404: no such job
  unavailable,  ///< 503: the coordinator did not answer in time, or is gone
};

struct query_error {
  query_failure kind = query_failure::unavailable;
  std::string message;
};

template <class T>
using query_result = result<T, query_error>;

/// The questions the page asks. The real one asks the coordinator actor;
/// every call returns within its deadline.
class web_queries {
 public:
  virtual ~web_queries() = default;
  virtual query_result<cluster_status> status() = 0;
  virtual query_result<job_status> job(uint64_t id) = 0;
  virtual query_result<cluster_tree> tree() = 0;
  virtual query_result<cluster_nodes> nodes() = 0;
};

/// Asks `coordinator` from the calling (civetweb) thread, giving up after `timeout`.
std::unique_ptr<web_queries> ask_coordinator(caf::actor_system& sys, coordinator_actor coordinator,
                                             caf::timespan timeout);

/// True for an IPv4 address in 127.0.0.0/8 (civetweb here has no IPv6).
bool is_loopback_ipv4(const std::string& address);

/// The running web view; destroying it stops the server after the requests
/// in flight (each bounded by its query's deadline).
class web_view {
 public:
  /// Listens on `o.bind`:`o.port`: HTTP on loopback, HTTPS (mutual TLS)
  /// beyond. Refused: port 0, an address beyond loopback without
  /// `o.certificates`, unusable certificates, a port taken; the error names
  /// the address and the cause.
  static result<std::unique_ptr<web_view>, std::string> start(const web_options& o,
                                                              std::unique_ptr<web_queries> queries);
  ~web_view();
  web_view(const web_view&) = delete;
  web_view& operator=(const web_view&) = delete;

  /// The port it listens on.
  uint16_t port() const { return port_; }
  /// "https" beyond loopback, "http" on it.
  const char* scheme() const { return tls_ ? "https" : "http"; }
  /// Whether it is the HTTPS view (mutual TLS).
  bool tls() const { return tls_ != nullptr; }

 private:
  web_view() = default;
  static int on_request(mg_connection* conn, void* self);

  std::unique_ptr<web_queries> queries_;
  std::string bind_;
  uint16_t port_ = 0;
  mg_context* ctx_ = nullptr;            ///< on loopback
  std::unique_ptr<web_tls_server> tls_;  ///< beyond loopback; stopped before queries_ goes
};

}  // namespace framehive
