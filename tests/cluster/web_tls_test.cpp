// The web view beyond loopback (issue 14): HTTPS with the cluster's
// certificates, admitting only client certificates of the cluster CA. Real
// processes: a PKI made by `framehive certs`, the coordinator and a node
// started in a network namespace of the test's own, where 10.213.78.1 is the
// address of a veth interface that exists nowhere else (both ends inside); curl and the test's
// own sockets talk to it from inside that namespace. No packet leaves
// loopback or that namespace. Needs root and `ip netns`; skips, saying why,
// without them.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/support/netns.hpp"

namespace framehive::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* ns_prefix = "fhwt";           ///< namespace names: fhwt-PID-TAG
constexpr const char* web_address = "10.213.78.1";  ///< exists only in the test's namespace
constexpr const char* web_name = "coordinator";     ///< the coordinator certificate's name (its SAN)

struct https_reply {
  int curl_exit = -1;  ///< 0: a response came
  int status = 0;      ///< 0: no HTTP answer
  std::string body;
  std::string error;  ///< curl's message
};

/// A TCP connection from inside a network namespace, made by the test itself
/// (so it knows its own address and what the server did to it).
class ns_socket {
 public:
  ns_socket() = default;
  ns_socket(ns_socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ns_socket& operator=(ns_socket&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~ns_socket() { close(); }

  /// Connects to `address`:`port` from namespace `ns`. The socket belongs to
  /// the namespace it was made in, so only a short-lived thread enters it.
  static ns_socket connect_in(const std::string& ns, const std::string& address, uint16_t port,
                              std::string& error) {
    ns_socket s;
    std::thread maker([&] {
      const int nsfd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) {
        error = "cannot enter namespace " + ns + ": " + std::strerror(errno);
      } else {
        s.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      }
      if (nsfd >= 0)
        ::close(nsfd);
    });
    maker.join();
    if (s.fd_ < 0) {
      if (error.empty())
        error = std::string("socket: ") + std::strerror(errno);
      return s;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    if (::connect(s.fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      error = "connect: " + std::string(std::strerror(errno));
      s.close();
    }
    return s;
  }

  bool ok() const { return fd_ >= 0; }

  /// Our end as the server sees it: ADDRESS:PORT.
  std::string local_name() const {
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    char text[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &a.sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(a.sin_port));
  }

  bool send_all(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }

  /// Reads until the server closes (EOF or reset) or `timeout` passes; true if it closed.
  bool closed_by_peer_within(std::chrono::milliseconds timeout, std::string* received = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        continue;
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0)
        return true;
      if (received)
        received->append(buf, static_cast<std::size_t>(n));
    }
  }

  /// Whether the server closed it already (without waiting).
  bool closed_now() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0)
      return false;
    char c;
    return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
  }

  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::size_t count_lines_with(const std::filesystem::path& file, const std::vector<std::string>& words) {
  std::size_t n = 0;
  for (const auto& line : read_lines(file.string())) {
    bool all = true;
    for (const auto& w : words)
      all = all && line.find(w) != std::string::npos;
    n += all ? 1 : 0;
  }
  return n;
}

class WebTls : public cluster {
 protected:
  void SetUp() override {
    cluster::SetUp();
    if (::geteuid() != 0)
      GTEST_SKIP() << "the HTTPS web view is tested on an address of a network namespace of the test's own, "
                      "which needs root (euid "
                   << ::geteuid() << ")";
    if (::access(netns_detail::ip_tool, X_OK) != 0 || ::access(netns_detail::setpriv_tool, X_OK) != 0)
      GTEST_SKIP() << "ip (iproute2) or setpriv (util-linux) is missing: no network namespace for the test";
    for (const auto& ns : virtual_lan::sweep_leftovers(ns_prefix))
      std::cerr << "removed namespace " << ns << " left by a run that died\n";
    std::random_device rd;
    char tag[8];
    std::snprintf(tag, sizeof(tag), "%04x", rd() & 0xffffu);
    const std::string name = std::string(ns_prefix) + "-" + std::to_string(::getpid()) + "-" + tag;
    if (auto r = netns_detail::ip("netns add " + name); r.code != 0)
      GTEST_SKIP() << "ip netns add is not possible here: " << r.out;
    ns_ = name;
    // A veth pair with both ends in the namespace (containers often lack the
    // dummy driver): web_address is on one end, and nothing leads out.
    for (const std::string& step :
         std::vector<std::string>{"link set lo up", "link add web0 type veth peer name web1",
                                  std::string("addr add ") + web_address + "/24 dev web0", "link set web0 up",
                                  "link set web1 up"}) {
      auto r = netns_detail::ip("-n " + ns_ + " " + step);
      ASSERT_EQ(r.code, 0) << "ip -n " << ns_ << " " << step << ": " << r.out;
    }
    use_tls();
    web_port_ = free_port();
  }

  void TearDown() override {
    // The processes first (SIGTERM, as an operator stops them), then
    // whatever is left in the namespace, then the namespace, even after a failure.
    cluster::TearDown();
    if (!ns_.empty()) {
      EXPECT_TRUE(netns_detail::kill_all_in(ns_)) << "processes survived in " << ns_;
      EXPECT_EQ(netns_detail::ip("netns del " + ns_).code, 0) << "namespace " << ns_ << " not removed";
    }
  }

  /// `argv` run inside the namespace, killed if the test process dies.
  std::vector<std::string> in_ns(std::vector<std::string> argv) const {
    std::vector<std::string> out{netns_detail::ip_tool,      "netns",       "exec", ns_,
                                 netns_detail::setpriv_tool, "--pdeathsig", "KILL", "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }

  std::string in_ns_shell() const { return std::string(netns_detail::ip_tool) + " netns exec " + ns_ + " "; }

  std::vector<std::string> web_flags() const {
    return {"--web.port=" + std::to_string(web_port_), std::string("--web.bind=") + web_address,
            "--metrics.port=0"};
  }

  /// The coordinator in the namespace: its cluster port on the namespace's
  /// 127.0.0.1, the web view on web_address.
  void start_coordinator_in_ns(const std::vector<std::string>& extra) {
    std::vector<std::string> args{bin("framehive-coordinator"), "--port=" + std::to_string(port_),
                                  "--data-dir=" + (dir_ / "data").string()};
    for (auto& f : tls_flags("coordinator"))
      args.push_back(f);
    args.insert(args.end(), extra.begin(), extra.end());
    std::string err;
    auto p = child_process::spawn(in_ns(args), &err, (dir_ / "coordinator.log").string());
    ASSERT_TRUE(p) << err;
    coordinator_ = std::move(*p);
  }

  void start_node_in_ns(const std::string& name) {
    ASSERT_EQ(issue(name, "node"), 0);
    std::vector<std::string> args{bin("framehive-node"),
                                  "--coordinator=" + address(),
                                  "--name=" + name,
                                  "--workers=1",
                                  "--output-dir=" + (dir_ / ("out-" + name)).string(),
                                  "--shm-prefix=" + shm_prefix(),
                                  "--shm-budget-mb=256",
                                  "--metrics.port=0"};
    for (auto& f : tls_flags(name))
      args.push_back(f);
    std::string err;
    auto p = child_process::spawn(in_ns(args), &err, (dir_ / (name + ".log")).string());
    ASSERT_TRUE(p) << err;
    nodes_[name] = std::move(*p);
  }

  /// The CLI, in the namespace, with the client certificate.
  command_result cli_in_ns(const std::string& args) const {
    std::string tls;
    for (auto& f : tls_flags(cli_identity_))
      tls += " '" + f + "'";
    return run_command(in_ns_shell() + bin("framehive") + " --coordinator " + address() + tls + " " + args +
                       " 2>" + (dir_ / "cli-stderr.txt").string());
  }

  std::size_t nodes_in_ns() const {
    auto r = cli_in_ns("nodes --json");
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return r.code == 0 && j.is_object() ? j["nodes"].size() : 0;
  }

  /// curl in the namespace. The URL names the coordinator as its
  /// certificate does (web_name), resolved to web_address, so curl checks
  /// the server's name as a browser does. `client` are curl's flags for the
  /// client side (--cert/--key/--cacert).
  https_reply curl(const std::string& scheme, const std::string& path, const std::string& client) const {
    const std::string port = std::to_string(web_port_);
    auto r = run_command(in_ns_shell() + "curl -sS --max-time 10 -o '" + (dir_ / "body.txt").string() +
                         "' -w '%{http_code}' --resolve " + web_name + ":" + port + ":" + web_address + " " +
                         client + " '" + scheme + "://" + web_name + ":" + port + path + "' 2>'" +
                         (dir_ / "curl-stderr.txt").string() + "'");
    https_reply out;
    out.curl_exit = r.code;
    out.status = std::atoi(r.out.c_str());
    std::ifstream in(dir_ / "body.txt");
    std::stringstream s;
    s << in.rdbuf();
    out.body = s.str();
    out.error = run_command("cat '" + (dir_ / "curl-stderr.txt").string() + "'").out;
    std::filesystem::remove(dir_ / "body.txt");
    return out;
  }

  std::string as_client() const {
    return "--cacert '" + (pki() / "ca.crt").string() + "' --cert '" + (pki() / "client.crt").string() +
           "' --key '" + (pki() / "client.key").string() + "'";
  }

  https_reply get(const std::string& path) const { return curl("https", path, as_client()); }

  nlohmann::json api(const std::string& path) const {
    const auto r = get(path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.error << r.body;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path << " is not JSON: " << r.body;
    return j;
  }

  /// Waits until the HTTPS view answers a client of the cluster.
  bool wait_https() {
    return wait_until([&] { return get("/api/nodes").status == 200; }, 30s);
  }

  ns_socket connect_raw() {
    std::string error;
    auto s = ns_socket::connect_in(ns_, web_address, web_port_, error);
    EXPECT_TRUE(s.ok()) << error;
    return s;
  }

  std::filesystem::path log() const { return dir_ / "coordinator.log"; }
  std::string log_text() const { return run_command("cat '" + log().string() + "'").out; }

  std::string ns_;
  uint16_t web_port_ = 0;
};

TEST_F(WebTls, AClusterClientCertificateGetsThePageAndTheApiBeyondLoopback) {
  start_coordinator_in_ns(web_flags());
  start_node_in_ns("n1");
  ASSERT_TRUE(wait_until([&] { return nodes_in_ns() == 1; }, 30s)) << "the node did not register";
  ASSERT_TRUE(wait_https()) << "no HTTPS web view on " << web_address << ":" << web_port_ << ": "
                            << get("/api/nodes").error;
  EXPECT_EQ(count_lines_with(log(), {"web view on https://" + std::string(web_address) + ":" +
                                     std::to_string(web_port_) + "/"}),
            1u)
      << log_text();

  // (a) the API: JSON, and what the CLI prints. curl sent "Host: coordinator:PORT",
  // which the loopback view would refuse (403): over mutual TLS the name is checked by TLS.
  const nlohmann::json status = api("/api/status");
  ASSERT_TRUE(status.is_object() && status.contains("jobs")) << status.dump();
  EXPECT_TRUE(status["jobs"].empty());
  const nlohmann::json nodes = api("/api/nodes");
  ASSERT_TRUE(nodes.is_object()) << nodes.dump();
  ASSERT_EQ(nodes["nodes"].size(), 1u) << nodes.dump();
  EXPECT_EQ(nodes["nodes"][0]["name"], "n1");
  const auto cli_nodes = nlohmann::json::parse(cli_in_ns("nodes --json").out, nullptr, false);
  EXPECT_EQ(nodes, cli_nodes);
  const nlohmann::json tree = api("/api/tree");
  EXPECT_TRUE(tree.contains("entries")) << tree.dump();

  // (b) the page itself; and the other answers as on loopback.
  const auto page = get("/");
  EXPECT_EQ(page.status, 200) << page.error;
  EXPECT_EQ(page.body.rfind("<!DOCTYPE html>", 0), 0u) << page.body.substr(0, 200);
  EXPECT_NE(page.body.find("<title>framehive</title>"), std::string::npos);
  EXPECT_EQ(get("/api/jobs/999999").status, 404);
  EXPECT_EQ(get("/api/nothing").status, 404);
  EXPECT_EQ(get("/api/status?x=1").status, 200) << "a query string is not part of the path";
  EXPECT_EQ(curl("https", "/api/status", as_client() + " -X DELETE").status, 405);

  // The README's recipe for a browser: the client certificate and key as a
  // .p12 made with `openssl pkcs12`, which curl presents as a browser would.
  const auto p12 = dir_ / "client.p12";
  const auto made =
      run_command("openssl pkcs12 -export -in '" + (pki() / "client.crt").string() + "' -inkey '" +
                  (pki() / "client.key").string() + "' -certfile '" + (pki() / "ca.crt").string() +
                  "' -name 'framehive client' -passout pass:p12secret -out '" + p12.string() + "' 2>&1");
  ASSERT_EQ(made.code, 0) << made.out;
  const auto with_p12 = curl("https", "/api/status",
                             "--cacert '" + (pki() / "ca.crt").string() + "' --cert-type P12 --cert '" +
                                 p12.string() + ":p12secret'");
  EXPECT_EQ(with_p12.status, 200) << with_p12.error;

  // A client that does not trust the cluster CA refuses the coordinator (its certificate is the cluster's).
  const auto distrust =
      curl("https", "/api/status",
           "--cacert /etc/ssl/certs/ca-certificates.crt --cert '" + (pki() / "client.crt").string() +
               "' --key '" + (pki() / "client.key").string() + "'");
  EXPECT_EQ(distrust.status, 0);
  EXPECT_NE(distrust.curl_exit, 0);
  // Nothing listens in plain HTTP on the namespace's loopback: the view is only where it was asked to be.
  EXPECT_NE(run_command(in_ns_shell() + "curl -s --max-time 5 -o /dev/null http://127.0.0.1:" +
                        std::to_string(web_port_) + "/")
                .code,
            0);
}

TEST_F(WebTls, WithoutAClientCertificateOfTheClusterCaTheHandshakeIsRefused) {
  start_coordinator_in_ns(web_flags());
  ASSERT_TRUE(wait_https()) << get("/api/nodes").error;

  // (c) no client certificate.
  const auto anonymous = curl("https", "/api/status", "--cacert '" + (pki() / "ca.crt").string() + "'");
  EXPECT_EQ(anonymous.status, 0) << anonymous.body;
  EXPECT_NE(anonymous.curl_exit, 0);
  EXPECT_TRUE(anonymous.body.empty()) << anonymous.body;

  // (d) a client certificate of another CA, presented by a client that trusts
  // the coordinator: the refusal is the coordinator's.
  const auto other = dir_ / "other-pki";
  ASSERT_EQ(certs("init '" + other.string() + "'"), 0);
  ASSERT_EQ(certs("issue '" + other.string() + "' mallory --role client"), 0);
  const auto foreign =
      curl("https", "/api/status",
           "--cacert '" + (pki() / "ca.crt").string() + "' --cert '" + (other / "mallory.crt").string() +
               "' --key '" + (other / "mallory.key").string() + "'");
  EXPECT_EQ(foreign.status, 0) << foreign.body;
  EXPECT_NE(foreign.curl_exit, 0);
  EXPECT_TRUE(foreign.body.empty()) << foreign.body;

  // Each refusal is one log line with the peer and the cause.
  ASSERT_TRUE(wait_until([&] { return count_lines_with(log(), {"TLS handshake refused"}) >= 2; }, 10s))
      << log_text();
  EXPECT_EQ(count_lines_with(log(), {"web view (https): " + std::string(web_address) + ":",
                                     "TLS handshake refused", "did not return a certificate"}),
            1u)
      << log_text();
  EXPECT_EQ(
      count_lines_with(log(), {"web view (https): " + std::string(web_address) + ":", "TLS handshake refused",
                               "the client's certificate is not the cluster's"}),
      1u)
      << log_text();

  // The cluster's client is still served.
  EXPECT_EQ(get("/api/status").status, 200);
}

TEST_F(WebTls, GarbagePlainHttpAndSilentPeersAreClosedAndLoggedOnceWhileTheViewServesOn) {
  start_coordinator_in_ns(web_flags());
  start_node_in_ns("n1");
  ASSERT_TRUE(wait_until([&] { return nodes_in_ns() == 1; }, 30s)) << "the node did not register";
  ASSERT_TRUE(wait_https()) << get("/api/nodes").error;

  // (e) plain http:// to the HTTPS port, with curl: no HTTP answer.
  const auto plain = curl("http", "/api/status", "");
  EXPECT_EQ(plain.status, 0) << plain.body;
  EXPECT_NE(plain.curl_exit, 0);

  // The same and raw garbage from our own sockets, so that we know each
  // peer's address: closed at once (well before any timeout), one line each.
  struct bad_peer {
    std::string what;
    std::string bytes;
    std::string cause;  ///< in the log line
  };
  std::string junk(600, '\0');
  std::mt19937 random(7);
  for (auto& c : junk)
    c = static_cast<char>(random());
  junk[0] = 0x42;  // not a TLS record type
  const bad_peer bad_peers[] = {
      {"a plain HTTP request", "GET /api/status HTTP/1.1\r\nHost: coordinator\r\n\r\n", "plain HTTP request"},
      {"random bytes", junk, "TLS handshake refused"},
      {"a TLS record header announcing 64 KiB, more than a record may hold",
       std::string("\x16\x03\x01\xff\xff", 5) + std::string(64, 'A'), "TLS handshake refused"},
  };
  for (const auto& p : bad_peers) {
    auto s = connect_raw();
    ASSERT_TRUE(s.ok());
    const std::string me = s.local_name();
    ASSERT_TRUE(s.send_all(p.bytes)) << p.what;
    const auto t0 = std::chrono::steady_clock::now();
    // Well before the 10 s handshake deadline: closed for what it sent.
    EXPECT_TRUE(s.closed_by_peer_within(8s)) << p.what << ": the server kept the connection";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s) << p.what;
    EXPECT_TRUE(
        wait_until([&] { return count_lines_with(log(), {"web view (https): " + me + ":"}) >= 1; }, 5s))
        << p.what << ": no log line for " << me << "\n"
        << log_text();
    EXPECT_EQ(count_lines_with(log(), {"web view (https): " + me + ":", p.cause}), 1u) << p.what << "\n"
                                                                                       << log_text();
    EXPECT_EQ(count_lines_with(log(), {"web view (https): " + me + ":"}), 1u)
        << p.what << ": logged more than once";
    // The view and the cluster serve on.
    EXPECT_EQ(get("/api/status").status, 200) << "after " << p.what;
  }

  // A peer that connects and says nothing holds one connection, not the
  // view: others are served meanwhile, and it is closed after the handshake
  // timeout (10 s), logged once.
  auto silent = connect_raw();
  ASSERT_TRUE(silent.ok());
  const std::string silent_name = silent.local_name();
  const auto opened = std::chrono::steady_clock::now();
  EXPECT_EQ(get("/api/nodes").status, 200) << "a silent peer blocked the view";
  EXPECT_TRUE(silent.closed_by_peer_within(20s)) << "a silent peer was never closed";
  const auto held = std::chrono::steady_clock::now() - opened;
  EXPECT_GE(held, 9s) << "closed before the handshake timeout";
  EXPECT_LT(held, 20s);
  EXPECT_TRUE(wait_until(
      [&] {
        return count_lines_with(log(),
                                {"web view (https): " + silent_name + ":", "no TLS handshake within"}) == 1;
      },
      5s))
      << log_text();

  EXPECT_EQ(get("/api/status").status, 200);
  EXPECT_EQ(nodes_in_ns(), 1u) << "the cluster port stopped serving";
  EXPECT_FALSE(coordinator_.poll()) << "the coordinator ended";
}

TEST_F(WebTls, ConnectionsBeyondTheLimitAreClosedAtOnceAndServedAgainBelowIt) {
  // A handshake deadline of 10 minutes: no silent peer ends before the test does.
  auto flags = web_flags();
  flags.push_back("--web.handshake-timeout-ms=600000");
  start_coordinator_in_ns(flags);
  ASSERT_TRUE(wait_https()) << get("/api/nodes").error;

  // 64 silent peers take every connection.
  constexpr std::size_t limit = 64;
  std::vector<ns_socket> held;
  for (std::size_t i = 0; i < limit; ++i) {
    held.push_back(connect_raw());
    ASSERT_TRUE(held.back().ok());
  }
  // Accepted in order: each further peer is closed at once.
  for (int i = 0; i < 4; ++i) {
    auto extra = connect_raw();
    ASSERT_TRUE(extra.ok());
    EXPECT_TRUE(extra.closed_by_peer_within(3s)) << "peer " << limit + i + 1 << " was not closed at once";
  }
  const auto refused = get("/api/status");
  EXPECT_EQ(refused.status, 0) << "served beyond the limit";
  std::size_t open = 0;
  for (auto& s : held)
    open += s.closed_now() ? 0 : 1;
  EXPECT_EQ(open, limit) << "the peers within the limit were closed";
  EXPECT_GE(count_lines_with(log(), {"closed at once, already 64 connections"}), 4u) << log_text();

  // Below the limit again: served.
  for (std::size_t i = 0; i < 8; ++i)
    held[i].close();
  EXPECT_TRUE(wait_until([&] { return get("/api/status").status == 200; }, 10s))
      << "not served below the limit";
}

TEST_F(WebTls, StopsWithinSecondsWhilePeersHoldConnectionsOpen) {
  // Deadlines of 10 minutes: a stop that waited for them could not pass.
  auto flags = web_flags();
  flags.push_back("--web.handshake-timeout-ms=600000");
  flags.push_back("--web.idle-timeout-ms=600000");
  start_coordinator_in_ns(flags);
  ASSERT_TRUE(wait_https()) << get("/api/nodes").error;
  std::vector<ns_socket> held;
  for (int i = 0; i < 20; ++i) {
    held.push_back(connect_raw());
    ASSERT_TRUE(held.back().ok());
  }
  // And a client of the cluster whose handshake is done and whose request
  // never comes: openssl s_client, which with
  // -ign_eof sends nothing and ends only when the server closes.
  const auto s_client_log = dir_ / "s_client.txt";
  std::string err;
  auto waiting = child_process::spawn(
      in_ns({"/bin/sh", "-c",
             "exec openssl s_client -ign_eof -connect " + std::string(web_address) + ":" +
                 std::to_string(web_port_) + " -CAfile '" + (pki() / "ca.crt").string() + "' -cert '" +
                 (pki() / "client.crt").string() + "' -key '" + (pki() / "client.key").string() +
                 "' </dev/null 2>&1"}),
      &err, s_client_log.string());
  ASSERT_TRUE(waiting) << err;
  ASSERT_TRUE(wait_until(
      [&] { return file_has_line_starting(s_client_log.string(), "SSL handshake has read"); }, 30s))
      << run_command("cat '" + s_client_log.string() + "'").out;
  for (auto& s : held)
    ASSERT_FALSE(s.closed_now()) << "a silent peer was closed before the stop";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(coordinator_.kill(SIGTERM));
  const auto status = coordinator_.wait_for(30s);
  ASSERT_TRUE(status) << "the coordinator did not stop within 30 s";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s) << "stopping waited for the peers";
  EXPECT_TRUE(status->success()) << status->describe();
  for (auto& s : held)
    EXPECT_TRUE(s.closed_by_peer_within(2s));
  EXPECT_TRUE(waiting->wait_for(5s)) << "the waiting TLS client was not disconnected";
}

}  // namespace
}  // namespace framehive::testing
