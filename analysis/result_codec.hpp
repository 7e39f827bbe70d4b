#pragma once

// The stored form of one analyzer's result for one frame: a compact, typed
// binary form of the JSON object the analyzer returned, written by the
// consumer, carried in frame_result::data, stored as the job store's BLOB and
// decoded only when a summary or `results --frames` reads it.
//
// Why not JSON text: a `stats` result was ~100 bytes of text per frame (keys
// spelled out, doubles in 17 digits), a std::string that CAF allocates for
// every frame, and a parse for every summary. Here it is 15 bytes: each member
// is one head byte (its key's number in analysis/result_keys.hpp and its type)
// and the value; a measurement is a float32.
//
//   result  := member*                         (up to the end: the top level is an object)
//   member  := head [key] value-body
//   head    := (slot << 4) | type             slot 0-13: key_table[slot]
//                                             slot 14: one more byte, key_table[14 + byte]
//                                             slot 15: a literal key (varint length, bytes)
//   value   := head(slot 0) value-body         (array elements)
//   type    := 0 null | 1 false | 2 true | 3 uint (varint) | 4 negative int (varint of -1 - n)
//            | 5 float32 | 6 float64 (little endian) | 7 string (varint length, bytes)
//            | 8 array (varint count, values) | 9 object (varint count, members)
//
// Precision, the one thing the form decides: numbers with a fraction are
// float32 (24 bits: about 7 significant digits, more than any measurement
// here resolves) and read back as the shortest decimal that float prints
// ("0.1", not 0.10000000149011612). Times in seconds (keys `t`, `start_s`,
// `end_s`) stay float64. `t` itself is not stored: it is the frame's pts
// times its video's time base, which the store keeps once per video.
//
// key_table is append-only: stored results name keys by their place in it.

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace framehive::analysis {

/// Appends the stored form of `object` (a JSON object; anything else is stored
/// as an empty object) to `out`. Strings are stored as they are (bytes).
void encode_result(const nlohmann::json& object, std::string& out);

/// The stored form of `object`.
std::string encode_result(const nlohmann::json& object);

/// What decode_result builds: everything, as users read it; or what a
/// summary reads: no top-level `boxes` (summaries never read them, and they
/// are most of a detector's bytes), measurements as the float32 they are
/// (a cast, not the shortest decimal: a mean of thousands of frames does not
/// see the difference, and the decimal's search is most of a decode).
enum class decode_scope { all, summary };

/// The object `bytes` hold, or why they are not a stored result ("truncated
/// float32 at byte 7", "unknown key number 200 at byte 3"). Never throws.
result<nlohmann::json, std::string> decode_result(std::string_view bytes, decode_scope scope = decode_scope::all);

/// Why `bytes` are not a stored result, or an empty string: the check a
/// coordinator makes on a peer's batch, without building the object.
std::string check_result(std::string_view bytes);

/// Nesting deeper than this is refused (a forged result cannot exhaust the stack).
inline constexpr int max_result_depth = 16;

}  // namespace framehive::analysis
