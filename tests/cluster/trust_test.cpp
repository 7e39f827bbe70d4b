// A rogue peer against the real coordinator and a real node: plaintext on
// loopback (the rogue can connect), then with mutual TLS.
// While a job runs, the rogue (tests/cluster/rogue_peer.cpp, the real
// protocol over the real middleman) tries to take over the node's name, to
// send results and reports in the node's name, an out-of-range frame, an
// oversized batch and jobs over the limits. Each attempt is refused, the
// coordinator's refusal counts show them, and the job's per-frame results are
// identical to a clean run's.
//
// With TLS (mutual, from the cluster's own CA) the rogue holds a valid node
// certificate for a name of its own and a client certificate: neither lets it
// register as the live node, nor as a node under a client's name.
//
// The node's decoders wait at frame held_at until the test releases them, so
// the video is still running while the rogue acts, whatever the machine's speed.

#include <map>

#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive::testing;
using nlohmann::json;

namespace {

constexpr int held_at = 150;  ///< the node's decoders wait before this frame until the test releases them

/// What the rogue printed: each step's outcome, the refusal counts, the victim job's state.
struct rogue_report {
  struct step {
    std::string result;  ///< "accepted" or "refused"
    int code = 0;        ///< errc number when refused
    std::string message;
  };
  std::map<std::string, step> steps;
  std::map<std::string, uint64_t> refusals;
  std::string victim_state;
  std::string raw;
};

rogue_report parse_rogue(const std::string& out) {
  rogue_report r;
  r.raw = out;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("step=", 0) == 0) {
      const auto name_end = line.find(' ');
      rogue_report::step s;
      const std::string name = line.substr(5, name_end - 5);
      s.result = line.find("result=refused") != std::string::npos ? "refused" : "accepted";
      if (auto c = line.find(" code="); c != std::string::npos)
        s.code = std::stoi(line.substr(c + 6));
      if (auto m = line.find(" message="); m != std::string::npos)
        s.message = line.substr(m + 9);
      r.steps[name] = s;
    } else if (line.rfind("refusal ", 0) == 0) {
      std::istringstream fields(line.substr(8));
      std::string key;
      uint64_t n = 0;
      fields >> key >> n;
      r.refusals[key] = n;
    } else if (line.rfind("victim_job_state=", 0) == 0) {
      r.victim_state = line.substr(17);
    }
  }
  return r;
}

// errc numbers (actors/messages.hpp)
constexpr int invalid_request = 1;
constexpr int refused = 8;
constexpr int over_limit = 9;

class Trust : public cluster {
 protected:
  /// The job's only video once it runs past `frame` on `node`; 0 if it does not within 30 s.
  uint64_t running_video(uint64_t job, const std::string& node, int64_t frame) {
    uint64_t video = 0;
    wait_until(
        [&] {
          const json st = cli_json("status " + std::to_string(job) + " --json");
          for (const auto& v : st["videos"])
            if (v["state"] == "running" && v["node"] == node && v["position"].get<int64_t>() > frame)
              video = v["video"].get<uint64_t>();
          return video != 0;
        },
        std::chrono::seconds(30));
    return video;
  }

  rogue_report run_rogue(uint64_t job, uint64_t video, const std::string& input, const std::string& flags) {
    const auto r =
        run_command("timeout 120 " + std::string(FRAMEHIVE_ROGUE_PEER) + " --coordinator=" + address() +
                    " --node=n1 --job=" + std::to_string(job) + " --video=" + std::to_string(video) +
                    " --epoch=1 --input='" + input + "' " + flags + " 2>&1");
    EXPECT_EQ(r.code, 0) << r.out;  // 124: it hung (every request has a 10 s timeout)
    return parse_rogue(r.out);
  }

  void expect_refused(const rogue_report& rogue, const std::string& step, int code, const std::string& says) {
    auto it = rogue.steps.find(step);
    ASSERT_NE(it, rogue.steps.end()) << "the rogue did not try " << step;
    EXPECT_EQ(it->second.result, "refused") << step;
    EXPECT_EQ(it->second.code, code) << step << ": " << it->second.message;
    EXPECT_NE(it->second.message.find(says), std::string::npos) << step << ": " << it->second.message;
  }

  /// The scenario: a clean run of a clip; the same job again with the rogue
  /// (`rogue_flags`) acting while it runs. Checks what every identity gets
  /// refused (`takeover_says`: why the name takeover fails), the counts
  /// (`expected`, plus the ones all identities share) in the rogue's view, in
  /// `framehive nodes` and in the log, and that the results equal the clean run's.
  void rogue_against_a_running_job(const std::string& rogue_flags, const std::string& takeover_says,
                                   std::map<std::string, uint64_t> expected,
                                   const std::map<std::string, std::string>& more_refused = {}) {
    const auto clip = make_clip("clip.mp4", 10, 30, "320x240");  // 300 frames
    release();
    const auto clean_job = submit(clip + " --analyzers stats");
    ASSERT_EQ(wait_job(clean_job), "done");
    const auto clean = stats_of(clean_job);
    ASSERT_EQ(clean.size(), 300u);

    hold_again();  // the rogue acts while the video waits at frame held_at
    const auto job = submit(clip + " --analyzers stats");
    const uint64_t video = running_video(job, "n1", 10);
    ASSERT_NE(video, 0u) << "the job's video did not start on n1";
    const auto rogue = run_rogue(job, video, clip, rogue_flags);
    SCOPED_TRACE(rogue.raw);
    EXPECT_EQ(rogue.victim_state, "running") << "the rogue must act while the video runs";

    expect_refused(rogue, "takeover", refused, takeover_says);
    for (const auto& [step, says] : more_refused)
      expect_refused(rogue, step, refused, says);
    expect_refused(rogue, "takeover_while_registered", refused, "registered as node rogue");
    expect_refused(rogue, "forged_batch_unregistered", refused, "only the registered node that holds");
    expect_refused(rogue, "forged_report_unregistered", refused, "only the registered node that holds");
    expect_refused(rogue, "greedy_cores", over_limit, "max_node_cores");
    expect_refused(rogue, "zero_cores", invalid_request, "0 cores");
    expect_refused(rogue, "forged_batch", refused, "is not assigned to rogue");
    expect_refused(rogue, "forged_batch_next_epoch", refused, "is not assigned to rogue");
    expect_refused(rogue, "forged_report_done", refused, "is not assigned to rogue");
    expect_refused(rogue, "forged_report_failed", refused, "is not assigned to rogue");
    expect_refused(rogue, "job_too_many_inputs", over_limit, "max_inputs_per_job");
    expect_refused(rogue, "job_too_many_analyzers", over_limit, "max_analyzers_per_job");
    expect_refused(rogue, "job_input_too_long", over_limit, "max_input_bytes");
    expect_refused(rogue, "out_of_range_frame", over_limit, "frame 1000000000000000 is outside");
    expect_refused(rogue, "oversized_batch", over_limit, "max_frames_per_batch");
    // What the rogue may do: register under a name of its own, and end its own video.
    EXPECT_EQ(rogue.steps.at("register_own_name").result, "accepted");
    EXPECT_EQ(rogue.steps.at("own_report").result, "accepted");

    // The coordinator counted every refusal by its reason.
    for (const auto& [key, n] : std::map<std::string, uint64_t>{{"already_registered", 1},
                                                                {"not_registered", 2},
                                                                {"not_assigned", 4},
                                                                {"max_node_cores", 1},
                                                                {"bad_node_info", 1},
                                                                {"name_mismatch", 1},
                                                                {"max_inputs_per_job", 1},
                                                                {"max_analyzers_per_job", 1},
                                                                {"max_input_bytes", 1},
                                                                {"frame_range", 1},
                                                                {"max_frames_per_batch", 1}})
      expected[key] += n;
    uint64_t total = 0;
    for (const auto& [key, n] : expected) {
      total += n;
      auto it = rogue.refusals.find(key);
      EXPECT_TRUE(it != rogue.refusals.end() && it->second == n)
          << key << ": " << (it == rogue.refusals.end() ? 0 : it->second) << " refusals, expected " << n;
    }
    EXPECT_EQ(rogue.refusals.size(), expected.size()) << "refusals of other kinds";
    const json shown = cli_json("nodes --json");  // what `framehive nodes` shows
    ASSERT_TRUE(shown.is_object() && shown.contains("refusals")) << shown.dump();
    for (const auto& [key, n] : expected)
      EXPECT_EQ(shown["refusals"].value(key, uint64_t{0}), n) << key;
    const auto log =
        run_command("grep -c 'coordinator: refused' '" + (dir_ / "coordinator.log").string() + "'");
    EXPECT_EQ(std::stoull(log.out), total) << "every refusal is logged, once";

    // The job ends as it would have without the rogue, frame for frame, all from n1.
    release();
    ASSERT_EQ(wait_job(job), "done");
    const auto after = stats_of(job);
    ASSERT_EQ(after.size(), clean.size());
    for (std::size_t i = 0; i < clean.size(); ++i)
      ASSERT_EQ(after[i], clean[i]) << "stats differ at frame " << i;
    const json r = cli_json("results " + std::to_string(job) + " --json");
    EXPECT_EQ(r["videos"][0]["analyzers"]["stats"]["result_nodes"], json::array({"n1"}));
    EXPECT_EQ(r["videos"][0]["node"], "n1");
    // The live node was never displaced.
    bool n1_there = false;
    for (const auto& n : shown["nodes"])
      n1_there = n1_there || n["name"] == "n1";
    EXPECT_TRUE(n1_there);
  }
};

}  // namespace

TEST_F(Trust, ARoguePeerIsRefusedEverythingAndTheJobsResultsStayIdenticalToACleanRun) {
  start_cluster({"n1"}, {hold_at(held_at)});
  rogue_against_a_running_job("", "held by a live node", {{"name_taken", 1}});
}

TEST_F(Trust, ARoguePeerWithAValidNodeCertificateIsRefusedEverythingToo) {
  use_tls();
  ASSERT_EQ(issue("rogue", "node"), 0);
  start_cluster({"n1"}, {hold_at(held_at)});
  const auto file = [&](const std::string& name) { return (pki() / name).string(); };
  const std::string flags = "--tls.ca=" + file("ca.crt") + " --tls.cert=" + file("rogue.crt") +
                            " --tls.key=" + file("rogue.key") + " --client-cert=" + file("client.crt") +
                            " --client-key=" + file("client.key");
  // Its certificate is a node's, but for the name rogue; its client
  // certificate is not a node's; an answer without a challenge, or the same
  // signed answer twice, proves nothing.
  rogue_against_a_running_job(flags, "not 'n1'", {{"bad_proof", 2}, {"no_challenge", 2}},
                              {{"client_as_node", "role is 'client', not 'node'"},
                               {"no_proof", "no challenge to answer"},
                               {"replayed_proof", "no challenge to answer"}});
}
