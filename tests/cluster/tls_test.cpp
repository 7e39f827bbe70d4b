// Mutual TLS and protected mode with the real binaries on loopback: a PKI
// made by `framehive certs`, a coordinator and a node with certificates, a
// client that is served, and clients that are refused quickly while the
// cluster keeps serving. Only loopback addresses are ever connected to.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive;
using namespace framehive::testing;
using namespace std::chrono_literals;

namespace {

/// Exit code of the CLI when the coordinator's TLS or authentication refused it (cli/main.cpp).
constexpr int exit_refused = 6;

/// Local addresses (hex, as in /proc/net/tcp{,6}) listening on `port`.
std::set<std::string> listening_on(uint16_t port) {
  char hex_port[8];
  std::snprintf(hex_port, sizeof(hex_port), "%04X", port);
  std::set<std::string> out;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"})
    for (const auto& line : read_lines(table)) {
      std::istringstream in(line);
      std::string slot, local, remote, state;
      in >> slot >> local >> remote >> state;
      auto colon = local.find(':');
      if (state == "0A" && colon != std::string::npos && local.substr(colon + 1) == hex_port)
        out.insert(local.substr(0, colon));
    }
  return out;
}

std::size_t count_lines(const std::filesystem::path& file, const std::string& word) {
  std::size_t n = 0;
  for (const auto& line : read_lines(file.string()))
    n += line.find(word) != std::string::npos ? 1 : 0;
  return n;
}

bool is_loopback_hex(const std::string& a) {
  return a == "0100007F" || a == "00000000000000000000000001000000" || a == "0000000000000000FFFF00000100007F";
}

bool is_any_hex(const std::string& a) { return a.find_first_not_of('0') == std::string::npos; }

struct timed_result {
  command_result r;
  std::chrono::milliseconds took;
};

timed_result timed(const std::string& cmd) {
  auto start = std::chrono::steady_clock::now();
  auto r = run_command(cmd);
  return {r, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)};
}

class Tls : public cluster {
 protected:
  /// The CLI against this cluster with `flags` instead of the fixture's certificate.
  timed_result cli_as(const std::string& flags, const std::string& command = "nodes --json") const {
    return timed(bin("framehive") + " --coordinator " + address() + " " + flags + " " + command + " 2>&1");
  }

  std::string files(const std::filesystem::path& dir, const std::string& ca, const std::string& name) const {
    return "--tls.ca=" + (dir / ca).string() + " --tls.cert=" + (dir / (name + ".crt")).string() +
           " --tls.key=" + (dir / (name + ".key")).string();
  }

  /// openssl s_client on the coordinator's port, kept open for up to 5 s so
  /// it reads what the server answers after the handshake (it ends as soon as
  /// the server closes); bounded by `timeout 15`.
  command_result s_client(const std::string& extra) const {
    return run_command("sleep 5 | timeout 15 openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
                       " -CAfile " + (pki() / "ca.crt").string() + " " + extra + " 2>&1");
  }

  std::string coordinator_log() const { return run_command("cat '" + (dir_ / "coordinator.log").string() + "'").out; }

  bool wait_listening() {
    return wait_until([&] { return !listening_on(port_).empty(); }, 20s);
  }
};

}  // namespace

TEST_F(Tls, JobRunsWithClientCertificateWhileUnauthenticatedClientsAreRefused) {
  use_tls();
  start_cluster({"n1"});
  const auto clip = make_clip("clip.mp4", 2);

  // A second, unrelated CA and a client certificate from it.
  const auto other = dir_ / "other-pki";
  ASSERT_EQ(certs("init '" + other.string() + "'"), 0);
  ASSERT_EQ(certs("issue '" + other.string() + "' mallory --role client"), 0);
  // A CA bundle that trusts the coordinator (cluster CA) and the other CA's
  // certificate, so the refusal below is the coordinator's, not the client's.
  run_command("cat '" + (pki() / "ca.crt").string() + "' '" + (other / "ca.crt").string() + "' > '" +
              (dir_ / "both-cas.crt").string() + "'");

  const std::pair<std::string, std::string> refused_clients[] = {
      {"plaintext, no certificate", ""},
      {"a certificate of another CA", files(other, "ca.crt", "mallory")},
      {"another CA's certificate, trusting the coordinator",
       "--tls.ca=" + (dir_ / "both-cas.crt").string() + " --tls.cert=" + (other / "mallory.crt").string() +
           " --tls.key=" + (other / "mallory.key").string()},
  };
  for (const auto& [what, flags] : refused_clients) {
    auto t = cli_as(flags);
    EXPECT_EQ(t.r.code, exit_refused) << what << ": " << t.r.out;
    EXPECT_NE(t.r.out.find("refused"), std::string::npos) << what << ": " << t.r.out;
    EXPECT_LT(t.took, 15s) << what;  // the CLI's own request timeout is 30 s
    // The legitimate client is still served between refusals.
    EXPECT_EQ(registered_nodes(), 1u) << "after " << what;
  }
  EXPECT_NE(cli_as("").r.out.find("requires TLS"), std::string::npos);

  const auto job = submit("'" + clip + "' --analyzers stats");
  ASSERT_NE(job, 0u);
  EXPECT_EQ(wait_job(job), "done");
  auto results = cli_json("results " + std::to_string(job) + " --json");
  ASSERT_TRUE(results.is_object()) << results.dump();
  EXPECT_EQ(results["state"], "done");
  auto nodes = cli_json("nodes --json");
  EXPECT_TRUE(nodes.is_object() && nodes["refusals"].is_object()) << nodes.dump();
  // The refused handshakes did not cost the node its connection (CAF 0.17.6
  // left OpenSSL's error queue dirty, and the next idle session was closed:
  // actors/lifecycle.cpp): it registered once and never had to come back.
  EXPECT_EQ(count_lines(dir_ / "coordinator.log", "registered"), 1u) << coordinator_log();
}

TEST_F(Tls, OpensslClientWithoutCertificateCannotCompleteASession) {
  use_tls();
  start_coordinator();
  ASSERT_TRUE(wait_listening());

  auto anonymous = s_client("");
  EXPECT_NE(anonymous.code, 0) << anonymous.out;
  EXPECT_NE(anonymous.out.find("alert"), std::string::npos) << anonymous.out;  // "certificate required"

  // Control: the same command with a client certificate of the cluster completes.
  auto with_cert = s_client("-cert " + (pki() / "client.crt").string() + " -key " + (pki() / "client.key").string());
  EXPECT_EQ(with_cert.code, 0) << with_cert.out;
  EXPECT_EQ(with_cert.out.find("alert"), std::string::npos) << with_cert.out;
  EXPECT_EQ(registered_nodes(), 0u);  // and the CLI is still served (no nodes, but an answer)
  EXPECT_EQ(cli("nodes --json").code, 0) << cli_stderr();
}

TEST_F(Tls, CliChecksItsOwnFilesAndPlaintextCoordinatorIsRefusedToTls) {
  start_coordinator();  // plaintext, loopback
  ASSERT_TRUE(wait_listening());
  const auto pki_dir = dir_ / "pki";
  ASSERT_EQ(certs("init '" + pki_dir.string() + "'"), 0);
  ASSERT_EQ(certs("issue '" + pki_dir.string() + "' alice --role client"), 0);

  auto tls_to_plain = cli_as(files(pki_dir, "ca.crt", "alice"));
  EXPECT_EQ(tls_to_plain.r.code, exit_refused) << tls_to_plain.r.out;
  EXPECT_LT(tls_to_plain.took, 15s);

  auto only_ca = cli_as("--tls.ca=" + (pki_dir / "ca.crt").string());
  EXPECT_EQ(only_ca.r.code, 2) << only_ca.r.out;
  EXPECT_NE(only_ca.r.out.find("--tls.cert is missing"), std::string::npos) << only_ca.r.out;

  auto missing = cli_as(files(pki_dir, "ca.crt", "nobody"));
  EXPECT_EQ(missing.r.code, 2) << missing.r.out;
  EXPECT_NE(missing.r.out.find("nobody.crt"), std::string::npos) << missing.r.out;

  EXPECT_EQ(cli("nodes --json").code, 0) << cli_stderr();  // plaintext on loopback still works
}

TEST_F(Tls, CoordinatorWithMissingTlsFileDoesNotStart) {
  const auto r = run_command(bin("framehive-coordinator") + " --port=" + std::to_string(port_) + " --data-dir='" +
                             (dir_ / "data").string() + "' --tls.ca=/nonexistent/ca.crt --tls.cert=/x.crt " +
                             "--tls.key=/x.key 2>&1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/ca.crt"), std::string::npos) << r.out;
  EXPECT_TRUE(listening_on(port_).empty());
}

TEST_F(Tls, WithoutTlsCoordinatorListensOnLoopbackOnlyDespiteBind) {
  coordinator_flags_ = {"--bind=0.0.0.0"};
  start_coordinator();
  ASSERT_TRUE(wait_listening());
  const auto addrs = listening_on(port_);
  ASSERT_EQ(addrs.size(), 1u);
  EXPECT_TRUE(is_loopback_hex(*addrs.begin())) << *addrs.begin();
  EXPECT_TRUE(wait_until([&] { return coordinator_log().find("protected mode") != std::string::npos; }, 5s))
      << coordinator_log();
  EXPECT_NE(coordinator_log().find("framehive certs init"), std::string::npos) << coordinator_log();
  EXPECT_EQ(cli("nodes --json").code, 0) << cli_stderr();
}

TEST_F(Tls, WithoutTlsInsecureBindsAllAddressesAndWarns) {
  coordinator_flags_ = {"--bind=0.0.0.0", "--insecure"};
  start_coordinator();
  ASSERT_TRUE(wait_listening());
  const auto addrs = listening_on(port_);
  ASSERT_EQ(addrs.size(), 1u);
  EXPECT_TRUE(is_any_hex(*addrs.begin())) << *addrs.begin();
  EXPECT_TRUE(wait_until([&] { return coordinator_log().find("INSECURE") != std::string::npos; }, 5s))
      << coordinator_log();
}

TEST_F(Tls, WithTlsCoordinatorBindsAsGiven) {
  use_tls();
  coordinator_flags_ = {"--bind=0.0.0.0"};
  start_coordinator();
  ASSERT_TRUE(wait_listening());
  const auto addrs = listening_on(port_);
  ASSERT_EQ(addrs.size(), 1u);
  EXPECT_TRUE(is_any_hex(*addrs.begin())) << *addrs.begin();
  EXPECT_EQ(coordinator_log().find("protected mode"), std::string::npos) << coordinator_log();
  EXPECT_EQ(cli("nodes --json").code, 0) << cli_stderr();  // over loopback
}

TEST_F(Tls, DeleteRemovesAFinishedJobAndRefusesARunningOne) {
  use_tls();
  start_coordinator();
  start_node("n1", 2, 1024, {hold_at(30)});  // running until released
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, 30s));
  const auto clip = make_clip("clip.mp4", 4);  // 60 frames

  const auto running = submit("'" + clip + "' --analyzers stats");
  ASSERT_TRUE(wait_until([&] { return cli_json("status " + std::to_string(running) + " --json")["state"] == "running"; }, 30s));
  EXPECT_EQ(cli("delete " + std::to_string(running)).code, 2) << cli_stderr();
  release();
  EXPECT_EQ(wait_job(running), "done");

  EXPECT_EQ(cli("delete " + std::to_string(running)).code, 0) << cli_stderr();
  EXPECT_EQ(cli("status " + std::to_string(running) + " --json").code, 4);
  EXPECT_EQ(cli("delete " + std::to_string(running)).code, 4);
  EXPECT_EQ(cli("delete 987654").code, 4);
}

TEST_F(Tls, AServerWithANodesCertificateIsNotTakenForTheCoordinator) {
  use_tls();
  // An impostor of the cluster: its certificate is the CA's, but a node's
  // (OU=node), as a compromised node could present to traffic it redirects.
  ASSERT_EQ(issue("impostor", "node"), 0);
  std::vector<std::string> args{bin("framehive-coordinator"), "--port=" + std::to_string(port_),
                                "--data-dir=" + (dir_ / "data").string()};
  for (auto& f : tls_flags("impostor"))
    args.push_back(f);
  std::string err;
  auto p = child_process::spawn(args, &err, (dir_ / "coordinator.log").string());
  ASSERT_TRUE(p) << err;
  coordinator_ = std::move(*p);
  ASSERT_TRUE(wait_listening());

  auto t = cli_as(files(pki(), "ca.crt", "client"));
  EXPECT_EQ(t.r.code, exit_refused) << t.r.out;
  EXPECT_NE(t.r.out.find("not a coordinator's"), std::string::npos) << t.r.out;
  EXPECT_NE(t.r.out.find("CN=impostor"), std::string::npos) << t.r.out;

  // A node refuses it the same way (the reason goes to its stderr; its log
  // says the TLS connection failed) and never registers.
  start_node("n1");
  EXPECT_TRUE(wait_until([&] { return count_lines(dir_ / "n1.log", "TLS connection failed") >= 1; }, 20s))
      << "the node did not refuse the impostor";
  EXPECT_EQ(count_lines(dir_ / "coordinator.log", "registered"), 0u) << "the node registered with an impostor";
}
