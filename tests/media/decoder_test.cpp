// Decoder tests against ffprobe, on clips generated here with the ffmpeg CLI
// and on the real footage Debian's opencv-doc ships.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "media/decoder.hpp"
#include "tests/support/media_tools.hpp"

using namespace framehive;
using framehive::testing::ffprobe_frame_count;
using framehive::testing::ffprobe_pts;
namespace fs = std::filesystem;

namespace {

uint64_t checksum(const std::vector<uint8_t>& buf) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : buf) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

struct decoded_clip {
  std::vector<int64_t> index, pts, prev_pts;
  std::vector<uint64_t> sums;
  int64_t errors = 0;
};

/// Decodes everything (from `start`), converting each frame to BGR.
decoded_clip decode_all(const std::string& path, int64_t start = 0, int64_t limit = -1) {
  decoded_clip out;
  media::decoder_options o;
  o.start_frame = start;
  auto dec = media::decoder::open(path, o);
  EXPECT_TRUE(dec) << (dec ? "" : dec.error().message());
  if (!dec)
    return out;
  auto& d = **dec;
  const int stride = d.output_width() * 3;
  std::vector<uint8_t> buf(static_cast<std::size_t>(stride) * d.output_height());
  media::decoded_frame f;
  while (limit < 0 || static_cast<int64_t>(out.index.size()) < limit) {
    auto step = d.next(f);
    EXPECT_TRUE(step) << (step ? "" : step.error().message());
    if (!step || *step == media::decoder::step::end)
      break;
    d.convert_bgr(buf.data(), stride);
    out.index.push_back(f.index);
    out.pts.push_back(f.pts);
    out.prev_pts.push_back(f.prev_pts);
    out.sums.push_back(checksum(buf));
  }
  out.errors = d.decode_errors();
  return out;
}

class Decoder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Generated once per build tree and shared by the test processes ctest
    // runs in parallel: each file is written under a private name and renamed.
    dir_ = fs::current_path() / "test-media";
    fs::create_directories(dir_);
    const std::string ff = "ffmpeg -v error -y -nostdin ";
    auto make = [&](const std::string& name, const std::string& args) {
      if (fs::exists(dir_ / name))
        return;
      fs::path tmp = dir_ / ("tmp-" + std::to_string(getpid()) + "-" + name);
      int rc = std::system((ff + args + " '" + tmp.string() + "'").c_str());
      ASSERT_EQ(rc, 0) << "ffmpeg could not generate " << name;
      fs::rename(tmp, dir_ / name);
    };
    // H.264 with B-frames and a keyframe every 25 frames: seeks must rebuild references.
    make("h264.mp4", "-f lavfi -i testsrc2=size=320x240:rate=30 -t 3 -c:v libx264 -preset ultrafast -bf 2 "
                     "-g 25 -keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p");
    make("h265.mp4", "-f lavfi -i testsrc2=size=320x240:rate=25 -t 2 -c:v libx265 -preset ultrafast "
                     "-x265-params log-level=none:keyint=20 -pix_fmt yuv420p");
    // Odd geometry needs 4:4:4 (4:2:0 requires even sizes).
    make("odd.mp4", "-f lavfi -i testsrc2=size=853x479:rate=30,format=yuv444p -t 1 -c:v libx264 -preset ultrafast");
    // Variable frame rate: every third frame lasts 2.5 times as long.
    make("vfr.mkv", "-f lavfi -i testsrc2=size=320x240:rate=30 -t 3 -vf setpts='(N+floor(N/3)*1.5)/30/TB' "
                    "-fps_mode passthrough -c:v libx264 -preset ultrafast -pix_fmt yuv420p");
    make("audio.m4a", "-f lavfi -i sine=frequency=440:duration=1 -c:a aac");
    make("h264.ts", "-f lavfi -i testsrc2=size=320x240:rate=30 -t 4 -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p");
    make("mjpeg.avi", "-f lavfi -i testsrc2=size=320x240:rate=10 -t 2 -c:v mjpeg -q:v 5");

    if (!fs::exists(dir_ / "text.mp4"))
      publish("this is not a video, only text pretending to be one\n", dir_ / "text.mp4");
    std::ofstream(dir_ / "empty.mp4");
    fs::create_directories(dir_ / "a_directory.mp4");

    // Damaged in the middle: a third of the transport stream overwritten.
    corrupt(dir_ / "h264.ts", dir_ / "damaged.ts", 0.35, 0.65);
    // Every frame's payload damaged, the container intact: nothing decodes.
    corrupt_chunks(dir_ / "mjpeg.avi", dir_ / "ruined.avi", "00dc");
  }

  static void publish(const std::string& bytes, const fs::path& to) {
    fs::path tmp = to.parent_path() / ("tmp-" + std::to_string(getpid()) + "-" + to.filename().string());
    std::ofstream(tmp, std::ios::binary) << bytes;
    fs::rename(tmp, to);
  }

  static void corrupt(const fs::path& from, const fs::path& to, double begin, double end) {
    if (fs::exists(to))
      return;
    std::ifstream in(from, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
    auto b = static_cast<std::size_t>(bytes.size() * begin);
    auto e = static_cast<std::size_t>(bytes.size() * end);
    uint32_t x = 12345;
    for (std::size_t i = b; i < e; ++i) {
      x = x * 1103515245u + 12345u;
      bytes[i] = static_cast<char>(x >> 24);
    }
    publish(std::string(bytes.begin(), bytes.end()), to);
  }

  /// Overwrites the payload of every AVI chunk tagged `tag` (past its first two bytes).
  static void corrupt_chunks(const fs::path& from, const fs::path& to, const std::string& tag) {
    if (fs::exists(to))
      return;
    std::ifstream in(from, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    uint32_t x = 777;
    int chunks = 0;
    for (auto at = bytes.find("movi"); (at = bytes.find(tag, at)) != std::string::npos; ++chunks) {
      uint32_t size = 0;
      for (int b = 0; b < 4; ++b)
        size |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + 4 + b])) << (8 * b);
      for (std::size_t k = at + 10; k < at + 8 + size && k < bytes.size(); ++k) {
        x = x * 1103515245u + 12345u;
        bytes[k] = static_cast<char>(x >> 24);
      }
      at += 8 + size;
    }
    ASSERT_GT(chunks, 0);
    publish(bytes, to);
  }

  static std::string clip(const std::string& name) {
    if (name.find(".avi") != std::string::npos && name.find("mjpeg") == std::string::npos &&
        name.find("ruined") == std::string::npos)
      return std::string(FRAMEHIVE_OPENCV_DATA) + "/" + name;
    return (dir_ / name).string();
  }

  static fs::path dir_;
};

fs::path Decoder::dir_;

}  // namespace

TEST_F(Decoder, ProbeReportsGeometryRateDurationAndFrameCount) {
  auto dec = media::decoder::open(clip("h264.mp4"));
  ASSERT_TRUE(dec) << dec.error().message();
  const auto& info = (*dec)->info();
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 240);
  EXPECT_DOUBLE_EQ(info.frame_rate.value(), 30.0);
  EXPECT_NEAR(info.duration_s, 3.0, 0.05);
  EXPECT_EQ(info.frame_count, 90);
}

class DecoderMatchesFfprobe : public Decoder, public ::testing::WithParamInterface<const char*> {};

TEST_P(DecoderMatchesFfprobe, FrameCountAndTimestampsEqualFfprobes) {
  const std::string path = clip(GetParam());
  auto got = decode_all(path);
  const int64_t expected = ffprobe_frame_count(path);
  ASSERT_GT(expected, 0);
  EXPECT_EQ(static_cast<int64_t>(got.index.size()), expected);
  auto pts = ffprobe_pts(path);
  ASSERT_EQ(got.pts.size(), pts.size());
  for (std::size_t i = 0; i < pts.size(); ++i) {
    EXPECT_EQ(got.index[i], static_cast<int64_t>(i));
    if (pts[i] >= 0) {  // ffprobe prints N/A where the file has no timestamp; we interpolate
      EXPECT_EQ(got.pts[i], pts[i]) << "frame " << i;
    }
    if (i > 0) {
      EXPECT_GT(got.pts[i], got.pts[i - 1]) << "timestamps must strictly increase at frame " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Clips, DecoderMatchesFfprobe,
                         ::testing::Values("h264.mp4", "h265.mp4", "odd.mp4", "vfr.mkv", "vtest.avi",
                                           "Megamind.avi", "Megamind_bugy.avi"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (!isalnum(static_cast<unsigned char>(c)))
                               c = '_';
                           return n;
                         });

TEST_F(Decoder, VariableFrameRateKeepsUnevenIntervals) {
  auto got = decode_all(clip("vfr.mkv"));
  ASSERT_GE(got.pts.size(), 6u);
  std::map<int64_t, int> intervals;
  for (std::size_t i = 1; i < got.pts.size(); ++i)
    ++intervals[got.pts[i] - got.pts[i - 1]];
  EXPECT_GE(intervals.size(), 2u) << "a variable-rate clip must show more than one frame interval";
}

class DecoderSeek : public Decoder, public ::testing::WithParamInterface<const char*> {};

TEST_P(DecoderSeek, StartingAtFrameNGivesTheSamePixelsAsFrameNOfAFullDecode) {
  const std::string path = clip(GetParam());
  auto full = decode_all(path);
  ASSERT_GT(full.sums.size(), 30u);
  const int64_t n = static_cast<int64_t>(full.sums.size());
  for (int64_t start : {int64_t{1}, int64_t{13}, int64_t{25}, int64_t{26}, n / 2, n - 1}) {
    auto part = decode_all(path, start, 5);
    ASSERT_FALSE(part.index.empty()) << "start " << start;
    for (std::size_t k = 0; k < part.index.size(); ++k) {
      const auto at = static_cast<std::size_t>(start) + k;
      EXPECT_EQ(part.index[k], static_cast<int64_t>(at)) << "start " << start;
      EXPECT_EQ(part.pts[k], full.pts[at]) << "start " << start;
      EXPECT_EQ(part.sums[k], full.sums[at]) << "pixels differ at frame " << at << " when starting at " << start;
      EXPECT_EQ(part.prev_pts[k], full.prev_pts[at]) << "predecessor's pts at " << at << " from " << start;
    }
  }
}

TEST_F(Decoder, EachFrameCarriesItsPredecessorsTimestampAlsoWhenResumed) {
  for (const char* name : {"h264.mp4", "vfr.mkv"}) {
    auto full = decode_all(clip(name));
    ASSERT_GT(full.pts.size(), 6u) << name;
    EXPECT_EQ(full.prev_pts[0], no_pts) << name;
    for (std::size_t i = 1; i < full.pts.size(); ++i)
      EXPECT_EQ(full.prev_pts[i], full.pts[i - 1]) << name << " frame " << i;
    // Sampling by time decides from these: a decoder started in the middle
    // (resume, restart) must see the same predecessor as a full decode.
    for (int64_t start : {int64_t{1}, int64_t{3}, static_cast<int64_t>(full.pts.size()) - 1}) {
      auto part = decode_all(clip(name), start, 3);
      ASSERT_FALSE(part.pts.empty()) << name << " from " << start;
      for (std::size_t k = 0; k < part.pts.size(); ++k)
        EXPECT_EQ(part.prev_pts[k], full.prev_pts[static_cast<std::size_t>(start) + k]) << name << " from " << start;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Clips, DecoderSeek, ::testing::Values("h264.mp4", "h265.mp4", "vtest.avi"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (!isalnum(static_cast<unsigned char>(c)))
                               c = '_';
                           return n;
                         });

TEST_F(Decoder, StartPastTheLastFrameIsAnInvalidArgument) {
  media::decoder_options o;
  o.start_frame = 10'000;
  auto dec = media::decoder::open(clip("h264.mp4"), o);
  ASSERT_FALSE(dec);
  EXPECT_EQ(dec.error().code, media::media_errc::invalid_argument);
}

TEST_F(Decoder, OddGeometryConvertsIntoAPaddedDestination) {
  auto dec = media::decoder::open(clip("odd.mp4"));
  ASSERT_TRUE(dec) << dec.error().message();
  auto& d = **dec;
  EXPECT_EQ(d.output_width(), 853);
  EXPECT_EQ(d.output_height(), 479);
  const int stride = 2560;  // 853 * 3 = 2559, rounded up as the ring does
  std::vector<uint8_t> buf(static_cast<std::size_t>(stride) * 479, 0xAB);
  media::decoded_frame f;
  ASSERT_TRUE(d.next(f));
  d.convert_bgr(buf.data(), stride);
  for (int r = 0; r < 479; ++r)
    ASSERT_EQ(buf[static_cast<std::size_t>(r) * stride + 2559], 0xAB) << "row padding written at row " << r;
}

TEST_F(Decoder, MaxWidthDownscalesKeepingTheAspectRatio) {
  media::decoder_options o;
  o.max_width = 160;
  auto dec = media::decoder::open(clip("h264.mp4"), o);
  ASSERT_TRUE(dec) << dec.error().message();
  EXPECT_EQ((*dec)->output_width(), 160);
  EXPECT_EQ((*dec)->output_height(), 120);
}

TEST_F(Decoder, DamagedStreamDecodesWhatDecodesAndCountsTheErrors) {
  auto good = decode_all(clip("h264.ts"));
  auto got = decode_all(clip("damaged.ts"));
  EXPECT_GT(got.index.size(), 20u);
  EXPECT_GT(got.errors, 0);
  EXPECT_LT(got.index.size(), good.index.size() + 1);
}

struct bad_input {
  const char* file;
  media::media_errc code;
  const char* words;  // expected in the message
};

void PrintTo(const bad_input& b, std::ostream* os) { *os << b.file; }

class DecoderRejects : public Decoder, public ::testing::WithParamInterface<bad_input> {};

TEST_P(DecoderRejects, BadInputGetsANamedErrorThatNamesTheInput) {
  const auto& p = GetParam();
  const std::string path = clip(p.file);
  auto dec = media::decoder::open(path);
  media::media_error err{};
  if (dec) {
    // Some damage only shows while decoding.
    media::decoded_frame f;
    auto step = (*dec)->next(f);
    while (step && *step == media::decoder::step::frame)
      step = (*dec)->next(f);
    ASSERT_FALSE(step) << p.file << " decoded without error";
    err = step.error();
  } else {
    err = dec.error();
  }
  EXPECT_EQ(err.code, p.code) << err.message();
  EXPECT_NE(err.message().find(path), std::string::npos) << err.message();
  EXPECT_NE(err.message().find(p.words), std::string::npos) << err.message();
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, DecoderRejects,
    ::testing::Values(bad_input{"does-not-exist.mp4", media::media_errc::missing_input, "no such file"},
                      bad_input{"a_directory.mp4", media::media_errc::not_a_file, "directory"},
                      bad_input{"empty.mp4", media::media_errc::empty_input, "empty"},
                      bad_input{"text.mp4", media::media_errc::not_media, "not a media file"},
                      bad_input{"audio.m4a", media::media_errc::no_video_stream, "no video stream"},
                      bad_input{"ruined.avi", media::media_errc::damaged_stream, "damaged"}),
    [](const auto& info) { return std::string(media::to_string(info.param.code)); });

// -- input policy -------------------------------------------------------------------

TEST_F(Decoder, AProtocolOutsideTheAllowedListIsRefusedBeforeFFmpegOpensAnything) {
  media::decoder_options o;
  o.allowed_protocols = {"file", "http", "https", "rtsp"};
  for (const std::string& url :
       std::vector<std::string>{"tcp://127.0.0.1:1", "udp://127.0.0.1:9", "tls://x:1"}) {
    auto dec = media::decoder::open(url, o);
    ASSERT_FALSE(dec) << url;
    EXPECT_EQ(dec.error().code, media::media_errc::refused) << dec.error().message();
    EXPECT_NE(dec.error().message().find(url), std::string::npos) << dec.error().message();
    EXPECT_NE(dec.error().message().find("is not in allowed-protocols (file, http, https, rtsp)"),
              std::string::npos)
        << dec.error().message();
  }
  o.allowed_protocols = {"http"};
  auto local = media::decoder::open(clip("h264.mp4"), o);
  ASSERT_FALSE(local);
  EXPECT_NE(local.error().message().find("protocol 'file'"), std::string::npos) << local.error().message();
}

TEST_F(Decoder, WithOnlyTheFileProtocolAllowedLocalClipsStillDecodeAndSeek) {
  media::decoder_options o;
  o.allowed_protocols = {"file"};
  o.start_frame = 40;  // seeking scans the packets through a second open
  auto dec = media::decoder::open("file://" + clip("h264.mp4"), o);
  ASSERT_TRUE(dec) << dec.error().message();
  media::decoded_frame f;
  auto step = (*dec)->next(f);
  ASSERT_TRUE(step) << step.error().message();
  EXPECT_EQ(f.index, 40);
}

TEST_F(Decoder, AColonInALocalPathNeverSelectsAnotherProtocol) {
  const fs::path dir = fs::temp_directory_path() / ("fh-colon-" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::create_symlink(clip("h264.mp4"), dir / "concat:x.mp4");
  const fs::path before = fs::current_path();
  fs::current_path(dir);
  media::decoder_options o;
  o.allowed_protocols = {"file"};
  auto dec = media::decoder::open("concat:x.mp4", o);  // a relative path, not FFmpeg's concat protocol
  fs::current_path(before);
  fs::remove_all(dir);
  ASSERT_TRUE(dec) << dec.error().message();
  EXPECT_EQ((*dec)->info().codec, "h264");
}

TEST(DecoderWhitelist, EachProtocolBringsWhatFFmpegOpensUnderneathOnce) {
  EXPECT_EQ(media::ffmpeg_protocol_whitelist({"file", "http", "https", "rtsp"}),
            "file,http,tcp,https,tls,rtsp,rtp,udp");
  EXPECT_EQ(media::ffmpeg_protocol_whitelist({"file"}), "file");
  EXPECT_EQ(media::ffmpeg_protocol_whitelist({"https"}), "https,tls,tcp");
  EXPECT_EQ(media::ffmpeg_protocol_whitelist({}), "");
}
