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

  /// A clip whose bytes are mostly noise, so a few seconds make megabytes
  /// (about 0.7 MB per second at 320x240).
  std::string make_noisy_clip(const std::string& name, int seconds) {
    const auto path = (dir_ / name).string();
    auto r = run_command("ffmpeg -v error -y -nostdin -f lavfi -i testsrc2=size=320x240:rate=15 -t " +
                         std::to_string(seconds) +
                         " -vf noise=alls=40:allf=t -c:v libx264 -preset ultrafast -pix_fmt yuv420p '" + path +
                         "' 2>&1");
    EXPECT_EQ(r.code, 0) << r.out;
    return path;
  }

  /// The job's only video: its state and error as `status JOB --json` shows them.
  std::pair<std::string, std::string> video_outcome_of(uint64_t job) {
    auto s = cli_json("status " + std::to_string(job) + " --json");
    if (!s.is_object() || !s.contains("videos") || s["videos"].empty())
      return {"", s.dump()};
    const auto& v = s["videos"][0];
    return {v.value("state", std::string()), v.value("error", std::string())};
  }

  /// Files of unfinished uploads in the coordinator's blob store.
  std::size_t partial_files() const {
    const fs::path partial = dir_ / "data" / "blobs" / "partial";
    std::size_t n = 0;
    if (fs::exists(partial))
      for (const auto& f : fs::directory_iterator(partial))
        n += f.is_regular_file();
    return n;
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
  if (::geteuid() == 0) {
    // Root reads any file: the CLI runs as nobody, for whom it is unreadable.
    auto r = run_command("setpriv --reuid=65534 --regid=65534 --clear-groups " + bin("framehive") +
                         " --coordinator " + address() + " submit '" + locked + "' --analyzers stats 2>&1");
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_NE(r.out.find(locked), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("cannot read: Permission denied"), std::string::npos) << r.out;
  } else {
    expect_refused(locked, "cannot read");
  }
  EXPECT_TRUE(cli_json("status --json")["jobs"].empty()) << "a refused file made a job";
  const auto job = submit_as_given("'" + clip + "' --analyzers stats");
  ASSERT_NE(job, 0u) << cli_stderr();
  EXPECT_EQ(wait_job(job), "done");
}

// -- bad inputs on the data path, end to end (issue 12, item 7) ---------------------------

TEST_F(DataPath, AnUploadOverTheStoreLimitIsRefusedNamingTheFileAndTheOption) {
  const std::string big = make_noisy_clip("big.mp4", 2);
  const std::string small = make_clip("small.mp4", 1, 10);
  ASSERT_GT(fs::file_size(big), 200'000u);
  ASSERT_LT(fs::file_size(small), 200'000u);
  coordinator_flags_ = {"--storage.max-blob-bytes=200000"};
  start_coordinator();
  start_fenced_node("n1");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));

  auto r = cli("submit '" + big + "' --analyzers stats");
  EXPECT_NE(r.code, 0) << r.out;
  const auto err = cli_stderr();
  EXPECT_NE(err.find(big), std::string::npos) << err;
  EXPECT_NE(err.find("max-blob-bytes"), std::string::npos) << err;
  EXPECT_TRUE(cli_json("status --json")["jobs"].empty()) << "a refused upload made a job";
  EXPECT_EQ(partial_files(), 0u) << "a refused upload left bytes behind";

  const auto job = submit_as_given("'" + small + "' --analyzers stats");
  ASSERT_NE(job, 0u) << cli_stderr();
  EXPECT_EQ(wait_job(job), "done");
}

namespace {

/// A tmpfs of `size` mounted on `dir` for one test; unmounted (lazily, so open
/// files do not keep it) when the test ends, failed or not.
class small_disk {
 public:
  small_disk(const fs::path& dir, const std::string& size) : dir_(dir) {
    fs::create_directories(dir);
    mounted_ = run_command("mount -t tmpfs -o size=" + size + " framehive-test '" + dir.string() + "' 2>&1").code == 0;
  }
  ~small_disk() {
    if (mounted_)
      run_command("umount -l '" + dir_.string() + "' 2>&1");
  }
  bool mounted() const { return mounted_; }

 private:
  fs::path dir_;
  bool mounted_ = false;
};

}  // namespace

TEST_F(DataPath, AnUploadOntoAFullDiskFailsCleanlyAndTheStoreKeepsServing) {
  small_disk disk(dir_ / "data", "1536k");
  if (!disk.mounted())
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): the full-disk case is not exercised";
  const std::string big = make_noisy_clip("big.mp4", 4);
  const std::string small = make_clip("small.mp4", 1, 10);
  ASSERT_GT(fs::file_size(big), 2'000'000u);
  start_coordinator();
  start_fenced_node("n1");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto before = cli_json("status --json");

  auto r = cli("submit '" + big + "' --analyzers stats");
  EXPECT_NE(r.code, 0) << r.out;
  const auto err = cli_stderr();
  EXPECT_NE(err.find(big), std::string::npos) << err;
  EXPECT_NE(err.find("full"), std::string::npos) << "the error does not say the disk is full: " << err;
  EXPECT_TRUE(cli_json("status --json")["jobs"].empty()) << "a failed upload made a job";
  EXPECT_EQ(partial_files(), 0u) << "the failed upload left its bytes";

  // The space came back: a small upload and its job's results are stored.
  const auto job = submit_as_given("'" + small + "' --analyzers stats");
  ASSERT_NE(job, 0u) << cli_stderr();
  EXPECT_EQ(wait_job(job), "done");
  EXPECT_EQ(frames_of(job, "stats").size(), 10u);
}

TEST_F(DataPath, ANodeCacheTooSmallForTheVideoFailsItNamingTheCacheAndTheNodeKeepsServing) {
  const std::string big = make_noisy_clip("big.mp4", 4);
  const std::string small = make_clip("small.mp4", 1, 10);
  ASSERT_GT(fs::file_size(big), 2'000'000u);
  start_coordinator();
  const fs::path root = dir_ / "root-n1";
  fs::create_directories(root);
  start_node("n1", 2, 1024, {"--inputs.allowed-roots=[\"" + root.string() + "\"]", "--cache.max-mb=1"});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));

  const auto job = submit_as_given("'" + big + "' --analyzers stats");
  ASSERT_NE(job, 0u) << cli_stderr();
  EXPECT_EQ(wait_job(job), "failed");
  const auto [state, error] = video_outcome_of(job);
  EXPECT_EQ(state, "failed");
  EXPECT_NE(error.find("cache too small"), std::string::npos) << error;
  EXPECT_NE(error.find("big.mp4"), std::string::npos) << "the reason does not name the video: " << error;

  const auto next = submit_as_given("'" + small + "' --analyzers stats");
  ASSERT_NE(next, 0u) << cli_stderr();
  EXPECT_EQ(wait_job(next), "done") << "the node stopped serving after refusing a video";
}

TEST_F(DataPath, ABlobCorruptedInTheStoreIsCaughtByTheNodesHashAndFailsOnlyItsVideo) {
  const std::string clip = make_clip("clip.mp4", 1, 10);
  const std::string other = make_clip("other.mp4", 2, 10);
  const auto sha = sha256_of_file(clip);
  ASSERT_TRUE(sha);
  start_coordinator();
  start_fenced_node("n1");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  // Store the bytes without running them on the node: an upload whose job is
  // refused afterwards would also do, but a finished first job is simplest.
  const auto first = submit_as_given("'" + clip + "' --analyzers stats");
  ASSERT_NE(first, 0u) << cli_stderr();
  ASSERT_EQ(wait_job(first), "done");
  // The node keeps a verified copy in its cache; a restart with an empty
  // cache makes it fetch the bytes again, which are now flipped on the
  // coordinator's disk (bit rot, a bad disk, a hand edit).
  stop(nodes_["n1"]);
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 0; }, std::chrono::seconds(30)));
  const fs::path stored = dir_ / "data" / "blobs" / *sha;
  ASSERT_TRUE(fs::exists(stored)) << stored;
  {
    std::fstream f(stored, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(stored) / 2));
    f.put('\x5a').put('\xa5');
  }
  const fs::path root = dir_ / "root-n2";
  fs::create_directories(root);
  start_node("n2", 2, 1024, {"--inputs.allowed-roots=[\"" + root.string() + "\"]"});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));

  const auto again = submit_as_given("'" + clip + "' --analyzers stats");
  ASSERT_NE(again, 0u) << cli_stderr();
  EXPECT_NE(cli_stderr().find("already stored"), std::string::npos) << cli_stderr();
  EXPECT_EQ(wait_job(again), "failed");
  const auto [state, error] = video_outcome_of(again);
  EXPECT_EQ(state, "failed");
  EXPECT_NE(error.find("SHA-256 mismatch"), std::string::npos) << error;
  EXPECT_NE(error.find(*sha), std::string::npos) << "the reason does not name the blob: " << error;
  EXPECT_EQ(frames_of(first, "stats").size(), 10u) << "the first job's committed results changed";

  const auto fine = submit_as_given("'" + other + "' --analyzers stats");
  ASSERT_NE(fine, 0u) << cli_stderr();
  EXPECT_EQ(wait_job(fine), "done");
}

TEST_F(DataPath, ABrokenUploadIsNeverVisibleAndTheNextSubmitResumesWhereItStopped) {
  const std::string big = make_noisy_clip("big.mp4", 8);
  ASSERT_GT(fs::file_size(big), 4'000'000u);
  const auto sha = sha256_of_file(big);
  ASSERT_TRUE(sha);
  start_coordinator();
  start_fenced_node("n1");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));

  auto broken = run_command(std::string(FRAMEHIVE_BROKEN_UPLOAD) + " --coordinator=" + address() + " --file='" +
                            big + "' 2>&1");
  ASSERT_EQ(broken.code, 0) << broken.out;
  const auto at = broken.out.find("acknowledged=");
  ASSERT_NE(at, std::string::npos) << broken.out;
  const uint64_t acknowledged = std::stoull(broken.out.substr(at + 13));
  ASSERT_GT(acknowledged, 0u);
  ASSERT_LT(acknowledged, fs::file_size(big));
  EXPECT_FALSE(fs::exists(dir_ / "data" / "blobs" / *sha)) << "half an upload became a blob";
  EXPECT_EQ(partial_files(), 1u);
  EXPECT_TRUE(cli_json("status --json")["jobs"].empty());

  const auto job = submit_as_given("'" + big + "' --analyzers stats");
  ASSERT_NE(job, 0u) << cli_stderr();
  EXPECT_EQ(wait_job(job), "done");
  EXPECT_EQ(frames_of(job, "stats").size(), 120u);
  const auto log = run_command("cat '" + (dir_ / "coordinator.log").string() + "'").out;
  EXPECT_NE(log.find("starts at byte " + std::to_string(acknowledged)), std::string::npos)
      << "the second upload did not resume at the acknowledged offset " << acknowledged;
  EXPECT_EQ(partial_files(), 0u);
}

TEST_F(DataPath, ANodeFetchesABlobOnceForSeveralJobsAndAfterARestart) {
  const std::string clip = make_clip("clip.mp4", 1, 10);
  start_coordinator();
  start_fenced_node("n1");
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto fetches = [&] {
    const auto log = run_command("cat '" + (dir_ / "n1.log").string() + "'").out;
    std::size_t n = 0;
    for (auto at = log.find("fetching blob"); at != std::string::npos; at = log.find("fetching blob", at + 1))
      ++n;
    return n;
  };
  for (int i = 0; i < 2; ++i) {
    const auto job = submit_as_given("'" + clip + "' --analyzers stats");
    ASSERT_NE(job, 0u) << cli_stderr();
    ASSERT_EQ(wait_job(job), "done");
  }
  EXPECT_EQ(fetches(), 1u) << "the second job fetched the same bytes again";

  stop(nodes_["n1"]);
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 0; }, std::chrono::seconds(30)));
  start_fenced_node("n1");  // same name, same cache folder; a fresh log
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto job = submit_as_given("'" + clip + "' --analyzers stats");
  ASSERT_NE(job, 0u) << cli_stderr();
  ASSERT_EQ(wait_job(job), "done");
  EXPECT_EQ(frames_of(job, "stats").size(), 10u);
  EXPECT_EQ(fetches(), 0u) << "the restarted node fetched a blob its cache holds";
}
