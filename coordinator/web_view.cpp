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

/// One answer: its status (civetweb's handler returns it) and its bytes.
struct reply {
  int status = 500;
  std::string bytes;  ///< status line, headers and body
};

/// The whole response, then the connection closes (no keep-alive: a poll a
/// second does not need it, and a thread is never held by an idle browser).
/// The same bytes over HTTP (civetweb) and HTTPS (web_tls).
reply respond(int status, std::string_view type, std::string_view body) {
  // Only the API is fetched, only from this origin; no frame may embed the page.
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  out += "Content-Type: " + std::string(type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out +=
      "Cache-Control: no-store\r\n"
      "X-Content-Type-Options: nosniff\r\n"
      "X-Frame-Options: DENY\r\n"
      "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
      "style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'\r\n"
      "Connection: close\r\n\r\n";
  out.append(body);
  return {status, std::move(out)};
}

reply respond_json(int status, const nlohmann::json& j) {
  return respond(status, "application/json; charset=utf-8", cli::dump(j, -1));
}

reply respond_error(int status, const std::string& message) {
  return respond_json(status, {{"error", printable_utf8(message)}});
}

template <class T>
reply respond_query(const query_result<T>& r) {
  if (r)
    return respond_json(200, cli::to_json(*r));
  return respond_error(r.error().kind == query_failure::not_found ? 404 : 503, r.error().message);
}

/// The Host header names this machine: an address of 127.0.0.0/8 or
/// localhost, with any port. Anything else is a page of another site whose
/// name was made to resolve to 127.0.0.1 (DNS rebinding) reading the cluster.
bool is_local_host_header(const std::string& host) {
  std::string h = host;  // empty when missing: HTTP/1.1 requires it, browsers always send it
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

/// Whether the Host header is checked: on loopback it is, against DNS
/// rebinding. Over the mutual-TLS port it is not needed: a browser sends a
/// request there only after it verified that the server's certificate names
/// the host in the URL (the coordinator's name, issued by the cluster CA),
/// so a page of another site whose name was made to resolve to the
/// coordinator fails the handshake; and only holders of a client
/// certificate of the cluster CA get that far.
enum class host_check : uint8_t { loopback_names_only, none };

/// The routes, for civetweb (plain HTTP, loopback) and web_tls (HTTPS).
reply route(web_queries& queries, const http_request& req, host_check check) {
  if (check == host_check::loopback_names_only && !is_local_host_header(req.host))
    return respond_error(403, "the Host header must name this machine (127.0.0.1 or localhost)");
  if (req.method != "GET")
    return respond_error(405, "the web view is read-only");
  const std::string_view uri = req.path;
  if (uri == "/" || uri == "/index.html")
    return respond(200, "text/html; charset=utf-8", page);
  if (uri == "/api/status")
    return respond_query(queries.status());
  if (uri == "/api/tree")
    return respond_query(queries.tree());
  if (uri == "/api/nodes")
    return respond_query(queries.nodes());
  if (const auto id = job_id_of(uri))
    return respond_query(queries.job(*id));
  return respond_error(404, "no such page: " + req.path);
}

/// Beyond loopback the view is HTTPS with the cluster's certificates; plain
/// HTTP there would show the cluster to anyone on the network.
std::string refuse_without_certificates(const web_options& o) {
  return "web view: not starting on " + o.bind + ":" + std::to_string(o.port) +
         ": beyond loopback it must be HTTPS with the cluster's certificates, and this coordinator has none. "
         "Pass --tls.ca=DIR/ca.crt --tls.cert=DIR/NAME.crt --tls.key=DIR/NAME.key (framehive certs init DIR; "
         "framehive certs issue DIR NAME --role coordinator), or use --web.bind=127.0.0.1";
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
  if (in_addr a{}; inet_pton(AF_INET, o.bind.c_str(), &a) != 1)
    return "web view: not starting on " + o.bind + ": not an IPv4 address (an address is bound, not a name)";
  std::unique_ptr<web_view> v(new web_view);
  v->queries_ = std::move(queries);
  v->bind_ = o.bind;
  if (!is_loopback_ipv4(o.bind)) {
    if (!o.certificates.enabled())
      return refuse_without_certificates(o);
    web_queries* q = v->queries_.get();  // outlives tls_: destroyed after it
    web_tls_limits limits;
    limits.handshake_timeout = o.handshake_timeout;
    limits.idle_timeout = o.idle_timeout;
    auto server = web_tls_server::start(
        o.bind, o.port, o.certificates,
        [q](const http_request& req) {
          try {
            return route(*q, req, host_check::none).bytes;
          } catch (const std::exception& e) {
            spdlog::error("web view: {}", e.what());
            return respond_error(500, "internal error").bytes;
          }
        },
        limits);
    if (!server)
      return "web view on https://" + o.bind + ":" + std::to_string(o.port) + "/: " + server.error();
    v->port_ = (*server)->port();
    v->tls_ = std::move(*server);
    return v;
  }
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
  tls_.reset();  // joins its threads, each bounded by its deadlines
  if (ctx_ != nullptr)
    mg_stop(ctx_);
}

int web_view::on_request(mg_connection* conn, void* self) {
  reply r;
  try {
    const mg_request_info* info = mg_get_request_info(conn);
    const char* host = mg_get_header(conn, "Host");
    const http_request req{info->request_method ? info->request_method : "",
                           info->local_uri ? info->local_uri : "", host ? host : ""};
    r = route(*static_cast<web_view*>(self)->queries_, req, host_check::loopback_names_only);
  } catch (const std::exception& e) {
    // A C library's thread: nothing may unwind through it.
    spdlog::error("web view: {}", e.what());
    r = respond_error(500, "internal error");
  }
  mg_write(conn, r.bytes.data(), r.bytes.size());
  return r.status;
}

}  // namespace framehive
