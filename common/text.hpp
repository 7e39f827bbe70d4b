#pragma once

// Inputs are bytes: a Linux path or a URL need not be valid UTF-8. They are
// stored and passed on as they are; only where text is shown (tables, JSON,
// logs) are invalid sequences replaced.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace framehive {

/// `bytes` with every invalid UTF-8 sequence replaced by U+FFFD (the
/// replacement character); valid text comes back unchanged.
std::string printable_utf8(std::string_view bytes);

/// `digits` (decimal digits only: no sign, no spaces) as a number up to
/// `max`; nullopt for anything else, a value above `max` or one that would
/// not fit 64 bits.
std::optional<uint64_t> decimal_number(std::string_view digits, uint64_t max = UINT64_MAX);

}  // namespace framehive
