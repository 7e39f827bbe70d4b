// clips: cuts a video's activity into frame-accurate H.264 clips and joins
// them into a digest, from the frames of the one decode (the ring).
//
// Each frame's activity is the share of its pixels that changed since the
// frame before (a difference, so the state is one small grey frame); the
// clip_planner decides which frames belong to which clip and holds back the
// few whose fate is open. Settled frames of a clip are encoded at once into
// "pieces" below .work/; every checkpoint (before a batch of results leaves
// the consumer) ends the current piece and writes the planner's state, so a
// consumer restarted after the last acknowledged frame continues the same
// clip: the pieces before it stay, the next piece starts where it resumes.
// A clip that ends is the join of its pieces (no re-encode); the digest is
// the join of the clips.

#include "analysis/clips.hpp"

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "analysis/clip_planner.hpp"
#include "analysis/result_keys.hpp"
#include "media/clip_writer.hpp"

namespace framehive::analysis {

namespace {

namespace fs = std::filesystem;

constexpr const char* work_folder = ".work";
constexpr const char* digest_file = "digest.mp4";
/// Checkpoints kept: the ones batches in flight may fall back to, and some.
constexpr std::size_t checkpoints_kept = 4;
constexpr int clip_name_digits = 3;

struct kept_clip {
  int64_t start = 0;
  int64_t end = 0;
  double start_s = 0;
  double end_s = 0;
  std::string name;
};

struct held_frame {
  frame_at at;
  cv::Mat bgr;  ///< a view into the ring: valid while the frame is unsettled
  double changed = 0;
};

std::string clip_name(std::size_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "clip_%0*zu.mp4", clip_name_digits, index);
  return buf;
}

nlohmann::json to_json(const clip_plan_state& s) {
  return {{"next_frame", s.next_frame}, {"settled_next", s.settled_next}, {"in_segment", s.in_segment},
          {"clip_start", s.clip_start}, {"active_start", s.active_start}, {"last_active", s.last_active},
          {"floor", s.floor}};
}

clip_plan_state plan_state_from(const nlohmann::json& j) {
  clip_plan_state s;
  s.next_frame = j.at("next_frame").get<int64_t>();
  s.settled_next = j.at("settled_next").get<int64_t>();
  s.in_segment = j.at("in_segment").get<bool>();
  s.clip_start = j.at("clip_start").get<int64_t>();
  s.active_start = j.at("active_start").get<int64_t>();
  s.last_active = j.at("last_active").get<int64_t>();
  s.floor = j.at("floor").get<int64_t>();
  return s;
}

/// Writes `bytes` to `path` through a temporary name, so a reader sees all or nothing.
bool write_whole(const fs::path& path, const std::string& bytes) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())) || !out.flush())
      return false;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return !ec;
}

std::optional<std::string> read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class clips_analyzer final : public analyzer {
 public:
  explicit clips_analyzer(const analyzer_settings& s) : settings_(s), planner_({}) {}

  std::string name() const override { return "clips"; }
  bool holds_frames() const override { return true; }

  void begin(const video_context& ctx) override {
    ctx_ = ctx;
    clip_rules r;
    r.pad_frames = clips_frames(settings_.clips_padding_s, ctx.fps);
    r.merge_gap_frames = clips_frames(settings_.clips_merge_gap_s, ctx.fps);
    r.min_active_frames = std::max<int64_t>(1, clips_frames(settings_.clips_min_length_s, ctx.fps));
    // The ring must keep every held frame and the one kept for the end
    // beside the batches in flight; a ring too small shortens the padding
    // and the gap (the node sizes rings for the settings, so this is rare).
    while (ctx.may_hold > 0 && clip_planner::max_held(r) + 1 > ctx.may_hold &&
           (r.pad_frames > 0 || r.merge_gap_frames > 0)) {
      if (r.pad_frames >= r.merge_gap_frames)
        --r.pad_frames;
      else
        --r.merge_gap_frames;
    }
    planner_ = clip_planner(r);
    work_ = fs::path(ctx.output_dir) / work_folder;
  }

  nlohmann::json process(const cv::Mat&, int64_t, double) override { return nlohmann::json::object(); }

  void stop(const std::string& why) override {
    if (error_.empty())
      error_ = why;
    writer_.reset();
  }

  void take(const cv::Mat& bgr, const frame_at& at, std::vector<settled_result>& out) override {
    if (!started_)
      start(at.frame);
    const auto& st = planner_.state();
    if (at.frame < st.settled_next)
      return;  // the frame kept back for the end, redelivered: its result is restored
    if (at.frame < st.next_frame) {
      // A held frame redelivered after a restart: its activity is known.
      const auto i = static_cast<std::size_t>(at.frame - st.settled_next);
      held_.push_back({at, bgr, i < restored_changed_.size() ? restored_changed_[i] : 0.0});
      return;
    }
    const double changed = activity(bgr);
    held_.push_back({at, bgr, changed});
    settled_.clear();
    planner_.push(at.frame, changed >= clips_active_ratio, settled_);
    settle(out);
  }

  void finish(std::vector<settled_result>& out) override {
    if (!started_)
      return;
    settled_.clear();
    planner_.finish(settled_);
    settle(out);
    if (!last_)
      return;
    auto& r = last_->result;
    r[keys::clips] = kept_.size();
    if (error_.empty() && !kept_.empty()) {
      std::vector<std::string> files;
      for (const auto& c : kept_)
        files.push_back((fs::path(ctx_.output_dir) / c.name).string());
      if (auto err = media::join_clips(files, (fs::path(ctx_.output_dir) / digest_file).string(), false))
        stop("digest: " + *err);
      else
        r[keys::digest] = digest_file;
    }
    if (!error_.empty())
      r[keys::error] = error_;
    out.push_back(std::move(*last_));
    last_.reset();
  }

  std::optional<std::string> checkpoint() override {
    if (!started_)
      return std::nullopt;
    if (writer_) {
      if (auto err = writer_->close())
        stop("clip piece: " + *err);
      writer_.reset();
    }
    const int64_t resume = last_ ? last_->frame : planner_.state().settled_next;
    nlohmann::json j;
    j["plan"] = to_json(planner_.state());
    j["attempt"] = attempt_;
    j["clip_start_s"] = clip_start_s_;
    j["pieces"] = pieces_;
    j["kept"] = nlohmann::json::array();
    for (const auto& c : kept_)
      j["kept"].push_back({{"start", c.start}, {"end", c.end}, {"start_s", c.start_s}, {"end_s", c.end_s},
                           {"name", c.name}});
    j["error"] = error_;
    if (last_)
      j["last"] = {{"frame", last_->frame}, {"result", last_->result}};
    j["held_changed"] = nlohmann::json::array();
    for (const auto& h : held_)
      j["held_changed"].push_back(h.changed);
    j["prev"] = {{"cols", prev_.cols}, {"rows", prev_.rows}};
    const std::string grey(reinterpret_cast<const char*>(prev_.data), prev_.total());
    if (!write_whole(work_ / ("ckpt_" + std::to_string(resume) + ".grey"), grey) ||
        !write_whole(work_ / ("ckpt_" + std::to_string(resume) + ".json"), j.dump()))
      stop("cannot write a checkpoint in " + work_.string());
    written_.push_back(resume);
    while (written_.size() > checkpoints_kept) {
      std::error_code ec;
      fs::remove(work_ / ("ckpt_" + std::to_string(written_.front()) + ".json"), ec);
      fs::remove(work_ / ("ckpt_" + std::to_string(written_.front()) + ".grey"), ec);
      written_.pop_front();
    }
    return std::nullopt;
  }

 private:
  /// The first frame taken: a fresh run at frame 0, else the checkpoint it resumes from.
  void start(int64_t first) {
    started_ = true;
    std::error_code ec;
    if (first == 0)
      fs::remove_all(work_, ec);  // an earlier run of this video on this node
    fs::create_directories(work_, ec);
    if (ec)
      stop("cannot create " + work_.string() + ": " + ec.message());
    if (first > 0 && !restore(first)) {
      // No state for this point (the video moved here from another node):
      // clips start afresh at `first`.
      clip_plan_state s;
      s.next_frame = s.settled_next = s.floor = first;
      planner_.restore(s);
    }
  }

  bool restore(int64_t resume) {
    const auto text = read_whole(work_ / ("ckpt_" + std::to_string(resume) + ".json"));
    const auto grey = read_whole(work_ / ("ckpt_" + std::to_string(resume) + ".grey"));
    if (!text || !grey)
      return false;
    try {
      const auto j = nlohmann::json::parse(*text);
      planner_.restore(plan_state_from(j.at("plan")));
      attempt_ = j.at("attempt").get<int64_t>();
      clip_start_s_ = j.at("clip_start_s").get<double>();
      pieces_ = j.at("pieces").get<std::vector<std::string>>();
      kept_.clear();
      for (const auto& c : j.at("kept"))
        kept_.push_back({c.at("start").get<int64_t>(), c.at("end").get<int64_t>(), c.at("start_s").get<double>(),
                         c.at("end_s").get<double>(), c.at("name").get<std::string>()});
      error_ = j.at("error").get<std::string>();
      if (j.contains("last"))
        last_ = settled_result{j["last"].at("frame").get<int64_t>(), j["last"].at("result")};
      restored_changed_ = j.at("held_changed").get<std::vector<double>>();
      const int cols = j.at("prev").at("cols").get<int>();
      const int rows = j.at("prev").at("rows").get<int>();
      if (static_cast<std::size_t>(cols) * static_cast<std::size_t>(rows) != grey->size())
        return false;
      prev_ = cv::Mat(rows, cols, CV_8UC1);
      std::copy(grey->begin(), grey->end(), reinterpret_cast<char*>(prev_.data));
      written_.push_back(resume);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  /// Share of pixels that changed since the frame before (0 for the first).
  double activity(const cv::Mat& bgr) {
    const int width = static_cast<int>(std::max<uint32_t>(16, settings_.motion_width));
    const double scale = bgr.cols > width ? static_cast<double>(width) / bgr.cols : 1.0;
    cv::resize(bgr, small_, cv::Size(), scale, scale, cv::INTER_AREA);
    cv::cvtColor(small_, grey_, cv::COLOR_BGR2GRAY);
    double ratio = 0;
    if (!prev_.empty() && prev_.size() == grey_.size()) {
      cv::absdiff(grey_, prev_, diff_);
      ratio = static_cast<double>(cv::countNonZero(diff_ > clips_pixel_change)) / static_cast<double>(diff_.total());
    }
    std::swap(prev_, grey_);
    return ratio;
  }

  /// Encodes and reports the frames the planner settled.
  void settle(std::vector<settled_result>& out) {
    for (const auto& sf : settled_) {
      if (held_.empty() || held_.front().at.frame != sf.frame) {
        stop("internal: frame " + std::to_string(sf.frame) + " settled out of order");
        continue;
      }
      held_frame h = std::move(held_.front());
      held_.pop_front();
      nlohmann::json r = {{keys::changed, h.changed}};
      if (sf.in_clip) {
        r[keys::in_clip] = true;
        if (sf.opens) {
          ++attempt_;
          pieces_.clear();
          clip_start_s_ = h.at.t;
        }
        encode(h);
      }
      if (sf.closes)
        end_clip(sf, h.at.t, r);
      if (!error_.empty())
        r[keys::error] = error_;
      if (last_)
        out.push_back(std::move(*last_));
      last_ = settled_result{sf.frame, std::move(r)};
    }
  }

  void encode(const held_frame& h) {
    if (!error_.empty())
      return;
    if (!writer_) {
      media::clip_format f;
      f.width = h.bgr.cols;
      f.height = h.bgr.rows;
      f.time_base_num = h.at.time_base_num;
      f.time_base_den = h.at.time_base_den;
      f.fps = ctx_.fps;
      f.crf = static_cast<int>(settings_.clips_crf);
      const auto piece = work_ / ("c" + std::to_string(attempt_) + "_" + std::to_string(h.at.frame) + ".mp4");
      auto w = media::clip_writer::create(piece.string(), f);
      if (!w) {
        stop(w.error());
        return;
      }
      writer_ = std::move(*w);
      pieces_.push_back(piece.string());
    }
    if (auto err = writer_->write(h.bgr.data, static_cast<int>(h.bgr.step), h.at.pts))
      stop(*err);
  }

  void end_clip(const settled_frame& sf, double end_s, nlohmann::json& r) {
    if (writer_) {
      if (auto err = writer_->close())
        stop(*err);
      writer_.reset();
    }
    if (!error_.empty())
      return;
    std::error_code ec;
    if (sf.kept) {
      kept_clip c{sf.clip_start, sf.frame, clip_start_s_, end_s, clip_name(kept_.size())};
      if (auto err = media::join_clips(pieces_, (fs::path(ctx_.output_dir) / c.name).string(), true)) {
        stop(c.name + ": " + *err);
        return;
      }
      r[keys::clip] = {{keys::index, kept_.size()}, {keys::start_frame, c.start}, {keys::end_frame, c.end},
                       {keys::start_s, c.start_s},  {keys::end_s, c.end_s},     {keys::artifact, c.name}};
      kept_.push_back(std::move(c));
    }
    // Pieces stay until the video ends: a restart may still need the ones
    // its checkpoint names (the node removes the whole folder).
    pieces_.clear();
  }

  analyzer_settings settings_;
  clip_planner planner_;
  fs::path work_;
  bool started_ = false;
  std::string error_;
  std::deque<held_frame> held_;
  std::vector<settled_frame> settled_;
  std::optional<settled_result> last_;  ///< the last settled frame, kept back for the video's end
  std::vector<double> restored_changed_;
  std::unique_ptr<media::clip_writer> writer_;
  std::vector<std::string> pieces_;  ///< of the open clip, in order
  int64_t attempt_ = 0;              ///< clips opened so far (names pieces)
  double clip_start_s_ = 0;
  std::vector<kept_clip> kept_;
  std::deque<int64_t> written_;  ///< checkpoints on disk, oldest first
  cv::Mat small_, grey_, prev_, diff_;
};

}  // namespace

std::unique_ptr<analyzer> make_clips_analyzer(const analyzer_settings& settings, std::string&) {
  return std::make_unique<clips_analyzer>(settings);
}

}  // namespace framehive::analysis
