// The node's input policy and its worker port, with the real binaries: a node
// whose allowed roots are one folder refuses inputs outside it (a file, a
// symlink that leads out, a tcp:// URL, a file:// URL), each failing its
// video with the policy's reason, while a valid input of the same job is
// analysed; and a local process that is not one of its workers cannot join
// its worker port, while the node goes on working.

#include <filesystem>
#include <map>
#include <regex>
#include <string>

#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive;
using namespace framehive::testing;
namespace fs = std::filesystem;

namespace {

class Policy : public cluster {
 protected:
  std::string node_log() const { return (dir_ / "n1.log").string(); }

  /// The first match of `pattern`'s group 1 in the node's log, or "".
  std::string from_log(const std::string& pattern) const {
    const std::regex re(pattern);
    for (const auto& line : read_lines(node_log())) {
      std::smatch m;
      if (std::regex_search(line, m, re))
        return m[1];
    }
    return {};
  }

  std::size_t log_lines_with(const std::string& text) const {
    std::size_t n = 0;
    for (const auto& line : read_lines(node_log()))
      n += line.find(text) != std::string::npos;
    return n;
  }

  /// Runs a helper to its end; its stdout and exit code.
  command_result run(const std::vector<std::string>& argv, const std::string& out_name) {
    const std::string out = (dir_ / out_name).string();
    std::string err;
    auto p = child_process::spawn(argv, &err, out);
    EXPECT_TRUE(p) << err;
    if (!p)
      return {};
    auto st = p->wait_for(std::chrono::seconds(30));
    EXPECT_TRUE(st) << argv[0] << " did not end";
    command_result r;
    r.code = st ? (st->signaled ? 128 + st->signal : st->code) : -1;
    for (const auto& line : read_lines(out))
      r.out += line + "\n";
    return r;
  }
};

}  // namespace

TEST_F(Policy, InputsOutsideTheNodesPolicyFailWithItsReasonWhileAValidInputOfTheSameJobIsDone) {
  const fs::path in = dir_ / "in";
  fs::create_directories(in);
  const std::string good = make_clip("in/good.mp4", 2, 15);
  const std::string outside = make_clip("outside.mp4", 1, 10);
  const std::string link = (in / "link.mp4").string();
  fs::create_symlink(outside, link);
  const std::string tcp = "tcp://127.0.0.1:1";
  const std::string passwd = "file:///etc/passwd";
  start_one_node({"--inputs.allowed-roots=[\"" + in.string() + "\"]"});

  const auto job =
      submit(good + " " + outside + " " + link + " " + tcp + " " + passwd + " --analyzers stats");
  EXPECT_EQ(wait_job(job), "failed");
  std::map<std::string, std::pair<std::string, std::string>> videos;  // input -> (state, error)
  const auto results = cli_json("results " + std::to_string(job) + " --json");
  for (const auto& v : results["videos"])
    videos[v["input"].get<std::string>()] = {v["state"].get<std::string>(),
                                             v["error"].is_string() ? v["error"].get<std::string>() : ""};
  ASSERT_EQ(videos.size(), 5u);
  EXPECT_EQ(videos[good].first, "done") << videos[good].second;

  const std::string roots = "allowed-roots (" + in.string() + ")";
  const std::map<std::string, std::string> reasons{
      {outside, "'" + outside + "' is not below " + roots},
      {link, "'" + link + "' resolves to '" + outside + "', which is not below " + roots},
      {tcp, "protocol 'tcp' is not in allowed-protocols (file, http, https, rtsp)"},
      {passwd, "'/etc/passwd' is not below " + roots},
  };
  for (const auto& [input, why] : reasons) {
    SCOPED_TRACE(input);
    EXPECT_EQ(videos[input].first, "failed");
    EXPECT_EQ(videos[input].second, "input '" + input + "' refused by the node's input policy: " + why);
  }
  EXPECT_EQ(log_lines_with("refused video"), 4u) << "every refusal is logged by the node";
}

TEST_F(Policy, AForgedHelloOnTheWorkerPortIsRefusedAndTheNodeKeepsItsWorkersAndWorking) {
  start_one_node({});
  const std::string port = from_log("workers connect on 127\\.0\\.0\\.1:(\\d+)");
  ASSERT_FALSE(port.empty()) << "the node's worker port is not in its log";
  const std::string pid0 = from_log("worker 0 started \\(pid (\\d+)\\)");
  ASSERT_FALSE(pid0.empty());
  ASSERT_TRUE(wait_until([&] { return log_lines_with(": worker 0 ready (pid " + pid0 + ")") == 1; },
                         std::chrono::seconds(20)))
      << "worker 0 never said hello";

  // The secret is in no environment any more, not even the worker's own, and
  // on no command line: the worker's arguments are only these.
  for (const std::string& pid : {pid0, std::to_string(nodes_["n1"].pid())}) {
    const auto env = run_command("tr '\\0' '\\n' < /proc/" + pid + "/environ").out;
    EXPECT_FALSE(env.empty()) << "cannot read /proc/" << pid << "/environ";
    EXPECT_EQ(env.find("FRAMEHIVE_WORKER_SECRET"), std::string::npos) << "in /proc/" << pid << "/environ";
  }
  const auto args = run_command("tr '\\0' '\\n' < /proc/" + pid0 + "/cmdline").out;
  EXPECT_EQ(args, bin("framehive-worker") + "\n--node-port=" + port +
                      "\n--index=0\n--allowed-protocols=file,http,https,rtsp\n--log-format=text\n--node-name=n1\n");

  // The right slot and the right pid, without the secret the node gave its workers.
  const std::string forger = std::string(FRAMEHIVE_FORGED_HELLO);
  for (const std::string& secret : std::vector<std::string>{"", "0123456789abcdef0123456789abcdef"}) {
    auto r = run({forger, port, "0", pid0, secret}, "forged.txt");
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("refused: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("worker secret"), std::string::npos) << r.out;
  }
  // A real worker binary started by hand: it has no secret in its environment.
  auto by_hand = run({bin("framehive-worker"), "--node-port=" + port, "--index=1"}, "by-hand.txt");
  EXPECT_EQ(by_hand.code, 3) << "a worker the node did not start must be refused";

  EXPECT_TRUE(
      wait_until([&] { return log_lines_with("refused a worker hello") == 3; }, std::chrono::seconds(10)));
  EXPECT_EQ(log_lines_with("(3 refused so far)"), 1u) << "the pool counts the refusals";
  EXPECT_EQ(log_lines_with("worker 0 started"), 1u) << "the real worker was neither replaced nor restarted";
  EXPECT_EQ(log_lines_with("worker 1 started"), 1u);
  EXPECT_EQ(wait_job(submit(make_clip("after.mp4", 2, 15) + " --analyzers stats")), "done");
}
