#include "coordinator/web_view.hpp"

#include <arpa/inet.h>

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <civetweb.h>
#include <spdlog/spdlog.h>

#include "cli/render.hpp"
#include "common/text.hpp"

namespace framehive {

namespace {

constexpr std::string_view page =
#include "coordinator/web_page.inc"
    ;

// -- the coordinator, asked from civetweb's threads --------------------------------------

class coordinator_queries final : public web_queries {
 public:
  coordinator_queries(caf::actor_system& sys, coordinator_actor coordinator, caf::timespan timeout)
      : sys_(sys), coordinator_(std::move(coordinator)), timeout_(timeout) {}

  query_result<cluster_status> status() override { return ask<cluster_status>(status_atom::value); }
  query_result<job_status> job(uint64_t id) override { return ask<job_status>(status_atom::value, id); }
  query_result<cluster_tree> tree() override { return ask<cluster_tree>(tree_atom::value); }
  query_result<cluster_nodes> nodes() override { return ask<cluster_nodes>(nodes_atom::value); }

 private:
  /// One blocking request with a deadline. A scoped actor per request: civetweb
  /// calls from several threads, and a scoped actor belongs to one.
  template <class T, class... Ts>
  query_result<T> ask(Ts&&... xs) {
    caf::scoped_actor self{sys_};
    std::optional<query_result<T>> out;
    self->request(coordinator_, timeout_, std::forward<Ts>(xs)...)
        .receive([&](T& x) { out.emplace(std::move(x)); },
                 [&](caf::error& e) { out.emplace(to_query_error(e)); });
    return std::move(*out);
  }

  query_error to_query_error(const caf::error& e) const {
    if (e.category() == caf::atom("framehive") && static_cast<errc>(e.code()) == errc::not_found)
      return {query_failure::not_found, sys_.render(e)};
    if (e == caf::sec::request_timeout)
      return {query_failure::unavailable,
              "the coordinator did not answer within " +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout_).count()) + " ms"};
    return {query_failure::unavailable, "the coordinator cannot answer: " + sys_.render(e)};
  }

  caf::actor_system& sys_;
  coordinator_actor coordinator_;
  caf::timespan timeout_;
};

// -- HTTP ----------------------------------------------------------------------------------

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 500:
      return "Internal Server Error";
    default:
      return "Service Unavailable";
  }
}

/// The whole response, then the connection closes (no keep-alive: a poll a
/// second does not need it, and a thread is never held by an idle browser).
int respond(mg_connection* conn, int status, std::string_view type, std::string_view body) {
  // Only the API is fetched, only from this origin; no frame may embed the page.
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\n"
            "Content-Type: %.*s\r\n"
            "Content-Length: %zu\r\n"
            "Cache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "X-Frame-Options: DENY\r\n"
            "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'\r\n"
            "Connection: close\r\n\r\n",
            status, reason_phrase(status), static_cast<int>(type.size()), type.data(), body.size());
  mg_write(conn, body.data(), body.size());
  return status;
}

int respond_json(mg_connection* conn, int status, const nlohmann::json& j) {
  return respond(conn, status, "application/json; charset=utf-8", cli::dump(j, -1));
}

int respond_error(mg_connection* conn, int status, const std::string& message) {
  return respond_json(conn, status, {{"error", printable_utf8(message)}});
}

template <class T>
int respond_query(mg_connection* conn, const query_result<T>& r) {
  if (r)
    return respond_json(conn, 200, cli::to_json(*r));
  return respond_error(conn, r.error().kind == query_failure::not_found ? 404 : 503, r.error().message);
}

/// The Host header names this machine: an address of 127.0.0.0/8 or
/// localhost, with any port. Anything else is a page of another site whose
/// name was made to resolve to 127.0.0.1 (DNS rebinding) reading the cluster.
bool is_local_host_header(const char* host) {
  if (host == nullptr)
    return false;  // HTTP/1.1 requires it; browsers always send it
  std::string h(host);
  if (const auto colon = h.rfind(':'); colon != std::string::npos)
    h.resize(colon);
  return h == "localhost" || is_loopback_ipv4(h);
}

/// "/api/jobs/ID" -> ID; nothing for anything else (no sign, no junk, no overflow).
std::optional<uint64_t> job_id_of(std::string_view uri) {
  constexpr std::string_view prefix = "/api/jobs/";
  if (uri.substr(0, prefix.size()) != prefix)
    return std::nullopt;
  return decimal_number(uri.substr(prefix.size()));
}

int log_civetweb(const mg_connection*, const char* message) {
  spdlog::warn("web view: {}", message);
  return 1;  // logged here: civetweb writes nothing itself
}

/// Debian 12's civetweb (1.15+dfsg-4) is built to load OpenSSL at run time
/// with OpenSSL 1.1's symbol table. OpenSSL 3 (bookworm's only libssl) no
/// longer exports SSL_get_peer_certificate, so TLS initialisation fails
/// (mg_init_library(MG_FEATURES_TLS) answers 0) and yet an "s" port starts:
/// the first HTTPS connection calls the missing symbol through a null
/// pointer and kills the process. Plain HTTP beyond loopback would show the
/// cluster to anyone on the network, so there is no web view there at all.
std::string refuse_beyond_loopback(const web_options& o) {
  std::string out = "web view: not starting on " + o.bind + ":" + std::to_string(o.port) +
                    ": beyond loopback it must be HTTPS with the cluster's certificates";
  if (!o.tls)
    out += " (and this coordinator has none: --tls.ca, --tls.cert, --tls.key)";
  out += ", which this build cannot serve: Debian 12's civetweb 1.15 expects OpenSSL 1.1 "
         "(SSL_get_peer_certificate is gone from OpenSSL 3) and would crash on the first HTTPS request. "
         "Use --web.bind=127.0.0.1 and, from another machine, an SSH tunnel: ssh -L " +
         std::to_string(o.port) + ":127.0.0.1:" + std::to_string(o.port) + " COORDINATOR-HOST";
  return out;
}

}  // namespace

std::unique_ptr<web_queries> ask_coordinator(caf::actor_system& sys, coordinator_actor coordinator,
                                             caf::timespan timeout) {
  return std::make_unique<coordinator_queries>(sys, std::move(coordinator), timeout);
}

bool is_loopback_ipv4(const std::string& address) {
  in_addr a{};
  return inet_pton(AF_INET, address.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

result<std::unique_ptr<web_view>, std::string> web_view::start(const web_options& o,
                                                               std::unique_ptr<web_queries> queries) {
  if (o.port == 0)
    return std::string("web view: port 0 means no web view");
  if (!is_loopback_ipv4(o.bind))
    return refuse_beyond_loopback(o);
  std::unique_ptr<web_view> v(new web_view);
  v->queries_ = std::move(queries);
  v->bind_ = o.bind;
  const std::string listen = o.bind + ":" + std::to_string(o.port);
  // A few threads: a browser polls three URLs a second, and each request
  // holds its thread at most for its query's deadline.
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "4",   "request_timeout_ms", "10000",
                           "enable_keep_alive", "no",         nullptr,       nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = log_civetweb;
  mg_init_data init{&callbacks, v.get(), options};
  std::vector<char> text(256, '\0');
  mg_error_data error{nullptr, text.data(), text.size()};
  v->ctx_ = mg_start2(&init, &error);
  if (v->ctx_ == nullptr)
    return "web view on " + listen + ": " + (text[0] ? std::string(text.data()) : "civetweb did not start");
  mg_set_request_handler(v->ctx_, "/", &web_view::on_request, v.get());
  mg_server_port ports[1]{};
  if (mg_get_server_ports(v->ctx_, 1, ports) == 1)
    v->port_ = static_cast<uint16_t>(ports[0].port);
  return v;
}

web_view::~web_view() {
  if (ctx_ != nullptr)
    mg_stop(ctx_);
}

int web_view::on_request(mg_connection* conn, void* self) {
  try {
    return static_cast<web_view*>(self)->serve(conn);
  } catch (const std::exception& e) {
    // A C library's thread: nothing may unwind through it.
    spdlog::error("web view: {}", e.what());
    return respond_error(conn, 500, "internal error");
  }
}

int web_view::serve(mg_connection* conn) {
  const mg_request_info* req = mg_get_request_info(conn);
  const std::string_view method = req->request_method ? req->request_method : "";
  const std::string_view uri = req->local_uri ? req->local_uri : "";
  if (!is_local_host_header(mg_get_header(conn, "Host")))
    return respond_error(conn, 403, "the Host header must name this machine (127.0.0.1 or localhost)");
  if (method != "GET")
    return respond_error(conn, 405, "the web view is read-only");
  if (uri == "/" || uri == "/index.html")
    return respond(conn, 200, "text/html; charset=utf-8", page);
  if (uri == "/api/status")
    return respond_query(conn, queries_->status());
  if (uri == "/api/tree")
    return respond_query(conn, queries_->tree());
  if (uri == "/api/nodes")
    return respond_query(conn, queries_->nodes());
  if (const auto id = job_id_of(uri))
    return respond_query(conn, queries_->job(*id));
  return respond_error(conn, 404, "no such page: " + std::string(uri));
}

}  // namespace framehive
