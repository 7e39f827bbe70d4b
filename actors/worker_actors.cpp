#include "actors/worker_actors.hpp"

#include <unistd.h>

#include <deque>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>
#include <opencv2/core.hpp>

#include "analysis/analyzer.hpp"
#include "common/clock.hpp"
#include "common/faults.hpp"
#include "ingest/ring_pump.hpp"
#include "media/decoder.hpp"
#include "shm/frame_ring.hpp"

namespace framehive {

namespace {

constexpr auto slice = std::chrono::milliseconds(50);
constexpr uint64_t report_every_ns = 500'000'000;
constexpr auto batch_timeout = std::chrono::seconds(15);

uint32_t my_pid() { return static_cast<uint32_t>(getpid()); }

/// Frames per second over the interval since the last report.
struct rate_meter {
  uint64_t since_ns = monotonic_ns();
  int64_t since_frames = 0;
  double fps = 0;
  bool due(int64_t frames, uint64_t now) {
    if (now - since_ns < report_every_ns)
      return false;
    fps = static_cast<double>(frames - since_frames) / (static_cast<double>(now - since_ns) / 1e9);
    since_ns = now;
    since_frames = frames;
    return true;
  }
};

// -- decoder -----------------------------------------------------------------------

struct decoder_state {
  static inline const char* name = "decoder";
  decoder_task task;
  node_port_actor node;
  std::unique_ptr<media::decoder> dec;
  std::optional<shm::ring_producer> ring;
  ingest::pump_cursor cursor;
  int64_t published = 0;
  int64_t first_frame = 0;  ///< where this decoder instance started
  int64_t position = 0;
  rate_meter rate;
  bool finished = false;
};

actor_progress decoder_progress(const decoder_state& st, const std::string& state) {
  actor_progress p;
  p.video = st.task.video;
  p.epoch = st.task.epoch;
  p.role = "decoder";
  p.state = state;
  p.position = st.position;
  p.frames = st.published;
  p.fps = st.rate.fps;
  p.pid = my_pid();
  p.decode_errors = st.dec ? st.dec->decode_errors() : 0;
  return p;
}

decoder_actor::behavior_type decoder_behavior(decoder_actor::stateful_pointer<decoder_state> self,
                                              decoder_task task, node_port_actor node) {
  auto& st = self->state;
  st.task = std::move(task);
  st.node = node;
  auto fail = [self](const std::string& why) {
    auto p = decoder_progress(self->state, "failed");
    p.error = why;
    self->send(self->state.node, p);
    self->quit();
  };
  auto producer = shm::ring_producer::open(st.task.ring);
  if (!producer) {
    fail(producer.error().message);
    return {[](tick_atom) {}};
  }
  st.ring.emplace(std::move(*producer));
  // A restarted decoder continues at the ring's next frame.
  media::decoder_options opt;
  opt.start_frame = std::max<int64_t>(st.task.start_frame, st.ring->next_frame_index());
  opt.max_width = static_cast<int>(st.task.max_width);
  auto dec = media::decoder::open(st.task.input, opt);
  if (!dec) {
    st.ring->fail(dec.error().message());
    fail(dec.error().message());
    return {[](tick_atom) {}};
  }
  st.dec = std::move(*dec);
  st.position = opt.start_frame;
  st.first_frame = opt.start_frame;
  spdlog::info("decoder video={} epoch={} input={} starts at frame {}", st.task.video, st.task.epoch,
               st.task.input, opt.start_frame);
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        auto& s = self->state;
        if (s.finished)
          return;
        const uint64_t until = monotonic_ns() + std::chrono::nanoseconds(slice).count();
        ingest::pump_options o;
        o.slot_wait = std::chrono::milliseconds(20);
        o.should_stop = [until] { return monotonic_ns() >= until; };
        o.on_frame = [&s](const media::decoded_frame& f) {
          s.position = f.index + 1;
          ++s.published;
        };
        auto r = ingest::pump_into_ring(*s.dec, *s.ring, o, s.cursor);
        if (!r) {
          auto p = decoder_progress(s, "failed");
          p.error = r.error().message();
          self->send(s.node, p);
          self->quit();
          return;
        }
        if (r->fenced) {
          self->quit();  // another decoder owns the ring now
          return;
        }
        const uint64_t now = monotonic_ns();
        if (!r->stopped) {
          s.finished = true;
          // Frames skipped at the end (sampling) still count towards the total.
          s.position = std::max<int64_t>(s.position, s.dec->frames_decoded() + s.first_frame);
          s.rate.due(s.published, now + report_every_ns);
          self->send(s.node, decoder_progress(s, "done"));
          self->quit();
          return;
        }
        if (s.rate.due(s.published, now))
          self->send(s.node, decoder_progress(s, "running"));
        self->send(self, tick_atom::value);
      },
  };
}

// -- consumer --------------------------------------------------------------------------

struct pending_batch {
  uint64_t id = 0;
  uint64_t last_seq = 0;
  bool acked = false;
  uint32_t attempts = 0;
  result_batch batch;
};

struct consumer_state {
  static inline const char* name = "consumer";
  consumer_task task;
  node_port_actor node;
  std::optional<shm::ring_consumer> ring;
  std::unique_ptr<analysis::analyzer> an;
  result_batch building;
  uint64_t building_last_seq = 0;
  uint64_t building_since = 0;
  std::deque<pending_batch> unacked;  // in send order; committed strictly in order
  uint64_t next_batch_id = 1;
  bool eos = false;
  bool ticking = false;
  int64_t processed = 0;
  int64_t position = 0;
  rate_meter rate;
  fault_plan faults;
  std::map<int64_t, std::string> quarantine;  ///< frame -> reason
};

actor_progress consumer_progress(const consumer_state& st, const std::string& state) {
  actor_progress p;
  p.video = st.task.video;
  p.epoch = st.task.epoch;
  p.role = st.task.analyzer;
  p.state = state;
  p.position = st.position;
  p.frames = st.processed;
  p.fps = st.rate.fps;
  p.pid = my_pid();
  p.redelivered = st.ring ? st.ring->redelivered() : 0;
  return p;
}

consumer_actor::behavior_type consumer_behavior(consumer_actor::stateful_pointer<consumer_state> self,
                                                consumer_task task, node_port_actor node) {
  auto& st = self->state;
  st.task = std::move(task);
  st.node = node;
  auto fail = [self](const std::string& why) {
    auto p = consumer_progress(self->state, "failed");
    p.error = why;
    self->send(self->state.node, p);
    self->quit();
  };
  st.an = analysis::make_analyzer(st.task.analyzer, analysis::parse_analyzer_options(st.task.params));
  if (!st.an) {
    fail("unknown analyzer '" + st.task.analyzer + "'");
    return {[](tick_atom) {}, [](retry_atom, uint64_t) {}};
  }
  shm::attach_options ao;
  ao.sample_every = std::max<uint32_t>(1, st.task.stride);
  auto ring = shm::ring_consumer::attach(st.task.ring, st.task.consumer_id, ao);
  if (!ring) {
    fail(ring.error().message);
    return {[](tick_atom) {}, [](retry_atom, uint64_t) {}};
  }
  st.ring.emplace(std::move(*ring));
  analysis::video_context ctx;
  ctx.width = static_cast<int>(st.ring->width());
  ctx.height = static_cast<int>(st.ring->height());
  ctx.fps = st.task.fps;
  ctx.output_dir = st.task.output_dir;
  st.an->begin(ctx);
  {
    auto params = nlohmann::json::parse(st.task.params, nullptr, false);
    std::string spec = params.is_object() ? params.value("faults", "") : "";
    if (const char* env = std::getenv("FRAMEHIVE_FAULTS"); spec.empty() && env)
      spec = env;
    std::string err;
    st.faults = fault_plan::parse(spec, &err);
    if (!err.empty())
      spdlog::warn("consumer: ignoring fault spec parts: {}", err);
    for (std::size_t i = 0; i < st.task.quarantine.size(); ++i)
      st.quarantine[st.task.quarantine[i]] =
          i < st.task.quarantine_reasons.size() ? st.task.quarantine_reasons[i] : "quarantined";
  }
  st.building.video = st.task.video;
  st.building.epoch = st.task.epoch;
  st.building.analyzer = st.task.analyzer;
  if (st.ring->redelivered() > 0)
    spdlog::info("consumer video={} analyzer={} resumes at seq {}: {} frames delivered again", st.task.video,
                 st.task.analyzer, st.ring->committed(), st.ring->redelivered());

  // Sends one batch; on failure the same batch is sent again (idempotent upsert).
  auto send_batch = std::make_shared<std::function<void(uint64_t)>>();
  *send_batch = [self, send_batch](uint64_t id) {
    auto& s = self->state;
    auto it = std::find_if(s.unacked.begin(), s.unacked.end(), [id](const auto& b) { return b.id == id; });
    if (it == s.unacked.end())
      return;
    self->request(s.node, batch_timeout, it->batch)
        .then(
            [self, id](batch_ack&) {
              auto& s = self->state;
              for (auto& b : s.unacked)
                if (b.id == id)
                  b.acked = true;
              // Commit the acknowledged prefix only: the ring commit is cumulative.
              while (!s.unacked.empty() && s.unacked.front().acked) {
                s.ring->commit(s.unacked.front().last_seq);
                s.unacked.pop_front();
              }
              if (s.eos && s.unacked.empty() && s.building.frames.empty()) {
                s.rate.due(s.processed, monotonic_ns() + report_every_ns);
                self->send(s.node, consumer_progress(s, "done"));
                s.ring->detach();
                self->quit();
                return;
              }
              if (!s.ticking) {
                s.ticking = true;
                self->send(self, tick_atom::value);
              }
            },
            [self, id](caf::error& err) {
              auto& s = self->state;
              auto it = std::find_if(s.unacked.begin(), s.unacked.end(), [id](const auto& b) { return b.id == id; });
              if (it == s.unacked.end())
                return;
              // Exponential backoff while the coordinator is away (restarting, or unreachable).
              const uint32_t n = ++it->attempts;
              const auto delay = std::chrono::milliseconds(std::min<uint32_t>(5000, 100u << std::min(n, 6u)));
              if (n == 1 || n % 10 == 0)
                spdlog::warn("consumer video={} analyzer={}: result batch not confirmed ({}), retry {} in {} ms",
                             s.task.video, s.task.analyzer, describe(err), n, delay.count());
              self->delayed_send(self, delay, retry_atom::value, id);
            });
  };
  auto flush = [self, send_batch] {
    auto& s = self->state;
    if (s.building.frames.empty())
      return;
    pending_batch b;
    b.id = s.next_batch_id++;
    b.last_seq = s.building_last_seq;
    b.batch = s.building;
    s.building.frames.clear();
    s.unacked.push_back(std::move(b));
    (*send_batch)(s.unacked.back().id);
  };

  st.ticking = true;
  self->send(self, tick_atom::value);
  return {
      [self, flush, fail](tick_atom) {
        auto& s = self->state;
        s.ticking = false;
        if (s.eos)
          return;
        // At most two batches in flight: the ring holds their frames meanwhile.
        if (s.unacked.size() >= 2)
          return;  // an ack will tick us again
        const uint64_t now0 = monotonic_ns();
        const uint64_t until = now0 + std::chrono::nanoseconds(slice).count();
        shm::frame_view v;
        while (monotonic_ns() < until && s.building.frames.size() < s.task.batch_frames) {
          auto rs = s.ring->next(v, std::chrono::milliseconds(20));
          if (rs == shm::ring_consumer::read_status::frame && v.frame_index < s.task.emit_from) {
            // Before the resume point: warm up a stateful analyzer, store nothing.
            if (analysis::preroll_frames(s.task.analyzer) > 0) {
              const double tb = v.time_base_den ? static_cast<double>(v.time_base_num) / v.time_base_den : 0.0;
              cv::Mat frame(static_cast<int>(v.height), static_cast<int>(v.width), CV_8UC3,
                            const_cast<uint8_t*>(v.pixels), v.stride);
              try {
                s.an->process(frame, v.frame_index, static_cast<double>(v.pts) * tb);
              } catch (const std::exception&) {
              }
            }
            if (s.unacked.empty() && s.building.frames.empty())
              s.ring->commit(v.seq);
            s.position = v.frame_index + 1;
            continue;
          }
          if (rs == shm::ring_consumer::read_status::frame) {
            const double tb = v.time_base_den ? static_cast<double>(v.time_base_num) / v.time_base_den : 0.0;
            const double t = static_cast<double>(v.pts) * tb;
            cv::Mat frame(static_cast<int>(v.height), static_cast<int>(v.width), CV_8UC3,
                          const_cast<uint8_t*>(v.pixels), v.stride);
            const uint64_t t0 = monotonic_ns();
            nlohmann::json r;
            if (auto q = s.quarantine.find(v.frame_index); q != s.quarantine.end()) {
              // A poison frame: recorded as failed for this analyzer, skipped.
              r = {{"quarantined", true}, {"reason", q->second}};
            } else {
              try {
                if (auto f = s.faults.at(s.task.analyzer, v.frame_index))
                  trigger(*f, s.task.analyzer + " at frame " + std::to_string(v.frame_index));
                r = s.an->process(frame, v.frame_index, t);
              } catch (const std::exception& e) {
                // An exception costs this frame only: quarantined with the reason.
                r = {{"quarantined", true}, {"reason", std::string("analyzer threw: ") + e.what()}};
              }
            }
            r["ms"] = static_cast<double>(monotonic_ns() - t0) / 1e6;
            r["t"] = t;
            if (s.building.frames.empty())
              s.building_since = t0;
            s.building.time_base = tb;
            s.building.frames.push_back(frame_result{v.frame_index, v.pts, r.dump()});
            s.building_last_seq = v.seq;
            s.position = v.frame_index + 1;
            ++s.processed;
            continue;
          }
          if (rs == shm::ring_consumer::read_status::end_of_stream) {
            s.eos = true;
            break;
          }
          if (rs == shm::ring_consumer::read_status::producer_failed) {
            fail("decoder failed: " + s.ring->error_text());
            return;
          }
          if (rs == shm::ring_consumer::read_status::fenced) {
            self->quit();  // replaced by a newer consumer
            return;
          }
          break;  // timeout or producer_lost: the node restarts decoders; look again later
        }
        const uint64_t now = monotonic_ns();
        if (s.eos || s.building.frames.size() >= s.task.batch_frames ||
            (!s.building.frames.empty() && now - s.building_since > 200'000'000))
          flush();
        if (s.rate.due(s.processed, now))
          self->send(s.node, consumer_progress(s, "running"));
        if (s.eos && s.unacked.empty()) {
          self->send(s.node, consumer_progress(s, "done"));
          s.ring->detach();
          self->quit();
          return;
        }
        if (!s.eos && s.unacked.size() < 2) {
          s.ticking = true;
          self->send(self, tick_atom::value);
        }
      },
      [self, send_batch](retry_atom, uint64_t id) {
        // Still alive while waiting: the node's hang detector hears from us.
        self->send(self->state.node, consumer_progress(self->state, "waiting"));
        (*send_batch)(id);
      },
  };
}

// -- worker front actor -------------------------------------------------------------------

struct worker_state {
  static inline const char* name = "worker";
  node_port_actor node;
  std::multimap<uint64_t, caf::actor> by_video;
};

worker_actor::behavior_type worker_behavior(worker_actor::stateful_pointer<worker_state> self,
                                            node_port_actor node) {
  self->state.node = node;
  self->monitor(node);
  self->set_down_handler([self](caf::down_msg& dm) {
    if (dm.source == self->state.node) {
      spdlog::warn("worker: node went away ({}), shutting down", caf::to_string(dm.reason));
      for (auto& [video, a] : self->state.by_video)
        self->send_exit(a, caf::exit_reason::user_shutdown);
      self->quit();
      return;
    }
    // A decoder or consumer actor ended: forget it. A crash (exception) ends
    // it with an error; the node hears about it through its missing progress.
    for (auto it = self->state.by_video.begin(); it != self->state.by_video.end(); ++it)
      if (it->second.address() == dm.source) {
        if (dm.reason && dm.reason != caf::exit_reason::user_shutdown)
          spdlog::error("worker: actor for video {} died: {}", it->first, caf::to_string(dm.reason));
        self->state.by_video.erase(it);
        break;
      }
  });
  return {
      [](probe_atom, const std::string& input) -> caf::result<video_meta> {
        media::decoder_options o;
        auto dec = media::decoder::open(input, o);
        if (!dec)
          return make_error(errc::bad_input, dec.error().message());
        const auto& i = (*dec)->info();
        video_meta m;
        m.width = static_cast<uint32_t>(i.width);
        m.height = static_cast<uint32_t>(i.height);
        m.fps = i.frame_rate.value();
        m.duration_s = i.duration_s;
        m.frames = i.frame_count;
        m.codec = i.codec;
        return m;
      },
      [self](decoder_task& t) -> caf::ok_atom {
        auto a = spawn_decoder(self->system(), t, self->state.node);
        self->monitor(a);
        self->state.by_video.emplace(t.video, caf::actor_cast<caf::actor>(a));
        return caf::ok_atom::value;
      },
      [self](consumer_task& t) -> caf::ok_atom {
        auto a = spawn_consumer(self->system(), t, self->state.node);
        self->monitor(a);
        self->state.by_video.emplace(t.video, caf::actor_cast<caf::actor>(a));
        return caf::ok_atom::value;
      },
      [self](stop_atom, uint64_t video) {
        auto range = self->state.by_video.equal_range(video);
        for (auto it = range.first; it != range.second; ++it)
          self->send_exit(it->second, caf::exit_reason::user_shutdown);
        self->state.by_video.erase(range.first, range.second);
      },
  };
}

}  // namespace

decoder_actor spawn_decoder(caf::actor_system& sys, decoder_task task, node_port_actor node) {
  return sys.spawn<caf::detached>(decoder_behavior, std::move(task), std::move(node));
}

consumer_actor spawn_consumer(caf::actor_system& sys, consumer_task task, node_port_actor node) {
  return sys.spawn<caf::detached>(consumer_behavior, std::move(task), std::move(node));
}

worker_actor spawn_worker(caf::actor_system& sys, node_port_actor node) {
  return sys.spawn(worker_behavior, std::move(node));
}

}  // namespace framehive
