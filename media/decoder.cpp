#include "media/decoder.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
}

#include "media/ffmpeg_ptr.hpp"
#include "media/input_url.hpp"

namespace framehive::media {

const char* to_string(media_errc code) noexcept {
  switch (code) {
    case media_errc::missing_input: return "missing_input";
    case media_errc::not_a_file: return "not_a_file";
    case media_errc::empty_input: return "empty_input";
    case media_errc::not_media: return "not_media";
    case media_errc::no_video_stream: return "no_video_stream";
    case media_errc::unsupported_codec: return "unsupported_codec";
    case media_errc::damaged_stream: return "damaged_stream";
    case media_errc::zero_frames: return "zero_frames";
    case media_errc::unreachable: return "unreachable";
    case media_errc::io_error: return "io_error";
    case media_errc::invalid_argument: return "invalid_argument";
    case media_errc::refused: return "refused";
  }
  return "unknown";
}

namespace {

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

bool is_url(const std::string& input) { return !locate_input(input).local(); }

std::string local_path(const std::string& input) { return locate_input(input).path; }

/// What FFmpeg opens: a URL as it is; a local file always through the file
/// protocol, so that a colon in a path ("a:b.mp4", "concat:x") never selects another protocol.
std::string ffmpeg_url(const std::string& input) {
  return is_url(input) ? input : "file:" + local_path(input);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& x : items)
    out += (out.empty() ? "" : ", ") + x;
  return out;
}

/// The input's own protocol must be allowed; FFmpeg's whitelist then covers what it opens underneath.
std::optional<media_error> check_protocol(const std::string& input, const std::vector<std::string>& allowed) {
  if (allowed.empty())
    return std::nullopt;
  const auto scheme = locate_input(input).scheme;
  if (std::find(allowed.begin(), allowed.end(), scheme) != allowed.end())
    return std::nullopt;
  return media_error{media_errc::refused, input,
                     "protocol '" + scheme + "' is not in allowed-protocols (" + join(allowed) + ")"};
}

void quiet_ffmpeg() {
  // We count and report decode problems ourselves, per input; FFmpeg's own
  // per-packet messages would only flood the logs. FRAMEHIVE_FFMPEG_LOG=1
  // brings them back for debugging.
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("FRAMEHIVE_FFMPEG_LOG");
    av_log_set_level(env && *env == '1' ? AV_LOG_WARNING : AV_LOG_QUIET);
  });
}

/// Checks a local input before FFmpeg sees it, for precise errors.
std::optional<media_error> check_local(const std::string& input) {
  if (is_url(input))
    return std::nullopt;
  std::string path = local_path(input);
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return media_error{media_errc::missing_input, input, "no such file"};
    return media_error{media_errc::io_error, input, std::string("cannot access: ") + std::strerror(errno)};
  }
  if (S_ISDIR(st.st_mode))
    return media_error{media_errc::not_a_file, input, "is a directory, not a video file"};
  if (S_ISREG(st.st_mode) && st.st_size == 0)
    return media_error{media_errc::empty_input, input, "is an empty file (0 bytes)"};
  return std::nullopt;
}

struct opened_input {
  format_context_ptr fmt;
  int stream = -1;
  const AVCodec* codec = nullptr;
};

result<opened_input, media_error> open_input(const std::string& input,
                                             const std::vector<std::string>& allowed) {
  quiet_ffmpeg();
  if (auto err = check_protocol(input, allowed))
    return *err;
  if (auto err = check_local(input))
    return *err;
  AVDictionary* opts = nullptr;
  if (!allowed.empty())
    av_dict_set(&opts, "protocol_whitelist", ffmpeg_protocol_whitelist(allowed).c_str(), 0);
  if (is_url(input)) {
    // Finite timeouts for network inputs: an unreachable host is an error, not a hang.
    av_dict_set(&opts, "rw_timeout", "5000000", 0);
    av_dict_set(&opts, "timeout", "5000000", 0);
  }
  AVFormatContext* raw = nullptr;
  int rc = avformat_open_input(&raw, ffmpeg_url(input).c_str(), nullptr, &opts);
  av_dict_free(&opts);
  if (rc < 0) {
    if (is_url(input))
      return media_error{media_errc::unreachable, input, "cannot open: " + av_error_text(rc)};
    if (rc == AVERROR(ENOENT))
      return media_error{media_errc::missing_input, input, "no such file"};
    return media_error{media_errc::not_media, input, "not a media file FFmpeg can read (" + av_error_text(rc) + ")"};
  }
  opened_input in;
  in.fmt.reset(raw);
  if ((rc = avformat_find_stream_info(in.fmt.get(), nullptr)) < 0)
    return media_error{media_errc::not_media, input, "cannot read stream information (" + av_error_text(rc) + ")"};

  // Cover art in audio files is a "video" stream of one attached picture: not a video.
  int best = -1;
  for (unsigned i = 0; i < in.fmt->nb_streams; ++i) {
    const AVStream* s = in.fmt->streams[i];
    if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && !(s->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
      best = av_find_best_stream(in.fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
      if (best < 0 || (in.fmt->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC))
        best = static_cast<int>(i);
      break;
    }
  }
  if (best < 0) {
    std::string kinds;
    for (unsigned i = 0; i < in.fmt->nb_streams; ++i) {
      const char* k = av_get_media_type_string(in.fmt->streams[i]->codecpar->codec_type);
      kinds += (kinds.empty() ? "" : ", ") + std::string(k ? k : "unknown");
    }
    return media_error{media_errc::no_video_stream, input,
                       "has no video stream (" + (kinds.empty() ? std::string("no streams") : "streams: " + kinds) + ")"};
  }
  in.stream = best;
  const AVCodecParameters* par = in.fmt->streams[best]->codecpar;
  in.codec = avcodec_find_decoder(par->codec_id);
  if (!in.codec)
    return media_error{media_errc::unsupported_codec, input,
                       std::string("no decoder for video codec '") + avcodec_get_name(par->codec_id) + "'"};
  if (par->width <= 0 || par->height <= 0)
    return media_error{media_errc::not_media, input, "video stream has no frame size"};
  return in;
}

struct packet_index {
  std::vector<int64_t> pts;                          // every frame, sorted
  std::vector<std::pair<int64_t, int64_t>> keys;     // keyframe (pts, dts), in file order
};

result<packet_index, media_error> scan_packets(const std::string& input,
                                               const std::vector<std::string>& allowed) {
  auto in = open_input(input, allowed);
  if (!in)
    return in.error();
  packet_index idx;
  packet_ptr pkt(av_packet_alloc());
  int failures = 0;
  while (true) {
    int rc = av_read_frame(in->fmt.get(), pkt.get());
    if (rc == AVERROR_EOF)
      break;
    if (rc < 0) {
      if (++failures > 100)
        break;
      continue;
    }
    if (pkt->stream_index == in->stream && pkt->size > 0) {
      int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (ts != AV_NOPTS_VALUE) {
        idx.pts.push_back(ts);
        if (pkt->flags & AV_PKT_FLAG_KEY)
          idx.keys.emplace_back(ts, pkt->dts != AV_NOPTS_VALUE ? pkt->dts : ts);
      }
    }
    av_packet_unref(pkt.get());
  }
  std::sort(idx.pts.begin(), idx.pts.end());
  return idx;
}

}  // namespace

std::string ffmpeg_protocol_whitelist(const std::vector<std::string>& allowed) {
  // What each protocol opens underneath (FFmpeg 5.1's libavformat).
  // clang-format off
  static const std::vector<std::pair<std::string, std::vector<std::string>>> needs{
      {"http", {"tcp"}},
      {"https", {"tls", "tcp"}},
      {"rtsp", {"rtp", "udp", "tcp"}},
      {"rtmp", {"tcp"}},
      {"rtmps", {"tls", "tcp"}},
      {"rtp", {"udp"}},
      {"srtp", {"rtp", "udp"}},
      {"hls", {"http", "tcp"}},
  };
  // clang-format on
  std::vector<std::string> out;
  auto add = [&](const std::string& p) {
    if (std::find(out.begin(), out.end(), p) == out.end())
      out.push_back(p);
  };
  for (const auto& p : allowed) {
    add(p);
    for (const auto& [name, under] : needs)
      if (name == p)
        for (const auto& u : under)
          add(u);
  }
  std::string list;
  for (const auto& p : out)
    list += (list.empty() ? "" : ",") + p;
  return list;
}

// -- impl ----------------------------------------------------------------------

struct decoder::impl {
  std::string input;
  decoder_options options;
  opened_input in;
  codec_context_ptr ctx;
  frame_ptr frame;
  packet_ptr pkt;
  sws_ptr sws;
  video_info info;
  int out_w = 0;
  int out_h = 0;

  std::vector<int64_t> pts_index;  // only when starting past frame 0
  int64_t target_pts = AV_NOPTS_VALUE;
  bool draining = false;
  bool finished = false;
  bool started = false;  // a frame at or after the start was returned
  int64_t returned = 0;
  int64_t next_index = 0;
  int64_t errors = 0;
  int read_failures = 0;
  int64_t last_pts = AV_NOPTS_VALUE;

  result<unit, media_error> open_codec() {
    const AVStream* st = in.fmt->streams[in.stream];
    ctx.reset(avcodec_alloc_context3(in.codec));
    if (!ctx)
      return media_error{media_errc::io_error, input, "out of memory allocating the decoder"};
    int rc = avcodec_parameters_to_context(ctx.get(), st->codecpar);
    if (rc >= 0) {
      ctx->pkt_timebase = st->time_base;
      ctx->thread_count = options.threads;
      ctx->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
      rc = avcodec_open2(ctx.get(), in.codec, nullptr);
    }
    if (rc < 0)
      return media_error{media_errc::unsupported_codec, input,
                         std::string("cannot open the '") + in.codec->name + "' decoder (" + av_error_text(rc) + ")"};
    frame.reset(av_frame_alloc());
    pkt.reset(av_packet_alloc());
    return unit{};
  }

  void describe() {
    const AVStream* st = in.fmt->streams[in.stream];
    const AVCodecParameters* par = st->codecpar;
    info.input = input;
    info.codec = avcodec_get_name(par->codec_id);
    const char* pf = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
    info.pixel_format = pf ? pf : "unknown";
    info.width = par->width;
    info.height = par->height;
    AVRational fr = av_guess_frame_rate(in.fmt.get(), const_cast<AVStream*>(st), nullptr);
    info.frame_rate = {fr.num, fr.den ? fr.den : 1};
    info.time_base = {st->time_base.num, st->time_base.den};
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
      info.duration_s = static_cast<double>(st->duration) * av_q2d(st->time_base);
    else if (in.fmt->duration != AV_NOPTS_VALUE && in.fmt->duration > 0)
      info.duration_s = static_cast<double>(in.fmt->duration) / AV_TIME_BASE;
    if (st->nb_frames > 0) {
      info.frame_count = st->nb_frames;
    } else if (info.duration_s > 0 && fr.num > 0) {
      info.frame_count = static_cast<int64_t>(std::llround(info.duration_s * av_q2d(fr)));
    } else {
      info.frame_count = -1;
    }
    out_w = info.width;
    out_h = info.height;
    if (options.max_width > 0 && info.width > options.max_width) {
      out_w = options.max_width;
      out_h = std::max(1, static_cast<int>(std::lround(static_cast<double>(info.height) * out_w / info.width)));
    }
  }

  int64_t index_of(int64_t pts) {
    if (pts_index.empty())
      return next_index;
    auto it = std::lower_bound(pts_index.begin(), pts_index.end(), pts);
    if (it != pts_index.end() && *it == pts)
      return it - pts_index.begin();
    return next_index;
  }

  /// The timestamp of frame `idx - 1`: the frame returned before, or (when
  /// this decoder started past it) the packet index's entry.
  int64_t previous_pts(int64_t idx) const {
    if (idx <= 0)
      return no_pts;
    if (!pts_index.empty() && idx <= static_cast<int64_t>(pts_index.size()) && !(returned > 0 && next_index == idx))
      return pts_index[static_cast<std::size_t>(idx - 1)];
    return last_pts == AV_NOPTS_VALUE ? no_pts : last_pts;
  }

  result<decoder::step, media_error> end_of_input() {
    finished = true;
    if (returned > 0)
      return decoder::step::end;
    if (options.start_frame > 0)
      return decoder::step::end;
    if (errors > 0)
      return media_error{media_errc::damaged_stream, input,
                         "damaged video stream: " + std::to_string(errors) + " decode errors and no frame decoded"};
    return media_error{media_errc::zero_frames, input, "video stream holds no frames"};
  }

  result<decoder::step, media_error> next(decoded_frame& out) {
    if (finished)
      return decoder::step::end;
    while (true) {
      int rc = avcodec_receive_frame(ctx.get(), frame.get());
      if (rc == 0) {
        if (frame->decode_error_flags != 0 || (frame->flags & AV_FRAME_FLAG_CORRUPT))
          ++errors;
        int64_t pts = frame->best_effort_timestamp;
        if (pts == AV_NOPTS_VALUE)
          pts = last_pts == AV_NOPTS_VALUE ? 0 : last_pts + 1;
        if (target_pts != AV_NOPTS_VALUE && pts < target_pts)
          continue;  // before the start frame: decoded only to rebuild references
        int64_t idx = index_of(pts);
        out.index = idx;
        out.pts = pts;
        out.prev_pts = previous_pts(idx);
        out.time_base = info.time_base;
        out.keyframe = frame->key_frame != 0;
        last_pts = pts;
        next_index = idx + 1;
        ++returned;
        return decoder::step::frame;
      }
      if (rc == AVERROR_EOF)
        return end_of_input();
      if (rc != AVERROR(EAGAIN)) {
        ++errors;
        continue;
      }
      if (draining) {
        // EAGAIN while draining should not happen; avoid spinning.
        return end_of_input();
      }
      rc = av_read_frame(in.fmt.get(), pkt.get());
      if (rc < 0) {
        if (rc != AVERROR_EOF && ++read_failures < 100) {
          ++errors;  // a damaged or cut-off container: keep what still reads
          if (rc == AVERROR(EIO) && is_url(input) && returned == 0)
            return media_error{media_errc::io_error, input, "read failed: " + av_error_text(rc)};
          continue;
        }
        draining = true;
        avcodec_send_packet(ctx.get(), nullptr);
        continue;
      }
      if (pkt->stream_index == in.stream) {
        int s = avcodec_send_packet(ctx.get(), pkt.get());
        if (s < 0 && s != AVERROR(EAGAIN))
          ++errors;
      }
      av_packet_unref(pkt.get());
    }
  }

  result<unit, media_error> position(int64_t start) {
    auto idx = scan_packets(input, options.allowed_protocols);
    if (!idx)
      return idx.error();
    pts_index = std::move(idx->pts);
    if (start >= static_cast<int64_t>(pts_index.size()))
      return media_error{media_errc::invalid_argument, input,
                         "start frame " + std::to_string(start) + " is past the last frame (" +
                             std::to_string(pts_index.size()) + " frames)"};
    target_pts = pts_index[static_cast<std::size_t>(start)];
    // The keyframe at or before the target; seek by the smaller of its pts and
    // dts so demuxers that seek on either land at or before it.
    int64_t seek_ts = AV_NOPTS_VALUE;
    for (const auto& [kpts, kdts] : idx->keys)
      if (kpts <= target_pts)
        seek_ts = seek_ts == AV_NOPTS_VALUE ? std::min(kpts, kdts) : std::max(seek_ts, std::min(kpts, kdts));
    if (seek_ts != AV_NOPTS_VALUE && seek_ts > pts_index.front()) {
      if (av_seek_frame(in.fmt.get(), in.stream, seek_ts, AVSEEK_FLAG_BACKWARD) >= 0)
        avcodec_flush_buffers(ctx.get());
      // On failure we simply decode from the start and discard.
    }
    next_index = start;
    return unit{};
  }
};

// -- decoder -------------------------------------------------------------------

decoder::decoder(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
decoder::~decoder() = default;

result<std::unique_ptr<decoder>, media_error> decoder::open(const std::string& input,
                                                            const decoder_options& options) {
  if (options.start_frame < 0)
    return media_error{media_errc::invalid_argument, input, "start frame must not be negative"};
  auto p = std::make_unique<impl>();
  p->input = input;
  p->options = options;
  auto in = open_input(input, options.allowed_protocols);
  if (!in)
    return in.error();
  p->in = std::move(*in);
  if (auto ok = p->open_codec(); !ok)
    return ok.error();
  p->describe();
  // A live source (unknown length, cannot seek) is neither counted nor
  // resumed at a frame: either would read a stream that never ends.
  const bool live = p->info.frame_count < 0 && p->in.fmt->pb && !(p->in.fmt->pb->seekable & AVIO_SEEKABLE_NORMAL);
  if (live && options.start_frame > 0)
    return media_error{media_errc::invalid_argument, input,
                       "a live stream cannot be resumed at frame " + std::to_string(options.start_frame)};
  if (options.count_frames && !options.start_frame && !live) {
    auto idx = scan_packets(input, options.allowed_protocols);
    if (idx) {
      p->info.frame_count = static_cast<int64_t>(idx->pts.size());
      p->info.frame_count_exact = true;
    }
  }
  if (options.start_frame > 0) {
    if (auto ok = p->position(options.start_frame); !ok)
      return ok.error();
    p->info.frame_count = static_cast<int64_t>(p->pts_index.size());
    p->info.frame_count_exact = true;
  }
  return std::unique_ptr<decoder>(new decoder(std::move(p)));
}

const video_info& decoder::info() const noexcept { return impl_->info; }
int decoder::output_width() const noexcept { return impl_->out_w; }
int decoder::output_height() const noexcept { return impl_->out_h; }
int64_t decoder::frames_decoded() const noexcept { return impl_->returned; }
int64_t decoder::decode_errors() const noexcept { return impl_->errors; }

result<decoder::step, media_error> decoder::next(decoded_frame& out) { return impl_->next(out); }

void decoder::convert_bgr(uint8_t* dst, int stride) {
  auto& p = *impl_;
  const AVFrame* f = p.frame.get();
  int flags = (f->width == p.out_w && f->height == p.out_h) ? SWS_POINT : SWS_BILINEAR;
  SwsContext* ctx = sws_getCachedContext(p.sws.release(), f->width, f->height,
                                         static_cast<AVPixelFormat>(f->format), p.out_w, p.out_h,
                                         AV_PIX_FMT_BGR24, flags, nullptr, nullptr, nullptr);
  p.sws.reset(ctx);
  if (!ctx)
    return;
  uint8_t* planes[4] = {dst, nullptr, nullptr, nullptr};
  int strides[4] = {stride, 0, 0, 0};
  sws_scale(ctx, f->data, f->linesize, 0, f->height, planes, strides);
}

result<std::vector<int64_t>, media_error> scan_frame_pts(const std::string& input,
                                                         const std::vector<std::string>& allowed_protocols) {
  auto idx = scan_packets(input, allowed_protocols);
  if (!idx)
    return idx.error();
  return std::move(idx->pts);
}

}  // namespace framehive::media
