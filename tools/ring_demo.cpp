// framehive-ring-demo: decodes a video once into a shared-memory ring that
// several consumer processes read at once, and prints what each one saw.
//
//   framehive-ring-demo VIDEO [--consumers N]
//
// Consumer k samples every k-th frame, so the output also shows sampling.

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/process.hpp"
#include "ingest/ring_pump.hpp"
#include "media/decoder.hpp"
#include "shm/frame_ring.hpp"

using namespace framehive;
namespace fs = std::filesystem;

namespace {

int consumer(const std::string& ring, uint32_t id, const std::string& out_path) {
  shm::attach_options o;
  o.sample.every = id;
  auto c = shm::ring_consumer::attach(ring, id, o);
  if (!c) {
    std::fprintf(stderr, "consumer %u: %s\n", id, c.error().message.c_str());
    return 2;
  }
  long frames = 0;
  int64_t first = -1, last = -1;
  double first_s = 0, last_s = 0, brightness = 0;
  shm::frame_view v;
  shm::ring_consumer::read_status st;
  while ((st = c->next(v, std::chrono::seconds(30))) == shm::ring_consumer::read_status::frame) {
    // Mean of a sparse grid of luma samples: a cheap look at the pixels.
    double sum = 0;
    int n = 0;
    for (uint32_t y = 0; y < v.height; y += 16)
      for (uint32_t x = 0; x < v.width; x += 16) {
        const uint8_t* p = v.pixels + static_cast<std::size_t>(y) * v.stride + x * 3;
        sum += 0.114 * p[0] + 0.587 * p[1] + 0.299 * p[2];
        ++n;
      }
    brightness += n ? sum / n : 0;
    const double t = static_cast<double>(v.pts) * v.time_base_num / v.time_base_den;
    if (first < 0) {
      first = v.frame_index;
      first_s = t;
    }
    last = v.frame_index;
    last_s = t;
    ++frames;
    c->commit(v.seq);
  }
  c->detach();
  std::ofstream out(out_path);
  out << "consumer " << id << " (every " << id << (id == 1 ? "st" : id == 2 ? "nd" : id == 3 ? "rd" : "th")
      << " frame, pid " << getpid() << "): " << frames << " frames, index " << first << ".." << last << ", t "
      << first_s << "s.." << last_s << "s, mean brightness " << (frames ? brightness / frames : 0) << ", ended with "
      << shm::to_string(st) << "\n";
  return st == shm::ring_consumer::read_status::end_of_stream ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 5 && std::strcmp(argv[1], "--consumer") == 0)
    return consumer(argv[2], static_cast<uint32_t>(std::stoul(argv[3])), argv[4]);
  if (argc < 2) {
    std::fprintf(stderr, "usage: framehive-ring-demo VIDEO [--consumers N]\n");
    return 64;
  }
  keep_freed_memory();
  const std::string input = argv[1];
  int consumers = 3;
  if (argc >= 4 && std::strcmp(argv[2], "--consumers") == 0)
    consumers = std::max(1, std::min(32, std::stoi(argv[3])));

  auto dec = media::decoder::open(input);
  if (!dec) {
    std::fprintf(stderr, "framehive-ring-demo: %s\n", dec.error().message().c_str());
    return 1;
  }
  auto& d = **dec;
  const auto& info = d.info();
  std::printf("input: %s: %s %dx%d, %.2f frames/s, %.1f s, %lld frames\n", input.c_str(), info.codec.c_str(),
              info.width, info.height, info.frame_rate.value(), info.duration_s,
              static_cast<long long>(info.frame_count));

  const std::string name = "framehive-demo-" + std::to_string(getpid());
  shm::ring_options o;
  o.name = name;
  o.width = static_cast<uint32_t>(d.output_width());
  o.height = static_cast<uint32_t>(d.output_height());
  o.slot_count = 16;
  auto ring = shm::frame_ring::create(o);
  if (!ring) {
    std::fprintf(stderr, "framehive-ring-demo: %s\n", ring.error().message.c_str());
    return 1;
  }
  std::printf("ring:  /dev/shm/%s, %u slots, %s\n", name.c_str(), ring->slot_count(),
              shm::format_bytes(ring->status().segment_bytes).c_str());

  fs::path dir = fs::temp_directory_path() / ("framehive-ring-demo-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::vector<child_process> kids;
  for (int i = 1; i <= consumers; ++i) {
    ring->reserve_consumer(static_cast<uint32_t>(i), 0, sampling{static_cast<uint32_t>(i)});
    std::string err;
    auto p = child_process::spawn({self_executable(), "--consumer", name, std::to_string(i),
                                   (dir / std::to_string(i)).string()},
                                  &err);
    if (!p) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    kids.push_back(std::move(*p));
  }
  auto producer = shm::ring_producer::open(name);
  if (!producer) {
    std::fprintf(stderr, "framehive-ring-demo: %s\n", producer.error().message.c_str());
    return 1;
  }
  auto stats = ingest::pump_into_ring(d, *producer);
  int rc = 0;
  for (auto& k : kids)
    rc |= k.wait().success() ? 0 : 1;
  if (!stats) {
    std::fprintf(stderr, "framehive-ring-demo: %s\n", stats.error().message().c_str());
    rc = 1;
  } else {
    std::printf("decoded once: %lld frames in %.2f s (%.0f frames/s), %lld decode errors\n",
                static_cast<long long>(stats->published), stats->seconds,
                static_cast<double>(stats->published) / stats->seconds,
                static_cast<long long>(stats->decode_errors));
  }
  for (int i = 1; i <= consumers; ++i) {
    std::ifstream in(dir / std::to_string(i));
    std::string line;
    std::getline(in, line);
    std::printf("  %s\n", line.c_str());
  }
  fs::remove_all(dir);
  return rc;
}
