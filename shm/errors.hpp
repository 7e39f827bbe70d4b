#pragma once

#include <string>

namespace framehive::shm {

enum class ring_errc {
  invalid_argument,  ///< bad name, geometry or option
  no_space,          ///< /dev/shm has less free space than the ring needs
  too_large,         ///< one frame does not fit the byte cap
  already_exists,    ///< a segment of that name exists
  not_found,         ///< no segment of that name
  bad_layout,        ///< not a framehive ring, or another layout version
  consumer_busy,     ///< the consumer id is attached by a live process
  table_full,        ///< every consumer entry is taken
  producer_busy,     ///< a live producer already owns the ring
  system_error,      ///< an OS call failed (message has errno text)
};

const char* to_string(ring_errc code) noexcept;

/// A ring error names the ring and the cause, ready to show a user.
struct ring_error {
  ring_errc code;
  std::string message;
};

}  // namespace framehive::shm
