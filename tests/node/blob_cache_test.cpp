// The node's blob cache on a real temp folder: real files, real hashes.

#include "node/blob_cache.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/digest.hpp"

namespace fs = std::filesystem;
using framehive::blob_cache;

namespace {

class BlobCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("blob-cache-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string content(char c, std::size_t n) { return std::string(n, c); }

  static std::string sha_of(const std::string& bytes) {
    framehive::sha256 h;
    h.update(bytes.data(), bytes.size());
    return h.hex_digest();
  }

  /// Fetches `bytes` into the cache as the node does: temp file, then finish.
  std::string fetch(blob_cache& c, const std::string& bytes, const std::string& name = "v.mp4") {
    const auto sha = sha_of(bytes);
    auto temp = c.begin_download(sha, bytes.size(), name);
    EXPECT_TRUE(temp.ok()) << temp.error();
    std::ofstream(*temp, std::ios::binary) << bytes;
    auto path = c.finish_download(sha);
    EXPECT_TRUE(path.ok()) << path.error();
    return sha;
  }

  fs::path dir_;
};

TEST_F(BlobCache, MissThenFetchedBlobIsAHit) {
  blob_cache c(dir_.string(), 1000);
  ASSERT_TRUE(c.open().ok());
  const std::string bytes = content('a', 100);
  EXPECT_FALSE(c.acquire(sha_of(bytes)));
  const auto sha = fetch(c, bytes);
  EXPECT_EQ(c.use_count(sha), 1u);
  c.release(sha);
  auto hit = c.acquire(sha);
  ASSERT_TRUE(hit);
  std::ifstream in(*hit, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), bytes);
  EXPECT_FALSE(fs::exists(*hit + framehive::blob_temp_suffix));
}

TEST_F(BlobCache, HashMismatchDeletesTheDownloadAndNamesTheBlob) {
  blob_cache c(dir_.string(), 1000);
  ASSERT_TRUE(c.open().ok());
  const auto sha = sha_of(content('a', 10));
  auto temp = c.begin_download(sha, 10, "clip.mp4");
  ASSERT_TRUE(temp.ok());
  std::ofstream(*temp, std::ios::binary) << content('b', 10);  // corrupted on the way
  auto done = c.finish_download(sha);
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.error().find(sha), std::string::npos);
  EXPECT_NE(done.error().find("clip.mp4"), std::string::npos);
  EXPECT_NE(done.error().find("mismatch"), std::string::npos);
  EXPECT_FALSE(fs::exists(*temp));
  EXPECT_FALSE(c.acquire(sha));
  EXPECT_EQ(c.used_bytes(), 0u);
}

TEST_F(BlobCache, EvictsLeastRecentlyUsedFirst) {
  blob_cache c(dir_.string(), 300);
  ASSERT_TRUE(c.open().ok());
  const auto a = fetch(c, content('a', 100));
  const auto b = fetch(c, content('b', 100));
  const auto d = fetch(c, content('d', 100));
  for (const auto& s : {a, b, d})
    c.release(s);
  c.acquire(a);  // a is now the most recent
  c.release(a);
  const auto e = fetch(c, content('e', 100));  // needs room: b goes
  EXPECT_TRUE(c.contains(a));
  EXPECT_FALSE(c.contains(b));
  EXPECT_TRUE(c.contains(d));
  EXPECT_TRUE(c.contains(e));
  EXPECT_FALSE(fs::exists(dir_ / b));
  EXPECT_LE(c.used_bytes(), 300u);
}

TEST_F(BlobCache, BlobInUseIsNeverEvicted) {
  blob_cache c(dir_.string(), 200);
  ASSERT_TRUE(c.open().ok());
  const auto a = fetch(c, content('a', 100));  // in use (not released)
  const auto b = fetch(c, content('b', 100));
  c.release(b);
  const auto d = fetch(c, content('d', 100));  // b goes, a stays
  EXPECT_TRUE(c.contains(a));
  EXPECT_FALSE(c.contains(b));
  // Both in use now: no room, and the error says why.
  auto refused = c.begin_download(sha_of(content('e', 100)), 100, "e.mp4");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("cache full"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / a));
  EXPECT_TRUE(fs::exists(dir_ / d));
}

TEST_F(BlobCache, SecondCopyOfABlobInUseKeepsEveryUse) {
  blob_cache c(dir_.string(), 1000);
  ASSERT_TRUE(c.open().ok());
  const auto a = fetch(c, content('a', 100));  // video 1 uses it
  fetch(c, content('a', 100));                 // video 2 fetched the same bytes meanwhile
  EXPECT_EQ(c.use_count(a), 2u);
  EXPECT_EQ(c.used_bytes(), 100u);
  c.release(a);
  EXPECT_EQ(c.use_count(a), 1u);  // still in use by the other: not evictable
}

TEST_F(BlobCache, VideoLargerThanTheWholeCacheIsRefused) {
  blob_cache c(dir_.string(), 1 << 20);
  ASSERT_TRUE(c.open().ok());
  auto refused = c.begin_download(sha_of("x"), 3 << 20, "big.mp4");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), "cache too small: big.mp4 needs 3.0 MiB, cache holds 1.0 MiB");
  EXPECT_FALSE(c.downloading(sha_of("x")));
}

TEST_F(BlobCache, RestartFindsBlobsAndRemovesTempLeftovers) {
  std::string a, b;
  {
    blob_cache c(dir_.string(), 1000);
    ASSERT_TRUE(c.open().ok());
    a = fetch(c, content('a', 100));
    b = sha_of(content('b', 100));
    auto temp = c.begin_download(b, 100, "b.mp4");
    ASSERT_TRUE(temp.ok());
    std::ofstream(*temp, std::ios::binary) << content('b', 40);  // the node dies mid-download
  }
  ASSERT_TRUE(fs::exists(dir_ / (b + framehive::blob_temp_suffix)));
  blob_cache again(dir_.string(), 1000);
  ASSERT_TRUE(again.open().ok());
  EXPECT_FALSE(fs::exists(dir_ / (b + framehive::blob_temp_suffix)));
  EXPECT_TRUE(again.acquire(a));
  EXPECT_FALSE(again.acquire(b));
  EXPECT_EQ(again.used_bytes(), 100u);
}

TEST_F(BlobCache, AbortedDownloadLeavesNothing) {
  blob_cache c(dir_.string(), 1000);
  ASSERT_TRUE(c.open().ok());
  const auto sha = sha_of("abc");
  auto temp = c.begin_download(sha, 3, "v.mp4");
  ASSERT_TRUE(temp.ok());
  EXPECT_TRUE(c.downloading(sha));
  std::ofstream(*temp, std::ios::binary) << "ab";
  c.abort_download(sha);
  EXPECT_FALSE(fs::exists(*temp));
  EXPECT_FALSE(c.downloading(sha));
  EXPECT_EQ(c.used_bytes(), 0u);
}

TEST(BlobInput, ParsesHashAndNameAndRefusesABadHash) {
  const std::string sha(64, 'a');
  auto ok = framehive::parse_blob_input("blob:" + sha + "/clip.mp4");
  ASSERT_TRUE(ok && ok->ok());
  EXPECT_EQ((*ok)->first, sha);
  EXPECT_EQ((*ok)->second, "clip.mp4");
  EXPECT_FALSE(framehive::parse_blob_input("/data/clip.mp4"));
  auto bad = framehive::parse_blob_input("blob:ABC/clip.mp4");
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->ok());
}

}  // namespace
