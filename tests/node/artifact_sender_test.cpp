// What a node sends back for a finished video, from a real output folder.

#include "node/artifact_sender.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using framehive::artifact_sender;

namespace {

TEST(ArtifactSender, SendsEveryFileInOrderedChunksThenRemovesTheFolders) {
  const fs::path job = fs::temp_directory_path() / ("artifact-sender-" + std::to_string(getpid())) / "job-1";
  const fs::path video = job / "video-2";
  fs::remove_all(job.parent_path());
  fs::create_directories(video / "thumbnails");
  fs::create_directories(video / "motion");  // an analyzer that wrote nothing
  std::ofstream(video / "thumbnails" / "a.jpg", std::ios::binary) << std::string(10, 'a');
  std::ofstream(video / "thumbnails" / "b.jpg", std::ios::binary) << "";

  auto s = artifact_sender::scan(video.string(), 2, 7, 4);
  ASSERT_TRUE(s.ok()) << s.error();
  ASSERT_EQ(s->files().size(), 2u);
  std::string got;
  std::vector<uint64_t> offsets;
  for (int guard = 0; guard < 10 && !s->done(); ++guard) {
    auto c = s->next();
    ASSERT_TRUE(c.ok()) << c.error();
    ASSERT_TRUE(*c);
    const auto& chunk = **c;
    EXPECT_EQ(chunk.video, 2u);
    EXPECT_EQ(chunk.epoch, 7u);
    EXPECT_EQ(chunk.analyzer, "thumbnails");
    EXPECT_LE(chunk.data.size(), 4u);
    offsets.push_back(chunk.offset);
    if (chunk.name == "a.jpg")
      got.append(chunk.data.begin(), chunk.data.end());
    s->on_accepted(chunk.offset + chunk.data.size());
  }
  EXPECT_TRUE(s->done());
  EXPECT_EQ(got, std::string(10, 'a'));
  EXPECT_EQ(offsets, (std::vector<uint64_t>{0, 4, 8, 0}));  // a.jpg in 3 chunks, the empty b.jpg in one
  auto end = s->next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
  s->remove_local();
  EXPECT_FALSE(fs::exists(video));
  EXPECT_FALSE(fs::exists(job));
  fs::remove_all(job.parent_path());
}

TEST(ArtifactSender, FileLostByTheCoordinatorStartsOverFromByteZero) {
  const fs::path video = fs::temp_directory_path() / ("artifact-restart-" + std::to_string(getpid())) / "video-1";
  fs::create_directories(video / "thumbnails");
  std::ofstream(video / "thumbnails" / "a.jpg", std::ios::binary) << std::string(10, 'a');
  auto s = artifact_sender::scan(video.string(), 1, 1, 4);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->restart_file());  // at byte 0: nothing to restart
  s->on_accepted(4);
  ASSERT_TRUE(s->restart_file());
  auto c = s->next();
  ASSERT_TRUE(c.ok() && *c);
  EXPECT_EQ((*c)->offset, 0u);
  fs::remove_all(video.parent_path());
}

TEST(ArtifactSender, MissingFolderHasNothingToSend) {
  auto s = artifact_sender::scan("/nonexistent/framehive/video-1", 1, 1);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->done());
}

}  // namespace
