// ring_bench: what the shared-memory ring costs on top of decoding.
//
//   (a) our decoder to BGR alone, frames/s;
//   (b) the same decode into a ring read by N consumer processes that each
//       touch one byte of every row: frames/s per consumer, ratio to (a);
//   (c) the ring alone with a synthetic producer: frames/s, GB/s, and
//       publish-to-consume latency at a paced rate.
// The last line is min_ratio=<smallest (b)/(a)>.
//
//   ring_bench [--clip PATH] [--seconds S] [--consumers 1,2,4,8] [--slots K]

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.hpp"
#include "common/clock.hpp"
#include "common/process.hpp"
#include "ingest/ring_pump.hpp"
#include "media/decoder.hpp"
#include "shm/frame_ring.hpp"

using namespace framehive;
namespace fs = std::filesystem;

namespace {

struct consumer_report {
  long frames = 0;
  double lat_p50_us = 0, lat_p99_us = 0, lat_max_us = 0;
  double faults_per_frame = 0;
};

// -- consumer process ---------------------------------------------------------

int run_consumer(const std::string& ring, uint32_t id, const std::string& out_path) {
  auto c = shm::ring_consumer::attach(ring, id);
  if (!c) {
    std::fprintf(stderr, "consumer %u: %s\n", id, c.error().message.c_str());
    return 2;
  }
  std::vector<double> lat;
  lat.reserve(1 << 16);
  long frames = 0;
  long faults_at_warm = 0;
  uint64_t sink = 0;
  shm::frame_view v;
  while (true) {
    auto st = c->next(v, std::chrono::seconds(30));
    if (st != shm::ring_consumer::read_status::frame)
      break;
    const uint64_t now = monotonic_ns();
    if (lat.size() < lat.capacity())
      lat.push_back(static_cast<double>(now - v.publish_ns) / 1e3);
    // The light analysis: one byte from every row, so every page of the frame is touched.
    for (uint32_t r = 0; r < v.height; ++r)
      sink += v.pixels[static_cast<std::size_t>(r) * v.stride + (r % v.width)];
    c->commit(v.seq);
    if (++frames == 64)
      faults_at_warm = bench::usage_of(RUSAGE_SELF).minor_faults;
  }
  c->detach();
  long faults = bench::usage_of(RUSAGE_SELF).minor_faults - faults_at_warm;
  std::ofstream out(out_path);
  out << frames << ' ' << bench::percentile(lat, 0.5) << ' ' << bench::percentile(lat, 0.99) << ' '
      << bench::percentile(lat, 1.0) << ' ' << (frames > 64 ? static_cast<double>(faults) / (frames - 64) : 0)
      << ' ' << (sink & 1) << '\n';
  return 0;
}

consumer_report read_report(const std::string& path) {
  consumer_report r;
  std::ifstream in(path);
  in >> r.frames >> r.lat_p50_us >> r.lat_p99_us >> r.lat_max_us >> r.faults_per_frame;
  return r;
}

// -- helpers --------------------------------------------------------------------

struct fanout_result {
  double wall_s = 0;
  double fps_per_consumer = 0;  // slowest consumer
  long frames_min = 0;
  double producer_faults_per_frame = 0;
  double consumer_faults_per_frame = 0;
  consumer_report worst_latency;
};

std::vector<child_process> start_consumers(const std::string& ring, int n, const fs::path& dir) {
  std::vector<child_process> kids;
  for (int i = 0; i < n; ++i) {
    std::string err;
    auto p = child_process::spawn({self_executable(), "--consumer", ring, std::to_string(i + 1),
                                   (dir / ("consumer-" + std::to_string(i + 1) + ".txt")).string()},
                                  &err);
    if (!p) {
      std::fprintf(stderr, "%s\n", err.c_str());
      std::exit(1);
    }
    kids.push_back(std::move(*p));
  }
  return kids;
}

/// Consumers start as processes; time nothing until all of them are attached.
void wait_attached(const shm::frame_ring& ring, int n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int attached = 0;
    for (const auto& c : ring.status().consumers)
      attached += c.state == shm::entry_state::attached;
    if (attached == n)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::fprintf(stderr, "consumers did not attach within 30 s\n");
  std::exit(1);
}

fanout_result collect(std::vector<child_process>& kids, const fs::path& dir, uint64_t started) {
  fanout_result res;
  for (auto& k : kids) {
    auto st = k.wait();
    if (!st.success())
      std::fprintf(stderr, "consumer %d %s\n", k.pid(), st.describe().c_str());
  }
  res.wall_s = static_cast<double>(monotonic_ns() - started) / 1e9;
  res.frames_min = -1;
  for (std::size_t i = 0; i < kids.size(); ++i) {
    auto r = read_report((dir / ("consumer-" + std::to_string(i + 1) + ".txt")).string());
    if (res.frames_min < 0 || r.frames < res.frames_min)
      res.frames_min = r.frames;
    res.consumer_faults_per_frame = std::max(res.consumer_faults_per_frame, r.faults_per_frame);
    if (r.lat_p99_us >= res.worst_latency.lat_p99_us)
      res.worst_latency = r;
  }
  res.fps_per_consumer = static_cast<double>(res.frames_min) / res.wall_s;
  return res;
}

shm::frame_ring make_ring(const std::string& name, uint32_t w, uint32_t h, uint32_t slots, int consumers) {
  shm::ring_options o;
  o.name = name;
  o.width = w;
  o.height = h;
  o.slot_count = slots;
  auto ring = shm::frame_ring::create(o);
  if (!ring) {
    std::fprintf(stderr, "%s\n", ring.error().message.c_str());
    std::exit(1);
  }
  for (int i = 0; i < consumers; ++i)
    ring->reserve_consumer(static_cast<uint32_t>(i + 1), 0);
  return std::move(*ring);
}

// (a)
double decode_alone(const std::string& clip, long& frames) {
  auto dec = media::decoder::open(clip);
  if (!dec) {
    std::fprintf(stderr, "%s\n", dec.error().message().c_str());
    std::exit(1);
  }
  auto& d = **dec;
  const int stride = (d.output_width() * 3 + 63) / 64 * 64;
  std::vector<uint8_t> buf(static_cast<std::size_t>(stride) * d.output_height());
  media::decoded_frame f;
  frames = 0;
  const uint64_t t0 = monotonic_ns();
  while (true) {
    auto s = d.next(f);
    if (!s || *s == media::decoder::step::end)
      break;
    d.convert_bgr(buf.data(), stride);
    ++frames;
  }
  return static_cast<double>(frames) / (static_cast<double>(monotonic_ns() - t0) / 1e9);
}

// (b)
fanout_result decode_into_ring(const std::string& clip, int n, uint32_t slots, const fs::path& dir) {
  auto dec = media::decoder::open(clip);
  auto& d = **dec;
  const std::string name = "fhbench-" + std::to_string(getpid()) + "-fanout-" + std::to_string(n);
  auto ring = make_ring(name, static_cast<uint32_t>(d.output_width()), static_cast<uint32_t>(d.output_height()),
                        slots, n);
  auto kids = start_consumers(name, n, dir);
  wait_attached(ring, n);
  auto producer = shm::ring_producer::open(name);
  const long faults0 = bench::usage_of(RUSAGE_SELF).minor_faults;
  const uint64_t t0 = monotonic_ns();
  auto stats = ingest::pump_into_ring(d, *producer);
  const long faults = bench::usage_of(RUSAGE_SELF).minor_faults - faults0;
  auto res = collect(kids, dir, t0);
  if (stats)
    res.producer_faults_per_frame = static_cast<double>(faults) / std::max<int64_t>(1, stats->published);
  return res;
}

// (c)
struct synthetic_result {
  double fps = 0, gbps = 0;
  consumer_report latency;
};

synthetic_result synthetic(int n, uint32_t slots, long frames, double paced_fps, const fs::path& dir) {
  const uint32_t w = 1920, h = 1080;
  const std::string name = "fhbench-" + std::to_string(getpid()) + "-synth-" + std::to_string(n) +
                           (paced_fps > 0 ? "-paced" : "");
  auto ring = make_ring(name, w, h, slots, n);
  auto kids = start_consumers(name, n, dir);
  wait_attached(ring, n);
  auto producer = shm::ring_producer::open(name);
  std::vector<uint8_t> source(static_cast<std::size_t>(producer->stride()) * h, 0x5a);
  const uint64_t t0 = monotonic_ns();
  pacer pace(paced_fps);
  for (long i = 0; i < frames; ++i) {
    if (paced_fps > 0)
      pace.wait();
    shm::ring_producer::slot s;
    if (producer->acquire(s, std::chrono::seconds(30)) != shm::ring_producer::acquire_status::ready)
      break;
    std::memcpy(s.pixels, source.data(), source.size());  // the producer writes the whole frame
    shm::frame_info info;
    info.frame_index = i;
    producer->publish(info);
  }
  producer->finish();
  auto res = collect(kids, dir, t0);
  synthetic_result out;
  out.fps = static_cast<double>(frames) / res.wall_s;
  out.gbps = out.fps * static_cast<double>(w) * h * 3 / 1e9;
  out.latency = res.worst_latency;
  return out;
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    v.push_back(std::stoi(item));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 5 && std::strcmp(argv[1], "--consumer") == 0)
    return run_consumer(argv[2], static_cast<uint32_t>(std::stoul(argv[3])), argv[4]);

  keep_freed_memory();
  fs::path clip;
  int seconds = 60;
  std::vector<int> counts{1, 2, 4, 8};
  uint32_t slots = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--clip")
      clip = argv[i + 1];
    else if (a == "--seconds")
      seconds = std::stoi(argv[i + 1]);
    else if (a == "--consumers")
      counts = parse_list(argv[i + 1]);
    else if (a == "--slots")
      slots = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: ring_bench [--clip PATH] [--seconds S] [--consumers 1,2,4,8] [--slots K]\n");
      return 64;
    }
  }
  fs::path exe_dir = fs::path(self_executable()).parent_path();
  if (clip.empty())
    clip = exe_dir.parent_path() / "bench-media" / ("h264_1080p30_" + std::to_string(seconds) + "s.mp4");
  if (!bench::ensure_clip(clip, 1920, 1080, 30, seconds)) {
    std::fprintf(stderr, "cannot generate %s (is the ffmpeg CLI installed?)\n", clip.c_str());
    return 1;
  }
  fs::path dir = fs::temp_directory_path() / ("ring_bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  shm::remove_stale_segments("fhbench-");

  std::printf("ring_bench: %s (%d s of 1080p30 H.264), %u slots, %u cores\n", clip.c_str(), seconds, slots,
              std::thread::hardware_concurrency());
  // Throughput on a shared VM drifts by up to 20% over a minute, so for each N
  // the runs go a, b, b, a and the ratio is sum(b)/sum(a): linear drift cancels.
  long frames = 0;
  std::printf("(a) decode to BGR alone, and (b) decode into a ring read by N consumer processes\n");
  std::printf("    (each consumer reads one byte of every row, so every page of every frame is touched)\n");
  std::printf("      N   (a) frames/s   (b) frames/s per consumer   ratio (b)/(a)   page faults/frame (producer, consumer)\n");
  double min_ratio = 1e9;
  for (int n : counts) {
    const double a1 = decode_alone(clip.string(), frames);
    auto r = decode_into_ring(clip.string(), n, slots, dir);
    auto r2 = decode_into_ring(clip.string(), n, slots, dir);
    const double a2 = decode_alone(clip.string(), frames);
    const double fps_a = (a1 + a2) / 2;
    r.fps_per_consumer = (r.fps_per_consumer + r2.fps_per_consumer) / 2;
    r.frames_min = std::min(r.frames_min, r2.frames_min);
    r.producer_faults_per_frame = std::max(r.producer_faults_per_frame, r2.producer_faults_per_frame);
    r.consumer_faults_per_frame = std::max(r.consumer_faults_per_frame, r2.consumer_faults_per_frame);
    const double ratio = r.fps_per_consumer / fps_a;
    min_ratio = std::min(min_ratio, ratio);
    std::printf("    %3d   %10.1f     %12.1f                 %8.3f        %.2f, %.2f%s\n", n, fps_a,
                r.fps_per_consumer, ratio, r.producer_faults_per_frame, r.consumer_faults_per_frame,
                r.frames_min != frames ? "  (frames missing!)" : "");
  }

  std::printf("(c) ring alone, synthetic 1920x1080 BGR producer (memcpy of each frame)\n");
  auto thr = synthetic(1, slots, 1500, 0, dir);
  std::printf("    unpaced, 1 consumer: %8.1f frames/s  %6.2f GB/s\n", thr.fps, thr.gbps);
  double p99_max = 0;
  for (int n : {1, 8}) {
    auto lat = synthetic(n, slots, 600, 100, dir);
    p99_max = std::max(p99_max, lat.latency.lat_p99_us);
    std::printf("    paced 100 frames/s, %d consumer%s: publish-to-consume p50 %6.1f us  p99 %6.1f us  max %7.1f us\n",
                n, n == 1 ? " " : "s", lat.latency.lat_p50_us, lat.latency.lat_p99_us, lat.latency.lat_max_us);
  }
  fs::remove_all(dir);
  std::printf("latency_p99_us=%.1f\n", p99_max);
  std::printf("min_ratio=%.3f\n", min_ratio);
  return 0;
}
