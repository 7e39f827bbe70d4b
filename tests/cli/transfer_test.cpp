// The CLI's data path against a fake coordinator: the window of chunks in
// flight, and every way an upload or a fetch can go wrong, each leaving
// nothing stored or written.

#include <gtest/gtest.h>

#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include "cli/transfer.hpp"
#include "common/chunk_window.hpp"
#include "common/digest.hpp"

namespace fs = std::filesystem;
using namespace framehive;

namespace {

std::string hash_of(const std::string& bytes) {
  sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex_digest();
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out)
    c = static_cast<char>(gen());
  return out;
}

/// The coordinator as the CLI sees it: it handles each request when it is
/// sent (in order, as the real one does) and queues the reply, so the test can
/// see how many were in flight. An upload becomes a stored blob only when all
/// its bytes arrived and their SHA-256 matches, like blob_store.
class fake_coordinator : public cli::blob_peer {
 public:
  struct partial {
    std::string sha256;
    uint64_t size = 0;
    std::string bytes;
  };

  std::map<std::string, std::string> stored;  ///< complete blobs by SHA-256
  std::map<uint64_t, partial> uploads;        ///< in progress, by session
  std::vector<uint64_t> offsets_sent;         ///< upload chunks and fetch requests, in order
  std::size_t max_in_flight = 0;
  int abandoned = 0;
  /// Called with the 1-based number of each upload chunk before it is handled.
  std::function<void(int)> on_chunk;
  /// Upload chunk number that fails with a store error (0: none).
  int fail_chunk = 0;
  /// Changes a fetched chunk before it is sent back.
  std::function<void(blob_chunk&)> tamper;

  caf::expected<upload_offer> begin(const upload_begin& b) override {
    if (stored.count(b.sha256))
      return upload_offer{0, b.size, true};
    for (auto& [id, p] : uploads)
      if (p.sha256 == b.sha256 && p.size == b.size)
        return upload_offer{id, p.bytes.size(), false};
    const uint64_t id = next_id_++;
    uploads[id] = partial{b.sha256, b.size, {}};
    return upload_offer{id, 0, false};
  }

  void send_chunk(upload_chunk c) override {
    offsets_sent.push_back(c.offset);
    const int n = ++chunks_;
    if (on_chunk)
      on_chunk(n);
    acks_.push_back(handle(c, n));
    max_in_flight = std::max(max_in_flight, acks_.size());
  }

  caf::expected<uint64_t> next_ack() override { return pop(acks_); }

  void request_chunk(const std::string& sha, uint64_t offset) override {
    offsets_sent.push_back(offset);
    auto it = stored.find(sha);
    if (it == stored.end()) {
      chunks_out_.push_back(make_error(errc::not_found, "no blob " + sha));
    } else {
      blob_chunk c;
      c.size = it->second.size();
      c.offset = offset;
      if (offset < c.size) {
        const auto n = std::min<uint64_t>(blob_chunk_bytes, c.size - offset);
        c.data.assign(it->second.begin() + static_cast<std::ptrdiff_t>(offset),
                      it->second.begin() + static_cast<std::ptrdiff_t>(offset + n));
      }
      if (tamper)
        tamper(c);
      chunks_out_.push_back(std::move(c));
    }
    max_in_flight = std::max(max_in_flight, chunks_out_.size());
  }

  caf::expected<blob_chunk> next_chunk() override { return pop(chunks_out_); }

  void abandon() override {
    ++abandoned;
    acks_.clear();
    chunks_out_.clear();
  }

 private:
  caf::expected<uint64_t> handle(const upload_chunk& c, int n) {
    auto it = uploads.find(c.upload);
    if (it == uploads.end())
      return make_error(errc::not_found, "no upload session " + std::to_string(c.upload));
    auto& p = it->second;
    if (n == fail_chunk) {
      uploads.erase(it);  // the store drops a failed session with its partial file
      return make_error(errc::internal, "blob store: cannot write partial/x: No space left on device");
    }
    if (c.offset != p.bytes.size())
      return make_error(errc::invalid_request, "chunk at offset " + std::to_string(c.offset) + ", expected " +
                                                   std::to_string(p.bytes.size()));
    if (p.bytes.size() + c.data.size() > p.size) {
      uploads.erase(it);
      return make_error(errc::invalid_request, "more bytes than announced; discarded");
    }
    p.bytes.append(c.data.data(), c.data.size());
    const uint64_t next = p.bytes.size();
    if (next == p.size) {
      const bool match = hash_of(p.bytes) == p.sha256;
      if (match)
        stored[p.sha256] = p.bytes;
      uploads.erase(it);
      if (!match)
        return make_error(errc::invalid_request, "SHA-256 is not as announced; discarded");
    }
    return next;
  }

  template <class T>
  static caf::expected<T> pop(std::deque<caf::expected<T>>& q) {
    if (q.empty())
      return make_error(errc::internal, "test: a reply was awaited with no request in flight");
    auto x = std::move(q.front());
    q.pop_front();
    return x;
  }

  uint64_t next_id_ = 1;
  int chunks_ = 0;
  std::deque<caf::expected<uint64_t>> acks_;
  std::deque<caf::expected<blob_chunk>> chunks_out_;
};

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("framehive-transfer-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// A local file of these bytes, ready to upload (as prepare_upload would make it).
  cli::local_video make_video(const std::string& bytes) {
    const fs::path p = dir_ / "clip.mp4";
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return cli::local_video{p.string(), "clip.mp4", bytes.size(), hash_of(bytes)};
  }

  /// Every regular file below `d`, hidden ones included.
  static std::vector<std::string> files_below(const fs::path& d) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(d))
      if (e.is_regular_file())
        out.push_back(e.path().filename().string());
    return out;
  }

  fs::path dir_;
};

constexpr uint64_t mib = blob_chunk_bytes;

}  // namespace

// -- the window ----------------------------------------------------------------------------

TEST(ChunkWindow, KeepsAtMostDepthInFlightAndEndsWithAShortLastChunk) {
  chunk_window w(0, 10 * 100 + 50, 100, 4);
  std::vector<chunk_span> asked;
  while (auto c = w.next())
    asked.push_back(*c);
  ASSERT_EQ(asked.size(), 4u);
  EXPECT_EQ(asked[3], (chunk_span{300, 100}));
  EXPECT_EQ(w.in_flight(), 4u);
  EXPECT_TRUE(w.complete(asked[0]));
  EXPECT_EQ(w.next(), (chunk_span{400, 100}));
  EXPECT_FALSE(w.next());
  // Drain everything: the last chunk is the short rest.
  chunk_span last{};
  while (!w.done()) {
    while (auto c = w.next())
      last = *c;
    ASSERT_TRUE(w.complete(*w.oldest()));
  }
  EXPECT_EQ(last, (chunk_span{1000, 50}));
  EXPECT_EQ(w.completed(), 1050u);
  EXPECT_EQ(w.in_flight(), 0u);
}

TEST(ChunkWindow, RefusesAReplyForAnyChunkButTheOldest) {
  chunk_window w(0, 1000, 100, 3);
  const auto a = *w.next();
  const auto b = *w.next();
  EXPECT_FALSE(w.complete(b));                  // out of order
  EXPECT_FALSE(w.complete(chunk_span{0, 50}));  // the right offset, the wrong length
  EXPECT_EQ(w.completed(), 0u);
  EXPECT_TRUE(w.complete(a));
  EXPECT_TRUE(w.complete(b));
  EXPECT_FALSE(w.complete(b));  // nothing in flight any more
}

TEST(ChunkWindow, RestartAsksAgainAfterTheLastCompletedChunk) {
  chunk_window w(200, 1000, 100, 4);  // resumed at byte 200
  EXPECT_EQ(w.next(), (chunk_span{200, 100}));
  w.next();
  w.next();
  ASSERT_TRUE(w.complete(chunk_span{200, 100}));
  w.restart();  // the replies of 300 and 400 failed
  EXPECT_EQ(w.in_flight(), 0u);
  EXPECT_EQ(w.next(), (chunk_span{300, 100}));
}

TEST(ChunkWindow, AnEmptyTransferIsDoneAtOnce) {
  chunk_window w(0, 0, 100, 4);
  EXPECT_TRUE(w.done());
  EXPECT_FALSE(w.next());
}

// -- upload --------------------------------------------------------------------------------

TEST_F(TransferTest, UploadSendsEveryChunkInOrderWithAWindowInFlight) {
  const std::string bytes = random_bytes(11 * mib + mib / 2, 1);
  const auto v = make_video(bytes);
  fake_coordinator peer;
  auto up = cli::upload(peer, v, false);
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(up->bytes_sent, bytes.size());
  EXPECT_EQ(up->input, "blob:" + v.sha256 + "/clip.mp4");
  ASSERT_EQ(peer.stored.count(v.sha256), 1u);
  EXPECT_EQ(peer.stored[v.sha256], bytes);
  ASSERT_EQ(peer.offsets_sent.size(), 12u);
  for (std::size_t i = 0; i < peer.offsets_sent.size(); ++i)
    EXPECT_EQ(peer.offsets_sent[i], i * mib);
  EXPECT_EQ(peer.max_in_flight, transfer_window_chunks);
  EXPECT_EQ(peer.abandoned, 0);
}

TEST_F(TransferTest, UploadOfBytesAlreadyStoredSendsNothing) {
  const std::string bytes = random_bytes(3 * mib, 2);
  const auto v = make_video(bytes);
  fake_coordinator peer;
  peer.stored[v.sha256] = bytes;
  auto up = cli::upload(peer, v, false);
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_TRUE(up->already_stored);
  EXPECT_EQ(up->bytes_sent, 0u);
  EXPECT_TRUE(peer.offsets_sent.empty());
}

TEST_F(TransferTest, UploadResumesFromTheOfferedOffset) {
  const std::string bytes = random_bytes(10 * mib + 7, 3);
  const auto v = make_video(bytes);
  fake_coordinator peer;
  // An earlier upload stopped after three chunks: the store offers byte 3 MiB.
  peer.uploads[41] = fake_coordinator::partial{v.sha256, bytes.size(), bytes.substr(0, 3 * mib)};
  auto up = cli::upload(peer, v, false);
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(up->bytes_sent, bytes.size() - 3 * mib);
  ASSERT_FALSE(peer.offsets_sent.empty());
  EXPECT_EQ(peer.offsets_sent.front(), 3 * mib);
  EXPECT_EQ(peer.offsets_sent.size(), 8u);
  EXPECT_EQ(peer.stored[v.sha256], bytes);
}

TEST_F(TransferTest, AFileThatShrinksDuringTheUploadFailsNamingItAndNothingIsStored) {
  const std::string bytes = random_bytes(12 * mib, 4);
  const auto v = make_video(bytes);
  fake_coordinator peer;
  peer.on_chunk = [&](int n) {
    if (n == 2)
      fs::resize_file(v.path, mib + mib / 2);
  };
  auto up = cli::upload(peer, v, false);
  ASSERT_FALSE(up);
  EXPECT_NE(up.error().message.find(v.path), std::string::npos) << up.error().message;
  EXPECT_NE(up.error().message.find("changed size during the upload"), std::string::npos)
      << up.error().message;
  EXPECT_NE(up.error().message.find("now " + std::to_string(mib + mib / 2)), std::string::npos);
  EXPECT_FALSE(up.error().cause);  // a local problem, not the coordinator's
  EXPECT_TRUE(peer.stored.empty());
  EXPECT_EQ(peer.abandoned, 1);
  EXPECT_LT(peer.offsets_sent.size(), 12u);  // it stopped reading at the change
}

TEST_F(TransferTest, AFileThatGrowsDuringTheUploadFailsNamingItAndNothingIsStored) {
  const std::string bytes = random_bytes(12 * mib, 5);
  const auto v = make_video(bytes);
  fake_coordinator peer;
  peer.on_chunk = [&](int n) {
    if (n == 2)
      std::ofstream(v.path, std::ios::binary | std::ios::app) << "more";
  };
  auto up = cli::upload(peer, v, false);
  ASSERT_FALSE(up);
  EXPECT_NE(up.error().message.find(v.path), std::string::npos) << up.error().message;
  EXPECT_NE(up.error().message.find("changed size"), std::string::npos) << up.error().message;
  EXPECT_TRUE(peer.stored.empty());
  EXPECT_EQ(peer.abandoned, 1);
}

TEST_F(TransferTest, ACoordinatorErrorMidUploadFailsWithItsCauseAndNothingIsStored) {
  const std::string bytes = random_bytes(12 * mib, 6);
  const auto v = make_video(bytes);
  fake_coordinator peer;
  peer.fail_chunk = 3;
  auto up = cli::upload(peer, v, false);
  ASSERT_FALSE(up);
  EXPECT_NE(up.error().message.find(v.path), std::string::npos) << up.error().message;
  EXPECT_NE(up.error().message.find("No space left on device"), std::string::npos) << up.error().message;
  EXPECT_EQ(up.error().cause.code(), static_cast<uint8_t>(errc::internal));
  EXPECT_TRUE(peer.stored.empty());
  EXPECT_TRUE(peer.uploads.empty());
  EXPECT_EQ(peer.abandoned, 1);
}

// -- fetch ---------------------------------------------------------------------------------

namespace {

artifact_row row_of(const std::string& bytes) {
  return artifact_row{7, "thumbnails", "frame-000001.jpg", bytes.size(), hash_of(bytes)};
}

}  // namespace

TEST_F(TransferTest, FetchWritesTheArtifactThroughAWindowAndChecksItsHash) {
  const std::string bytes = random_bytes(9 * mib + 3, 7);
  fake_coordinator peer;
  peer.stored[hash_of(bytes)] = bytes;
  auto f = cli::fetch_artifact(peer, row_of(bytes), dir_.string(), false);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->path, (dir_ / "video-7" / "thumbnails" / "frame-000001.jpg").string());
  std::ifstream in(f->path, std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, bytes);
  EXPECT_EQ(peer.max_in_flight, transfer_window_chunks);
  EXPECT_EQ(files_below(dir_), std::vector<std::string>{"frame-000001.jpg"});
}

TEST_F(TransferTest, FetchOfAChunkThatDoesNotFitLeavesNoFile) {
  const std::string bytes = random_bytes(5 * mib, 8);
  fake_coordinator peer;
  peer.stored[hash_of(bytes)] = bytes;
  peer.tamper = [](blob_chunk& c) {
    if (c.offset == 2 * mib)
      c.data.resize(c.data.size() - 1);  // one byte short
  };
  auto f = cli::fetch_artifact(peer, row_of(bytes), dir_.string(), false);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("frame-000001.jpg"), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("does not fit"), std::string::npos) << f.error().message;
  EXPECT_EQ(peer.abandoned, 1);
  EXPECT_TRUE(files_below(dir_).empty());
}

TEST_F(TransferTest, FetchWithAHashMismatchLeavesNoFile) {
  const std::string bytes = random_bytes(3 * mib + 10, 9);
  fake_coordinator peer;
  peer.stored[hash_of(bytes)] = bytes;
  peer.tamper = [](blob_chunk& c) {
    if (c.offset == mib)
      c.data[17] ^= 1;  // bit rot in the store
  };
  auto f = cli::fetch_artifact(peer, row_of(bytes), dir_.string(), false);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("SHA-256 mismatch"), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("frame-000001.jpg"), std::string::npos) << f.error().message;
  EXPECT_TRUE(files_below(dir_).empty());
}

TEST_F(TransferTest, FetchFailsWithTheCoordinatorsErrorAndLeavesNoFile) {
  const std::string bytes = random_bytes(2 * mib, 10);
  fake_coordinator peer;  // the blob is not in its store
  auto f = cli::fetch_artifact(peer, row_of(bytes), dir_.string(), false);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("fetch failed"), std::string::npos) << f.error().message;
  EXPECT_EQ(f.error().cause.code(), static_cast<uint8_t>(errc::not_found));
  EXPECT_TRUE(files_below(dir_).empty());
}
