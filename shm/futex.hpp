#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace framehive::shm {

// Process-shared futex operations on a word inside a shared mapping. A waiter
// holds nothing: if it dies, nobody else is affected, which is why the ring
// uses these instead of interprocess mutexes and condition variables.

/// Sleeps while `*word == expected`, at most `timeout`. Spurious returns are
/// allowed; callers re-check their condition.
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout);

/// Wakes every waiter on `word`.
void futex_wake_all(std::atomic<uint32_t>* word);

}  // namespace framehive::shm
