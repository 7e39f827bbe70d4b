#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "common/result.hpp"
#include "media/decoder.hpp"
#include "shm/frame_ring.hpp"

namespace framehive::ingest {

struct pump_options {
  /// Skip the BGR conversion of frames no registered consumer samples.
  bool skip_unwanted = true;
  /// How long one wait for a free slot may last before `should_stop` is asked again.
  std::chrono::milliseconds slot_wait{200};
  /// Asked between frames and while waiting; true ends the pump early.
  std::function<bool()> should_stop;
  /// Called after each published frame (cheap work only: it is per frame).
  std::function<void(const media::decoded_frame&)> on_frame;
};

struct pump_stats {
  int64_t published = 0;      ///< frames written to the ring
  int64_t skipped = 0;        ///< decoded but wanted by no consumer
  int64_t decode_errors = 0;
  double seconds = 0;
  bool stopped = false;       ///< ended by should_stop
  bool fenced = false;        ///< another producer took the ring over
};

/// Carries a decoded frame that could not be published yet (the pump was asked
/// to stop while waiting for a slot) over to the next pump_into_ring() call,
/// so that stopping between slices never drops a frame.
struct pump_cursor {
  bool pending = false;
  media::decoded_frame frame;
};

/// Decodes `dec` into `ring` until the input ends: swscale writes each frame
/// straight into its slot. On success marks the ring's end of stream; on a
/// decode error marks it failed with the error's message and returns it.
result<pump_stats, media::media_error> pump_into_ring(media::decoder& dec, shm::ring_producer& ring,
                                                      const pump_options& options = {});

/// The same in slices: call again with the same cursor after a stop.
result<pump_stats, media::media_error> pump_into_ring(media::decoder& dec, shm::ring_producer& ring,
                                                      const pump_options& options, pump_cursor& cursor);

}  // namespace framehive::ingest
