#pragma once

// Fault injection for the failure tests: an analyzer crashes, aborts, throws or
// hangs at chosen frames. Off unless configured: the node option
// `supervision.faults`, which reaches the consumers typed, inside their
// analyzer settings, e.g.
//   --supervision.faults="stats:crash@120,motion:throw@40,people:hang@7"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace framehive {

enum class fault_kind { crash, abort, throw_exception, hang };

struct fault {
  std::string where;  ///< analyzer name
  fault_kind kind = fault_kind::crash;
  int64_t frame = 0;
};

class fault_plan {
 public:
  /// Parses "WHERE:KIND@FRAME,..."; malformed items are reported in `error`.
  static fault_plan parse(const std::string& spec, std::string* error = nullptr);

  bool empty() const noexcept { return faults_.empty(); }
  std::optional<fault_kind> at(const std::string& where, int64_t frame) const;

 private:
  std::vector<fault> faults_;
};

/// Carries out a fault: SIGSEGV, abort(), an exception, or sleeping forever.
void trigger(fault_kind kind, const std::string& what);

}  // namespace framehive
