#include "actors/lifecycle.hpp"

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "actors/messages.hpp"
#include "caf/io/middleman.hpp"
#include "caf/openssl/manager.hpp"

// -- a fix for CAF 0.17.6's openssl module ---------------------------------------------------
//
// All TLS sessions of a process run on the middleman's one multiplexer
// thread, and CAF never clears OpenSSL's per-thread error queue. But
// SSL_get_error() answers SSL_ERROR_SSL whenever that queue is not empty, so
// once one session fails (a client refused for its certificate, a peer gone
// without close_notify), the next healthy session that merely has nothing to
// read (SSL_ERROR_WANT_READ) is closed as broken: every refused client cut
// the nodes' connections. OpenSSL requires an empty queue before each I/O
// call; these definitions interpose the four calls CAF makes (an
// executable's symbols take precedence over libssl's) and clear it first.

namespace {

template <class Fn>
Fn next_definition(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto next = next_definition<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return next(ssl, buf, num);
}

extern "C" int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto next = next_definition<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return next(ssl, buf, num);
}

// -- who the server is ----------------------------------------------------------------------
//
// The CA check proves a server holds *a* certificate of the cluster; a node's
// or a user's would pass it too, and could then pose as the coordinator to
// anyone whose traffic it can redirect. Every TLS connection a framehive
// process opens goes to a coordinator (nodes and the CLI connect to nothing
// else; workers reach their node in plaintext on loopback), so a handshake
// also requires the server's certificate to say OU=coordinator.

namespace {

std::string name_entry(X509_NAME* name, int nid) {
  char buf[256] = {0};
  const int n = name ? X509_NAME_get_text_by_NID(name, nid, buf, sizeof(buf)) : -1;
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

/// Empty if the server's certificate is a coordinator's, else why not.
std::string not_a_coordinator(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert)
    return "the server presented no certificate";
  X509_NAME* subject = X509_get_subject_name(cert);
  const std::string role = name_entry(subject, NID_organizationalUnitName);
  const std::string cn = name_entry(subject, NID_commonName);
  X509_free(cert);
  if (role == "coordinator")
    return {};
  return "the server's certificate (CN=" + cn + ", OU=" + role +
         ") is not a coordinator's (OU=coordinator): refused";
}

}  // namespace

extern "C" int SSL_connect(SSL* ssl) {
  static const auto next = next_definition<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  const int rc = next(ssl);
  if (rc != 1)
    return rc;
  if (const auto why = not_a_coordinator(ssl); !why.empty()) {
    std::fprintf(stderr, "framehive: TLS: %s\n", why.c_str());  // the CLI has no log; daemons keep stderr
    ERR_raise_data(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED, "%s", why.c_str());
    return -1;
  }
  return rc;
}

extern "C" int SSL_accept(SSL* ssl) {
  static const auto next = next_definition<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return next(ssl);
}

namespace framehive {

void add_tls_options(caf::config_option_set& opts, tls_files& tls) {
  caf::actor_system_config::opt_group{opts, "tls"}
      .add(tls.ca, "ca", "cluster CA certificate (PEM); with cert and key: mutual TLS on every connection")
      .add(tls.cert, "cert", "this process's certificate (PEM), issued by `framehive certs issue`")
      .add(tls.key, "key", "this process's private key (PEM, mode 0600)");
}

result<unit, std::string> use_tls(caf::actor_system_config& cfg, const tls_files& tls) {
  if (auto ok = tls.check(); !ok)
    return ok.error();
  if (!tls.enabled())
    return unit{};
  // CAF reads these members when it creates each TLS session; any one of
  // them set turns on peer verification (SSL_VERIFY_PEER |
  // SSL_VERIFY_FAIL_IF_NO_PEER_CERT) against the CA file.
  cfg.openssl_cafile = tls.ca;
  cfg.openssl_certificate = tls.cert;
  cfg.openssl_key = tls.key;
  cfg.openssl_capath.clear();
  cfg.load<caf::openssl::manager>();
  return unit{};
}

caf::io::middleman_actor connection_manager(caf::actor_system& sys) {
  return sys.has_openssl_manager() ? sys.openssl_manager().actor_handle() : sys.middleman().actor_handle();
}

int prepare_daemon(caf::actor_system_config& cfg, int argc, char** argv, const char* program) {
  register_protocol(cfg);
  cfg.load<caf::io::middleman>();
  if (auto err = cfg.parse(argc, argv)) {
    std::fprintf(stderr, "%s: %s\n", program, cfg.render(err).c_str());
    return 2;
  }
  return cfg.cli_helptext_printed ? 0 : -1;
}

int prepare_daemon(caf::actor_system_config& cfg, int argc, char** argv, const char* program, const tls_files& tls) {
  if (int rc = prepare_daemon(cfg, argc, argv, program); rc >= 0)
    return rc;
  if (auto ok = use_tls(cfg, tls); !ok) {
    std::fprintf(stderr, "%s: %s\n", program, ok.error().c_str());
    return 2;
  }
  return -1;
}

namespace {

sigset_t shutdown_signals() {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  return sigs;
}

}  // namespace

void block_shutdown_signals() {
  sigset_t sigs = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
}

int wait_for_shutdown_signal() {
  sigset_t sigs = shutdown_signals();
  int sig = 0;
  sigwait(&sigs, &sig);
  return sig;
}

void stop_and_exit(caf::actor_system& sys, const caf::actor& root, int code, std::chrono::seconds grace) {
  {
    caf::scoped_actor self{sys};
    self->monitor(root);
    self->send_exit(root, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {}, caf::after(grace) >> [] {});
  }
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace framehive
