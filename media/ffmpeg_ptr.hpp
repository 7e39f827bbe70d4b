#pragma once

// One owner per FFmpeg object: unique_ptr with the matching free function.

#include <memory>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

namespace framehive::media {

struct format_context_deleter {
  void operator()(AVFormatContext* p) const noexcept { avformat_close_input(&p); }
};
struct codec_context_deleter {
  void operator()(AVCodecContext* p) const noexcept { avcodec_free_context(&p); }
};
struct frame_deleter {
  void operator()(AVFrame* p) const noexcept { av_frame_free(&p); }
};
struct packet_deleter {
  void operator()(AVPacket* p) const noexcept { av_packet_free(&p); }
};
struct sws_deleter {
  void operator()(SwsContext* p) const noexcept { sws_freeContext(p); }
};

using format_context_ptr = std::unique_ptr<AVFormatContext, format_context_deleter>;
using codec_context_ptr = std::unique_ptr<AVCodecContext, codec_context_deleter>;
using frame_ptr = std::unique_ptr<AVFrame, frame_deleter>;
using packet_ptr = std::unique_ptr<AVPacket, packet_deleter>;
using sws_ptr = std::unique_ptr<SwsContext, sws_deleter>;

}  // namespace framehive::media
