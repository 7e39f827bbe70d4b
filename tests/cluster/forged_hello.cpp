// A local process that is not one of the node's workers: it connects to the
// node's loopback worker port and says hello as worker INDEX with pid PID and
// SECRET, offering a worker actor that refuses every task.
//
//   forged_hello PORT INDEX PID SECRET
//
// Prints "accepted" or "refused: REASON". Exit code: 0 accepted, 1 refused,
// 3 could not connect.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "actors/messages.hpp"
#include "caf/io/all.hpp"

namespace {

using namespace framehive;

worker_actor::behavior_type refusing_worker() {
  return {
      [](probe_atom, const std::string&) -> caf::result<video_meta> {
        return make_error(errc::refused, "forged worker");
      },
      [](decoder_task&) -> caf::result<caf::ok_atom> { return make_error(errc::refused, "forged worker"); },
      [](consumer_task&) -> caf::result<caf::ok_atom> { return make_error(errc::refused, "forged worker"); },
      [](stop_atom, uint64_t) {},
  };
}

[[noreturn]] void leave(int code) {
  // Without ~actor_system: the node holds a proxy of our actor (CAF 0.17 can wait on it for ever).
  std::fflush(stdout);
  std::_Exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: forged_hello PORT INDEX PID SECRET\n");
    return 64;
  }
  caf::actor_system_config cfg;
  register_protocol(cfg);
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  const auto port = static_cast<uint16_t>(std::strtoul(argv[1], nullptr, 10));
  auto node = sys.middleman().remote_actor<node_port_actor>("127.0.0.1", port);
  if (!node) {
    std::printf("cannot connect: %s\n", sys.render(node.error()).c_str());
    leave(3);
  }
  auto fake = sys.spawn(refusing_worker);
  worker_hello hello;
  hello.index = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10));
  hello.pid = static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10));
  hello.secret = argv[4];
  int code = 1;
  caf::scoped_actor self{sys};
  self->request(*node, std::chrono::seconds(10), hello, fake)
      .receive(
          [&](caf::ok_atom) {
            std::printf("accepted\n");
            code = 0;
          },
          [&](caf::error& e) { std::printf("refused: %s\n", describe(e).c_str()); });
  leave(code);
}
