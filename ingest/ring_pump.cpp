#include "ingest/ring_pump.hpp"

#include "common/clock.hpp"

namespace framehive::ingest {

namespace {

shm::frame_info frame_info_of(const media::decoded_frame& frame, uint32_t width, uint32_t height) {
  shm::frame_info info;
  info.frame_index = frame.index;
  info.pts = frame.pts;
  info.prev_pts = frame.prev_pts;
  info.time_base_num = frame.time_base.num;
  info.time_base_den = frame.time_base.den;
  info.keyframe = frame.keyframe;
  info.width = width;
  info.height = height;
  return info;
}

}  // namespace

result<pump_stats, media::media_error> pump_into_ring(media::decoder& dec, shm::ring_producer& ring,
                                                      const pump_options& options) {
  pump_cursor cursor;
  return pump_into_ring(dec, ring, options, cursor);
}

result<pump_stats, media::media_error> pump_into_ring(media::decoder& dec, shm::ring_producer& ring,
                                                      const pump_options& options, pump_cursor& cursor) {
  pump_stats stats;
  const uint64_t started = monotonic_ns();
  auto stop_requested = [&] { return options.should_stop && options.should_stop(); };
  const auto out_w = static_cast<uint32_t>(dec.output_width());
  const auto out_h = static_cast<uint32_t>(dec.output_height());
  if (out_w > ring.width() || out_h > ring.height()) {
    media::media_error err{media::media_errc::invalid_argument, dec.info().input,
                           "frames of " + std::to_string(out_w) + "x" + std::to_string(out_h) +
                               " do not fit the ring's " + std::to_string(ring.width()) + "x" +
                               std::to_string(ring.height())};
    ring.fail(err.message());
    return err;
  }
  media::decoded_frame& frame = cursor.frame;
  while (true) {
    if (!cursor.pending) {
      if (stop_requested()) {
        stats.stopped = true;
        break;
      }
      auto step = dec.next(frame);
      if (!step) {
        stats.decode_errors = dec.decode_errors();
        ring.fail(step.error().message());
        return step.error();
      }
      if (*step == media::decoder::step::end) {
        ring.finish();
        break;
      }
      if (options.skip_unwanted && !ring.wanted(frame_info_of(frame, out_w, out_h))) {
        ++stats.skipped;
        continue;
      }
      cursor.pending = true;
    }
    shm::ring_producer::slot slot;
    auto st = shm::ring_producer::acquire_status::timeout;
    while ((st = ring.acquire(slot, options.slot_wait)) == shm::ring_producer::acquire_status::timeout) {
      if (stop_requested())
        break;
    }
    if (st == shm::ring_producer::acquire_status::timeout) {
      stats.stopped = true;  // the frame stays pending in the cursor
      break;
    }
    if (st != shm::ring_producer::acquire_status::ready) {
      stats.fenced = st == shm::ring_producer::acquire_status::fenced;
      break;
    }
    dec.convert_bgr(slot.pixels, static_cast<int>(slot.stride));
    if (!ring.publish(frame_info_of(frame, out_w, out_h))) {
      stats.fenced = true;
      break;
    }
    cursor.pending = false;
    ++stats.published;
    if (options.on_frame)
      options.on_frame(frame);
  }
  stats.decode_errors = dec.decode_errors();
  stats.seconds = static_cast<double>(monotonic_ns() - started) / 1e9;
  return stats;
}

}  // namespace framehive::ingest
