// The coordinator's blob store on a temporary folder: content-addressed and
// stored once, resumable, verified before it is visible, bounded, and
// cleaned of abandoned uploads (a manual clock, no sleeps).

#include "coordinator/blob_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>

namespace framehive {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string sha_of(const std::string& bytes) {
  framehive::sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex_digest();
}

std::size_t files_in(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    n += e.is_regular_file() ? 1 : 0;
  return n;
}

class BlobStore : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "framehive-blobs-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir = pattern;
    open();
  }
  void TearDown() override {
    store.reset();
    fs::remove_all(dir);
  }
  void open() {
    store.reset();
    auto s = blob_store::open(dir, limits, &clk);
    ASSERT_TRUE(s.ok()) << s.error();
    store = std::move(*s);
  }
  /// Uploads `bytes` in chunks of `chunk` bytes; the last progress.
  blob_progress upload(const std::string& bytes, std::size_t chunk = 7) {
    auto b = store->begin(sha_of(bytes), bytes.size());
    EXPECT_TRUE(b.ok()) << (b ? "" : b.error().message);
    if (!b || b->complete)
      return b ? *b : blob_progress{};
    blob_progress p = *b;
    do {
      const std::size_t n = std::min(chunk, bytes.size() - p.offset);
      auto w = store->write(p.upload, p.offset, bytes.data() + p.offset, n);
      EXPECT_TRUE(w.ok()) << (w ? "" : w.error().message);
      if (!w)
        break;
      p = *w;
    } while (!p.complete);
    return p;
  }
  std::string blobs_dir() const { return dir + "/blobs"; }

  std::string dir;
  blob_limits limits;
  manual_clock clk;
  std::unique_ptr<blob_store> store;
};

TEST_F(BlobStore, StoresBytesUnderTheirHashOnceAndServesThemInRanges) {
  const std::string bytes = "frames and more frames, as bytes";
  const auto p = upload(bytes);
  ASSERT_TRUE(p.complete);
  EXPECT_EQ(p.sha256, sha_of(bytes));
  EXPECT_TRUE(store->contains(p.sha256));
  EXPECT_EQ(store->stored_bytes(), bytes.size());
  EXPECT_EQ(files_in(store->partial_dir()), 0u);

  // The same bytes again: complete at once, nothing written.
  auto again = store->begin(p.sha256, bytes.size());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->complete);
  EXPECT_EQ(store->sessions(), 0u);
  EXPECT_EQ(files_in(blobs_dir()), 1u);

  auto first = store->read(p.sha256, 0, 10);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size, bytes.size());
  EXPECT_EQ(std::string(first->data.begin(), first->data.end()), bytes.substr(0, 10));
  auto rest = store->read(p.sha256, 10);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(std::string(rest->data.begin(), rest->data.end()), bytes.substr(10));
  auto past = store->read(p.sha256, bytes.size() + 5);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->data.empty());
  EXPECT_EQ(past->size, bytes.size());

  const std::string unknown(64, 'a');
  EXPECT_EQ(store->read(unknown, 0).error().code, errc::not_found);
  EXPECT_EQ(store->read("../../etc/passwd", 0).error().code, errc::invalid_request);
  EXPECT_EQ(store->begin("ABC", 3).error().code, errc::invalid_request);
}

TEST_F(BlobStore, ASecondSessionOfTheSameBytesResumesWhereTheFirstStopped) {
  const std::string bytes(100, 'x');
  auto b = store->begin(sha_of(bytes), bytes.size());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(store->write(b->upload, 0, bytes.data(), 40).ok());
  // Not visible while partial.
  EXPECT_FALSE(store->contains(sha_of(bytes)));
  EXPECT_EQ(store->read(sha_of(bytes), 0).error().code, errc::not_found);

  auto resumed = store->begin(sha_of(bytes), bytes.size());
  ASSERT_TRUE(resumed.ok());
  EXPECT_FALSE(resumed->complete);
  EXPECT_EQ(resumed->offset, 40u);
  // A gap or an overlap is refused and the session goes on.
  EXPECT_EQ(store->write(resumed->upload, 50, bytes.data(), 10).error().code, errc::invalid_request);
  EXPECT_EQ(store->write(resumed->upload, 0, bytes.data(), 10).error().code, errc::invalid_request);
  auto done = store->write(resumed->upload, 40, bytes.data() + 40, 60);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->complete);
  EXPECT_TRUE(store->contains(sha_of(bytes)));
}

TEST_F(BlobStore, AHashMismatchDiscardsTheUploadAndNothingIsVisible) {
  const std::string announced = "the bytes the client announced";
  std::string sent = announced;
  sent[3] ^= 1;
  auto b = store->begin(sha_of(announced), announced.size());
  ASSERT_TRUE(b.ok());
  auto w = store->write(b->upload, 0, sent.data(), sent.size());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, errc::invalid_request);
  EXPECT_NE(w.error().message.find("not " + sha_of(announced)), std::string::npos) << w.error().message;
  EXPECT_FALSE(store->contains(sha_of(announced)));
  EXPECT_FALSE(store->contains(sha_of(sent)));
  EXPECT_EQ(files_in(store->partial_dir()), 0u);
  EXPECT_EQ(files_in(blobs_dir()), 0u);
  EXPECT_EQ(store->sessions(), 0u);
  EXPECT_EQ(store->stored_bytes(), 0u);
  // More bytes than announced: discarded too.
  auto more = store->begin(sha_of(announced), 4);
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(store->write(more->upload, 0, sent.data(), 5).error().code, errc::invalid_request);
  EXPECT_EQ(files_in(store->partial_dir()), 0u);
}

TEST_F(BlobStore, BlobAndStoreSizeLimitsAreOverLimitErrorsNamingTheOption) {
  limits.max_blob_bytes = 50;
  limits.max_store_bytes = 80;
  open();
  auto big = store->begin(sha_of(std::string(51, 'b')), 51);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, errc::over_limit);
  EXPECT_NE(big.error().message.find("max-blob-bytes"), std::string::npos);
  EXPECT_TRUE(upload(std::string(50, 'a')).complete);
  // 50 stored + 31 would pass 80; a partial upload's promised bytes count too.
  auto over = store->begin(sha_of(std::string(31, 'c')), 31);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, errc::over_limit);
  EXPECT_NE(over.error().message.find("max-store-bytes"), std::string::npos);
  ASSERT_TRUE(store->begin(sha_of(std::string(20, 'd')), 20).ok());
  EXPECT_EQ(store->begin(sha_of(std::string(20, 'e')), 20).error().code, errc::over_limit);
  // So are more uploads at once than the store keeps open.
  limits.max_sessions = 1;
  open();
  ASSERT_TRUE(store->begin_unnamed(1).ok());
  EXPECT_EQ(store->begin_unnamed(1).error().code, errc::over_limit);
  limits = blob_limits{};
  open();
  // A chunk over the wire size is refused.
  auto s = store->begin_unnamed(10);
  ASSERT_TRUE(s.ok());
  std::vector<char> huge(blob_chunk_bytes + 1);
  EXPECT_EQ(store->write(s->upload, 0, huge.data(), huge.size()).error().code, errc::invalid_request);
}

TEST_F(BlobStore, IdleUploadsAreRemovedAfterTheTimeoutAndPartialsAtStart) {
  const std::string bytes(30, 'z');
  auto b = store->begin(sha_of(bytes), bytes.size());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(store->write(b->upload, 0, bytes.data(), 10).ok());
  clk.advance(59min);
  EXPECT_EQ(store->remove_stale(), 0u);
  ASSERT_TRUE(store->write(b->upload, 10, bytes.data() + 10, 10).ok());  // activity: the clock restarts
  clk.advance(59min);
  EXPECT_EQ(store->remove_stale(), 0u);
  clk.advance(2min);
  EXPECT_EQ(store->remove_stale(), 1u);
  EXPECT_EQ(files_in(store->partial_dir()), 0u);
  EXPECT_EQ(store->write(b->upload, 20, bytes.data() + 20, 10).error().code, errc::not_found);

  // A partial left by an earlier run (the process died) is removed at start.
  auto again = store->begin(sha_of(bytes), bytes.size());
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(store->write(again->upload, 0, bytes.data(), 10).ok());
  std::ofstream(store->partial_dir() + "/stray") << "left over";
  store.reset();  // as if killed: a session's destructor would remove its file, so put one back
  std::ofstream(dir + "/blobs/partial/" + sha_of(bytes)) << "half";
  open();
  EXPECT_EQ(files_in(store->partial_dir()), 0u);
  auto fresh = store->begin(sha_of(bytes), bytes.size());
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->offset, 0u);
}

TEST_F(BlobStore, AWriteThatFailsDiscardsTheUploadWithAnErrorNamingTheFile) {
  // The process may write files of at most 16 bytes: the kernel refuses the
  // rest of the chunk (EFBIG), as a full disk would (ENOSPC).
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 16;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string bytes(40, 'w');
  auto b = store->begin(sha_of(bytes), bytes.size());
  auto w = b ? store->write(b->upload, 0, bytes.data(), bytes.size())
             : blob_result<blob_progress>(blob_progress{});
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  ASSERT_TRUE(b.ok());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, errc::internal);
  EXPECT_NE(w.error().message.find(store->partial_dir()), std::string::npos) << w.error().message;
  EXPECT_EQ(store->sessions(), 0u);
  EXPECT_EQ(files_in(store->partial_dir()), 0u);
  EXPECT_FALSE(store->contains(sha_of(bytes)));
  // The store goes on: the same bytes upload fine now.
  EXPECT_TRUE(upload(bytes).complete);
}

TEST_F(BlobStore, AnUnnamedUploadIsNamedByItsBytesAndStoredOnce) {
  const std::string bytes = "a thumbnail";
  auto a = store->begin_unnamed(bytes.size());
  ASSERT_TRUE(a.ok());
  auto done = store->write(a->upload, 0, bytes.data(), bytes.size());
  ASSERT_TRUE(done.ok());
  ASSERT_TRUE(done->complete);
  EXPECT_EQ(done->sha256, sha_of(bytes));
  auto b = store->begin_unnamed(bytes.size());
  ASSERT_TRUE(b.ok());
  auto twice = store->write(b->upload, 0, bytes.data(), bytes.size());
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->sha256, sha_of(bytes));
  EXPECT_EQ(files_in(blobs_dir()), 1u);
  EXPECT_EQ(store->stored_bytes(), bytes.size());
  EXPECT_TRUE(store->remove(done->sha256));
  EXPECT_EQ(store->stored_bytes(), 0u);
  EXPECT_FALSE(store->contains(done->sha256));
}

}  // namespace
}  // namespace framehive
