#pragma once

// HTTPS for the web view beyond loopback: a small TLS 1.2+ server of our own
// on OpenSSL 3, with the coordinator's certificate, that admits only peers
// holding a certificate of the cluster CA (mutual TLS, like every other port
// of the cluster).
//
// Why not civetweb's HTTPS: Debian 12's civetweb (1.15+dfsg-4) loads OpenSSL
// at run time with OpenSSL 1.1's symbol names; OpenSSL 3 has no
// SSL_get_peer_certificate, and the first HTTPS request calls it through a
// null pointer. Why not a TLS front forwarding to civetweb on an ephemeral
// loopback port: the front would have to parse each request anyway (to mark
// it as authenticated with a header only the front can set, and strip a
// client's copy), the second hop needs a port no browser page may reach
// (DNS rebinding works on any loopback port) and two timeouts to agree. A
// request of the web view is one GET answered with one document and then
// the connection closes, so reading one request head here and asking the
// same handler civetweb asks is less code, and one set of routes.
//
// Robustness: at most `max_connections` connections (one thread each; more
// are closed at once), a deadline for the handshake, one for the request head
// and one for taking the answer, a bounded request head: a connection's life
// is bounded whatever the peer does. A peer that is
// refused (no or a foreign certificate, garbage, plain HTTP, too slow) is
// closed and logged once with its address and the cause; refusals are
// logged rate-limited so that a flood cannot fill the disk. Stopping wakes
// every thread (one pipe all of them poll) and joins them: it waits at most
// for a request already inside the handler, which the handler bounds.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/identity.hpp"
#include "common/result.hpp"

namespace framehive {

/// One HTTP request, as much of it as the web view looks at.
struct http_request {
  std::string method;  ///< "GET", ...
  std::string path;    ///< the request target without its query string, e.g. "/api/status"
  std::string host;    ///< the Host header ("" when there is none)
};

/// Answers one request with a whole HTTP/1.1 response (status line, headers
/// and body); the connection closes after it. Called on a connection's
/// thread; must return within a bounded time and must not throw.
using http_handler = std::function<std::string(const http_request&)>;

/// The bounds of web_tls_server. The defaults are the coordinator's.
struct web_tls_limits {
  std::size_t max_connections = 64;                     ///< beyond: closed at once
  std::chrono::milliseconds handshake_timeout{10'000};  ///< from accept to a finished handshake
  /// After the handshake: for the whole request head to arrive, then for the
  /// whole answer to be taken (not renewed by each byte).
  std::chrono::milliseconds idle_timeout{60'000};
  std::size_t max_request_head = 8192;  ///< request line and headers, in bytes
};

/// The HTTPS listener. Destroying it stops accepting, wakes every
/// connection and joins its threads.
class web_tls_server {
 public:
  /// Listens on `bind`:`port` (an IPv4 address; port 0: any free port) with
  /// `files.cert`/`files.key`, admitting only clients with a certificate
  /// of `files.ca`. The error names the address or the file and the cause.
  static result<std::unique_ptr<web_tls_server>, std::string> start(const std::string& bind, uint16_t port,
                                                                    const tls_files& files,
                                                                    http_handler handler,
                                                                    web_tls_limits limits = {});
  ~web_tls_server();
  web_tls_server(const web_tls_server&) = delete;
  web_tls_server& operator=(const web_tls_server&) = delete;

  /// The port it listens on.
  uint16_t port() const { return port_; }

 private:
  struct state;
  explicit web_tls_server(std::unique_ptr<state> s);

  std::unique_ptr<state> state_;
  uint16_t port_ = 0;
};

}  // namespace framehive
