#include "analysis/catalog.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <numeric>
#include <optional>

#include "analysis/result_keys.hpp"
#include "common/text.hpp"

namespace framehive::analysis {

namespace {

// -- keys of summary text (per-frame keys: analysis/result_keys.hpp) -------------------

constexpr const char* key_frame = "frame";
constexpr const char* key_frames_seen = "frames_seen";
constexpr const char* key_sampling = "sampling";
constexpr const char* key_frames_processed = "frames_processed";
constexpr const char* key_mean_ms = "mean_ms";
constexpr const char* key_p95_ms = "p95_ms";
constexpr const char* key_segments = "segments";
constexpr const char* key_paths = "paths";
constexpr const char* key_start_frame = "start_frame";
constexpr const char* key_end_frame = "end_frame";
constexpr const char* key_start_s = "start_s";
constexpr const char* key_end_s = "end_s";
constexpr const char* key_top_classes = "top_classes";

/// detect's summary: per class "total_person", "frames_with_person"; the top-3 classes.
constexpr const char* prefix_total = "total_";
constexpr const char* prefix_frames_with = "frames_with_";
constexpr std::size_t top_class_count = 3;

/// Share of frames at or below the reported high percentile.
constexpr double high_percentile = 0.95;
/// Values of a stored box: x, y, width, height.
constexpr std::size_t box_values = 4;
constexpr char label_separator = '.';
constexpr char every_marker = '/';
constexpr char rate_marker = '@';
constexpr std::string_view rate_unit = "fps";

// -- safe readers: stored data is whatever a worker sent, so nothing may throw ----------

double num(const nlohmann::json& j, const char* key, double fallback = 0) {
  if (!j.is_object())
    return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

bool flag(const nlohmann::json& j, const char* key) {
  if (!j.is_object())
    return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

const std::string* text(const nlohmann::json& j, const char* key) {
  if (!j.is_object())
    return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

double mean_of(const std::vector<stored_frame>& frames, const char* key) {
  if (frames.empty())
    return 0;
  double sum = 0;
  for (const auto& f : frames)
    sum += num(f.data, key);
  return sum / static_cast<double>(frames.size());
}

// -- the kinds' summaries -----------------------------------------------------------------

void summarize_stats(const std::vector<stored_frame>& frames, analyzer_summary& out) {
  out.numbers.push_back({"mean_brightness", mean_of(frames, keys::brightness)});
  out.numbers.push_back({"mean_sharpness", mean_of(frames, keys::sharpness)});
}

void summarize_people(const std::vector<stored_frame>& frames, analyzer_summary& out) {
  int64_t total = 0, with = 0, most = 0;
  for (const auto& f : frames) {
    const auto c = static_cast<int64_t>(num(f.data, keys::count));
    total += c;
    with += c > 0;
    most = std::max(most, c);
  }
  out.numbers.push_back({"total_detections", static_cast<double>(total)});
  out.numbers.push_back({"frames_with_people", static_cast<double>(with)});
  out.numbers.push_back({"max_people", static_cast<double>(most)});
}

void summarize_motion(const std::vector<stored_frame>& frames, analyzer_summary& out) {
  int64_t active = 0;
  for (const auto& f : frames)
    active += num(f.data, keys::fg) >= motion_active_ratio;
  out.segments = motion_segments(frames);
  out.numbers.push_back({"active_frames", static_cast<double>(active)});
}

/// The files' names, not the node's paths: the node deletes its copies once
/// the coordinator stores them, so a name is what `results` lists as the
/// artifact and what `fetch` writes (DIR/video-V/thumbnails/NAME).
void summarize_thumbnails(const std::vector<stored_frame>& frames, analyzer_summary& out) {
  for (const auto& f : frames)
    if (const auto* p = text(f.data, keys::path))
      out.paths.push_back(p->substr(p->rfind('/') + 1));
  out.numbers.push_back({"count", static_cast<double>(out.paths.size())});
}

/// The classes detect's frames carry counts of: the built-in ones in table
/// order, then a model's (any other number but a result key) by name.
std::vector<std::string> detect_classes_in(const std::vector<stored_frame>& frames) {
  std::vector<std::string> out;
  for (const auto& c : detect_class_table())
    out.emplace_back(c.name);
  std::vector<std::string> model_classes;
  for (const auto& f : frames) {
    if (!f.data.is_object())
      continue;
    for (const auto& [key, value] : f.data.items())
      if (value.is_number() && !is_result_key(key) &&
          std::find(out.begin(), out.end(), key) == out.end() &&
          std::find(model_classes.begin(), model_classes.end(), key) == model_classes.end())
        model_classes.push_back(key);
  }
  std::sort(model_classes.begin(), model_classes.end());
  out.insert(out.end(), model_classes.begin(), model_classes.end());
  return out;
}

/// Per selected class (a class is selected when frames carry its count, 0
/// included; a model's classes are its names): its detections and the frames
/// with at least one; then the classes found most often, ties by name,
/// classes never found left out.
void summarize_detect(const std::vector<stored_frame>& frames, analyzer_summary& out) {
  struct tally {
    std::string name;
    int64_t total = 0;
  };
  std::vector<tally> found;
  for (const auto& name : detect_classes_in(frames)) {
    bool selected = false;
    int64_t total = 0, with = 0;
    for (const auto& f : frames) {
      if (!f.data.is_object() || !f.data.contains(name) || !f.data[name].is_number())
        continue;
      selected = true;
      const auto n = static_cast<int64_t>(num(f.data, name.c_str()));
      total += n;
      with += n > 0;
    }
    if (!selected)
      continue;
    out.numbers.push_back({prefix_total + name, static_cast<double>(total)});
    out.numbers.push_back({prefix_frames_with + name, static_cast<double>(with)});
    if (total > 0)
      found.push_back({name, total});
  }
  std::sort(found.begin(), found.end(), [](const tally& a, const tally& b) {
    return a.total != b.total ? a.total > b.total : a.name < b.name;
  });
  for (std::size_t i = 0; i < found.size() && i < top_class_count; ++i)
    out.top_classes.push_back(found[i].name);
}

/// The clips as segments (their frames and times) and, in the same order,
/// their artifacts in paths, then the digest's; the error that stopped it.
void summarize_clips(const std::vector<stored_frame>& frames, analyzer_summary& out) {
  int64_t active = 0, in_clips = 0;
  std::string digest;
  for (const auto& f : frames) {
    active += num(f.data, keys::changed) >= clips_active_ratio;
    in_clips += flag(f.data, keys::in_clip);
    if (f.data.contains(keys::clip) && f.data[keys::clip].is_object()) {
      const auto& c = f.data[keys::clip];
      const auto* name = text(c, keys::artifact);
      out.segments.push_back({static_cast<int64_t>(num(c, keys::start_frame)),
                              static_cast<int64_t>(num(c, keys::end_frame)), num(c, keys::start_s),
                              num(c, keys::end_s)});
      out.paths.push_back(name ? *name : std::string());
    }
    if (const auto* d = text(f.data, keys::digest))
      digest = *d;
    if (const auto* e = text(f.data, keys::error); e && out.error.empty())
      out.error = *e;
  }
  if (!digest.empty())
    out.paths.push_back(digest);
  out.numbers.push_back({"clips", static_cast<double>(out.segments.size())});
  out.numbers.push_back({"active_frames", static_cast<double>(active)});
  out.numbers.push_back({"clip_frames", static_cast<double>(in_clips)});
}

void summarize_touch(const std::vector<stored_frame>& frames, analyzer_summary& out) {
  uint64_t sum = 0;
  for (const auto& f : frames)
    sum += static_cast<uint64_t>(num(f.data, keys::sum));
  out.numbers.push_back({"checksum", static_cast<double>(sum)});
}

bool is_label_char(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '_';
}

double percentile(std::vector<double> values, double share) {
  if (values.empty())
    return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(share * static_cast<double>(values.size())));
  const auto at = values.begin() + static_cast<std::ptrdiff_t>(std::clamp<std::size_t>(rank, 1, values.size()) - 1);
  std::nth_element(values.begin(), at, values.end());  // the rank's value, without sorting the rest
  return *at;
}

}  // namespace

// -- the table ------------------------------------------------------------------------------

const std::vector<analyzer_entry>& analyzer_table() {
  static const std::vector<analyzer_entry> table{
      {"stats", "mean brightness and sharpness (variance of the Laplacian) per frame", 0, summarize_stats},
      {"people", "people detected by OpenCV's HOG detector, with boxes", 0, summarize_people},
      {"motion", "share of moving pixels (MOG2 background model) and motion segments", motion_preroll_frames,
       summarize_motion},
      {"thumbnails", "a JPEG thumbnail for the first frame of every period", 0, summarize_thumbnails},
      {"touch", "reads one byte of every row: the framework's own cost per frame", 0, summarize_touch},
      {"detect", "per class (people, faces, ... or a DNN model's) counts and boxes per frame", 0,
       summarize_detect},
      {"clips", "frame-accurate H.264 clips of the activity, and a digest of them (artifacts; every frame)", 0,
       summarize_clips},
  };
  return table;
}

// -- detect's classes -----------------------------------------------------------------------

const std::vector<detect_class>& detect_class_table() {
  // Default: person (what the seed's pipelines ask for) and face (LBP, about
  // as costly as person). upper_body and cat_face (small windows, many scales)
  // cost three to five times both together; plates are for the videos that have them.
  static const std::vector<detect_class> table{
      {"person", detect_model::hog_people, "", true},
      {"face", detect_model::cascade, "lbpcascades/lbpcascade_frontalface_improved.xml", true},
      {"upper_body", detect_model::cascade, "haarcascades/haarcascade_upperbody.xml", false},
      {"cat_face", detect_model::cascade, "lbpcascades/lbpcascade_frontalcatface.xml", false},
      {"licence_plate", detect_model::cascade, "haarcascades/haarcascade_russian_plate_number.xml", false},
  };
  return table;
}

detect_selection select_detect_classes(const std::vector<std::string>& chosen) {
  detect_selection out;
  for (const auto& name : chosen) {
    const auto& table = detect_class_table();
    if (std::none_of(table.begin(), table.end(), [&](const detect_class& c) { return c.name == name; })) {
      out.error = "unknown detect class '" + name + "' (classes: " + detect_class_list() + ")";
      return out;
    }
  }
  for (const auto& c : detect_class_table())
    if (chosen.empty() ? c.in_default : std::find(chosen.begin(), chosen.end(), c.name) != chosen.end())
      out.classes.push_back(&c);
  return out;
}

std::string detect_class_list() {
  std::string out;
  for (const auto& c : detect_class_table()) {
    if (!out.empty())
      out += ", ";
    out += c.name;
  }
  return out;
}

bool is_result_key(const std::string& name) {
  for (const char* k : {keys::ms, keys::t, keys::quarantined, keys::reason, keys::brightness, keys::sharpness,
                        keys::count, keys::boxes, keys::fg, keys::path, keys::error, keys::sum})
    if (name == k)
      return true;
  return false;
}

std::string check_detect_options(const detect_options& d, const std::vector<std::string>& analyzers) {
  if (d.empty())
    return {};
  if (std::none_of(analyzers.begin(), analyzers.end(),
                   [](const std::string& a) { return analyzer_kind(a.substr(0, a.find_first_of("/@"))) == "detect"; }))
    return "detect options given, but the job runs no detect analyzer";
  const auto& m = d.model;
  for (const std::string* file : {&m.network, &m.weights, &m.names})
    if (file->size() > max_detect_text)
      return "detect: a model file's name has more than " + std::to_string(max_detect_text) + " bytes";
  if (d.classes.size() > max_detect_classes)
    return "detect: more than " + std::to_string(max_detect_classes) + " classes chosen";
  for (const auto& c : d.classes)
    if (c.size() > max_detect_text)
      return "detect: a class name has more than " + std::to_string(max_detect_text) + " bytes";
  if (m.empty()) {
    if (!m.weights.empty() || !m.names.empty())
      return "detect: a weights or names file needs the model's network file (--detect-model)";
    const auto selection = select_detect_classes(d.classes);
    return selection.error.empty() ? std::string() : "detect: " + selection.error;
  }
  if (m.names.empty())
    return "detect: the model " + m.network + " needs a class names file (--detect-names)";
  if (m.width == 0 || m.height == 0 || m.width > max_dnn_input || m.height > max_dnn_input)
    return "detect: the model's input size is " + std::to_string(m.width) + "x" + std::to_string(m.height) +
           "; each side is 1 to " + std::to_string(max_dnn_input) + " pixels";
  if (!std::isfinite(m.scale) || m.scale <= 0)
    return "detect: the input scale must be a number above 0";
  if (m.mean.size() != 0 && m.mean.size() != 1 && m.mean.size() != 3)
    return "detect: the input mean has 1 or 3 values (one per channel), not " + std::to_string(m.mean.size());
  if (std::any_of(m.mean.begin(), m.mean.end(), [](double v) { return !std::isfinite(v); }))
    return "detect: the input mean must be numbers";
  if (!(m.threshold > 0 && m.threshold <= 1))
    return "detect: the threshold is a confidence above 0, at most 1";
  if (!(m.nms > 0 && m.nms <= 1))
    return "detect: the NMS overlap is above 0, at most 1";
  for (const auto& c : d.classes)
    if (c.empty())
      return "detect: an empty class name";
  return {};
}

std::string analyzer_kind(const std::string& name) {
  return name.substr(0, name.find(label_separator));
}

const analyzer_entry* find_analyzer(const std::string& name) {
  const std::string kind = analyzer_kind(name);
  const auto& table = analyzer_table();
  auto it = std::find_if(table.begin(), table.end(), [&](const analyzer_entry& e) { return e.kind == kind; });
  if (it == table.end())
    return nullptr;
  const auto dot = name.find(label_separator);
  if (dot == std::string::npos)
    return &*it;
  const auto label = std::string_view(name).substr(dot + 1);
  if (label.empty() || !std::all_of(label.begin(), label.end(), [](char c) { return is_label_char(c); }))
    return nullptr;
  return &*it;
}

bool is_analyzer(const std::string& name) {
  return find_analyzer(name) != nullptr;
}

std::string analyzer_list() {
  std::string out;
  for (const auto& e : analyzer_table()) {
    if (!out.empty())
      out += ", ";
    out += e.kind;
  }
  return out;
}

// -- a job's analyzers ----------------------------------------------------------------------

namespace {

/// Digits only, as a number up to `max`; nullopt if not that.
std::optional<uint64_t> whole_number(std::string_view digits, uint64_t max) {
  return decimal_number(digits, max);
}

/// "N" of "@Nfps" (N with up to sample_fps_decimals decimals) as a reduced fraction.
std::optional<sampling> parse_rate(std::string_view n) {
  const auto dot = n.find('.');
  const auto whole = whole_number(n.substr(0, dot), max_sample_fps);
  if (!whole)
    return std::nullopt;
  uint64_t num = *whole, den = 1;
  if (dot != std::string_view::npos) {
    const auto decimals = n.substr(dot + 1);
    if (decimals.empty() || decimals.size() > static_cast<std::size_t>(sample_fps_decimals))
      return std::nullopt;
    const auto frac = whole_number(decimals, 999);
    if (!frac)
      return std::nullopt;
    for (std::size_t i = 0; i < decimals.size(); ++i)
      den *= 10;
    num = num * den + *frac;
  }
  const uint64_t g = std::gcd(num, den);
  sampling s;
  s.rate_num = static_cast<uint32_t>(g ? num / g : 0);
  s.rate_den = static_cast<uint32_t>(g ? den / g : 1);
  return s;
}

std::string ordinal(uint32_t n) {
  const uint32_t last_two = n % 100;
  const char* suffix = "th";
  if (last_two < 11 || last_two > 13) {
    switch (n % 10) {
      case 1: suffix = "st"; break;
      case 2: suffix = "nd"; break;
      case 3: suffix = "rd"; break;
      default: break;
    }
  }
  return std::to_string(n) + suffix;
}

/// A rate as "5", "0.5", "29.97": the fraction has a power of ten below it.
std::string rate_text(const sampling& s) {
  if (s.rate_den <= 1)
    return std::to_string(s.rate_num);
  uint64_t den = 1;
  int decimals = 0;
  while (den % s.rate_den != 0 && decimals < 9) {
    den *= 10;
    ++decimals;
  }
  const uint64_t scaled = static_cast<uint64_t>(s.rate_num) * (den / s.rate_den);
  std::string frac = std::to_string(scaled % den);
  frac.insert(0, static_cast<std::size_t>(decimals) - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0')
    frac.pop_back();
  return std::to_string(scaled / den) + (frac.empty() ? "" : "." + frac);
}

}  // namespace

result<analyzer_spec, std::string> parse_analyzer(const std::string& text, uint32_t stride) {
  const auto cut = text.find_first_of(std::string{every_marker, rate_marker});
  analyzer_spec spec;
  spec.name = text.substr(0, cut);
  if (!find_analyzer(spec.name)) {
    const auto dot = spec.name.find(label_separator);
    if (dot == std::string::npos || !find_analyzer(analyzer_kind(spec.name)))
      return "unknown analyzer '" + text + "' (known: " + analyzer_list() + ")";
    return "analyzer '" + text + "': a label is one or more letters, digits, '-' or '_' (" +
           analyzer_kind(spec.name) + ".left)";
  }
  if (is_clips(spec.name)) {
    // A clip holds every frame of its range: clips cannot skip any.
    if (cut != std::string::npos)
      return "analyzer '" + text + "': clips takes every frame (a clip holds each frame of its range)";
    return spec;  // the job's --stride does not apply either
  }
  if (cut == std::string::npos) {
    spec.take.every = std::max<uint32_t>(1, stride);
    return spec;
  }
  const std::string_view rest = std::string_view(text).substr(cut + 1);
  if (text[cut] == every_marker) {
    const auto k = whole_number(rest, max_sample_every);
    if (!k || *k == 0)
      return "analyzer '" + text + "': /K takes every K-th frame, K a whole number from 1 to " +
             std::to_string(max_sample_every);
    spec.take.every = static_cast<uint32_t>(*k);
    return spec;
  }
  if (rest.size() <= rate_unit.size() || rest.substr(rest.size() - rate_unit.size()) != rate_unit)
    return "analyzer '" + text + "': @N takes N frames per second of video and ends in fps (" + spec.name +
           "@5fps)";
  const auto rate = parse_rate(rest.substr(0, rest.size() - rate_unit.size()));
  if (!rate)
    return "analyzer '" + text + "': the rate of @Nfps is a number up to " + std::to_string(max_sample_fps) +
           " with at most " + std::to_string(sample_fps_decimals) + " decimals";
  if (rate->rate_num == 0)
    return "analyzer '" + text + "': the rate must be more than 0 fps";
  spec.take = *rate;
  return spec;
}

result<std::vector<analyzer_spec>, std::string> parse_analyzers(const std::vector<std::string>& texts,
                                                                uint32_t stride) {
  std::vector<analyzer_spec> out;
  for (const auto& t : texts) {
    auto spec = parse_analyzer(t, stride);
    if (!spec)
      return spec.error();
    auto same = std::find_if(out.begin(), out.end(), [&](const analyzer_spec& s) { return s.name == spec->name; });
    if (same == out.end()) {
      out.push_back(std::move(*spec));
    } else if (same->take != spec->take) {
      return "analyzers '" + to_text(*same) + "' and '" + to_text(*spec) + "' are both '" + spec->name +
             "': their results would share one name; give one a label (" + analyzer_kind(spec->name) +
             ".sparse" + t.substr(std::min(t.size(), spec->name.size())) + ")";
    }
  }
  return out;
}

std::string to_text(const analyzer_spec& spec) {
  if (spec.take.by_time())
    return spec.name + rate_marker + rate_text(spec.take) + std::string(rate_unit);
  if (spec.take.every > 1)
    return spec.name + every_marker + std::to_string(spec.take.every);
  return spec.name;
}

std::string describe(const sampling& s) {
  std::string out;
  if (s.every > 1)
    out = "every " + ordinal(s.every) + " frame";
  if (s.by_time())
    out += (out.empty() ? "" : ", ") + rate_text(s) + " fps";
  return out.empty() ? "every frame" : out;
}

std::string analyzer_syntax() {
  return "KIND[.LABEL][/K | @Nfps]: KIND is one of " + analyzer_list() +
         "; .LABEL runs another instance (touch.2); /K takes every K-th frame (stats/10); @Nfps takes N "
         "frames per second of video time, by timestamp (people@5fps, thumbnails@0.5fps). The video is "
         "decoded once for all of them; a frame no analyzer takes is not converted";
}

int preroll_frames(const std::string& name) {
  const auto* e = find_analyzer(name);
  return e ? e->preroll_frames : 0;
}

int64_t decode_start(int64_t start_frame, const std::vector<std::string>& analyzers) {
  int preroll = 0;
  for (const auto& a : analyzers)
    preroll = std::max(preroll, preroll_frames(a));
  return std::max<int64_t>(0, start_frame - preroll);
}

// -- summaries ----------------------------------------------------------------------------------

std::vector<segment> motion_segments(const std::vector<stored_frame>& frames, double threshold,
                                     double max_gap_s, double min_len_s) {
  std::vector<segment> raw;
  for (const auto& f : frames) {
    if (num(f.data, keys::fg) < threshold)
      continue;
    const double t = f.t;
    if (!raw.empty() && t - raw.back().end_s <= max_gap_s) {
      raw.back().end_frame = f.frame;
      raw.back().end_s = t;
    } else {
      raw.push_back({f.frame, f.frame, t, t});
    }
  }
  std::vector<segment> out;
  for (const auto& s : raw)
    if (s.end_s - s.start_s >= min_len_s)
      out.push_back(s);
  return out;
}

analyzer_summary summarize(const std::string& analyzer, const std::vector<stored_frame>& all,
                           const sampling& take) {
  analyzer_summary s;
  s.frames_seen = all.size();
  s.sampling = describe(take);
  std::vector<stored_frame> frames;
  for (const auto& f : all) {
    if (flag(f.data, keys::quarantined)) {
      const auto* reason = text(f.data, keys::reason);
      s.quarantined.push_back({f.frame, reason ? *reason : std::string()});
    } else {
      frames.push_back(f);
    }
  }
  std::vector<double> ms;
  ms.reserve(frames.size());
  for (const auto& f : frames)
    ms.push_back(num(f.data, keys::ms));
  double total = 0;
  for (double v : ms)
    total += v;
  s.frames_processed = frames.size();
  s.mean_ms = ms.empty() ? 0 : total / static_cast<double>(ms.size());
  s.p95_ms = percentile(std::move(ms), high_percentile);
  if (const auto* e = find_analyzer(analyzer); e && e->summarize)
    e->summarize(frames, s);
  return s;
}

// -- records ------------------------------------------------------------------------------------

namespace {

/// people's [x, y, w, h]; nullopt if it is not four numbers.
std::optional<box> array_box(const nlohmann::json& b) {
  if (!b.is_array() || b.size() != box_values ||
      !std::all_of(b.begin(), b.end(), [](const nlohmann::json& v) { return v.is_number(); }))
    return std::nullopt;
  auto at = [&](std::size_t i) { return static_cast<int32_t>(b[i].get<double>()); };
  return box{at(0), at(1), at(2), at(3), {}};
}

/// detect's {"class", "x", "y", "w", "h"}; nullopt without a class or a number.
std::optional<box> labelled_box(const nlohmann::json& b) {
  const auto* label = text(b, keys::box_class);
  const char* const fields[] = {keys::box_x, keys::box_y, keys::box_w, keys::box_h};
  if (!label || !std::all_of(std::begin(fields), std::end(fields),
                             [&](const char* k) { return b.contains(k) && b[k].is_number(); }))
    return std::nullopt;
  auto at = [&](const char* k) { return static_cast<int32_t>(b[k].get<double>()); };
  return box{at(keys::box_x), at(keys::box_y), at(keys::box_w), at(keys::box_h), *label};
}

void add_boxes(const nlohmann::json& boxes, frame_record& r) {
  if (!boxes.is_array())
    return;
  for (const auto& b : boxes)
    if (auto parsed = b.is_object() ? labelled_box(b) : array_box(b))
      r.boxes.push_back(std::move(*parsed));
}

}  // namespace

frame_record to_record(int64_t frame, int64_t pts, double t, const nlohmann::json& j) {
  frame_record r;
  r.frame = frame;
  r.pts = pts;
  r.t = t;
  if (!j.is_object())
    return r;
  r.quarantined = flag(j, keys::quarantined);
  for (const auto& [key, value] : j.items()) {
    if (key == keys::quarantined || key == keys::t) {
      continue;  // read above, as a flag only; the time is pts x time base, never a member
    } else if (key == keys::ms) {
      r.ms = value.is_number() ? value.get<double>() : 0;
    } else if (key == keys::boxes) {
      add_boxes(value, r);
    } else if (value.is_number()) {
      r.numbers.push_back({key, value.get<double>()});
    } else if (value.is_string()) {
      if (r.quarantined && key == keys::reason)
        r.reason = value.get<std::string>();
      else
        r.texts.push_back({key, value.get<std::string>()});
    }
  }
  return r;
}

// -- summary text -------------------------------------------------------------------------------
// The same flat object the job store held before summaries were typed (common
// figures, the kind's numbers as keys, "segments", "paths"), so rows written
// by older versions still read. Keys keep their order (ordered_json), so a
// summary comes back exactly as it went in.

std::string summary_to_text(const analyzer_summary& s) {
  nlohmann::ordered_json j;
  j[key_frames_seen] = s.frames_seen;
  j[key_sampling] = s.sampling;
  j[key_frames_processed] = s.frames_processed;
  j[key_mean_ms] = s.mean_ms;
  j[key_p95_ms] = s.p95_ms;
  j[keys::quarantined] = nlohmann::ordered_json::array();
  for (const auto& q : s.quarantined)
    j[keys::quarantined].push_back({{key_frame, q.frame}, {keys::reason, q.reason}});
  for (const auto& n : s.numbers)
    j[n.name] = n.value;
  j[key_segments] = nlohmann::ordered_json::array();
  for (const auto& g : s.segments)
    j[key_segments].push_back({{key_start_frame, g.start_frame},
                               {key_end_frame, g.end_frame},
                               {key_start_s, g.start_s},
                               {key_end_s, g.end_s}});
  j[key_paths] = s.paths;
  j[key_top_classes] = s.top_classes;
  if (!s.error.empty())
    j[keys::error] = s.error;
  // Paths and reasons are bytes; invalid UTF-8 is replaced rather than thrown.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

using ojson = nlohmann::ordered_json;

template <class T>
bool read_number(const ojson& j, T& out) {
  if (!j.is_number())
    return false;
  out = j.get<T>();
  return true;
}

template <class T>
bool read_member(const ojson& obj, const char* key, T& out) {
  auto it = obj.find(key);
  return it != obj.end() && read_number(*it, out);
}

bool read_quarantined(const ojson& arr, analyzer_summary& out) {
  if (!arr.is_array())
    return false;
  for (const auto& q : arr) {
    if (!q.is_object())
      return false;
    quarantined_frame f;
    if (!read_member(q, key_frame, f.frame))
      return false;
    auto reason = q.find(keys::reason);
    if (reason != q.end() && reason->is_string())
      f.reason = reason->get<std::string>();
    out.quarantined.push_back(std::move(f));
  }
  return true;
}

bool read_segments(const ojson& arr, analyzer_summary& out) {
  if (!arr.is_array())
    return false;
  for (const auto& g : arr) {
    segment s;
    if (!g.is_object() || !read_member(g, key_start_frame, s.start_frame) ||
        !read_member(g, key_end_frame, s.end_frame) || !read_member(g, key_start_s, s.start_s) ||
        !read_member(g, key_end_s, s.end_s))
      return false;
    out.segments.push_back(s);
  }
  return true;
}

bool read_texts(const ojson& arr, std::vector<std::string>& out) {
  if (!arr.is_array())
    return false;
  for (const auto& p : arr) {
    if (!p.is_string())
      return false;
    out.push_back(p.get<std::string>());
  }
  return true;
}

bool read_field(const std::string& key, const ojson& value, analyzer_summary& out) {
  if (key == key_frames_seen)
    return value.is_number_unsigned() && read_number(value, out.frames_seen);
  if (key == key_sampling) {
    if (!value.is_string())
      return false;
    out.sampling = value.get<std::string>();
    return true;
  }
  if (key == key_frames_processed)
    return value.is_number_unsigned() && read_number(value, out.frames_processed);
  if (key == key_mean_ms)
    return read_number(value, out.mean_ms);
  if (key == key_p95_ms)
    return read_number(value, out.p95_ms);
  if (key == keys::quarantined)
    return read_quarantined(value, out);
  if (key == key_segments)
    return read_segments(value, out);
  if (key == key_paths)
    return read_texts(value, out.paths);
  if (key == key_top_classes)
    return read_texts(value, out.top_classes);
  if (key == keys::error) {
    if (!value.is_string())
      return false;
    out.error = value.get<std::string>();
    return true;
  }
  if (value.is_number()) {
    out.numbers.push_back({key, value.get<double>()});
    return true;
  }
  return false;
}

}  // namespace

bool summary_from_text(const std::string& text, analyzer_summary& out) {
  const auto j = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object())
    return false;
  analyzer_summary s;
  for (const auto& [key, value] : j.items())
    if (!read_field(key, value, s))
      return false;
  if (!j.contains(key_frames_seen))  // written before sampling: every frame was taken
    s.frames_seen = s.frames_processed + s.quarantined.size();
  if (!j.contains(key_sampling))
    s.sampling = describe(sampling{});
  out = std::move(s);
  return true;
}

}  // namespace framehive::analysis
