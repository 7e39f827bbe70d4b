// clip_writer and join_clips against an independent decoder: every clip is
// read back with the ffmpeg and ffprobe CLIs, frame by frame and timestamp by
// timestamp, and compared with the frames that were written.

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "media/clip_writer.hpp"
#include "tests/support/frame_compare.hpp"
#include "tests/support/media_tools.hpp"

using namespace framehive;
using framehive::testing::decode_bgr_frames;
using framehive::testing::ffprobe_frame_count;
using framehive::testing::ffprobe_pts;
using framehive::testing::psnr;
using framehive::testing::run_command;
using framehive::testing::run_lines;
namespace fs = std::filesystem;

namespace {

using frame = std::vector<uint8_t>;  // packed BGR24, width * 3 bytes a row

/// Frame `index` of a synthetic video: a diagonal wave scrolling 3 px a frame
/// under a red disc moving 5 px a frame, on a slowly drifting colour cast.
/// Neighbouring frames differ by far more than coding noise (about 28 dB
/// apart), so a frame shifted by one position cannot pass for the right one.
/// Detail is in brightness and edges are soft, as in camera footage: the BGR
/// frames a clip gets were decoded from 4:2:0 video, and fine colour detail
/// would only measure 4:2:0's halved colour resolution, not the writer.
frame make_frame(int w, int h, int64_t index) {
  frame f(static_cast<std::size_t>(w) * h * 3);
  const double r = std::max(3, std::min(w, h) / 6);
  const int64_t span_x = std::max<int64_t>(1, w - 2 * static_cast<int64_t>(r));
  const int64_t span_y = std::max<int64_t>(1, h - 2 * static_cast<int64_t>(r));
  const double cx = r + static_cast<double>((index * 5) % span_x);
  const double cy = r + static_cast<double>((index * 3) % span_y);
  const double t = static_cast<double>(index);
  const double disc[3] = {60, 80, 200};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double luma = 128 + 60 * std::sin((x + 2.0 * y + 3.0 * t) / 12.0);
      const double bg[3] = {luma + 30 * std::sin(x / 50.0 + t / 10.0), luma,
                            luma + 30 * std::cos(y / 40.0 - t / 15.0)};
      const double a = std::clamp((r - std::hypot(x - cx, y - cy)) / 6.0 + 0.5, 0.0, 1.0);
      uint8_t* p = &f[(static_cast<std::size_t>(y) * w + x) * 3];
      for (int c = 0; c < 3; ++c)
        p[c] = static_cast<uint8_t>(std::lround(a * disc[c] + (1 - a) * bg[c]));
    }
  return f;
}

/// `f` with rows `stride` bytes apart and junk in the padding, as a ring slot holds it.
std::vector<uint8_t> with_stride(const frame& f, int w, int h, int stride) {
  std::vector<uint8_t> out(static_cast<std::size_t>(stride) * h, 0xAB);
  for (int y = 0; y < h; ++y)
    std::copy_n(&f[static_cast<std::size_t>(y) * w * 3], w * 3, &out[static_cast<std::size_t>(y) * stride]);
  return out;
}

struct written_clip {
  std::vector<frame> frames;
  std::vector<int64_t> pts;
};

/// Writes frames first .. first + count - 1 at pts start + i * step (i = frame
/// index) through a padded stride, and closes the clip.
written_clip write_clip(const std::string& path, const media::clip_format& fmt, int64_t first, int64_t count,
                        int64_t start, int64_t step) {
  written_clip clip;
  auto w = media::clip_writer::create(path, fmt);
  EXPECT_TRUE(w) << (w ? "" : w.error());
  if (!w)
    return clip;
  const int stride = fmt.width * 3 + 13;
  for (int64_t i = first; i < first + count; ++i) {
    frame f = make_frame(fmt.width, fmt.height, i);
    const auto padded = with_stride(f, fmt.width, fmt.height, stride);
    const int64_t pts = start + i * step;
    auto err = (*w)->write(padded.data(), stride, pts);
    EXPECT_FALSE(err) << *err;
    clip.frames.push_back(std::move(f));
    clip.pts.push_back(pts);
  }
  EXPECT_EQ((*w)->frames_written(), count);
  auto err = (*w)->close();
  EXPECT_FALSE(err) << *err;
  return clip;
}

/// Decodes `path` with the ffmpeg CLI; expects exactly `expected`, each frame
/// at PSNR >= 35 dB and closer to its own source than to its neighbours'.
void expect_frames(const std::string& path, int w, int h, const std::vector<frame>& expected) {
  const auto decoded = decode_bgr_frames(path, w, h);
  ASSERT_EQ(decoded.size(), expected.size()) << path;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double own = psnr(decoded[i], expected[i]);
    EXPECT_GE(own, 35.0) << path << " frame " << i;
    if (i > 0) {
      EXPECT_GT(own, psnr(decoded[i], expected[i - 1]) + 3)
          << path << " frame " << i << " looks like frame " << i - 1;
    }
    if (i + 1 < expected.size()) {
      EXPECT_GT(own, psnr(decoded[i], expected[i + 1]) + 3)
          << path << " frame " << i << " looks like frame " << i + 1;
    }
  }
}

std::string probe_stream(const std::string& path, const std::string& entry) {
  auto l = run_lines("ffprobe -v error -select_streams v:0 -show_entries stream=" + entry + " -of csv=p=0 '" +
                     path + "'");
  return l.empty() ? "" : l.front();
}

std::vector<std::string> packet_flags(const std::string& path) {
  return run_lines("ffprobe -v error -select_streams v:0 -show_entries packet=flags -of csv=p=0 '" + path +
                   "'");
}

/// A valid decode timeline: in file order, dts strictly increase and no
/// frame is shown before it is decoded.
void expect_decode_order(const std::string& path) {
  const auto lines = run_lines(
      "ffprobe -v error -select_streams v:0 -show_entries packet=pts,dts -of csv=p=0 '" + path + "'");
  ASSERT_FALSE(lines.empty()) << path;
  int64_t prev = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto comma = lines[i].find(',');
    ASSERT_NE(comma, std::string::npos) << lines[i];
    const int64_t pts = std::stoll(lines[i].substr(0, comma));
    const int64_t dts = std::stoll(lines[i].substr(comma + 1));
    EXPECT_LE(dts, pts) << path << " packet " << i;
    if (i > 0) {
      EXPECT_GT(dts, prev) << path << " packet " << i;
    }
    prev = dts;
  }
}

double start_time(const std::string& path) {
  const std::string s = probe_stream(path, "start_time");
  return s.empty() || s == "N/A" ? -1 : std::stod(s);
}

template <class T>
std::vector<T> concat(std::vector<T> a, const std::vector<T>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

media::clip_format format_of(int w, int h, int64_t num, int64_t den, double fps) {
  media::clip_format f;
  f.width = w;
  f.height = h;
  f.time_base_num = num;
  f.time_base_den = den;
  f.fps = fps;
  return f;
}

class ClipWriter : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("clip_writer_test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!mounted_.empty())
      run_command("umount '" + mounted_ + "' 2>&1");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
  std::string mounted_;
};

// -- one clip --------------------------------------------------------------------

struct timing {
  int64_t num, den, start, step;  // pts of frame i = start + i * step
  double fps;
};

void PrintTo(const timing& t, std::ostream* os) {
  *os << "pts " << t.start << " + i * " << t.step << " in units of " << t.num << "/" << t.den << " s, "
      << t.fps << " fps";
}

class ClipTiming : public ClipWriter, public ::testing::WithParamInterface<timing> {};

TEST_P(ClipTiming, EveryFrameComesBackOnceWithTheSourcePts) {
  const timing t = GetParam();
  const auto fmt = format_of(176, 144, t.num, t.den, t.fps);
  const std::string path = file("clip.mp4");
  const int64_t first = 7, count = 30;
  const auto clip = write_clip(path, fmt, first, count, t.start, t.step);
  ASSERT_EQ(clip.pts.size(), static_cast<std::size_t>(count));

  expect_frames(path, fmt.width, fmt.height, clip.frames);
  EXPECT_EQ(ffprobe_frame_count(path), count);
  // mp4 counts time in ticks of 1/den s, so a source unit of num/den becomes
  // num ticks: the same instants, exactly.
  std::vector<int64_t> ticks;
  for (int64_t p : clip.pts)
    ticks.push_back(p * t.num);
  EXPECT_EQ(ffprobe_pts(path), ticks);
  EXPECT_EQ(probe_stream(path, "time_base"), "1/" + std::to_string(t.den));
  EXPECT_NEAR(start_time(path), static_cast<double>(clip.pts.front() * t.num) / t.den, 1e-6);
  const auto flags = packet_flags(path);
  ASSERT_EQ(flags.size(), static_cast<std::size_t>(count));
  EXPECT_EQ(flags.front().front(), 'K') << "the clip does not start with a keyframe";
  EXPECT_EQ(probe_stream(path, "codec_name,pix_fmt"), "h264,yuv420p");
  expect_decode_order(path);
}

INSTANTIATE_TEST_SUITE_P(TimeBases, ClipTiming,
                         ::testing::Values(timing{1, 1000, 4000, 40, 25},       // ms, 25 fps
                                           timing{1, 50, 200, 2, 25},           // a 50 Hz clock, 25 fps
                                           timing{1001, 30000, 100, 1, 29.97},  // NTSC frame units
                                           timing{1, 90000, 12345, 3600, 25}),  // MPEG-TS clock
                         [](const ::testing::TestParamInfo<timing>& info) {
                           return "tb_" + std::to_string(info.param.num) + "_" +
                                  std::to_string(info.param.den);
                         });

TEST_F(ClipWriter, OddSizeKeepsEveryPixelWithYuv444) {
  const auto fmt = format_of(161, 121, 1, 1000, 25);
  const std::string path = file("odd.mp4");
  const auto clip = write_clip(path, fmt, 0, 12, 1000, 40);
  EXPECT_EQ(probe_stream(path, "width,height,pix_fmt"), "161,121,yuv444p");
  expect_frames(path, fmt.width, fmt.height, clip.frames);
  EXPECT_EQ(ffprobe_pts(path), clip.pts);
}

TEST_F(ClipWriter, RealFootageKeepsTheDefaultQuality) {
  // The clips analyzer's case: frames of a real video, decoded independently,
  // written at their own timestamps (vtest.avi: 768x576, 10 fps, time base 1/10).
  const std::string source = FRAMEHIVE_OPENCV_DATA "/vtest.avi";
  ASSERT_TRUE(fs::exists(source)) << source << " is missing (Debian package opencv-doc)";
  const auto fmt = format_of(768, 576, 1, 10, 10);
  const auto frames = decode_bgr_frames(source, fmt.width, fmt.height, 100, 20);
  ASSERT_EQ(frames.size(), 20u);
  const std::string path = file("vtest.mp4");
  {
    auto w = media::clip_writer::create(path, fmt);
    ASSERT_TRUE(w) << w.error();
    for (std::size_t i = 0; i < frames.size(); ++i)
      ASSERT_FALSE((*w)->write(frames[i].data(), fmt.width * 3, 100 + static_cast<int64_t>(i)));
    ASSERT_FALSE((*w)->close());
  }
  expect_frames(path, fmt.width, fmt.height, frames);
  std::vector<int64_t> pts;
  for (int64_t i = 0; i < 20; ++i)
    pts.push_back(100 + i);
  EXPECT_EQ(ffprobe_pts(path), pts);
  EXPECT_NEAR(start_time(path), 10.0, 1e-6);
}

TEST_F(ClipWriter, DestructorFinishesAnUnclosedClip) {
  const auto fmt = format_of(176, 144, 1, 1000, 25);
  const std::string path = file("unclosed.mp4");
  std::vector<frame> frames;
  {
    auto w = media::clip_writer::create(path, fmt);
    ASSERT_TRUE(w) << w.error();
    for (int i = 0; i < 9; ++i) {
      frames.push_back(make_frame(fmt.width, fmt.height, i));
      ASSERT_FALSE((*w)->write(frames.back().data(), fmt.width * 3, 500 + 40 * i));
    }
  }
  expect_frames(path, fmt.width, fmt.height, frames);
}

TEST_F(ClipWriter, CloseIsIdempotentAndWritesAfterItFail) {
  const auto fmt = format_of(64, 48, 1, 25, 25);
  const std::string path = file("twice.mp4");
  auto w = media::clip_writer::create(path, fmt);
  ASSERT_TRUE(w) << w.error();
  const frame f = make_frame(64, 48, 0);
  ASSERT_FALSE((*w)->write(f.data(), 64 * 3, 3));
  EXPECT_FALSE((*w)->close());
  EXPECT_FALSE((*w)->close());
  auto err = (*w)->write(f.data(), 64 * 3, 4);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find(path), std::string::npos) << *err;
  EXPECT_EQ(ffprobe_frame_count(path), 1);
  EXPECT_EQ(ffprobe_pts(path), std::vector<int64_t>{3});
}

// -- errors --------------------------------------------------------------------------

TEST_F(ClipWriter, PtsThatDoNotIncreaseAreRefused) {
  const auto fmt = format_of(64, 48, 1, 1000, 25);
  const std::string path = file("order.mp4");
  auto w = media::clip_writer::create(path, fmt);
  ASSERT_TRUE(w) << w.error();
  const frame f = make_frame(64, 48, 0);
  ASSERT_FALSE((*w)->write(f.data(), 64 * 3, 1000));
  for (int64_t bad : {1000, 960}) {
    auto err = (*w)->write(f.data(), 64 * 3, bad);
    ASSERT_TRUE(err) << "pts " << bad << " after 1000 was accepted";
    EXPECT_NE(err->find(path), std::string::npos) << *err;
    EXPECT_NE(err->find("not after the previous frame's pts 1000"), std::string::npos) << *err;
  }
  // A refused frame is not written: the clip still holds one frame.
  ASSERT_FALSE((*w)->write(f.data(), 64 * 3, 1040));
  EXPECT_EQ((*w)->frames_written(), 2);
  EXPECT_FALSE((*w)->close());
  EXPECT_EQ(ffprobe_pts(path), (std::vector<int64_t>{1000, 1040}));
}

TEST_F(ClipWriter, UncreatableFileNamesThePathAndTheCause) {
  const std::string path = file("no-such-dir/clip.mp4");
  auto w = media::clip_writer::create(path, format_of(64, 48, 1, 25, 25));
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().find(path), std::string::npos) << w.error();
  EXPECT_NE(w.error().find("No such file or directory"), std::string::npos) << w.error();

  // A regular file where a directory should be.
  fs::create_directories(dir_);
  { std::ofstream(file("plain")) << "x"; }
  const std::string under_file = file("plain/clip.mp4");
  w = media::clip_writer::create(under_file, format_of(64, 48, 1, 25, 25));
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().find(under_file), std::string::npos) << w.error();
  EXPECT_NE(w.error().find("Not a directory"), std::string::npos) << w.error();
}

TEST_F(ClipWriter, BadFormatIsRefusedWithoutLeavingAFile) {
  struct bad_case {
    media::clip_format fmt;
    std::string cause;
  };
  auto preset = format_of(64, 48, 1, 25, 25);
  preset.preset = "warp-speed";
  auto crf = format_of(64, 48, 1, 25, 25);
  crf.crf = 70;
  const std::vector<bad_case> cases{{format_of(0, 48, 1, 25, 25), "invalid frame size 0x48"},
                                    {format_of(64, 48, 1, 0, 25), "invalid time base 1/0"},
                                    {format_of(64, 48, 1, 25, 0), "invalid frame rate"},
                                    {crf, "crf 70"},
                                    {preset, "preset 'warp-speed'"}};
  for (const auto& c : cases) {
    const std::string path = file("bad.mp4");
    auto w = media::clip_writer::create(path, c.fmt);
    ASSERT_FALSE(w) << c.cause;
    EXPECT_NE(w.error().find(path), std::string::npos) << w.error();
    EXPECT_NE(w.error().find(c.cause), std::string::npos) << w.error();
    EXPECT_FALSE(fs::exists(path)) << c.cause;
  }
}

TEST_F(ClipWriter, FullDiskIsReportedWithThePath) {
  const fs::path small = dir_ / "small";
  fs::create_directories(small);
  const auto m = run_command("mount -t tmpfs -o size=64k tmpfs '" + small.string() + "' 2>&1");
  if (m.code != 0)
    GTEST_SKIP() << "cannot mount a 64 KiB tmpfs (needs root and CAP_SYS_ADMIN): " << m.out;
  mounted_ = small.string();

  // Noise does not compress: 320x240 at crf 18 is far more than 64 KiB a second.
  const auto fmt = format_of(320, 240, 1, 1000, 25);
  const std::string path = (small / "clip.mp4").string();
  std::mt19937 rng(7);
  std::optional<std::string> err;
  int64_t frames = 0;
  {
    auto w = media::clip_writer::create(path, fmt);
    ASSERT_TRUE(w) << w.error();
    frame f(static_cast<std::size_t>(fmt.width) * fmt.height * 3);
    for (; frames < 100 && !err; ++frames) {
      for (auto& b : f)
        b = static_cast<uint8_t>(rng());
      err = (*w)->write(f.data(), fmt.width * 3, frames * 40);
    }
    if (err) {  // the first error stays: further writes and close() repeat it
      EXPECT_EQ((*w)->write(f.data(), fmt.width * 3, frames * 40 + 40), err);
    }
    auto closed = (*w)->close();
    if (err) {
      EXPECT_EQ(closed, err);
    } else {
      err = closed;
    }
  }
  ASSERT_TRUE(err) << frames << " frames of noise fit into 64 KiB without an error";
  EXPECT_NE(err->find(path), std::string::npos) << *err;
  EXPECT_NE(err->find("No space left on device"), std::string::npos) << *err;
}

// -- joining --------------------------------------------------------------------------

TEST_F(ClipWriter, PiecesJoinIntoOneClipWithTheirTimestamps) {
  const auto fmt = format_of(176, 144, 1, 1000, 25);
  // A piece of a single frame between two longer ones: its reorder delay
  // differs from theirs, which is where decode timestamps go wrong.
  const auto a = write_clip(file("a.mp4"), fmt, 0, 12, 4000, 40);
  const auto b = write_clip(file("b.mp4"), fmt, 12, 1, 4000, 40);
  const auto c = write_clip(file("c.mp4"), fmt, 13, 17, 4000, 40);
  const std::string joined = file("joined.mp4");
  auto err = media::join_clips({file("a.mp4"), file("b.mp4"), file("c.mp4")}, joined, true);
  ASSERT_FALSE(err) << *err;

  expect_frames(joined, fmt.width, fmt.height, concat(concat(a.frames, b.frames), c.frames));
  EXPECT_EQ(ffprobe_frame_count(joined), 30);
  EXPECT_EQ(ffprobe_pts(joined), concat(concat(a.pts, b.pts), c.pts));
  EXPECT_NEAR(start_time(joined), 4.0, 1e-6);
  // Each piece starts with a keyframe, and the decoder saw no errors.
  const auto flags = packet_flags(joined);
  ASSERT_EQ(flags.size(), 30u);
  for (std::size_t i : {0, 12, 13})
    EXPECT_EQ(flags[i].front(), 'K') << "packet " << i;
  EXPECT_EQ(run_command("ffmpeg -v error -nostdin -i '" + joined + "' -f null - 2>&1").out, "");
  expect_decode_order(joined);
}

TEST_F(ClipWriter, PiecesJoinWhenFramesComeFasterThanTheNominalRate) {
  // fps says 25 (40 ms) but frames are 20 ms apart: each piece's first
  // packets are dated two nominal frames before its start, which is before
  // the previous piece's last dts. join_clips() must move them up.
  const auto fmt = format_of(176, 144, 1, 1000, 25);
  const auto a = write_clip(file("a.mp4"), fmt, 0, 8, 1000, 20);
  const auto b = write_clip(file("b.mp4"), fmt, 8, 8, 1000, 20);
  const std::string joined = file("joined.mp4");
  auto err = media::join_clips({file("a.mp4"), file("b.mp4")}, joined, true);
  ASSERT_FALSE(err) << *err;
  expect_frames(joined, fmt.width, fmt.height, concat(a.frames, b.frames));
  EXPECT_EQ(ffprobe_pts(joined), concat(a.pts, b.pts));
  expect_decode_order(joined);
}

TEST_F(ClipWriter, DigestPlaysClipsBackToBackFromZero) {
  const auto fmt = format_of(176, 144, 1, 1000, 25);
  const auto a = write_clip(file("a.mp4"), fmt, 0, 10, 4000, 40);   // 4.0 s .. 4.4 s
  const auto b = write_clip(file("b.mp4"), fmt, 50, 15, 4000, 40);  // 6.0 s .. 6.6 s
  const std::string digest = file("digest.mp4");
  auto err = media::join_clips({file("a.mp4"), file("b.mp4")}, digest, false);
  ASSERT_FALSE(err) << *err;

  expect_frames(digest, fmt.width, fmt.height, concat(a.frames, b.frames));
  std::vector<int64_t> continuous;
  for (int64_t i = 0; i < 25; ++i)
    continuous.push_back(40 * i);
  EXPECT_EQ(ffprobe_pts(digest), continuous);
  EXPECT_NEAR(start_time(digest), 0.0, 1e-6);
}

TEST_F(ClipWriter, JoinRefusesDifferentFormatsAndOverlapsWithoutLeavingAFile) {
  const auto big = format_of(176, 144, 1, 1000, 25);
  const auto small = format_of(160, 120, 1, 1000, 25);
  write_clip(file("big.mp4"), big, 0, 5, 0, 40);
  write_clip(file("small.mp4"), small, 5, 5, 0, 40);
  write_clip(file("later.mp4"), big, 5, 5, 0, 40);
  auto crf = big;
  crf.crf = 30;  // same size, other encoder settings: other SPS/PPS
  write_clip(file("crf30.mp4"), crf, 5, 5, 0, 40);
  const std::string out = file("out.mp4");

  auto err = media::join_clips({file("big.mp4"), file("small.mp4")}, out, false);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find(file("small.mp4") + ": cannot be joined with " + file("big.mp4")), std::string::npos)
      << *err;
  EXPECT_NE(err->find("size 160x120 vs 176x144"), std::string::npos) << *err;
  EXPECT_FALSE(fs::exists(out));

  err = media::join_clips({file("big.mp4"), file("crf30.mp4")}, out, true);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("SPS/PPS"), std::string::npos) << *err;
  EXPECT_FALSE(fs::exists(out));

  err = media::join_clips({file("later.mp4"), file("big.mp4")}, out, true);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find(file("big.mp4") + ": starts at pts 0"), std::string::npos) << *err;
  EXPECT_FALSE(fs::exists(out));

  err = media::join_clips({file("big.mp4"), file("missing.mp4")}, out, true);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find(file("missing.mp4") + ": cannot open"), std::string::npos) << *err;
  EXPECT_FALSE(fs::exists(out));

  // The same inputs in order join fine: the refusals above were about them.
  EXPECT_FALSE(media::join_clips({file("big.mp4"), file("later.mp4")}, out, true));
  EXPECT_EQ(ffprobe_frame_count(out), 10);
}

}  // namespace
