#include "analysis/result_codec.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>

#include "analysis/result_keys.hpp"

namespace framehive::analysis {

namespace {

// Append-only (see the header): a key's number is its place here. The first
// 14 cost no byte beyond the head: the keys of every frame's result.
constexpr std::array<const char*, 37> key_table{
    // slots 0-13
    keys::ms, keys::brightness, keys::sharpness, keys::fg, keys::count, keys::boxes, keys::sum, keys::changed,
    keys::in_clip, keys::quarantined, keys::box_x, keys::box_y, keys::box_w, keys::box_h,
    // slot 14 + one byte
    keys::box_class, keys::reason, keys::path, keys::error, keys::clip, keys::clips, keys::digest, keys::index,
    keys::start_frame, keys::end_frame, keys::start_s, keys::end_s, keys::artifact, keys::t,
    // detect's built-in classes, the per-frame keys of its counts
    "person", "face", "upper_body", "cat_face", "licence_plate",
    // a few spare common names
    "label", "score", "value", "name"};

constexpr int direct_slots = 14;
constexpr int boxes_slot = 5;  ///< key_table[5]
static_assert(std::string_view(key_table[boxes_slot]) == "boxes");
constexpr int slot_extended = 14;
constexpr int slot_literal = 15;

enum type : uint8_t {
  t_null = 0,
  t_false = 1,
  t_true = 2,
  t_uint = 3,
  t_negint = 4,
  t_f32 = 5,
  t_f64 = 6,
  t_string = 7,
  t_array = 8,
  t_object = 9,
};

/// Times in seconds keep float64: a float32 second loses milliseconds after ~4.6 hours.
bool is_time_key(std::string_view key) {
  return key == keys::t || key == keys::start_s || key == keys::end_s;
}

std::optional<int> key_number(std::string_view key) {
  for (std::size_t i = 0; i < key_table.size(); ++i)
    if (key == key_table[i])
      return static_cast<int>(i);
  return std::nullopt;
}

// -- writing ------------------------------------------------------------------------------

void put_varint(uint64_t v, std::string& out) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <class T>
void put_le(T v, std::string& out) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // every machine we build for is little endian
  out.append(b, sizeof(T));
}

/// The type `v` is written as: null for what has no form (a non-finite float,
/// as in JSON text; nesting deeper than max_result_depth).
type type_of(const nlohmann::json& v, bool precise, int depth) {
  switch (v.type()) {
    case nlohmann::json::value_t::boolean:
      return v.get<bool>() ? t_true : t_false;
    case nlohmann::json::value_t::number_unsigned:
      return t_uint;
    case nlohmann::json::value_t::number_integer:
      return v.get<int64_t>() >= 0 ? t_uint : t_negint;
    case nlohmann::json::value_t::number_float:
      return !std::isfinite(v.get<double>()) ? t_null : precise ? t_f64 : t_f32;
    case nlohmann::json::value_t::string:
      return t_string;
    case nlohmann::json::value_t::array:
      return depth >= max_result_depth ? t_null : t_array;
    case nlohmann::json::value_t::object:
      return depth >= max_result_depth ? t_null : t_object;
    default:
      return t_null;
  }
}

void put_value(const nlohmann::json& v, uint8_t slot_bits, bool precise, int depth, std::string& out);
void put_key_and_value(const std::string& key, const nlohmann::json& v, int depth, std::string& out);

/// What follows a value's head byte, for the type type_of() gave.
void put_body(const nlohmann::json& v, type t, bool precise, int depth, std::string& out) {
  switch (t) {
    case t_uint:
      put_varint(v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>()), out);
      return;
    case t_negint:
      put_varint(static_cast<uint64_t>(-(v.get<int64_t>() + 1)), out);
      return;
    case t_f64:
      put_le(v.get<double>(), out);
      return;
    case t_f32:
      put_le(static_cast<float>(v.get<double>()), out);
      return;
    case t_string: {
      const auto& s = v.get_ref<const std::string&>();
      put_varint(s.size(), out);
      out += s;
      return;
    }
    case t_array:
      put_varint(v.size(), out);
      for (const auto& e : v)
        put_value(e, 0, precise, depth + 1, out);
      return;
    case t_object:
      put_varint(v.size(), out);
      for (const auto& [k, e] : v.items())
        put_key_and_value(k, e, depth + 1, out);
      return;
    default:  // null, true, false: the head says it all
      return;
  }
}

void put_value(const nlohmann::json& v, uint8_t slot_bits, bool precise, int depth, std::string& out) {
  const type t = type_of(v, precise, depth);
  out.push_back(static_cast<char>(slot_bits | t));
  put_body(v, t, precise, depth, out);
}

/// A member: the head (key slot and type), the key's byte or bytes if it has
/// no slot of its own, then the body.
void put_key_and_value(const std::string& key, const nlohmann::json& v, int depth, std::string& out) {
  const auto n = key_number(key);
  const bool precise = is_time_key(key);
  if (n && *n < direct_slots) {
    put_value(v, static_cast<uint8_t>(*n << 4), precise, depth, out);
    return;
  }
  const type t = type_of(v, precise, depth);
  if (n) {
    out.push_back(static_cast<char>((slot_extended << 4) | t));
    out.push_back(static_cast<char>(*n - direct_slots));
  } else {
    out.push_back(static_cast<char>((slot_literal << 4) | t));
    put_varint(key.size(), out);
    out += key;
  }
  put_body(v, t, precise, depth, out);
}

// -- reading ------------------------------------------------------------------------------

/// Reads `bytes` front to back; the first error stops it. With `build` false
/// it only walks (check_result).
class reader {
 public:
  reader(std::string_view bytes, bool build, decode_scope scope = decode_scope::all)
      : b_(bytes), build_(build), boxes_(scope == decode_scope::all), shortest_(scope == decode_scope::all) {}

  bool members_to_end(nlohmann::json& out) {
    while (ok() && pos_ < b_.size())
      member(out, 0);
    return ok();
  }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  void fail(const std::string& what) {
    if (error_.empty())
      error_ = what + " at byte " + std::to_string(pos_);
  }

  std::optional<uint8_t> byte(const char* what) {
    if (pos_ >= b_.size()) {
      fail(std::string("truncated ") + what);
      return std::nullopt;
    }
    return static_cast<uint8_t>(b_[pos_++]);
  }

  std::optional<uint64_t> varint(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      auto b = byte(what);
      if (!b)
        return std::nullopt;
      v |= static_cast<uint64_t>(*b & 0x7f) << shift;
      if (!(*b & 0x80))
        return v;
    }
    fail(std::string("overlong varint in ") + what);
    return std::nullopt;
  }

  std::optional<std::string_view> bytes(uint64_t n, const char* what) {
    if (n > b_.size() - pos_) {
      fail(std::string("truncated ") + what);
      return std::nullopt;
    }
    auto s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  /// A count of elements: each takes at least one byte, so a count beyond the
  /// bytes left is a forgery (and would otherwise reserve its size).
  std::optional<uint64_t> count(const char* what) {
    auto n = varint(what);
    if (n && *n > b_.size() - pos_) {
      fail(std::string("count beyond the end in ") + what);
      return std::nullopt;
    }
    return n;
  }

  void member(nlohmann::json& obj, int depth) {
    auto head = byte("member");
    if (!head)
      return;
    const int slot = *head >> 4;
    std::string key;
    if (slot < direct_slots) {
      key = key_table[static_cast<std::size_t>(slot)];
    } else if (slot == slot_extended) {
      auto e = byte("key number");
      if (!e)
        return;
      const std::size_t n = direct_slots + std::size_t{*e};
      if (n >= key_table.size())
        return fail("unknown key number " + std::to_string(n));
      key = key_table[n];
    } else {
      auto len = varint("key length");
      if (!len)
        return;
      auto k = bytes(*len, "key");
      if (!k)
        return;
      key.assign(*k);
    }
    nlohmann::json v;
    const bool skip = !boxes_ && depth == 0 && slot == boxes_slot;
    const bool build = build_;
    build_ = build && !skip;  // walked all the same: a broken value is an error either way
    body(static_cast<uint8_t>(*head & 0x0f), v, depth);
    build_ = build;
    if (build_ && !skip && ok())
      obj[key] = std::move(v);
  }

  void value(nlohmann::json& out, int depth) {
    auto head = byte("value");
    if (!head)
      return;
    if (*head >> 4)
      return fail("key bits in an array element");
    body(static_cast<uint8_t>(*head & 0x0f), out, depth);
  }

  void body(uint8_t t, nlohmann::json& out, int depth) {
    switch (t) {
      case t_null:
        out = nullptr;
        return;
      case t_false:
      case t_true:
        out = t == t_true;
        return;
      case t_uint:
        if (auto v = varint("integer"))
          out = *v;
        return;
      case t_negint:
        if (auto v = varint("integer")) {
          if (*v > static_cast<uint64_t>(INT64_MAX))
            return fail("negative integer out of range");
          out = -static_cast<int64_t>(*v) - 1;
        }
        return;
      case t_f32:
        if (auto s = bytes(4, "float32")) {
          float f;
          std::memcpy(&f, s->data(), 4);
          if (build_)
            out = shortest_ ? widened(f) : (std::isfinite(f) ? nlohmann::json(double{f}) : nlohmann::json(nullptr));
        }
        return;
      case t_f64:
        if (auto s = bytes(8, "float64")) {
          double d;
          std::memcpy(&d, s->data(), 8);
          out = std::isfinite(d) ? nlohmann::json(d) : nlohmann::json(nullptr);
        }
        return;
      case t_string:
        if (auto len = varint("string length"))
          if (auto s = bytes(*len, "string"); s && build_)
            out = std::string(*s);
        return;
      case t_array: {
        if (depth + 1 > max_result_depth)
          return fail("nesting deeper than " + std::to_string(max_result_depth));
        auto n = count("array");
        if (!n)
          return;
        if (build_)
          out = nlohmann::json::array();
        for (uint64_t i = 0; i < *n && ok(); ++i) {
          nlohmann::json e;
          value(e, depth + 1);
          if (build_ && ok())
            out.push_back(std::move(e));
        }
        return;
      }
      case t_object: {
        if (depth + 1 > max_result_depth)
          return fail("nesting deeper than " + std::to_string(max_result_depth));
        auto n = count("object");
        if (!n)
          return;
        if (build_)
          out = nlohmann::json::object();
        for (uint64_t i = 0; i < *n && ok(); ++i)
          member(out, depth + 1);
        return;
      }
      default:
        return fail("unknown type " + std::to_string(t));
    }
  }

  /// The double a reader expects of a float32: the shortest decimal that
  /// reads back as this float ("0.1"), not the float's exact binary value.
  static nlohmann::json widened(float f) {
    if (!std::isfinite(f))
      return nullptr;
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, f);
    double d = f;
    if (ec == std::errc())
      std::from_chars(buf, end, d);
    return d;
  }

  std::string_view b_;
  std::size_t pos_ = 0;
  bool build_ = true;
  bool boxes_ = true;
  bool shortest_ = true;
  std::string error_;
};

}  // namespace

void encode_result(const nlohmann::json& object, std::string& out) {
  if (!object.is_object())
    return;
  for (const auto& [k, v] : object.items())
    put_key_and_value(k, v, 0, out);
}

std::string encode_result(const nlohmann::json& object) {
  std::string out;
  encode_result(object, out);
  return out;
}

result<nlohmann::json, std::string> decode_result(std::string_view bytes, decode_scope scope) {
  nlohmann::json out = nlohmann::json::object();
  reader r(bytes, true, scope);
  if (!r.members_to_end(out))
    return r.error();
  return out;
}

std::string check_result(std::string_view bytes) {
  nlohmann::json unused;
  reader r(bytes, false);
  r.members_to_end(unused);
  return r.error();
}

}  // namespace framehive::analysis
