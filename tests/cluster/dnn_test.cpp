// A DNN model shipped with the job (issue 13 item 5), with the real binaries
// on loopback: the CLI uploads a model the test wrote (a tiny Darknet cfg,
// its weights and names) from a folder the node may not read, the node
// fetches it into its blob cache before the video's consumers start, and
// every frame's detect result shows the class the weights make fire; the
// model survives a coordinator restart; a job chooses built-in classes; a
// missing, corrupt or mismatched model fails its video naming the file while
// the cluster goes on serving.

#include <filesystem>
#include <string>

#include "tests/analysis/tiny_models.hpp"
#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

class Dnn : public cluster {
 protected:
  /// A coordinator and one node that may only open local files below a
  /// folder of its own: the client's model and video are outside it.
  void start_fenced(bool with_coordinator = true) {
    const fs::path root = dir_ / "node-root";
    fs::create_directories(root);
    if (with_coordinator)
      start_coordinator();
    start_node("n1", 2, 1024, {"--inputs.allowed-roots=[\"" + root.string() + "\"]"});
    ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  }

  /// 2 s of 10 fps, 128x128, black with a red square filling the bottom-left quadrant.
  std::string make_red_clip(const std::string& name) {
    const auto path = (dir_ / name).string();
    fs::create_directories(fs::path(path).parent_path());
    auto r = run_command("ffmpeg -v error -y -nostdin -f lavfi -i color=c=black:s=128x128:r=10:d=2 "
                         "-vf drawbox=x=0:y=64:w=64:h=64:color=red@1:t=fill -c:v libx264 -preset ultrafast "
                         "-pix_fmt yuv420p '" + path + "' 2>&1");
    EXPECT_EQ(r.code, 0) << r.out;
    return path;
  }

  /// The options that give the model to a job (input 32x32: a 2x2 grid of 16-pixel cells).
  static std::string model_args(const tiny_model_files& m) {
    return " --detect-model '" + m.network + "' --detect-weights '" + m.weights + "' --detect-names '" + m.names +
           "' --detect-size 32x32 --detect-scale 0.00392157 --detect-threshold 0.5";
  }

  uint64_t submit_json(const std::string& args) {
    auto j = cli_json("submit " + args + " --json");
    return j.is_object() ? j.value("job", uint64_t{0}) : 0;
  }

  json video_of(uint64_t job) {
    auto r = cli_json("results " + std::to_string(job) + " --json --frames");
    return r.is_object() && r["videos"].size() == 1 ? r["videos"][0] : json();
  }

  /// Every frame of detect found the red square, and nothing else, where the weights put it.
  static void expect_red_square_everywhere(const json& v, std::size_t frames) {
    const auto& d = v["analyzers"]["detect"];
    ASSERT_EQ(d["frames"].size(), frames) << d.dump();
    for (const auto& f : d["frames"]) {
      EXPECT_EQ(f["red_thing"], 1) << f.dump();
      EXPECT_EQ(f["blue_thing"], 0) << f.dump();
      ASSERT_EQ(f["boxes"].size(), 1u) << f.dump();
      EXPECT_EQ(f["boxes"][0], (json{{"class", "red_thing"}, {"x", 0}, {"y", 64}, {"w", 64}, {"h", 64}}));
    }
    const auto& s = d["summary"];
    EXPECT_EQ(s["total_red_thing"], frames) << s.dump();
    EXPECT_EQ(s["frames_with_red_thing"], frames) << s.dump();
    EXPECT_EQ(s["total_blue_thing"], 0) << s.dump();
    EXPECT_EQ(s["top_classes"], json::array({"red_thing"})) << s.dump();
  }

  /// The job's only video failed with an error that says each of `parts`.
  void expect_failed_naming(uint64_t job, const std::vector<std::string>& parts) {
    ASSERT_NE(job, 0u) << cli_stderr();
    EXPECT_EQ(wait_job(job), "failed");
    const auto s = cli_json("status " + std::to_string(job) + " --json");
    const std::string error = s["videos"][0].value("error", "");
    for (const auto& p : parts)
      EXPECT_NE(error.find(p), std::string::npos) << "the error does not say '" << p << "': " << error;
  }
};

}  // namespace

TEST_F(Dnn, AModelUploadedAtSubmitRunsOnANodeThatCannotSeeItsFolder) {
  const auto model = write_darknet_model(dir_ / "client" / "model", 16);
  const auto clip = make_red_clip("client/red.mp4");
  start_fenced();
  const auto job = submit_json("'" + clip + "' --analyzers detect,stats" + model_args(model));
  ASSERT_NE(job, 0u) << cli_stderr();
  // The node cannot have read them from here: they are gone once submitted.
  fs::remove_all(dir_ / "client" / "model");
  ASSERT_EQ(wait_job(job), "done") << cli_json("status " + std::to_string(job) + " --json").dump();
  const auto v = video_of(job);
  expect_red_square_everywhere(v, 20);
  EXPECT_EQ(v["analyzers"]["stats"]["frames"].size(), 20u);  // the video's other analyzer, unaffected
  // The node got the three files from the coordinator, into its cache.
  const auto log = run_command("cat '" + (dir_ / "n1.log").string() + "'").out;
  for (const char* name : {"tiny.cfg", "tiny.weights", "tiny.names"})
    EXPECT_NE(log.find(std::string("(") + name + ", "), std::string::npos) << name << " not fetched:\n" << log;
}

TEST_F(Dnn, AQueuedJobKeepsItsModelAcrossACoordinatorRestart) {
  const auto model = write_darknet_model(dir_ / "client" / "model", 16);
  const auto clip = make_red_clip("client/red.mp4");
  start_coordinator();  // no node yet: the job waits in the queue
  ASSERT_TRUE(wait_until([&] { return cli("status --json").code == 0; }, std::chrono::seconds(30)));
  const auto job = submit_json("'" + clip + "' --analyzers detect" + model_args(model));
  ASSERT_NE(job, 0u) << cli_stderr();
  fs::remove_all(dir_ / "client" / "model");
  stop(coordinator_);
  start_coordinator();
  start_fenced(false);
  ASSERT_EQ(wait_job(job), "done");
  expect_red_square_everywhere(video_of(job), 20);
}

TEST_F(Dnn, AJobChoosesBuiltInClassesOverTheNodesSetting) {
  const auto clip = make_clip("clip.mp4", 1, 10);
  start_cluster({"n1"}, {"--analyzers.detect-classes=[\"person\", \"face\"]"});
  const auto job = submit_json("--node-visible '" + clip + "' --analyzers detect --detect-classes licence_plate");
  ASSERT_EQ(wait_job(job), "done");
  const auto v = video_of(job);
  for (const auto& f : v["analyzers"]["detect"]["frames"]) {
    EXPECT_TRUE(f.contains("licence_plate")) << f.dump();
    EXPECT_FALSE(f.contains("person")) << f.dump();
    EXPECT_FALSE(f.contains("face")) << f.dump();
  }
  EXPECT_TRUE(v["analyzers"]["detect"]["summary"].contains("total_licence_plate"));
  EXPECT_FALSE(v["analyzers"]["detect"]["summary"].contains("total_person"));
  // An unknown class is refused before anything is sent.
  auto r = cli("submit --node-visible '" + clip + "' --analyzers detect --detect-classes unicorn --json");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(cli_stderr().find("'unicorn'"), std::string::npos) << cli_stderr();
}

TEST_F(Dnn, AMissingCorruptOrMismatchedModelFailsItsVideoNamingTheFileAndTheClusterServesOn) {
  const auto clip = make_red_clip("client/red.mp4");
  start_fenced();

  // Missing on this machine: the CLI refuses before submitting, naming it (exit 8).
  auto missing = write_darknet_model(dir_ / "client" / "missing", 16);
  fs::remove(missing.weights);
  auto r = cli("submit '" + clip + "' --analyzers detect" + model_args(missing) + " --json");
  EXPECT_EQ(r.code, 8) << r.out;
  EXPECT_NE(cli_stderr().find(missing.weights), std::string::npos) << cli_stderr();
  EXPECT_EQ(cli_json("status --json")["jobs"].size(), 0u) << "a job was submitted";

  // Weights cut short (corrupt for this cfg): uploaded fine, refused by the worker that loads them.
  auto cut = write_darknet_model(dir_ / "client" / "cut", 16);
  fs::resize_file(cut.weights, fs::file_size(cut.weights) - 8);
  expect_failed_naming(submit_json("'" + clip + "' --analyzers detect,stats" + model_args(cut)),
                       {"tiny.weights", "does not fit", "tiny.cfg"});

  // A names file with fewer classes than the model outputs.
  auto one_name = write_darknet_model(dir_ / "client" / "one-name", 16);
  write_names(one_name.names, {"red_thing"});
  expect_failed_naming(submit_json("'" + clip + "' --analyzers detect" + model_args(one_name)),
                       {"tiny.names", "names 1 classes", "outputs 2"});

  // A cfg that is not one.
  auto garbage = write_darknet_model(dir_ / "client" / "garbage", 16);
  write_text(garbage.network, "[convolutional]\nfilters=many\n");
  expect_failed_naming(submit_json("'" + clip + "' --analyzers detect" + model_args(garbage)),
                       {"tiny.cfg", "cannot load"});

  // A path on the node (--node-visible) that is not there.
  const std::string absent = (dir_ / "node-root" / "absent.cfg").string();
  auto node_side = write_darknet_model(dir_ / "node-root" / "model", 16);
  const auto node_clip = make_red_clip("node-root/red.mp4");
  expect_failed_naming(
      submit_json("--node-visible '" + node_clip + "' --analyzers detect --detect-model '" + absent +
                  "' --detect-weights '" + node_side.weights + "' --detect-names '" + node_side.names + "'"),
      {absent, "missing"});

  // The cluster goes on: the good model still runs.
  auto good = write_darknet_model(dir_ / "client" / "good", 16);
  const auto job = submit_json("'" + clip + "' --analyzers detect" + model_args(good));
  ASSERT_EQ(wait_job(job), "done");
  expect_red_square_everywhere(video_of(job), 20);
}
