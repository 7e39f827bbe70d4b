#include "coordinator/web_tls.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

namespace framehive {

namespace {

using clock_type = std::chrono::steady_clock;

// -- resources -------------------------------------------------------------------------------

class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct ssl_ctx_free {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
struct ssl_free {
  void operator()(SSL* s) const noexcept { SSL_free(s); }
};
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_free>;
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;

/// The reasons in this thread's OpenSSL error queue, which it empties.
std::string openssl_reasons() {
  std::string out;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty())
      out += "; ";
    out += reason ? reason : "error " + std::to_string(ERR_GET_REASON(e));
  }
  return out;
}

// -- the TLS context --------------------------------------------------------------------------

result<ssl_ctx_ptr, std::string> make_context(const tls_files& files) {
  ERR_clear_error();
  ssl_ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx)
    return "cannot make a TLS context: " + openssl_reasons();
  auto fail = [](const std::string& what, const std::string& file) {
    return what + " " + file + ": " + openssl_reasons();
  };
  // TLS 1.2 and 1.3 only; for 1.2, forward secrecy and AEAD only (1.3 has nothing else).
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx.get(), "ECDHE+AESGCM:ECDHE+CHACHA20") != 1)
    return "cannot configure TLS: " + openssl_reasons();
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert.c_str()) != 1)
    return fail("cannot use the certificate", files.cert);
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail("cannot use the private key", files.key);
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return fail("the private key does not match the certificate", files.cert);
  if (SSL_CTX_load_verify_locations(ctx.get(), files.ca.c_str(), nullptr) != 1)
    return fail("cannot load the CA", files.ca);
  // The CA's name in the CertificateRequest: a browser offers only the
  // certificates this CA issued, instead of every one it holds.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca.c_str());
  if (names == nullptr)
    return fail("no CA certificate in", files.ca);
  SSL_CTX_set_client_CA_list(ctx.get(), names);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // Resumed sessions skip the certificate exchange; a browser polling three
  // URLs a second reconnects often. Required for resumption with client
  // certificates: a context id.
  static constexpr unsigned char session_context[] = "framehive-web";
  SSL_CTX_set_session_id_context(ctx.get(), session_context, sizeof(session_context) - 1);
  return ctx;
}

// -- the listener -----------------------------------------------------------------------------

result<unique_fd, std::string> listen_on(const std::string& bind, uint16_t port) {
  const std::string where = bind + ":" + std::to_string(port);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, bind.c_str(), &a.sin_addr) != 1)
    return "cannot listen on " + where + ": not an IPv4 address";
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0)
    return "cannot listen on " + where + ": " + std::strerror(errno);
  const int on = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd.get(), 64) != 0)
    return "cannot listen on " + where + ": " + std::strerror(errno);
  return fd;
}

uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return 0;
  return ntohs(a.sin_port);
}

std::string peer_name(const sockaddr_in& a) {
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &a.sin_addr, text, sizeof(text));
  return std::string(text) + ":" + std::to_string(ntohs(a.sin_port));
}

// -- logging refusals ---------------------------------------------------------------------------

/// At most `burst` lines per `window`; the first line after a quiet spell
/// says how many were left out. A flood of bad peers costs no disk.
class log_gate {
 public:
  /// Whether to log now; `dropped` is set to the lines left out before it.
  bool admit(uint64_t& dropped) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = clock_type::now();
    if (now - window_start_ >= window) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= burst) {
      ++dropped_;
      return false;
    }
    ++used_;
    dropped = std::exchange(dropped_, 0);
    return true;
  }

 private:
  static constexpr int burst = 20;
  static constexpr std::chrono::seconds window{10};
  std::mutex mutex_;
  clock_type::time_point window_start_{};
  int used_ = 0;
  uint64_t dropped_ = 0;
};

// -- parsing the request head -------------------------------------------------------------------

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// "METHOD /target HTTP/1.x" and the Host header; nothing if malformed.
std::optional<http_request> parse_head(std::string_view head) {
  const auto line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 || line.substr(sp2 + 1).substr(0, 7) != "HTTP/1.")
    return std::nullopt;
  http_request r;
  r.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty() || target.front() != '/')
    return std::nullopt;
  r.path = std::string(target.substr(0, target.find_first_of("?#")));
  for (auto at = line_end; at != std::string_view::npos && at + 2 < head.size();) {
    const auto next = head.find("\r\n", at + 2);
    const std::string_view field = head.substr(at + 2, next == std::string_view::npos ? next : next - at - 2);
    if (const auto colon = field.find(':');
        colon != std::string_view::npos && iequals(field.substr(0, colon), "host"))
      r.host = std::string(trim(field.substr(colon + 1)));
    at = next;
  }
  return r;
}

std::string plain_response(int status, std::string_view reason, std::string_view body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + std::string(body);
}

}  // namespace

// -- the server's state, shared by its threads ----------------------------------------------------

struct web_tls_server::state {
  enum class wait_result { ready, timed_out, stopping };

  /// One connection's thread; `done` once it no longer touches the state.
  struct connection {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  web_tls_limits limits;
  http_handler handler;
  ssl_ctx_ptr ctx;
  unique_fd listener;
  // Stop: one byte written to the pipe, never read, so that every poll of
  // every thread sees it readable from then on.
  unique_fd wake_read;
  unique_fd wake_write;
  std::atomic<std::size_t> active{0};
  std::list<std::unique_ptr<connection>> connections;  ///< the acceptor's, then the destructor's
  std::thread acceptor;
  log_gate gate;

  /// Logs one refusal or end of a connection, rate-limited.
  template <class... Ts>
  void log(spdlog::level::level_enum level, spdlog::format_string_t<Ts...> fmt, Ts&&... xs) {
    uint64_t dropped = 0;
    if (!gate.admit(dropped))
      return;
    if (dropped > 0)
      spdlog::warn("web view (https): {} more refused connections were not logged", dropped);
    spdlog::log(level, fmt, std::forward<Ts>(xs)...);
  }

  /// Waits until `fd` has `events` or `deadline` passes or the server stops.
  wait_result wait(int fd, short events, clock_type::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      if (left.count() <= 0)
        return wait_result::timed_out;
      pollfd fds[2] = {{fd, events, 0}, {wake_read.get(), POLLIN, 0}};
      const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count() + 1, 1'000'000)));
      if (n < 0 && errno != EINTR)
        return wait_result::stopping;  // cannot wait: give the connection up
      if (fds[1].revents != 0)
        return wait_result::stopping;
      if (n > 0 && fds[0].revents != 0)
        return wait_result::ready;  // readable, writable, or an error the next call reports
    }
  }

  // -- accepting ----------------------------------------------------------------------------------

  void accept_loop() {
    for (;;) {
      pollfd fds[2] = {{listener.get(), POLLIN, 0}, {wake_read.get(), POLLIN, 0}};
      const int n = ::poll(fds, 2, 1000);
      if (n < 0 && errno != EINTR) {
        log(spdlog::level::err, "web view (https): cannot wait for connections: {}", std::strerror(errno));
        wait(-1, 0, clock_type::now() + std::chrono::milliseconds(100));  // no spin
        continue;
      }
      if (fds[1].revents != 0)
        return;
      reap();
      if (n <= 0 || (fds[0].revents & POLLIN) == 0)
        continue;
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      unique_fd fd(
          ::accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (fd.get() < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          log(spdlog::level::err, "web view (https): cannot accept a connection: {}", std::strerror(errno));
          wait(-1, 0,
               clock_type::now() + std::chrono::milliseconds(100));  // the descriptor stays readable: no spin
        }
        continue;  // EAGAIN, ECONNABORTED, EINTR: the peer is gone already
      }
      const std::string name = peer_name(peer);
      if (active.load() >= limits.max_connections) {
        log(spdlog::level::warn, "web view (https): {}: closed at once, already {} connections (the limit)",
            name, limits.max_connections);
        continue;
      }
      start_connection(std::move(fd), name);
    }
  }

  void start_connection(unique_fd fd, const std::string& name) {
    auto c = std::make_unique<connection>();
    connection* raw = c.get();
    ++active;
    try {
      // The thread owns the descriptor from here; `fd` is empty if it started.
      c->thread = std::thread([this, raw, name, sock = std::move(fd)]() mutable {
        try {
          serve(std::move(sock), name);
        } catch (const std::exception& e) {
          // Nothing may leave a thread's function: it would end the coordinator.
          spdlog::error("web view (https): {}: {}", name, e.what());
        }
        --active;
        raw->done = true;
      });
    } catch (const std::system_error& e) {
      --active;
      log(spdlog::level::err, "web view (https): {}: closed, no thread for it: {}", name, e.what());
      return;
    }
    connections.push_back(std::move(c));
  }

  /// Joins the threads that ended (each had its connection closed already).
  void reap() {
    for (auto it = connections.begin(); it != connections.end();) {
      if ((*it)->done.load()) {
        (*it)->thread.join();
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
  }

  // -- one connection ---------------------------------------------------------------------------

  /// Handshake, one request, its answer, close. Every wait is bounded.
  void serve(unique_fd sock, const std::string& peer) {
    ssl_ptr ssl(SSL_new(ctx.get()));
    if (!ssl || SSL_set_fd(ssl.get(), sock.get()) != 1) {
      log(spdlog::level::err, "web view (https): {}: closed, no TLS session: {}", peer, openssl_reasons());
      return;
    }
    if (!handshake(ssl.get(), sock.get(), peer))
      return;
    std::string head;
    if (!read_head(ssl.get(), sock.get(), peer, head))
      return;
    std::string response;
    if (head.size() > limits.max_request_head) {
      log(spdlog::level::warn, "web view (https): {}: request head longer than {} bytes, answered 431", peer,
          limits.max_request_head);
      response = plain_response(431, "Request Header Fields Too Large", "request head too long\n");
    } else if (auto request = parse_head(head)) {
      response = handler(*request);
    } else {
      log(spdlog::level::warn, "web view (https): {}: not an HTTP/1 request, answered 400", peer);
      response = plain_response(400, "Bad Request", "not an HTTP/1 request\n");
    }
    if (write_all(ssl.get(), sock.get(), peer, response))
      close_politely(ssl.get(), sock.get());
  }

  bool handshake(SSL* ssl, int fd, const std::string& peer) {
    const auto deadline = clock_type::now() + limits.handshake_timeout;
    for (;;) {
      ERR_clear_error();
      const int r = SSL_accept(ssl);
      if (r == 1)
        return true;
      const int e = SSL_get_error(ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        switch (wait(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
          case wait_result::ready:
            continue;
          case wait_result::timed_out:
            log(spdlog::level::warn, "web view (https): {}: closed, no TLS handshake within {} ms", peer,
                limits.handshake_timeout.count());
            return false;
          case wait_result::stopping:
            return false;
        }
      }
      // A peer that only opened and closed the port (a port check) is not an attack.
      const bool hung_up = (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) && ERR_peek_error() == 0;
      log(hung_up ? spdlog::level::info : spdlog::level::warn,
          "web view (https): {}: TLS handshake refused: {}", peer, handshake_failure(ssl, e));
      return false;
    }
  }

  /// Why a handshake failed, in words a reader of the log acts on.
  static std::string handshake_failure(SSL* ssl, int ssl_error) {
    const unsigned long first = ERR_peek_error();
    std::string reasons = openssl_reasons();
    if (ERR_GET_LIB(first) == ERR_LIB_SSL &&
        (ERR_GET_REASON(first) == SSL_R_HTTP_REQUEST || ERR_GET_REASON(first) == SSL_R_HTTPS_PROXY_REQUEST))
      return "a plain HTTP request on the HTTPS port (" + reasons + ")";
    if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK)
      return "the client's certificate is not the cluster's: " +
             std::string(X509_verify_cert_error_string(v)) + " (" + reasons + ")";
    if (ssl_error == SSL_ERROR_SYSCALL && reasons.empty())
      return errno != 0 && errno != EAGAIN ? std::string(std::strerror(errno))
                                           : "the peer closed the connection";
    if (ssl_error == SSL_ERROR_ZERO_RETURN)
      return "the peer closed the connection";
    return reasons.empty() ? "TLS error " + std::to_string(ssl_error) : reasons;
  }

  /// Reads up to the blank line that ends the request head (or one byte
  /// past the limit). False when the connection is over (logged). The
  /// deadline is for the whole head, not renewed by each byte: a peer
  /// trickling a byte now and then holds its connection no longer.
  bool read_head(SSL* ssl, int fd, const std::string& peer, std::string& head) {
    char buf[2048];
    const auto deadline = clock_type::now() + limits.idle_timeout;
    while (head.find("\r\n\r\n") == std::string::npos && head.size() <= limits.max_request_head) {
      ERR_clear_error();
      const int n = SSL_read(ssl, buf, sizeof(buf));
      if (n > 0) {
        head.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      const int e = SSL_get_error(ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        switch (wait(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
          case wait_result::ready:
            continue;
          case wait_result::timed_out:
            log(spdlog::level::info, "web view (https): {}: closed, no request within {} ms", peer,
                limits.idle_timeout.count());
            return false;
          case wait_result::stopping:
            return false;
        }
      }
      if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
        return false;  // the peer closed before asking anything: nothing to report
      log(spdlog::level::warn, "web view (https): {}: closed, reading the request failed: {}", peer,
          openssl_reasons());
      return false;
    }
    return true;
  }

  /// The whole answer, taken by the peer within the idle timeout (for all of
  /// it, as for the request).
  bool write_all(SSL* ssl, int fd, const std::string& peer, const std::string& bytes) {
    std::size_t sent = 0;
    const auto deadline = clock_type::now() + limits.idle_timeout;
    while (sent < bytes.size()) {
      ERR_clear_error();
      const int n = SSL_write(ssl, bytes.data() + sent,
                              static_cast<int>(std::min<std::size_t>(bytes.size() - sent, 1 << 16)));
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      const int e = SSL_get_error(ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        switch (wait(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
          case wait_result::ready:
            continue;
          case wait_result::timed_out:
            log(spdlog::level::info, "web view (https): {}: closed, the answer was not read within {} ms",
                peer, limits.idle_timeout.count());
            return false;
          case wait_result::stopping:
            return false;
        }
      }
      log(spdlog::level::info, "web view (https): {}: closed while answering: {}", peer,
          e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ? std::string(std::strerror(errno))
                                                          : openssl_reasons());
      return false;
    }
    return true;
  }

  /// close_notify, then our half of TCP closed, then what the peer still
  /// sends is read and dropped for a moment: closing a socket with unread
  /// bytes sends a reset, which can destroy the answer before it is read.
  void close_politely(SSL* ssl, int fd) {
    ERR_clear_error();
    SSL_shutdown(ssl);  // one try: a peer that does not read it loses nothing
    ERR_clear_error();
    ::shutdown(fd, SHUT_WR);
    const auto deadline = clock_type::now() + std::chrono::seconds(1);
    char sink[1024];
    while (wait(fd, POLLIN, deadline) == wait_result::ready) {
      const ssize_t n = ::recv(fd, sink, sizeof(sink), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        break;
    }
  }
};

// -- the server -----------------------------------------------------------------------------------

web_tls_server::web_tls_server(std::unique_ptr<state> s) : state_(std::move(s)) {}

result<std::unique_ptr<web_tls_server>, std::string> web_tls_server::start(const std::string& bind,
                                                                           uint16_t port,
                                                                           const tls_files& files,
                                                                           http_handler handler,
                                                                           web_tls_limits limits) {
  if (auto ok = files.check(); !ok)
    return ok.error();
  auto ctx = make_context(files);
  if (!ctx)
    return ctx.error();
  auto listener = listen_on(bind, port);
  if (!listener)
    return listener.error();
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
    return "cannot make a pipe: " + std::string(std::strerror(errno));
  auto s = std::make_unique<state>();
  s->wake_read = unique_fd(pipe_fds[0]);
  s->wake_write = unique_fd(pipe_fds[1]);
  s->limits = limits;
  s->handler = std::move(handler);
  s->ctx = std::move(*ctx);
  s->listener = std::move(*listener);
  std::unique_ptr<web_tls_server> server(new web_tls_server(std::move(s)));
  server->port_ = local_port(server->state_->listener.get());
  state* st = server->state_.get();
  // Writing to a socket the peer has closed raises SIGPIPE, which would end
  // the coordinator: blocked in the acceptor, and so in every connection
  // thread it starts (threads inherit the mask), where write fails with EPIPE.
  sigset_t pipe_only, previous;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &previous);
  try {
    st->acceptor = std::thread([st] { st->accept_loop(); });
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return "cannot start the HTTPS listener's thread: " + std::string(e.what());
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return server;
}

web_tls_server::~web_tls_server() {
  state& s = *state_;
  const char stop = 's';
  while (::write(s.wake_write.get(), &stop, 1) < 0 && errno == EINTR) {
  }
  if (s.acceptor.joinable())
    s.acceptor.join();
  s.listener.reset();  // no more peers queue up while the connections end
  for (auto& c : s.connections)
    c->thread.join();
  s.connections.clear();
}

}  // namespace framehive
