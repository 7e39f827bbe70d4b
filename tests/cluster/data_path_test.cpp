// The data path without a shared disk (issue 12), with the real binaries on
// loopback: a node that may not read the client's folder runs the client's
// video because the CLI uploads it, with per-frame results equal to a run
// where the node opens the same file itself; the same bytes are uploaded only
// once; `framehive fetch` brings the thumbnails back, verified, and the node
// keeps no copy; bad local files fail in the CLI, naming the file, while the
// cluster goes on serving.

#include <filesystem>
#include <fstream>
#include <string>

#include "common/digest.hpp"
#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive;
using namespace framehive::testing;
namespace fs = std::filesystem;

namespace {

class DataPath : public cluster {
 protected:
  /// A node that may only open local files below an empty folder of its own:
  /// the client's files are outside it, so only an upload lets it run them.
  void start_fenced_node(const std::string& name) {
    const fs::path root = dir_ / ("root-" + name);
    fs::create_directories(root);
    start_node(name, 2, 1024, {"--inputs.allowed-roots=[\"" + root.string() + "\"]"});
  }

  /// Submits with the CLI's default for local files (upload) unless `args`
  /// say otherwise; independent of what the fixture's submit() adds.
  uint64_t submit_as_given(const std::string& args) {
    auto j = cli_json("submit " + args + " --json");
    return j.is_object() ? j.value("job", uint64_t{0}) : 0;
  }

  /// Every frame of `analyzer` in the job's results, without the timing field.
  nlohmann::json frames_of(uint64_t job, const std::string& analyzer) {
    auto r = cli_json("results " + std::to_string(job) + " --json --frames");
    if (!r.is_object() || r["videos"].size() != 1)
      return nlohmann::json::array();
    auto frames = r["videos"][0]["analyzers"][analyzer]["frames"];
    for (auto& f : frames)
      f.erase("ms");
    return frames;
  }

  std::size_t files_with_extension(const fs::path& dir, const std::string& ext) const {
    std::size_t n = 0;
    if (fs::exists(dir))
      for (const auto& f : fs::recursive_directory_iterator(dir))
        n += f.is_regular_file() && f.path().extension() == ext;
    return n;
  }

  /// Submits `file` (uploaded by default) and expects the CLI to refuse it
  /// before anything reaches the cluster, naming the file.
  void expect_refused(const std::string& file, const std::string& cause) {
    auto r = cli("submit '" + file + "' --analyzers stats --json");
    EXPECT_NE(r.code, 0) << file << " was accepted: " << r.out;
    const auto err = cli_stderr();
    EXPECT_NE(err.find(file), std::string::npos) << "the error does not name the file: " << err;
    EXPECT_NE(err.find(cause), std::string::npos) << "the error does not say '" << cause << "': " << err;
  }
};

}  // namespace

TEST_F(DataPath, AFencedNodeRunsAnUploadedClipWithTheSameFramesAsADirectRun) {
  const fs::path client = dir_ / "client";
  fs::create_directories(client);
  const std::string clip = make_clip("client/clip.mp4", 2, 15);
  start_coordinator();
  start_node("direct");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto direct = submit_as_given("--node-visible '" + clip + "' --analyzers stats");
  ASSERT_NE(direct, 0u) << cli_stderr();
  ASSERT_EQ(wait_job(direct), "done");
  const auto expected = frames_of(direct, "stats");
  ASSERT_EQ(expected.size(), 30u);
  stop(nodes_["direct"]);
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 0; }, std::chrono::seconds(30)))
      << "the stopped node stayed registered";

  start_fenced_node("fenced");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto uploaded = submit_as_given("'" + clip + "' --analyzers stats");
  ASSERT_NE(uploaded, 0u) << cli_stderr();
  ASSERT_EQ(wait_job(uploaded), "done");
  const auto r = cli_json("results " + std::to_string(uploaded) + " --json");
  const std::string input = r["videos"][0]["input"].get<std::string>();
  EXPECT_EQ(input.rfind("blob:", 0), 0u) << input;
  EXPECT_NE(input.find("/clip.mp4"), std::string::npos) << input;
  EXPECT_EQ(frames_of(uploaded, "stats"), expected);
}

TEST_F(DataPath, TheSameBytesAreUploadedOnce) {
  const std::string clip = make_clip("clip.mp4", 1, 10);
  const std::string copy = (dir_ / "copy.mp4").string();
  fs::copy_file(clip, copy);
  start_coordinator();
  start_fenced_node("n1");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  auto first = cli("submit '" + clip + "' --analyzers stats");
  ASSERT_EQ(first.code, 0) << cli_stderr();
  EXPECT_EQ(cli_stderr().find("already stored"), std::string::npos) << cli_stderr();
  auto second = cli("submit '" + copy + "' --analyzers stats");
  ASSERT_EQ(second.code, 0) << cli_stderr();
  EXPECT_NE(cli_stderr().find("already stored"), std::string::npos) << cli_stderr();
  EXPECT_NE(cli_stderr().find(copy), std::string::npos) << cli_stderr();
  for (const auto& out : {first.out, second.out}) {
    const auto job = std::stoull(out);
    EXPECT_EQ(wait_job(job), "done");
  }
}

TEST_F(DataPath, FetchBringsBackEveryThumbnailVerifiedAndTheNodeKeepsNone) {
  const std::string clip = make_clip("clip.mp4", 6, 15);
  start_coordinator();
  start_fenced_node("n1");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto job = submit_as_given("'" + clip + "' --analyzers thumbnails");
  ASSERT_NE(job, 0u) << cli_stderr();
  ASSERT_EQ(wait_job(job), "done");
  const auto r = cli_json("results " + std::to_string(job) + " --json");
  const auto count = r["videos"][0]["analyzers"]["thumbnails"]["summary"]["count"].get<std::size_t>();
  ASSERT_GE(count, 2u);
  ASSERT_EQ(r["videos"][0]["artifacts"].size(), count) << r.dump();

  const fs::path out = dir_ / "fetched";
  const auto f = cli_json("fetch " + std::to_string(job) + " --out '" + out.string() + "' --json");
  ASSERT_EQ(f["files"].size(), count) << f.dump();
  for (const auto& file : f["files"]) {
    const auto path = file["path"].get<std::string>();
    EXPECT_EQ(fs::path(path).parent_path(), out / ("video-" + std::to_string(file["video"].get<uint64_t>())) /
                                                 "thumbnails");
    auto sha = sha256_of_file(path);
    ASSERT_TRUE(sha) << path;
    EXPECT_EQ(*sha, file["sha256"].get<std::string>()) << path;
  }
  EXPECT_EQ(files_with_extension(out, ".jpg"), count);
  EXPECT_EQ(files_with_extension(dir_ / "out-n1", ".jpg"), 0u) << "the node kept its copies";
}

TEST_F(DataPath, FetchOfAJobWithoutArtifactsOrIntoAFolderThatCannotBeWrittenFailsClearly) {
  const std::string clip = make_clip("clip.mp4", 1, 10);
  start_coordinator();
  start_fenced_node("n1");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto plain = submit_as_given("'" + clip + "' --analyzers stats");
  ASSERT_NE(plain, 0u) << cli_stderr();
  ASSERT_EQ(wait_job(plain), "done");
  EXPECT_EQ(cli("fetch " + std::to_string(plain)).code, 7);
  EXPECT_NE(cli_stderr().find("no artifacts"), std::string::npos) << cli_stderr();

  const auto thumbs = submit_as_given("'" + clip + "' --analyzers thumbnails");

  ASSERT_NE(thumbs, 0u) << cli_stderr();
  ASSERT_EQ(wait_job(thumbs), "done");
  // Below a regular file no folder can be made, even by root.
  const std::string blocked = clip + "/out";
  EXPECT_EQ(cli("fetch " + std::to_string(thumbs) + " --out '" + blocked + "'").code, 8);
  EXPECT_NE(cli_stderr().find(blocked), std::string::npos) << cli_stderr();
  EXPECT_EQ(cli("fetch " + std::to_string(thumbs) + " --out '" + (dir_ / "ok").string() + "'").code, 0)
      << "the failed fetch broke the next one: " << cli_stderr();
}

TEST_F(DataPath, BadLocalFilesFailInTheCliNamingTheFileAndTheClusterKeepsServing) {
  const std::string empty = (dir_ / "empty.mp4").string();
  std::ofstream(empty).close();
  const std::string text = (dir_ / "notes.mp4").string();
  std::ofstream(text) << "this is not a video\n";
  const std::string missing = (dir_ / "missing.mp4").string();
  const std::string clip = make_clip("clip.mp4", 1, 10);
  start_coordinator();
  start_fenced_node("n1");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));

  expect_refused(empty, "0 bytes");
  expect_refused(text, "not a video");
  expect_refused(missing, "no such file");
  const std::string locked = (dir_ / "locked.mp4").string();
  fs::copy_file(clip, locked);
  fs::permissions(locked, fs::perms::none);
  if (::access(locked.c_str(), R_OK) != 0)  // root reads it anyway
    expect_refused(locked, "cannot read");
  EXPECT_TRUE(cli_json("status --json")["jobs"].empty()) << "a refused file made a job";
  const auto job = submit_as_given("'" + clip + "' --analyzers stats");
  ASSERT_NE(job, 0u) << cli_stderr();
  EXPECT_EQ(wait_job(job), "done");
}
