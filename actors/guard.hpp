#pragma once

// The boundary between a message handler and the actor that runs it. In CAF
// 0.17 an exception that escapes a handler ends the actor (CAF-0.17.md §6):
// for the coordinator or a node that means the whole cluster or machine stops
// serving because of one bad row or one bad message. Every handler of a
// long-lived actor runs its body through guarded(): an exception becomes a
// logged error reply, and the actor goes on.

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "actors/messages.hpp"

namespace framehive {

/// Runs `body()` and returns its result; if it throws, logs `where` and the
/// exception and returns an errc::internal error instead (for handlers that
/// return caf::result<T>), or just logs (for handlers that return nothing).
template <class F>
auto guarded(std::string_view where, F&& body) -> decltype(body()) {
  using R = decltype(body());
  std::string what;
  try {
    return body();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  spdlog::error("{}: handler failed: {} (the actor goes on)", where, what);
  if constexpr (!std::is_void_v<R>)
    return make_error(errc::internal, std::string(where) + " failed: " + what);
}

}  // namespace framehive
