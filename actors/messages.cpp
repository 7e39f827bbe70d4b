#include "actors/messages.hpp"

#include "caf/io/middleman.hpp"

namespace framehive {

void register_protocol(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::framehive>();
  cfg.add_error_category(caf::atom("framehive"), [](uint8_t code, caf::atom_value, const caf::message& ctx) {
    std::string text = ctx.match_elements<std::string>() ? ctx.get_as<std::string>(0) : caf::to_string(ctx);
    return "framehive error " + std::to_string(code) + ": " + text;
  });
}

void configure_network(caf::actor_system_config& cfg) {
  cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds(500)});
  cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(5)});
  // Few, shared scheduler threads: lower latency on small machines (CAF-0.17.md, pitfall 9).
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.console", caf::atom("none"));
}

bool split_host_port(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size())
    return false;
  try {
    int p = std::stoi(s.substr(colon + 1));
    if (p <= 0 || p > 65535)
      return false;
    host = s.substr(0, colon);
    port = static_cast<uint16_t>(p);
    return true;
  } catch (...) {
    return false;
  }
}

std::string describe(const caf::error& e) {
  if (e.category() == caf::atom("framehive") && e.context().match_elements<std::string>())
    return e.context().get_as<std::string>(0);
  if (e.category() == caf::atom("system")) {
    std::string s = caf::to_string(static_cast<caf::sec>(e.code()));
    if (!e.context().empty())
      s += " " + caf::to_string(e.context());
    return s;
  }
  return caf::to_string(e);
}

}  // namespace framehive

namespace framehive {

namespace {

// One name table per enum, indexed by value; names double as the job store's
// text values, so they never change once released.
constexpr std::string_view job_names[] = {"queued", "running", "done", "failed", "cancelled"};
constexpr std::string_view video_names[] = {"queued", "running", "done", "failed", "cancelled"};
constexpr std::string_view outcome_names[] = {"done", "failed", "retry_later", "escalated"};
constexpr std::string_view kind_names[] = {"coordinator", "node", "worker", "video", "decoder", "consumer"};
constexpr std::string_view actor_state_names[] = {"running",  "connecting", "connected", "starting",
                                                  "ready",    "restarting", "probing",   "pending",
                                                  "waiting",  "lost",       "done",      "failed"};

template <class E, std::size_t N>
std::string name_of(E x, const std::string_view (&names)[N]) {
  const auto i = static_cast<std::size_t>(x);
  return i < N ? std::string(names[i]) : "unknown";
}

template <class E, std::size_t N>
bool parse(std::string_view text, E& out, const std::string_view (&names)[N]) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == text) {
      out = static_cast<E>(i);
      return true;
    }
  return false;
}

}  // namespace

std::string to_string(job_state x) { return name_of(x, job_names); }
std::string to_string(video_state x) { return name_of(x, video_names); }
std::string to_string(video_outcome x) { return name_of(x, outcome_names); }
std::string to_string(actor_kind x) { return name_of(x, kind_names); }
std::string to_string(actor_state x) { return name_of(x, actor_state_names); }
bool from_string(std::string_view text, job_state& out) noexcept { return parse(text, out, job_names); }
bool from_string(std::string_view text, video_state& out) noexcept { return parse(text, out, video_names); }

}  // namespace framehive
