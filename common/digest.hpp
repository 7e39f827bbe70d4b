#pragma once

// SHA-256, the name of every blob in the coordinator's store (uploads and
// artifacts) and the check on every byte that arrives.

#include <cstddef>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace framehive {

/// An incremental SHA-256 (OpenSSL's EVP).
class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;

  void update(const void* data, std::size_t size);
  /// The digest as 64 lowercase hex characters; the hasher starts over.
  std::string hex_digest();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// SHA-256 of a whole file, read in chunks (bounded memory).
result<std::string, std::string> sha256_of_file(const std::string& path);

/// True for 64 lowercase hex characters.
bool is_sha256_hex(const std::string& text);

}  // namespace framehive
