#include "bench/roles.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "actors/messages.hpp"
#include "analysis/analyzer.hpp"
#include "bench/bench_support.hpp"
#include "caf/io/all.hpp"
#include "common/clock.hpp"
#include "media/decoder.hpp"
#include "shm/frame_ring.hpp"

namespace framehive::bench {

void write_json(const std::string& path, const nlohmann::json& j) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump() << '\n';
  }
  std::filesystem::rename(tmp, path);
}

namespace {

using nlohmann::json;

/// The per-frame work of a consumer: none, or one of our analyzers (touch, stats).
class work {
 public:
  explicit work(const std::string& kind) {
    if (kind != "none") {
      an_ = analysis::make_analyzer(kind);
      if (!an_) {
        std::fprintf(stderr, "unknown work '%s'\n", kind.c_str());
        std::exit(64);
      }
      an_->begin({});
    }
  }
  void operator()(const uint8_t* pixels, uint32_t w, uint32_t h, uint32_t stride, int64_t frame) {
    if (!an_)
      return;
    cv::Mat m(static_cast<int>(h), static_cast<int>(w), CV_8UC3, const_cast<uint8_t*>(pixels), stride);
    an_->process(m, frame, 0.0);
  }

 private:
  std::unique_ptr<analysis::analyzer> an_;
};

std::unique_ptr<media::decoder> open_or_exit(const std::string& clip) {
  auto dec = media::decoder::open(clip);
  if (!dec) {
    std::fprintf(stderr, "%s\n", dec.error().message().c_str());
    std::exit(1);
  }
  return std::move(*dec);
}

// -- decode --------------------------------------------------------------------------

int run_decode(const std::string& clip, const std::string& kind, const std::string& out) {
  keep_freed_memory();
  auto dec = open_or_exit(clip);
  work w(kind);
  const auto width = static_cast<uint32_t>(dec->output_width());
  const auto height = static_cast<uint32_t>(dec->output_height());
  const uint32_t stride = (width * 3 + 63) / 64 * 64;
  std::vector<uint8_t> buf(static_cast<std::size_t>(stride) * height);
  media::decoded_frame f;
  int64_t frames = 0;
  const uint64_t t0 = monotonic_ns();
  while (true) {
    auto s = dec->next(f);
    if (!s) {
      std::fprintf(stderr, "%s\n", s.error().message().c_str());
      return 1;
    }
    if (*s == media::decoder::step::end)
      break;
    dec->convert_bgr(buf.data(), static_cast<int>(stride));
    w(buf.data(), width, height, stride, frames);
    ++frames;
  }
  write_json(out, {{"frames", frames}, {"seconds", static_cast<double>(monotonic_ns() - t0) / 1e9}});
  return 0;
}

// -- frames as messages ------------------------------------------------------------------

caf::actor_system_config& bench_config(caf::actor_system_config& cfg) {
  register_protocol(cfg);
  cfg.add_message_types<caf::id_block::framehive_bench>();
  configure_network(cfg);
  cfg.load<caf::io::middleman>();
  return cfg;
}

struct msg_consumer_state {
  static inline const char* name = "bench-consumer";
  int64_t frames = 0;
  std::vector<double> latency_us;
  uint64_t first_ns = 0;
};

int run_msg_consumer(const std::string& kind, const std::string& out) {
  keep_freed_memory();
  caf::actor_system_config cfg;
  caf::actor_system sys{bench_config(cfg)};
  auto w = std::make_shared<work>(kind);
  std::atomic<bool> finished{false};
  auto consumer = sys.spawn([w, out, &finished](caf::stateful_actor<msg_consumer_state>* self) -> caf::behavior {
    self->state.latency_us.reserve(1 << 16);
    return {
        [self, w](bgr_frame& f) {
          auto& st = self->state;
          const uint64_t now = monotonic_ns();
          if (st.first_ns == 0)
            st.first_ns = now;
          st.latency_us.push_back(static_cast<double>(now - f.publish_ns) / 1e3);
          (*w)(f.pixels.data(), f.width, f.height, f.stride, static_cast<int64_t>(f.seq));
          ++st.frames;
          self->send(caf::actor_cast<caf::actor>(self->current_sender()), frame_ack_atom::value, f.seq);
        },
        [self, out, &finished](eos_atom) {
          auto& st = self->state;
          write_json(out, {{"frames", st.frames},
                           {"latency_p50_us", percentile(st.latency_us, 0.5)},
                           {"latency_p99_us", percentile(st.latency_us, 0.99)},
                           {"latency_p999_us", percentile(st.latency_us, 0.999)}});
          finished = true;
          self->quit();
        },
    };
  });
  auto port = sys.middleman().publish(consumer, 0, "127.0.0.1");
  if (!port) {
    std::fprintf(stderr, "cannot publish: %s\n", sys.render(port.error()).c_str());
    std::_Exit(1);
  }
  write_json(out + ".port", {{"port", *port}});
  // The producer ends us with eos; a producer that died leaves us waiting: give up after a while.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(30);
  while (!finished && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::fflush(nullptr);
  std::_Exit(finished ? 0 : 1);  // CAF 0.17's ~actor_system may wait on the middleman (see actors/lifecycle.hpp)
}

int run_msg_producer(const std::string& clip, uint32_t window, const std::string& out,
                     const std::vector<uint16_t>& ports) {
  keep_freed_memory();
  caf::actor_system_config cfg;
  caf::actor_system sys{bench_config(cfg)};
  std::vector<caf::actor> consumers;
  for (auto p : ports) {
    auto a = sys.middleman().remote_actor("127.0.0.1", p);
    if (!a) {
      std::fprintf(stderr, "cannot reach consumer on port %u: %s\n", p, sys.render(a.error()).c_str());
      std::_Exit(1);
    }
    consumers.push_back(*a);
  }
  auto dec = open_or_exit(clip);
  const auto width = static_cast<uint32_t>(dec->output_width());
  const auto height = static_cast<uint32_t>(dec->output_height());
  const uint32_t stride = width * 3;
  caf::scoped_actor self{sys};
  std::vector<uint64_t> acked(consumers.size(), 0);
  uint64_t sent = 0;
  bool lost = false;
  auto receive_ack = [&] {
    self->receive(
        [&](frame_ack_atom, uint64_t seq) {
          // Acks come back in order per consumer; which consumer is the sender.
          auto from = self->current_sender();
          for (std::size_t i = 0; i < consumers.size(); ++i)
            if (caf::actor_cast<caf::strong_actor_ptr>(consumers[i]) == from)
              acked[i] = std::max(acked[i], seq + 1);
        },
        caf::after(std::chrono::seconds(30)) >> [&] { lost = true; });
  };
  auto min_acked = [&] { return *std::min_element(acked.begin(), acked.end()); };
  media::decoded_frame f;
  const uint64_t t0 = monotonic_ns();
  while (!lost) {
    auto s = dec->next(f);
    if (!s || *s == media::decoder::step::end)
      break;
    bgr_frame m;
    m.seq = sent;
    m.width = width;
    m.height = height;
    m.stride = stride;
    m.pixels.resize(static_cast<std::size_t>(stride) * height);
    dec->convert_bgr(m.pixels.data(), static_cast<int>(stride));
    m.publish_ns = monotonic_ns();
    // One message shared by all receivers: no copy per consumer on this side.
    auto msg = caf::make_message(std::move(m));
    for (auto& c : consumers)
      c->enqueue(caf::actor_cast<caf::strong_actor_ptr>(self), caf::make_message_id(), msg, self->context());
    ++sent;
    while (!lost && sent - min_acked() > window)
      receive_ack();
  }
  while (!lost && min_acked() < sent)
    receive_ack();
  for (auto& c : consumers)
    self->send(c, eos_atom::value);
  write_json(out, {{"frames", sent}, {"seconds", static_cast<double>(monotonic_ns() - t0) / 1e9}, {"lost", lost}});
  // Let the eos messages leave before the process ends.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::fflush(nullptr);
  std::_Exit(lost ? 1 : 0);
}

// -- ring consumer (latency) ----------------------------------------------------------------

int run_ring_consumer(const std::string& ring, uint32_t id, const std::string& kind, const std::string& out) {
  keep_freed_memory();
  auto c = shm::ring_consumer::attach(ring, id);
  if (!c) {
    std::fprintf(stderr, "consumer %u: %s\n", id, c.error().message.c_str());
    return 2;
  }
  work w(kind);
  std::vector<double> lat;
  lat.reserve(1 << 17);
  int64_t frames = 0;
  shm::frame_view v;
  while (c->next(v, std::chrono::seconds(60)) == shm::ring_consumer::read_status::frame) {
    // "Start of processing": the moment the consumer has the frame in hand.
    lat.push_back(static_cast<double>(monotonic_ns() - v.publish_ns) / 1e3);
    w(v.pixels, v.width, v.height, v.stride, v.frame_index);
    c->commit(v.seq);
    ++frames;
  }
  c->detach();
  write_json(out, {{"frames", frames},
                   {"latency_p50_us", percentile(lat, 0.5)},
                   {"latency_p99_us", percentile(lat, 0.99)},
                   {"latency_p999_us", percentile(lat, 0.999)},
                   {"latency_max_us", percentile(lat, 1.0)}});
  return 0;
}

}  // namespace

int run_sim_nodes(int argc, char** argv);  // sim_nodes.cpp
int run_ingest_nodes(int argc, char** argv);  // ingest_nodes.cpp

int run_role(int argc, char** argv) {
  if (argc < 2)
    return -1;
  const std::string role = argv[1];
  auto need = [&](int n, const char* usage) {
    if (argc < n + 2) {
      std::fprintf(stderr, "usage: framehive-bench %s %s\n", role.c_str(), usage);
      std::exit(64);
    }
  };
  if (role == "decode") {
    need(3, "CLIP WORK OUT");
    return run_decode(argv[2], argv[3], argv[4]);
  }
  if (role == "msg-consumer") {
    need(2, "WORK OUT");
    return run_msg_consumer(argv[2], argv[3]);
  }
  if (role == "msg-producer") {
    need(4, "CLIP WINDOW OUT PORT...");
    std::vector<uint16_t> ports;
    for (int i = 5; i < argc; ++i)
      ports.push_back(static_cast<uint16_t>(std::stoi(argv[i])));
    return run_msg_producer(argv[2], static_cast<uint32_t>(std::stoul(argv[3])), argv[4], ports);
  }
  if (role == "ring-consumer") {
    need(4, "RING ID WORK OUT");
    return run_ring_consumer(argv[2], static_cast<uint32_t>(std::stoul(argv[3])), argv[4], argv[5]);
  }
  if (role == "sim-nodes")
    return run_sim_nodes(argc, argv);
  if (role == "ingest-nodes")
    return run_ingest_nodes(argc, argv);
  return -1;
}

}  // namespace framehive::bench
