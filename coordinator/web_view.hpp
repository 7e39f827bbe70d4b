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
// Served by civetweb on its own threads. Each request asks the coordinator
// actor through the typed query messages with a deadline, so a slow or dead
// coordinator costs an HTTP 503, never a civetweb thread. The JSON is
// cli/render's, the one place the query replies become text.
//
// Plain HTTP on loopback only: beyond loopback the view would have to be
// HTTPS with the cluster's certificates, and Debian 12's civetweb cannot serve
// HTTPS (see refuse_beyond_loopback in web_view.cpp), so start() refuses.

#include <cstdint>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "common/result.hpp"

struct mg_context;
struct mg_connection;

namespace framehive {

inline constexpr uint16_t default_web_port = 9470;

/// Where the coordinator serves the web view ([web] in coordinator.ini).
struct web_options {
  std::string bind = "127.0.0.1";  ///< an IPv4 address in 127.0.0.0/8
  uint16_t port = 0;               ///< 0: no web view
  bool tls = false;                ///< the coordinator has the cluster's certificates (only for the refusal's text)
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
  /// Listens on `o.bind`:`o.port`. Refused: port 0, an address beyond
  /// loopback, a port taken; the error names the address and the cause.
  static result<std::unique_ptr<web_view>, std::string> start(const web_options& o,
                                                              std::unique_ptr<web_queries> queries);
  ~web_view();
  web_view(const web_view&) = delete;
  web_view& operator=(const web_view&) = delete;

  /// The port it listens on.
  uint16_t port() const { return port_; }

 private:
  web_view() = default;
  static int on_request(mg_connection* conn, void* self);
  int serve(mg_connection* conn);

  std::unique_ptr<web_queries> queries_;
  std::string bind_;
  uint16_t port_ = 0;
  mg_context* ctx_ = nullptr;
};

}  // namespace framehive
