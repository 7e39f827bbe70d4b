// The web view against a coordinator that does not answer or is gone: every
// API request ends with 503 within its deadline, the page itself still loads,
// and stopping the view does not wait for anything but those deadlines.

#include <chrono>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "caf/all.hpp"
#include "common/process.hpp"
#include "coordinator/web_view.hpp"
#include "tests/support/media_tools.hpp"

namespace framehive {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

struct reply {
  int status = 0;
  std::string body;
  milliseconds took{0};
};

reply get(uint16_t port, const std::string& path) {
  const auto start = steady_clock::now();
  auto r = testing::run_command("curl -s --max-time 20 -w '\\n%{http_code}' 'http://127.0.0.1:" +
                                std::to_string(port) + path + "'");
  reply out;
  out.took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
  const auto nl = r.out.rfind('\n');
  if (nl != std::string::npos) {
    out.body = r.out.substr(0, nl);
    out.status = std::atoi(r.out.c_str() + nl + 1);
  }
  return out;
}

/// An actor that keeps every message and never replies: a coordinator stuck
/// in a long handler, as far as a requester can tell.
caf::behavior silent(caf::event_based_actor* self) {
  self->set_default_handler(caf::skip);
  return {[](caf::ok_atom) {}};
}

class WebViewQueries : public ::testing::Test {
 protected:
  caf::actor_system_config cfg_;
  caf::actor_system sys_{cfg_};
};

TEST_F(WebViewQueries, ASilentCoordinatorCostsA503AfterTheDeadlineNeverAThread) {
  auto stuck = sys_.spawn(silent);
  auto w = web_view::start({"127.0.0.1", free_loopback_port()},
                           ask_coordinator(sys_, caf::actor_cast<coordinator_actor>(stuck), milliseconds(300)));
  ASSERT_TRUE(w) << w.error();
  const uint16_t port = (*w)->port();

  EXPECT_EQ(get(port, "/").status, 200);  // the page needs no coordinator
  for (const char* path : {"/api/status", "/api/tree", "/api/nodes", "/api/jobs/1"}) {
    const reply r = get(port, path);
    EXPECT_EQ(r.status, 503) << path << ": " << r.body;
    EXPECT_GE(r.took, milliseconds(250)) << path;
    EXPECT_LT(r.took, milliseconds(10000)) << path;  // a 300 ms deadline, not none
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j.value("error", ""), "the coordinator did not answer within 300 ms") << path;
  }

  caf::anon_send_exit(stuck, caf::exit_reason::kill);
  const auto start = steady_clock::now();
  w->reset();
  EXPECT_LT(steady_clock::now() - start, milliseconds(10000)) << "stopping the web view waited";
}

TEST_F(WebViewQueries, AGoneCoordinatorCostsA503AtOnce) {
  auto gone = sys_.spawn(silent);
  caf::scoped_actor self{sys_};
  self->monitor(gone);
  self->send_exit(gone, caf::exit_reason::kill);
  self->receive([](caf::down_msg&) {});
  auto w = web_view::start({"127.0.0.1", free_loopback_port()},
                           ask_coordinator(sys_, caf::actor_cast<coordinator_actor>(gone), std::chrono::seconds(30)));
  ASSERT_TRUE(w) << w.error();
  const reply r = get((*w)->port(), "/api/status");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_LT(r.took, milliseconds(20000)) << "waited for the 30 s deadline instead of failing at once";
  EXPECT_NE(r.body.find("the coordinator cannot answer"), std::string::npos) << r.body;
}

TEST_F(WebViewQueries, OnlyLoopbackAndAFreePortStartAView) {
  auto h = caf::actor_cast<coordinator_actor>(sys_.spawn(silent));
  auto beyond = web_view::start({"0.0.0.0", free_loopback_port()}, ask_coordinator(sys_, h, milliseconds(100)));
  ASSERT_FALSE(beyond);
  EXPECT_NE(beyond.error().find("must be HTTPS"), std::string::npos) << beyond.error();
  auto named = web_view::start({"localhost", free_loopback_port()}, ask_coordinator(sys_, h, milliseconds(100)));
  EXPECT_FALSE(named);  // an address, not a name: what civetweb binds is what was checked
  EXPECT_FALSE(web_view::start({"127.0.0.1", 0}, ask_coordinator(sys_, h, milliseconds(100))));

  auto first = web_view::start({"127.0.0.1", free_loopback_port()}, ask_coordinator(sys_, h, milliseconds(100)));
  ASSERT_TRUE(first) << first.error();
  auto second =
      web_view::start({"127.0.0.1", (*first)->port()}, ask_coordinator(sys_, h, milliseconds(100)));
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find(std::to_string((*first)->port())), std::string::npos) << second.error();
  caf::anon_send_exit(h, caf::exit_reason::kill);
}

}  // namespace
}  // namespace framehive
