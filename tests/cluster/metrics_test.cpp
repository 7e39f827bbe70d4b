// Prometheus metrics (issue 14 item 1) with real processes: a coordinator and
// a node serve /metrics on loopback ports; scraped with curl during a paced
// job and after it, the frame counters rise and end at the clip's frames.

#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "tests/cluster/cluster_fixture.hpp"

namespace framehive::testing {
namespace {

/// One scrape in the text exposition format.
struct scrape {
  struct sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
  };
  std::vector<sample> samples;
  std::map<std::string, std::string> types;  ///< family -> counter, gauge, histogram, ...
  bool ok = false;

  /// The sum of the samples of `name` whose labels include `match`.
  double sum(const std::string& name, const std::map<std::string, std::string>& match = {}) const {
    double total = 0;
    for (const auto& s : samples) {
      if (s.name != name)
        continue;
      bool all = true;
      for (const auto& [k, v] : match)
        all = all && s.labels.count(k) && s.labels.at(k) == v;
      total += all ? s.value : 0;
    }
    return total;
  }
};

scrape parse(const std::string& text) {
  scrape out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty())
      continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      out.types[name] = type;
      continue;
    }
    if (line[0] == '#')
      continue;
    scrape::sample s;
    std::size_t i = line.find_first_of("{ ");
    s.name = line.substr(0, i);
    if (i != std::string::npos && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find('=', i);
        const std::string key = line.substr(i, eq - i);
        std::size_t q = eq + 2;  // after ="
        std::string value;
        while (q < line.size() && line[q] != '"') {
          if (line[q] == '\\' && q + 1 < line.size())
            ++q;
          value += line[q++];
        }
        s.labels[key] = value;
        i = q + 1;
        if (i < line.size() && line[i] == ',')
          ++i;
      }
      ++i;
    }
    s.value = std::stod(line.substr(line.find_first_not_of(' ', i)));
    out.samples.push_back(std::move(s));
  }
  out.ok = !out.samples.empty();
  return out;
}

scrape get(uint16_t port) {
  auto r = run_command("curl -s --max-time 5 http://127.0.0.1:" + std::to_string(port) + "/metrics");
  return r.code == 0 ? parse(r.out) : scrape{};
}

/// The family a sample belongs to (histogram samples carry a suffix).
std::string family_of(const scrape& s, const std::string& name) {
  if (s.types.count(name))
    return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx(suffix);
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0 &&
        s.types.count(name.substr(0, name.size() - sfx.size())))
      return name.substr(0, name.size() - sfx.size());
  }
  return name;
}

bool number_like(const std::string& v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); });
}

/// Prometheus conventions and bounded labels: framehive_ names (prometheus-cpp
/// adds its own exposer_ families about the endpoint), counters in _total,
/// only the label keys we use, no path or id as a value.
void expect_conventions(const scrape& s, const char* who) {
  static const std::set<std::string> keys{"state", "analyzer", "reason", "le", "quantile"};
  for (const auto& [family, type] : s.types) {
    if (family.rfind("exposer_", 0) == 0)
      continue;
    EXPECT_EQ(family.rfind("framehive_", 0), 0u) << who << ": " << family;
    if (type == "counter")
      EXPECT_TRUE(family.size() > 6 && family.compare(family.size() - 6, 6, "_total") == 0)
          << who << ": " << family;
    else
      EXPECT_FALSE(family.size() > 6 && family.compare(family.size() - 6, 6, "_total") == 0)
          << who << ": " << family;
  }
  for (const auto& x : s.samples) {
    const std::string family = family_of(s, x.name);
    EXPECT_TRUE(s.types.count(family)) << who << ": no TYPE for " << x.name;
    if (family.rfind("exposer_", 0) == 0)
      continue;
    for (const auto& [k, v] : x.labels) {
      EXPECT_TRUE(keys.count(k)) << who << ": label " << k << " on " << x.name;
      if (k == "le" || k == "quantile")
        continue;
      EXPECT_EQ(v.find('/'), std::string::npos) << who << ": " << x.name << " " << k << "=" << v;
      EXPECT_FALSE(number_like(v)) << who << ": " << x.name << " " << k << "=" << v;
    }
  }
}

class Metrics : public cluster {};

TEST_F(Metrics, FrameCountersRiseDuringAJobAndEndAtTheClipsFrames) {
  const uint16_t coordinator_port = free_port();
  uint16_t node_port = free_port();
  while (node_port == coordinator_port)
    node_port = free_port();
  coordinator_flags_ = {"--metrics.port=" + std::to_string(coordinator_port)};
  start_coordinator();
  start_node("n1", 2, 1024, {paced(8), "--metrics.port=" + std::to_string(node_port)});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  ASSERT_TRUE(wait_until([&] { return get(coordinator_port).sum("framehive_nodes") == 1; },
                         std::chrono::seconds(10)));

  const std::string clip = make_clip("metrics.mp4", 6, 15);  // 90 frames, about 11 s at 8 fps
  const uint64_t job = submit("'" + clip + "' --analyzers stats,motion");
  ASSERT_GT(job, 0u);

  // Twice during the job: the second scrape strictly above the first on both ends.
  struct counts {
    double decoded = 0, analysed = 0, stored = 0;
  };
  auto read = [&](counts& c) {
    const scrape n = get(node_port), k = get(coordinator_port);
    c = {n.sum("framehive_frames_decoded_total"), n.sum("framehive_frames_analysed_total"),
         k.sum("framehive_frames_stored_total")};
    return n.ok && k.ok;
  };
  constexpr double both = 2 * 90;  // stats and motion
  counts first, second;
  ASSERT_TRUE(
      wait_until([&] { return read(first) && first.decoded > 0 && first.analysed > 0 && first.stored > 0; },
                 std::chrono::seconds(60)))
      << "no frames counted";
  ASSERT_LT(first.stored, both) << "the job ended before the first scrape: pacing did not hold";
  ASSERT_TRUE(wait_until(
      [&] {
        return read(second) && second.decoded > first.decoded && second.analysed > first.analysed &&
               second.stored > first.stored;
      },
      std::chrono::seconds(60)))
      << "counters did not rise: decoded " << first.decoded << " -> " << second.decoded << ", analysed "
      << first.analysed << " -> " << second.analysed << ", stored " << first.stored << " -> "
      << second.stored;
  EXPECT_LT(second.stored, both) << "the second scrape was not during the job";

  ASSERT_EQ(wait_job(job), "done");
  const auto results = cli_json("results " + std::to_string(job) + " --json");
  const double frames = results["videos"][0]["frames_total"].get<double>();
  ASSERT_EQ(frames, 90);

  // After: every frame once per analyzer, on both ends; the gauges follow the store.
  scrape k, n;
  EXPECT_TRUE(wait_until(
      [&] {
        k = get(coordinator_port);
        n = get(node_port);
        return k.sum("framehive_jobs", {{"state", "done"}}) == 1 && n.sum("framehive_node_videos") == 0 &&
               n.sum("framehive_frames_decoded_total") == frames;
      },
      std::chrono::seconds(20)));
  for (const char* analyzer : {"stats", "motion"}) {
    EXPECT_EQ(k.sum("framehive_frames_stored_total", {{"analyzer", analyzer}}), frames) << analyzer;
    EXPECT_EQ(n.sum("framehive_frames_analysed_total", {{"analyzer", analyzer}}), frames) << analyzer;
  }
  EXPECT_EQ(n.sum("framehive_frames_decoded_total"), frames);
  EXPECT_EQ(k.sum("framehive_videos", {{"state", "done"}}), 1);
  EXPECT_EQ(k.sum("framehive_videos", {{"state", "running"}}), 0);
  EXPECT_GT(k.sum("framehive_result_batches_total"), 0);
  EXPECT_EQ(k.sum("framehive_result_batch_commit_seconds_count"), k.sum("framehive_result_batches_total"));
  EXPECT_EQ(n.sum("framehive_result_batch_round_trip_seconds_count"),
            k.sum("framehive_result_batches_total"));
  EXPECT_EQ(n.sum("framehive_worker_restarts_total"), 0);
  EXPECT_EQ(n.sum("framehive_redelivered_frames_total"), 0);
  EXPECT_EQ(k.sum("framehive_nodes"), 1);
  EXPECT_EQ(k.types["framehive_frames_stored_total"], "counter");
  EXPECT_EQ(k.types["framehive_result_batch_commit_seconds"], "histogram");
  EXPECT_EQ(n.types["framehive_ring_fill_ratio_max"], "gauge");
  expect_conventions(k, "coordinator");
  expect_conventions(n, "node");
}

TEST_F(Metrics, RefusalsAreCountedByReason) {
  const uint16_t coordinator_port = free_port();
  coordinator_flags_ = {"--metrics.port=" + std::to_string(coordinator_port)};
  start_coordinator();
  start_node("n1", 1, 256, {"--metrics.port=0"});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  EXPECT_EQ(get(coordinator_port).sum("framehive_refusals_total"), 0);
  // A second process under a live node's name is refused (name_taken), and keeps trying.
  std::string err;
  auto twin =
      child_process::spawn({bin("framehive-node"), "--coordinator=" + address(), "--name=n1", "--workers=1",
                            "--output-dir=" + (dir_ / "out-twin").string(), "--shm-prefix=" + shm_prefix(),
                            "--shm-budget-mb=256", "--metrics.port=0"},
                           &err, (dir_ / "twin.log").string());
  ASSERT_TRUE(twin) << err;
  scrape k;
  EXPECT_TRUE(wait_until(
      [&] {
        k = get(coordinator_port);
        return k.sum("framehive_refusals_total", {{"reason", "name_taken"}}) >= 1;
      },
      std::chrono::seconds(30)));
  EXPECT_EQ(k.sum("framehive_refusals_total"), k.sum("framehive_refusals_total", {{"reason", "name_taken"}}));
  EXPECT_EQ(k.sum("framehive_nodes"), 1);
  expect_conventions(k, "coordinator");
  stop(*twin);
}

}  // namespace
}  // namespace framehive::testing
