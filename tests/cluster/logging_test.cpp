// --log-format=json with the real binaries: a coordinator and a node (whose
// workers write into the node's log) run a job on an input whose name is not
// UTF-8, and every line of both logs is a JSON object with the fields the
// README promises.

#include <fstream>
#include <regex>
#include <set>

#include "tests/cluster/cluster_fixture.hpp"

namespace framehive::testing {
namespace {

using json = nlohmann::json;

class Logging : public cluster {};

struct log_check {
  std::size_t lines = 0;
  std::set<std::string> processes;
  std::size_t with_video = 0;
  std::size_t with_job = 0;
  std::size_t with_actor = 0;
  std::size_t worker_lines_with_video = 0;
  bool names_the_odd_input = false;
};

/// Checks every line of `path` into `c`; `node` is the name node and worker lines must carry.
void check_log(const std::filesystem::path& path, const std::string& node, log_check& c) {
  static const std::regex iso_utc_ms(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  for (std::string line; std::getline(in, line);) {
    ++c.lines;
    const json j = json::parse(line, nullptr, false);  // also refuses invalid UTF-8
    if (!j.is_object()) {
      ADD_FAILURE() << path.filename() << " line " << c.lines << " is not a JSON object: " << line;
      continue;
    }
    const std::string where = path.filename().string() + " line " + std::to_string(c.lines) + ": " + line;
    ASSERT_TRUE(j.contains("time") && j["time"].is_string()) << where;
    EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(), iso_utc_ms)) << where;
    ASSERT_TRUE(j.contains("level") && j["level"].is_string()) << where;
    EXPECT_TRUE(std::set<std::string>({"trace", "debug", "info", "warning", "error", "critical"})
                    .count(j["level"].get<std::string>()))
        << where;
    ASSERT_TRUE(j.contains("process") && j["process"].is_string()) << where;
    ASSERT_TRUE(j.contains("pid") && j["pid"].is_number_unsigned()) << where;
    ASSERT_TRUE(j.contains("msg") && j["msg"].is_string()) << where;
    const std::string process = j["process"];
    c.processes.insert(process);
    if (node.empty()) {
      EXPECT_EQ(process, "coordinator") << where;
      EXPECT_FALSE(j.contains("node")) << where;
    } else {
      EXPECT_TRUE(process == "node" || process == "worker") << where;
      EXPECT_EQ(j.value("node", ""), node) << where;
      EXPECT_EQ(j.contains("worker"), process == "worker") << where;
    }
    c.with_video += j.contains("video") && j["video"].is_number_unsigned();
    c.with_job += j.contains("job") && j["job"].is_number_unsigned();
    c.with_actor += j.contains("actor") && j["actor"].is_string();
    c.worker_lines_with_video += process == "worker" && j.contains("video");
    c.names_the_odd_input |= j["msg"].get<std::string>().find("odd\xEF\xBF\xBD.mp4") != std::string::npos;
  }
}

TEST_F(Logging, EveryLineOfCoordinatorNodeAndWorkersIsJsonWithTheRequiredFields) {
  coordinator_flags_ = {"--log-format=json"};
  start_coordinator();
  start_node("n1", 2, 1024, {"--log-format=json"});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));

  // A name that is not UTF-8: the coordinator, the node and the decoder all log it.
  const auto clip = make_clip("clip.mp4", 2, 15);
  const auto odd = (dir_ / "odd\xff.mp4").string();
  std::filesystem::rename(clip, odd);
  const auto job = submit("'" + odd + "' --analyzers stats");
  ASSERT_NE(job, 0u);
  ASSERT_EQ(wait_job(job), "done");

  // Stopped first, so their shutdown lines are checked too.
  stop(nodes_["n1"]);
  stop(coordinator_);

  log_check coord, node;
  check_log(dir_ / "coordinator.log", "", coord);
  check_log(dir_ / "n1.log", "n1", node);
  EXPECT_GT(coord.lines, 3u);
  EXPECT_GT(coord.with_video, 0u) << "the assignment and the video's end are about a video";
  EXPECT_GT(coord.with_job, 0u);
  EXPECT_TRUE(coord.names_the_odd_input);
  EXPECT_GT(node.lines, 3u);
  EXPECT_EQ(node.processes, (std::set<std::string>{"node", "worker"}))
      << "the workers log into the node's output";
  EXPECT_GT(node.with_video, 0u);
  EXPECT_GT(node.with_job, 0u);
  EXPECT_GT(node.worker_lines_with_video, 0u) << "the decoder says where it starts";
  EXPECT_GT(node.with_actor, 0u);
  EXPECT_TRUE(node.names_the_odd_input);
}

TEST_F(Logging, AnUnknownLogFormatIsRefusedAtStart) {
  for (const std::string exe : {"framehive-coordinator", "framehive-node"}) {
    const auto r = run_command(bin(exe) + " --log-format=xml 2>&1");
    EXPECT_EQ(r.code, 2) << exe << ": " << r.out;
    EXPECT_NE(r.out.find("--log-format must be text or json"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace framehive::testing
