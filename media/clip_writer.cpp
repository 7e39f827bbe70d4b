#include "media/clip_writer.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
}

#include "media/ffmpeg_ptr.hpp"

namespace framehive::media {

namespace {

// -- FFmpeg helpers --------------------------------------------------------------

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

/// A muxer with its file: the file is closed (without a trailer) and the
/// context freed. ffmpeg_ptr.hpp's format_context_ptr is for inputs.
struct output_context_deleter {
  void operator()(AVFormatContext* p) const noexcept {
    if (p->pb && !(p->oformat->flags & AVFMT_NOFILE))
      avio_closep(&p->pb);
    avformat_free_context(p);
  }
};
using output_context_ptr = std::unique_ptr<AVFormatContext, output_context_deleter>;

/// Options for one FFmpeg open call; what is left afterwards was not understood.
class options {
 public:
  options() = default;
  options(const options&) = delete;
  options& operator=(const options&) = delete;
  ~options() { av_dict_free(&d_); }

  void set(const char* key, const std::string& value) { av_dict_set(&d_, key, value.c_str(), 0); }
  AVDictionary** get() { return &d_; }

  /// The keys FFmpeg left, comma-separated.
  std::string unused() const {
    std::string keys;
    const AVDictionaryEntry* e = nullptr;
    while ((e = av_dict_get(d_, "", e, AV_DICT_IGNORE_SUFFIX)))
      keys += (keys.empty() ? "" : ", ") + std::string(e->key);
    return keys;
  }

 private:
  AVDictionary* d_ = nullptr;
};

void quiet_ffmpeg() {
  // As decoder.cpp: libx264 reports its settings and statistics at info
  // level for every clip; errors reach the caller as text instead.
  // FRAMEHIVE_FFMPEG_LOG=1 brings FFmpeg's messages back for debugging.
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("FRAMEHIVE_FFMPEG_LOG");
    av_log_set_level(env && *env == '1' ? AV_LOG_WARNING : AV_LOG_QUIET);
  });
}

/// Local files always through the file protocol, so that a colon in a path
/// ("a:b.mp4") never selects another protocol (as decoder.cpp does).
std::string file_url(const std::string& path) {
  return "file:" + path;
}

/// mp4 muxer options that keep the source's timestamps exact: the track's
/// timescale is the source's time base (instead of the muxer's choice of a
/// multiple >= 10000), and the movie timescale, in which the edit list states
/// where the clip starts, is the same, so a start at 12345/90000 s is not
/// rounded to milliseconds.
void set_timescale(options& o, AVRational tb) {
  o.set("video_track_timescale", std::to_string(tb.den));
  o.set("movie_timescale", std::to_string(tb.den));
}

/// Flushes the file and reports a write error the muxer did not return:
/// avio_close() drops the error of its final flush.
int close_file(AVFormatContext* fmt) {
  if (!fmt->pb)
    return 0;
  avio_flush(fmt->pb);
  int rc = fmt->pb->error;
  int closed = avio_closep(&fmt->pb);
  return rc < 0 ? rc : closed;
}

std::string ts_text(int64_t ts, AVRational tb) {
  return std::to_string(ts) + " (" + std::to_string(static_cast<double>(ts) * av_q2d(tb)) + " s)";
}

}  // namespace

// -- clip_writer::impl ------------------------------------------------------------

struct clip_writer::impl {
  std::string path;
  clip_format format;
  AVRational tb{1, 25};        // source units, reduced; codec and stream time base
  int64_t frame_duration = 1;  // nominal, in tb
  output_context_ptr out;
  AVStream* stream = nullptr;  // owned by out
  codec_context_ptr enc;
  frame_ptr frame;
  packet_ptr pkt;
  sws_ptr sws;
  bool header_written = false;
  int64_t first_pts = 0;
  int64_t last_pts = 0;
  int64_t written = 0;
  int64_t packets = 0;                 // muxed so far
  std::deque<int64_t> pts_for_dts;     // input pts not yet used as a dts (see decode_time)
  std::optional<std::string> failure;  // the first error, returned from then on
  bool closed = false;
  std::optional<std::string> close_result;

  std::string error(const std::string& cause) const { return path + ": " + cause; }

  std::optional<std::string> fail(const std::string& cause) {
    if (!failure)
      failure = error(cause);
    return failure;
  }

  std::optional<std::string> validate() const {
    const clip_format& f = format;
    if (f.width <= 0 || f.height <= 0)
      return "invalid frame size " + std::to_string(f.width) + "x" + std::to_string(f.height);
    if (f.time_base_num <= 0 || f.time_base_den <= 0 || f.time_base_num > std::numeric_limits<int>::max() ||
        f.time_base_den > std::numeric_limits<int>::max())
      return "invalid time base " + std::to_string(f.time_base_num) + "/" + std::to_string(f.time_base_den);
    if (!(f.fps > 0 && f.fps < 10000))
      return "invalid frame rate " + std::to_string(f.fps);
    if (f.crf < 0 || f.crf > 51)
      return "crf " + std::to_string(f.crf) + " is outside 0..51";
    return std::nullopt;
  }

  std::optional<std::string> open() {
    quiet_ffmpeg();
    if (auto bad = validate())
      return error(*bad);
    av_reduce(&tb.num, &tb.den, format.time_base_num, format.time_base_den, std::numeric_limits<int>::max());
    AVRational rate = av_d2q(format.fps, 100000);
    frame_duration = std::max<int64_t>(1, av_rescale_q(1, av_inv_q(rate), tb));

    const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
      return error("the H.264 encoder libx264 is not available in this FFmpeg build");

    AVFormatContext* raw = nullptr;
    int rc = avformat_alloc_output_context2(&raw, nullptr, "mp4", path.c_str());
    if (rc < 0 || !raw)
      return error("cannot set up the mp4 muxer (" + av_error_text(rc) + ")");
    out.reset(raw);
    stream = avformat_new_stream(out.get(), nullptr);
    enc.reset(avcodec_alloc_context3(codec));
    frame.reset(av_frame_alloc());
    pkt.reset(av_packet_alloc());
    if (!stream || !enc || !frame || !pkt)
      return error("out of memory setting up the encoder");

    enc->width = format.width;
    enc->height = format.height;
    // yuv420p halves both dimensions for chroma, so an odd size cannot be
    // represented; yuv444p keeps every pixel's colour at any size.
    const bool even = format.width % 2 == 0 && format.height % 2 == 0;
    enc->pix_fmt = even ? AV_PIX_FMT_YUV420P : AV_PIX_FMT_YUV444P;
    enc->time_base = tb;
    enc->framerate = rate;
    enc->sample_aspect_ratio = AVRational{1, 1};
    // Tagged as what sws_scale converts with (BT.601, limited range), so a
    // decoder converts back with the same matrix.
    enc->colorspace = AVCOL_SPC_SMPTE170M;
    enc->color_range = AVCOL_RANGE_MPEG;
    enc->thread_count = 0;  // x264 chooses
    if (out->oformat->flags & AVFMT_GLOBALHEADER)
      enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;

    options enc_opts;
    enc_opts.set("preset", format.preset);
    enc_opts.set("crf", std::to_string(format.crf));
    // x264 quantizes 4:4:4 chroma 6 steps coarser than 4:2:0 chroma (its
    // planes are four times larger). In BGR, chroma error is red and blue
    // error: code it as finely as in an even-sized clip.
    if (!even)
      enc_opts.set("chromaoffset", "-6");
    rc = avcodec_open2(enc.get(), codec, enc_opts.get());
    std::string unused = enc_opts.unused();
    if (rc < 0)
      return error("cannot open the libx264 encoder (preset '" + format.preset + "', crf " +
                   std::to_string(format.crf) + ", " + std::to_string(format.width) + "x" +
                   std::to_string(format.height) + "): " + av_error_text(rc));
    if (!unused.empty())
      return error("libx264 did not accept the options: " + unused);

    rc = avcodec_parameters_from_context(stream->codecpar, enc.get());
    if (rc < 0)
      return error("cannot describe the stream (" + av_error_text(rc) + ")");
    stream->time_base = tb;
    stream->avg_frame_rate = rate;

    frame->format = enc->pix_fmt;
    frame->width = format.width;
    frame->height = format.height;
    if ((rc = av_frame_get_buffer(frame.get(), 0)) < 0)
      return error("cannot allocate a frame (" + av_error_text(rc) + ")");
    // Same size, so the filter only decides how chroma is averaged; the
    // SIMD path (no accurate rounding, no full-resolution chroma input)
    // converts 720p several times faster and keeps every frame of the tests
    // above 35 dB (the clip's frames are the encoder's loss, not this one's).
    sws.reset(sws_getContext(format.width, format.height, AV_PIX_FMT_BGR24, format.width, format.height,
                             enc->pix_fmt, SWS_BILINEAR, nullptr, nullptr, nullptr));
    if (!sws)
      return error("cannot set up the BGR to YUV conversion");
    const int* bt601 = sws_getCoefficients(SWS_CS_ITU601);
    sws_setColorspaceDetails(sws.get(), bt601, 1, bt601, 0, 0, 1 << 16, 1 << 16);

    if ((rc = avio_open(&out->pb, file_url(path).c_str(), AVIO_FLAG_WRITE)) < 0)
      return error("cannot create the file: " + av_error_text(rc));
    options mux_opts;
    set_timescale(mux_opts, tb);
    rc = avformat_write_header(out.get(), mux_opts.get());
    unused = mux_opts.unused();
    if (rc < 0)
      return error("cannot write the mp4 header: " + av_error_text(rc));
    if (!unused.empty())
      return error("the mp4 muxer did not accept the options: " + unused);
    header_written = true;
    return std::nullopt;
  }

  /// Sets the dts of the next packet in decode order. With B-frames a frame
  /// can be decoded up to R = has_b_frames frames before it is shown, so
  /// packet k is due when frame k - R is shown; the first R packets come one
  /// nominal frame apart before the first frame. x264 does the same, except
  /// in a clip shorter than its reorder delay, whose dts it sets to the pts.
  /// Doing it here for every clip makes consecutive pieces of one clip
  /// continue each other's decode timeline, so join_clips() keeps their dts.
  std::optional<std::string> decode_time(AVPacket& p) {
    const int64_t reorder = enc->has_b_frames;
    int64_t dts = 0;
    if (packets < reorder) {
      dts = first_pts - (reorder - packets) * frame_duration;
    } else {
      if (pts_for_dts.empty())
        return fail("the encoder returned more packets than frames");
      dts = pts_for_dts.front();
      pts_for_dts.pop_front();
    }
    ++packets;
    if (dts > p.pts)  // the encoder reordered further than it declared
      return fail("encoder packet " + std::to_string(packets) + " has pts " + std::to_string(p.pts) +
                  " before its decode time " + std::to_string(dts));
    p.dts = dts;
    return std::nullopt;
  }

  /// Muxes every packet the encoder has ready.
  std::optional<std::string> drain() {
    while (true) {
      int rc = avcodec_receive_packet(enc.get(), pkt.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
        return std::nullopt;
      if (rc < 0)
        return fail("encoding failed: " + av_error_text(rc));
      if (auto err = decode_time(*pkt))
        return err;
      // The muxer takes sample durations from dts differences; only the last
      // sample's comes from here, and it should be one nominal frame.
      pkt->duration = frame_duration;
      pkt->stream_index = stream->index;
      av_packet_rescale_ts(pkt.get(), enc->time_base, stream->time_base);
      rc = av_interleaved_write_frame(out.get(), pkt.get());
      if (rc < 0)
        return fail("cannot write to the file: " + av_error_text(rc));
    }
  }

  std::optional<std::string> write(const uint8_t* bgr, int stride, int64_t pts) {
    if (closed)
      return failure ? failure : error("write after close()");
    if (failure)
      return failure;
    if (!bgr || stride < format.width * 3)
      return error("invalid frame: " +
                   std::string(bgr ? "stride " + std::to_string(stride) + " is less than 3 * width " +
                                         std::to_string(format.width)
                                   : "no pixels"));
    if (written > 0 && pts <= last_pts)
      return error("pts " + std::to_string(pts) + " is not after the previous frame's pts " +
                   std::to_string(last_pts));
    int rc = av_frame_make_writable(frame.get());
    if (rc < 0)
      return fail("cannot allocate a frame (" + av_error_text(rc) + ")");
    const uint8_t* src[4] = {bgr, nullptr, nullptr, nullptr};
    const int src_stride[4] = {stride, 0, 0, 0};
    sws_scale(sws.get(), src, src_stride, 0, format.height, frame->data, frame->linesize);
    frame->pts = pts;
    if ((rc = avcodec_send_frame(enc.get(), frame.get())) < 0)
      return fail("encoding failed: " + av_error_text(rc));
    if (written == 0)
      first_pts = pts;
    pts_for_dts.push_back(pts);
    last_pts = pts;
    ++written;
    return drain();
  }

  std::optional<std::string> close() {
    if (closed)
      return close_result;
    closed = true;
    if (header_written) {
      // Without the flush the encoder keeps its lookahead and reordered frames.
      if (!failure) {
        int rc = avcodec_send_frame(enc.get(), nullptr);
        if (rc < 0)
          fail("flushing the encoder failed: " + av_error_text(rc));
        else
          drain();
      }
      int rc = av_write_trailer(out.get());
      if (rc < 0)
        fail("cannot finish the file: " + av_error_text(rc));
      rc = close_file(out.get());
      if (rc < 0)
        fail("cannot finish the file: " + av_error_text(rc));
    }
    out.reset();
    close_result = failure;
    return close_result;
  }
};

// -- clip_writer ------------------------------------------------------------------

clip_writer::clip_writer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

clip_writer::~clip_writer() {
  try {
    if (impl_)
      impl_->close();
  } catch (...) {
    // Best effort by contract: a destructor must not throw (bad_alloc building a message).
  }
}

result<std::unique_ptr<clip_writer>, std::string> clip_writer::create(const std::string& path,
                                                                      const clip_format& f) {
  auto p = std::make_unique<impl>();
  p->path = path;
  p->format = f;
  if (auto err = p->open()) {
    // A file without header or trailer is no clip; remove it if we made it.
    const bool created = p->out && p->out->pb;
    p->out.reset();
    if (created)
      ::unlink(path.c_str());
    return result<std::unique_ptr<clip_writer>, std::string>(error_tag, *err);
  }
  return std::unique_ptr<clip_writer>(new clip_writer(std::move(p)));
}

std::optional<std::string> clip_writer::write(const uint8_t* bgr, int stride, int64_t pts) {
  return impl_->write(bgr, stride, pts);
}

std::optional<std::string> clip_writer::close() {
  return impl_->close();
}

int64_t clip_writer::frames_written() const noexcept {
  return impl_->written;
}

const std::string& clip_writer::path() const noexcept {
  return impl_->path;
}

// -- join_clips ---------------------------------------------------------------------

namespace {

struct join_input {
  std::string path;
  format_context_ptr fmt;
  int stream = -1;
};

std::optional<std::string> open_join_input(join_input& in) {
  quiet_ffmpeg();
  AVFormatContext* raw = nullptr;
  int rc = avformat_open_input(&raw, file_url(in.path).c_str(), nullptr, nullptr);
  if (rc < 0)
    return in.path + ": cannot open (" + av_error_text(rc) + ")";
  in.fmt.reset(raw);
  in.stream = av_find_best_stream(in.fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (in.stream < 0)
    return in.path + ": has no video stream";
  return std::nullopt;
}

/// Remuxing without re-encoding is only valid if every input's decoder would
/// be set up the same way: same codec, size and SPS/PPS (the extradata the
/// joined file's one sample description carries).
std::optional<std::string> check_compatible(const join_input& first, const join_input& in) {
  const AVCodecParameters* a = first.fmt->streams[first.stream]->codecpar;
  const AVCodecParameters* b = in.fmt->streams[in.stream]->codecpar;
  auto refuse = [&](const std::string& what) {
    return in.path + ": cannot be joined with " + first.path + " without re-encoding: " + what;
  };
  if (a->codec_id != b->codec_id)
    return refuse(std::string("codec ") + avcodec_get_name(b->codec_id) + " vs " +
                  avcodec_get_name(a->codec_id));
  if (a->width != b->width || a->height != b->height)
    return refuse("size " + std::to_string(b->width) + "x" + std::to_string(b->height) + " vs " +
                  std::to_string(a->width) + "x" + std::to_string(a->height));
  if (a->extradata_size != b->extradata_size ||
      (a->extradata_size > 0 && std::memcmp(a->extradata, b->extradata, a->extradata_size) != 0))
    return refuse("different codec parameters (H.264 SPS/PPS)");
  return std::nullopt;
}

class joiner {
 public:
  joiner(const std::string& output, bool keep_timestamps) : output_(output), keep_(keep_timestamps) {}

  std::optional<std::string> open_output(const join_input& first) {
    const AVStream* src = first.fmt->streams[first.stream];
    AVFormatContext* raw = nullptr;
    int rc = avformat_alloc_output_context2(&raw, nullptr, "mp4", output_.c_str());
    if (rc < 0 || !raw)
      return error("cannot set up the mp4 muxer (" + av_error_text(rc) + ")");
    out_.reset(raw);
    AVStream* st = avformat_new_stream(out_.get(), nullptr);
    if (!st)
      return error("out of memory setting up the stream");
    if ((rc = avcodec_parameters_copy(st->codecpar, src->codecpar)) < 0)
      return error("cannot copy the stream parameters (" + av_error_text(rc) + ")");
    st->codecpar->codec_tag = 0;  // the muxer picks the tag for mp4
    st->time_base = src->time_base;
    st->avg_frame_rate = src->avg_frame_rate;
    if ((rc = avio_open(&out_->pb, file_url(output_).c_str(), AVIO_FLAG_WRITE)) < 0)
      return error("cannot create the file: " + av_error_text(rc));
    created_ = true;
    options mux_opts;
    set_timescale(mux_opts, src->time_base);
    rc = avformat_write_header(out_.get(), mux_opts.get());
    if (rc < 0)
      return error("cannot write the mp4 header: " + av_error_text(rc));
    return std::nullopt;
  }

  std::optional<std::string> append(join_input& in) {
    const AVStream* src = in.fmt->streams[in.stream];
    const AVRational in_tb = src->time_base;
    const AVRational out_tb = out_->streams[0]->time_base;
    // FFmpeg 5.1's mp4 demuxer leaves packet durations unset. A frame lasts
    // one nominal frame then: what a digest needs to place the next input,
    // and what the muxer needs for the last sample of the output.
    const int64_t frame_duration =
        src->avg_frame_rate.num > 0 && src->avg_frame_rate.den > 0
            ? std::max<int64_t>(1, av_rescale_q(1, av_inv_q(src->avg_frame_rate), out_tb))
            : 1;
    packet_ptr pkt(av_packet_alloc());
    if (!pkt)
      return error("out of memory");
    bool first_packet = true;
    int64_t offset = 0;
    int64_t max_pts_before = max_pts_;
    int rc = 0;
    while ((rc = av_read_frame(in.fmt.get(), pkt.get())) >= 0) {
      if (pkt->stream_index != in.stream) {
        av_packet_unref(pkt.get());
        continue;
      }
      av_packet_rescale_ts(pkt.get(), in_tb, out_tb);
      if (pkt->duration <= 0)
        pkt->duration = frame_duration;
      if (pkt->pts == AV_NOPTS_VALUE || pkt->dts == AV_NOPTS_VALUE)
        return in.path + ": a packet without timestamps";
      if (first_packet) {
        // A closed GOP's first packet is its keyframe, which is also the
        // earliest frame shown: where the input starts.
        if (!(pkt->flags & AV_PKT_FLAG_KEY))
          return in.path + ": does not start with a keyframe";
        if (!keep_)
          offset = end_ - pkt->pts;
        else if (have_packets_ && pkt->pts <= max_pts_before)
          return in.path + ": starts at pts " + ts_text(pkt->pts, out_tb) +
                 ", not after the previous input's last frame at " + ts_text(max_pts_before, out_tb);
        first_packet = false;
      }
      pkt->pts += offset;
      pkt->dts += offset;
      // A piece's first packets are decoded before its first frame is shown;
      // their dts lie before its start and, for a short previous piece, can
      // fall on or before that piece's last dts. Moving them up keeps the
      // decode order valid; the room is there because pts strictly increase.
      if (have_packets_ && pkt->dts <= last_dts_)
        pkt->dts = last_dts_ + 1;
      if (pkt->dts > pkt->pts)
        return in.path + ": cannot order its packets after the previous input's (dts " +
               std::to_string(pkt->dts) + " > pts " + std::to_string(pkt->pts) + ")";
      last_dts_ = pkt->dts;
      max_pts_ = have_packets_ ? std::max(max_pts_, pkt->pts) : pkt->pts;
      end_ = std::max(end_, pkt->pts + pkt->duration);
      have_packets_ = true;
      pkt->stream_index = 0;
      pkt->pos = -1;
      if ((rc = av_interleaved_write_frame(out_.get(), pkt.get())) < 0)
        return error("cannot write to the file: " + av_error_text(rc));
    }
    if (rc != AVERROR_EOF)
      return in.path + ": read failed (" + av_error_text(rc) + ")";
    if (first_packet)
      return in.path + ": holds no frames";
    return std::nullopt;
  }

  std::optional<std::string> finish() {
    int rc = av_write_trailer(out_.get());
    if (rc < 0)
      return error("cannot finish the file: " + av_error_text(rc));
    if ((rc = close_file(out_.get())) < 0)
      return error("cannot finish the file: " + av_error_text(rc));
    out_.reset();
    return std::nullopt;
  }

  /// Leaves no partial output behind.
  void discard() {
    out_.reset();
    if (created_)
      ::unlink(output_.c_str());
  }

 private:
  std::string error(const std::string& cause) const { return output_ + ": " + cause; }

  std::string output_;
  bool keep_;
  output_context_ptr out_;
  bool created_ = false;
  bool have_packets_ = false;
  int64_t last_dts_ = 0;
  int64_t max_pts_ = 0;
  int64_t end_ = 0;  // the end of the last frame so far: where a digest's next input starts
};

}  // namespace

std::optional<std::string> join_clips(const std::vector<std::string>& inputs, const std::string& output,
                                      bool keep_timestamps) {
  if (inputs.empty())
    return output + ": nothing to join (no inputs)";
  for (const auto& p : inputs)
    if (p == output)
      return output + ": is also one of the inputs";
  // Every input is opened and checked before the output exists, so a mismatch
  // in the last input does not cost a half-written file.
  std::vector<join_input> in(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    in[i].path = inputs[i];
    if (auto err = open_join_input(in[i]))
      return err;
    if (auto err = check_compatible(in[0], in[i]))
      return err;
  }
  joiner j(output, keep_timestamps);
  std::optional<std::string> err = j.open_output(in[0]);
  for (std::size_t i = 0; !err && i < in.size(); ++i) {
    err = j.append(in[i]);
    in[i].fmt.reset();
  }
  if (!err)
    err = j.finish();
  if (err)
    j.discard();
  return err;
}

}  // namespace framehive::media
