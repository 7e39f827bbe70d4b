#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace framehive {

/// Selects the error constructor of a result<T, E> (needed when T and E are the same type).
struct error_tag_t {};
inline constexpr error_tag_t error_tag{};

/// A value or an error, for the layers that know nothing of CAF (shm/, media/,
/// analysis/). Actors convert the error to caf::error at their boundary.
template <class T, class E>
class result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  /// Implicit only when the types differ; result<std::string, std::string>
  /// makes its error with `result(error_tag, text)`.
  template <class U = E, std::enable_if_t<!std::is_same_v<U, T>, int> = 0>
  result(E error) : v_(std::in_place_index<1>, std::move(error)) {}
  result(error_tag_t, E error) : v_(std::in_place_index<1>, std::move(error)) {}

  explicit operator bool() const noexcept { return v_.index() == 0; }
  bool ok() const noexcept { return v_.index() == 0; }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

/// Stand-in value for results that carry no value.
struct unit {};

}  // namespace framehive
