#include "actors/lifecycle.hpp"

#include <cstdio>
#include <cstdlib>

namespace framehive {

void stop_and_exit(caf::actor_system& sys, const caf::actor& root, int code, std::chrono::seconds grace) {
  {
    caf::scoped_actor self{sys};
    self->monitor(root);
    self->send_exit(root, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {}, caf::after(grace) >> [] {});
  }
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace framehive
