#include "analysis/catalog.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace framehive::analysis {
namespace {

using nlohmann::json;

stored_frame at(int64_t frame, json data) {
  return stored_frame{frame, std::move(data)};
}

double number(const analyzer_summary& s, const std::string& name) {
  for (const auto& n : s.numbers)
    if (n.name == name)
      return n.value;
  ADD_FAILURE() << "no number '" << name << "' in the summary";
  return -1;
}

std::vector<std::string> names_of(const analyzer_summary& s) {
  std::vector<std::string> out;
  for (const auto& n : s.numbers)
    out.push_back(n.name);
  return out;
}

// -- the table ------------------------------------------------------------------------

TEST(Catalog, EveryKindIsKnownWithADescriptionAndASummary) {
  const std::vector<std::string> kinds{"stats", "people", "motion", "thumbnails", "touch", "detect", "clips"};
  ASSERT_EQ(analyzer_table().size(), kinds.size());
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    const auto& e = analyzer_table()[i];
    EXPECT_EQ(e.kind, kinds[i]);
    EXPECT_FALSE(e.description.empty()) << kinds[i];
    EXPECT_NE(e.summarize, nullptr) << kinds[i];
    EXPECT_EQ(find_analyzer(kinds[i]), &e);
    EXPECT_TRUE(is_analyzer(kinds[i]));
  }
  EXPECT_EQ(analyzer_list(), "stats, people, motion, thumbnails, touch, detect, clips");
}

// -- detect's classes --------------------------------------------------------------------

std::vector<std::string> names_of(const detect_selection& s) {
  std::vector<std::string> out;
  for (const auto* c : s.classes)
    out.emplace_back(c->name);
  return out;
}

TEST(DetectClasses, EveryClassHasAModelAndTheDefaultIsPersonAndFace) {
  EXPECT_EQ(detect_class_list(), "person, face, upper_body, cat_face, licence_plate");
  for (const auto& c : detect_class_table())
    EXPECT_EQ(c.file.empty(), c.model == detect_model::hog_people) << c.name;
  const auto chosen = select_detect_classes({});
  EXPECT_TRUE(chosen.error.empty());
  EXPECT_EQ(names_of(chosen), (std::vector<std::string>{"person", "face"}));
}

TEST(DetectClasses, AChoiceIsTakenOnceEachInTableOrder) {
  const auto chosen = select_detect_classes({"licence_plate", "face", "cat_face", "face"});
  EXPECT_TRUE(chosen.error.empty());
  EXPECT_EQ(names_of(chosen), (std::vector<std::string>{"face", "cat_face", "licence_plate"}));
}

TEST(DetectClasses, AnUnknownClassIsRefusedByName) {
  for (const std::string bad : {"unicorn", "Person", "", "faces"}) {
    const auto chosen = select_detect_classes({"person", bad});
    EXPECT_TRUE(chosen.classes.empty()) << bad;
    EXPECT_NE(chosen.error.find("'" + bad + "'"), std::string::npos) << chosen.error;
    EXPECT_NE(chosen.error.find("licence_plate"), std::string::npos) << chosen.error;  // says what exists
  }
}

TEST(Catalog, LabelledNamesAreInstancesOfTheirKind) {
  for (const std::string name : {"touch.3", "people.left", "motion.cam-2_b", "stats.X"}) {
    EXPECT_TRUE(is_analyzer(name)) << name;
    EXPECT_EQ(find_analyzer(name), find_analyzer(analyzer_kind(name))) << name;
  }
  EXPECT_EQ(analyzer_kind("people.left"), "people");
  EXPECT_EQ(analyzer_kind("people"), "people");
}

TEST(Catalog, UnknownKindsAndBadLabelsAreRefused) {
  for (const std::string name : {"", "nope", "Stats", "people.", ".people", "people.a b", "people.a.b",
                                 "people.\xff", "touch./x", "touch.3;"}) {
    EXPECT_FALSE(is_analyzer(name)) << name;
    EXPECT_EQ(find_analyzer(name), nullptr) << name;
  }
}

// -- a job's analyzers: KIND[.LABEL][/K | @Nfps] -----------------------------------------

TEST(Catalog, AnalyzerTextsGiveANameAndTheFramesItTakes) {
  auto plain = parse_analyzer("motion");
  ASSERT_TRUE(plain.ok()) << plain.error();
  EXPECT_EQ(plain->name, "motion");
  EXPECT_TRUE(plain->take.takes_all());

  auto every = parse_analyzer("stats.fast/10");
  ASSERT_TRUE(every.ok()) << every.error();
  EXPECT_EQ(every->name, "stats.fast");
  EXPECT_EQ(every->take.every, 10u);
  EXPECT_FALSE(every->take.by_time());

  auto rate = parse_analyzer("people@5fps");
  ASSERT_TRUE(rate.ok()) << rate.error();
  EXPECT_EQ(rate->name, "people");
  EXPECT_EQ(rate->take.rate_num, 5u);
  EXPECT_EQ(rate->take.rate_den, 1u);
  EXPECT_EQ(rate->take.every, 1u);

  auto fraction = parse_analyzer("thumbnails.x@0.25fps");
  ASSERT_TRUE(fraction.ok()) << fraction.error();
  EXPECT_EQ(fraction->take.rate_num, 1u);  // reduced: 25/100 = 1/4
  EXPECT_EQ(fraction->take.rate_den, 4u);
}

TEST(Catalog, AJobsStrideIsSlashKForAnalyzersWithoutSamplingOfTheirOwn) {
  EXPECT_EQ(parse_analyzer("stats", 4)->take.every, 4u);
  EXPECT_EQ(parse_analyzer("stats/2", 4)->take.every, 2u) << "its own sampling wins";
  EXPECT_EQ(parse_analyzer("stats/1", 4)->take.every, 1u);
  EXPECT_FALSE(parse_analyzer("people@5fps", 4)->take.every > 1);
}

TEST(Catalog, AnalyzerTextsRoundTripInCanonicalForm) {
  for (const std::string text : {"motion", "stats/10", "people@5fps", "touch.2@0.5fps", "detect@29.97fps",
                                 "stats.a-b_c/1000000", "touch@1000fps", "touch@0.001fps"}) {
    auto spec = parse_analyzer(text);
    ASSERT_TRUE(spec.ok()) << text << ": " << spec.error();
    EXPECT_EQ(to_text(*spec), text);
  }
  EXPECT_EQ(to_text(*parse_analyzer("people@05.50fps")), "people@5.5fps");
  EXPECT_EQ(to_text(*parse_analyzer("stats/1")), "stats");
  EXPECT_EQ(to_text(*parse_analyzer("stats", 3)), "stats/3");
}

TEST(Catalog, SamplingMistakesAreRefusedNamingTheTextAndTheRule) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"people@0fps", "the rate must be more than 0 fps"},
      {"people@0.000fps", "the rate must be more than 0 fps"},
      {"stats/0", "K a whole number from 1"},
      {"stats/", "K a whole number from 1"},
      {"stats/-3", "K a whole number from 1"},
      {"stats/2.5", "K a whole number from 1"},
      {"stats/1000001", "K a whole number from 1"},
      {"stats/99999999999999999999", "K a whole number from 1"},
      {"people@5", "ends in fps"},
      {"people@fps", "ends in fps"},
      {"people@5fpsx", "ends in fps"},
      {"people@-5fps", "a number up to 1000"},
      {"people@1001fps", "a number up to 1000"},
      {"people@1.2345fps", "at most 3 decimals"},
      {"people@1.fps", "a number up to 1000"},
      {"people@x1fps", "a number up to 1000"},
      {"stats/2@5fps", "K a whole number from 1"},
      {"people@5fps/2", "ends in fps"},
      {"colour", "unknown analyzer 'colour'"},
      {"colour/2", "unknown analyzer 'colour/2'"},
      {"/2", "unknown analyzer"},
      {"touch./2", "a label is one or more letters"},
      {"touch.a b@5fps", "a label is one or more letters"},
  };
  for (const auto& [text, says] : cases) {
    auto spec = parse_analyzer(text);
    ASSERT_FALSE(spec.ok()) << text << " was taken";
    EXPECT_NE(spec.error().find(text), std::string::npos) << text << ": " << spec.error();
    EXPECT_NE(spec.error().find(says), std::string::npos) << text << ": " << spec.error();
  }
}

TEST(Catalog, AJobNamesEachAnalyzerOnceWithOneSampling) {
  auto same = parse_analyzers({"stats/5", "motion", "stats/5"});
  ASSERT_TRUE(same.ok()) << same.error();
  ASSERT_EQ(same->size(), 2u) << "the same text twice counts once";
  EXPECT_EQ((*same)[0].name, "stats");
  EXPECT_EQ((*same)[1].name, "motion");

  auto clash = parse_analyzers({"stats", "stats/10"});
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.error().find("'stats' and 'stats/10'"), std::string::npos) << clash.error();
  EXPECT_NE(clash.error().find("give one a label (stats.sparse/10)"), std::string::npos) << clash.error();

  auto labelled = parse_analyzers({"stats", "stats.sparse/10", "touch@5fps", "touch.slow@2fps"});
  ASSERT_TRUE(labelled.ok()) << labelled.error();
  EXPECT_EQ(labelled->size(), 4u);

  // With a stride, "stats" is "stats/3": the same as the explicit one.
  EXPECT_TRUE(parse_analyzers({"stats", "stats/3"}, 3).ok());
  EXPECT_FALSE(parse_analyzers({"stats", "stats/1"}, 3).ok());
  EXPECT_FALSE(parse_analyzers({"nope"}).ok());
}

TEST(Catalog, SamplingIsDescribedForSummaries) {
  EXPECT_EQ(describe(sampling{}), "every frame");
  EXPECT_EQ(describe(sampling{2}), "every 2nd frame");
  EXPECT_EQ(describe(sampling{3}), "every 3rd frame");
  EXPECT_EQ(describe(sampling{11}), "every 11th frame");
  EXPECT_EQ(describe(sampling{21}), "every 21st frame");
  EXPECT_EQ(describe(sampling{112}), "every 112th frame");
  EXPECT_EQ(describe(parse_analyzer("people@5fps")->take), "5 fps");
  EXPECT_EQ(describe(parse_analyzer("people@0.5fps")->take), "0.5 fps");
  EXPECT_EQ(describe(parse_analyzer("people@29.97fps")->take), "29.97 fps");
}

TEST(Catalog, SummariesSayHowManyFramesTheSamplingGave) {
  const std::vector<stored_frame> frames{at(0, {{"ms", 1.0}}), at(5, {{"ms", 1.0}}),
                                         at(10, {{"quarantined", true}, {"reason", "x"}})};
  const auto s = summarize("stats", frames, sampling{5});
  EXPECT_EQ(s.frames_seen, 3u);
  EXPECT_EQ(s.frames_processed, 2u);
  EXPECT_EQ(s.sampling, "every 5th frame");
  analyzer_summary back;
  ASSERT_TRUE(summary_from_text(summary_to_text(s), back));
  EXPECT_EQ(back.frames_seen, 3u);
  EXPECT_EQ(back.sampling, "every 5th frame");
  // A summary stored before sampling per analyzer took every frame.
  analyzer_summary old;
  ASSERT_TRUE(summary_from_text(R"({"frames_processed":4,"mean_ms":1,"p95_ms":1,"quarantined":[{"frame":2}]})", old));
  EXPECT_EQ(old.frames_seen, 5u);
  EXPECT_EQ(old.sampling, "every frame");
}

TEST(Catalog, OnlyMotionHasAPreRoll) {
  EXPECT_EQ(preroll_frames("motion"), motion_preroll_frames);
  EXPECT_EQ(preroll_frames("motion.left"), motion_preroll_frames);
  EXPECT_GT(motion_preroll_frames, 0);
  for (const std::string name : {"stats", "people", "thumbnails", "touch", "touch.2", "nope", "motion."})
    EXPECT_EQ(preroll_frames(name), 0) << name;
}

TEST(Catalog, DecodeStartsEarlyEnoughForMotionsPreRoll) {
  const int64_t p = motion_preroll_frames;
  EXPECT_EQ(decode_start(500, {"stats", "motion"}), 500 - p);
  EXPECT_EQ(decode_start(500, {"motion.a", "touch"}), 500 - p);
  EXPECT_EQ(decode_start(p / 2, {"motion"}), 0);  // never before the first frame
  EXPECT_EQ(decode_start(0, {"motion"}), 0);
}

TEST(Catalog, DecodeStartsAtTheResumePointWithoutAPreRoll) {
  EXPECT_EQ(decode_start(500, {"stats", "people", "touch.1"}), 500);
  EXPECT_EQ(decode_start(500, {}), 500);
  EXPECT_EQ(decode_start(500, {"nope"}), 500);
}

// -- summaries ---------------------------------------------------------------------------

TEST(Summary, CommonFiguresAreMeanAndP95OfAnalysisTime) {
  std::vector<stored_frame> frames;
  for (int i = 1; i <= 20; ++i)
    frames.push_back(at(i, {{"sum", 0}, {"ms", i}}));
  const auto s = summarize("touch", frames);
  EXPECT_EQ(s.frames_processed, 20u);
  EXPECT_DOUBLE_EQ(s.mean_ms, 10.5);
  EXPECT_DOUBLE_EQ(s.p95_ms, 19);  // the 19th of 20 sorted values
  EXPECT_TRUE(s.quarantined.empty());
}

TEST(Summary, QuarantinedFramesAreListedAndExcludedFromEveryFigure) {
  const std::vector<stored_frame> frames{
      at(0, {{"count", 2}, {"ms", 10}}),
      at(1, {{"quarantined", true}, {"reason", "analyzer threw: boom"}, {"count", 50}, {"ms", 1000}}),
      at(2, {{"count", 0}, {"ms", 20}}),
      at(3, {{"quarantined", true}, {"ms", 1000}}),
  };
  const auto s = summarize("people", frames);
  EXPECT_EQ(s.frames_processed, 2u);
  EXPECT_DOUBLE_EQ(s.mean_ms, 15);
  EXPECT_DOUBLE_EQ(s.p95_ms, 20);
  ASSERT_EQ(s.quarantined.size(), 2u);
  EXPECT_EQ(s.quarantined[0].frame, 1);
  EXPECT_EQ(s.quarantined[0].reason, "analyzer threw: boom");
  EXPECT_EQ(s.quarantined[1].frame, 3);
  EXPECT_EQ(s.quarantined[1].reason, "");
  EXPECT_EQ(number(s, "total_detections"), 2);
  EXPECT_EQ(number(s, "max_people"), 2);
}

TEST(Summary, PeopleCountsDetectionsFramesWithPeopleAndTheMost) {
  const auto s = summarize("people.left", {at(0, {{"count", 3}}), at(1, {{"count", 0}}),
                                           at(2, {{"count", 1}}), at(3, {{"count", 5}})});
  EXPECT_EQ(names_of(s), (std::vector<std::string>{"total_detections", "frames_with_people", "max_people"}));
  EXPECT_EQ(number(s, "total_detections"), 9);
  EXPECT_EQ(number(s, "frames_with_people"), 3);
  EXPECT_EQ(number(s, "max_people"), 5);
}

TEST(Summary, StatsAveragesBrightnessAndSharpness) {
  const auto s = summarize("stats", {at(0, {{"brightness", 100}, {"sharpness", 10}}),
                                     at(1, {{"brightness", 50}, {"sharpness", 30}})});
  EXPECT_EQ(names_of(s), (std::vector<std::string>{"mean_brightness", "mean_sharpness"}));
  EXPECT_DOUBLE_EQ(number(s, "mean_brightness"), 75);
  EXPECT_DOUBLE_EQ(number(s, "mean_sharpness"), 20);
}

TEST(Summary, StatsOfNoFramesAreZero) {
  const auto s = summarize("stats", {at(0, {{"quarantined", true}, {"reason", "poison"}})});
  EXPECT_EQ(s.frames_processed, 0u);
  EXPECT_EQ(s.mean_ms, 0);
  EXPECT_EQ(s.p95_ms, 0);
  EXPECT_EQ(number(s, "mean_brightness"), 0);
}

TEST(Summary, TouchSumsAChecksum) {
  const auto s = summarize("touch.2", {at(0, {{"sum", 7}}), at(1, {{"sum", 11}}), at(2, {{"sum", 100000}})});
  EXPECT_EQ(names_of(s), (std::vector<std::string>{"checksum"}));
  EXPECT_EQ(number(s, "checksum"), 100018);
}

TEST(Summary, ThumbnailsListTheirPathsAndCountThem) {
  const auto s =
      summarize("thumbnails", {at(0, {{"path", "/o/thumb_0.jpg"}}), at(1, json::object()),
                               at(125, {{"path", "/o/thumb_125.jpg"}}), at(130, {{"error", "x"}})});
  EXPECT_EQ(s.paths, (std::vector<std::string>{"thumb_0.jpg", "thumb_125.jpg"}))
      << "the summary names the artifacts, not the node's paths";
  EXPECT_EQ(number(s, "count"), 2);
  EXPECT_EQ(s.frames_processed, 4u);
}

TEST(Summary, MotionHasSegmentsAndActiveFrames) {
  std::vector<stored_frame> frames;
  // 25 fps: frames 10..29 move (0.8 s), the rest is still.
  for (int i = 0; i < 50; ++i)
    frames.push_back(stored_frame{i, {{"fg", i >= 10 && i < 30 ? 0.2 : 0.0}}, i / 25.0});
  const auto s = summarize("motion", frames);
  EXPECT_EQ(number(s, "active_frames"), 20);
  ASSERT_EQ(s.segments.size(), 1u);
  EXPECT_EQ(s.segments[0].start_frame, 10);
  EXPECT_EQ(s.segments[0].end_frame, 29);
  EXPECT_DOUBLE_EQ(s.segments[0].start_s, 10 / 25.0);
  EXPECT_DOUBLE_EQ(s.segments[0].end_s, 29 / 25.0);
}

TEST(Summary, DetectTotalsAndFramesWithPerSelectedClassAndTheTopThreeTiesByName) {
  const std::vector<stored_frame> frames{
      at(0, {{"person", 2}, {"face", 0}, {"upper_body", 1}, {"cat_face", 0}, {"licence_plate", 3}, {"ms", 10}}),
      at(1, {{"person", 2}, {"face", 4}, {"upper_body", 0}, {"cat_face", 0}, {"licence_plate", 0}, {"ms", 30}}),
      at(2, {{"person", 0}, {"face", 0}, {"upper_body", 1}, {"cat_face", 0}, {"licence_plate", 1}, {"ms", 20}}),
      at(3, {{"quarantined", true}, {"reason", "poison"}, {"person", 50}, {"ms", 1000}}),
  };
  const auto s = summarize("detect", frames);
  EXPECT_EQ(s.frames_processed, 3u);
  EXPECT_DOUBLE_EQ(s.mean_ms, 20);
  EXPECT_DOUBLE_EQ(s.p95_ms, 30);
  EXPECT_EQ(names_of(s), (std::vector<std::string>{"total_person", "frames_with_person", "total_face",
                                                   "frames_with_face", "total_upper_body", "frames_with_upper_body",
                                                   "total_cat_face", "frames_with_cat_face", "total_licence_plate",
                                                   "frames_with_licence_plate"}));
  EXPECT_EQ(number(s, "total_person"), 4);
  EXPECT_EQ(number(s, "frames_with_person"), 2);
  EXPECT_EQ(number(s, "total_face"), 4);
  EXPECT_EQ(number(s, "frames_with_face"), 1);
  EXPECT_EQ(number(s, "total_upper_body"), 2);
  EXPECT_EQ(number(s, "frames_with_upper_body"), 2);
  EXPECT_EQ(number(s, "total_cat_face"), 0);
  EXPECT_EQ(number(s, "frames_with_cat_face"), 0);
  EXPECT_EQ(number(s, "total_licence_plate"), 4);
  EXPECT_EQ(number(s, "frames_with_licence_plate"), 2);
  // Three classes tie at 4: by name. upper_body (2) is fourth.
  EXPECT_EQ(s.top_classes, (std::vector<std::string>{"face", "licence_plate", "person"}));
}

TEST(Summary, DetectRanksByTotalNotByTableOrder) {
  const auto s = summarize("detect.cam", {at(0, {{"person", 1}, {"face", 3}, {"cat_face", 1}}),
                                          at(1, {{"person", 0}, {"face", 2}, {"cat_face", 1}})});
  EXPECT_EQ(s.top_classes, (std::vector<std::string>{"face", "cat_face", "person"}));
  EXPECT_EQ(number(s, "frames_with_person"), 1);
}

TEST(Summary, DetectReportsSelectedClassesFoundNowhereButRanksNoneOfThem) {
  const auto s = summarize("detect", {at(0, {{"face", 0}, {"boxes", json::array()}}), at(1, {{"face", 0}})});
  EXPECT_EQ(names_of(s), (std::vector<std::string>{"total_face", "frames_with_face"}));
  EXPECT_EQ(number(s, "total_face"), 0);
  EXPECT_TRUE(s.top_classes.empty());
}

TEST(Summary, UnknownAnalyzersGetOnlyTheCommonFigures) {
  const auto s = summarize("nope", {at(0, {{"sum", 1}, {"ms", 2}})});
  EXPECT_EQ(s.frames_processed, 1u);
  EXPECT_DOUBLE_EQ(s.mean_ms, 2);
  EXPECT_TRUE(s.numbers.empty());
}

TEST(Summary, DataOfTheWrongShapeCountsAsZeroAndNeverThrows) {
  const std::vector<stored_frame> frames{
      at(0, json()),                                                    // null
      at(1, json::array({1, 2})),                                       // not an object
      at(2, {{"quarantined", "yes"}, {"count", "3"}, {"ms", "fast"}}),  // wrong types
      at(3, {{"path", 42}, {"fg", "lots"}, {"sum", json::object()}}),
  };
  for (const auto& e : analyzer_table()) {
    analyzer_summary s;
    ASSERT_NO_THROW(s = summarize(std::string(e.kind), frames)) << e.kind;
    EXPECT_EQ(s.frames_processed, 4u) << e.kind;  // "yes" is not true
    EXPECT_EQ(s.mean_ms, 0) << e.kind;
    EXPECT_TRUE(s.paths.empty()) << e.kind;
    EXPECT_TRUE(s.segments.empty()) << e.kind;
    EXPECT_TRUE(s.top_classes.empty()) << e.kind;
  }
}

// -- motion segments ----------------------------------------------------------------------

std::vector<stored_frame> motion_at(const std::vector<std::pair<double, double>>& t_fg) {
  std::vector<stored_frame> out;
  int64_t i = 0;
  for (const auto& [t, fg] : t_fg)
    out.push_back(stored_frame{i++, {{"fg", fg}}, t});
  return out;
}

TEST(MotionSegments, GapsUpToTheMergeGapAreOneSegment) {
  // Active at 0.0-0.4 and 0.85-1.2: the gap (0.45 s) is merged.
  const auto segs = motion_segments(motion_at({{0.0, 0.5}, {0.4, 0.5}, {0.6, 0}, {0.85, 0.5}, {1.2, 0.5}}));
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].start_frame, 0);
  EXPECT_EQ(segs[0].end_frame, 4);
  EXPECT_DOUBLE_EQ(segs[0].start_s, 0.0);
  EXPECT_DOUBLE_EQ(segs[0].end_s, 1.2);
}

TEST(MotionSegments, LongerGapsSplitSegments) {
  const auto segs = motion_at({{0.0, 0.5}, {0.4, 0.5}, {1.0, 0.5}, {1.5, 0.5}});
  const auto out = motion_segments(segs);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].end_frame, 1);
  EXPECT_EQ(out[1].start_frame, 2);
  EXPECT_EQ(out[1].end_frame, 3);
}

TEST(MotionSegments, SegmentsShorterThanTheMinimumAreDropped) {
  // 0.0-0.2 is too short (0.3 s minimum); 2.0-2.4 is long enough.
  const auto out = motion_segments(motion_at({{0.0, 0.5}, {0.2, 0.5}, {2.0, 0.5}, {2.4, 0.5}}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].start_frame, 2);
  EXPECT_DOUBLE_EQ(out[0].end_s, 2.4);
}

TEST(MotionSegments, OnlyFramesAtTheThresholdAreActive) {
  const auto frames = motion_at({{0.0, motion_active_ratio}, {0.25, motion_active_ratio / 2}, {0.5, 0.02}});
  const auto out = motion_segments(frames);
  ASSERT_EQ(out.size(), 1u);  // 0.0 and 0.5 are active, 0.5 s apart: one segment
  EXPECT_EQ(out[0].start_frame, 0);
  EXPECT_EQ(out[0].end_frame, 2);
  EXPECT_TRUE(motion_segments(frames, 0.5).empty());
}

TEST(MotionSegments, OwnGapAndLengthAreHonoured) {
  const auto frames = motion_at({{0.0, 0.5}, {0.4, 0.5}, {1.0, 0.5}, {1.5, 0.5}});
  EXPECT_EQ(motion_segments(frames, motion_active_ratio, 1.0, 0.0).size(), 1u);
  EXPECT_EQ(motion_segments(frames, motion_active_ratio, 0.5, 1.0).size(), 0u);
}

// -- records -----------------------------------------------------------------------------------

TEST(Record, NumbersTextsBoxesAndTimesAreTyped) {
  const auto r = to_record(
      7, 280, 0.28,
      json::parse(R"({"count":2,"boxes":[[1,2,30,40],[5,6,7,8]],"ms":1.5,"t":9,"path":"/o/x.jpg","reason":"r"})"));
  EXPECT_EQ(r.frame, 7);
  EXPECT_EQ(r.pts, 280);
  EXPECT_DOUBLE_EQ(r.ms, 1.5);
  EXPECT_DOUBLE_EQ(r.t, 0.28);
  EXPECT_FALSE(r.quarantined);
  EXPECT_EQ(r.reason, "");
  ASSERT_EQ(r.numbers.size(), 1u);
  EXPECT_EQ(r.numbers[0].name, "count");
  EXPECT_EQ(r.numbers[0].value, 2);
  ASSERT_EQ(r.texts.size(), 2u);  // a reason without quarantine is just a text
  EXPECT_EQ(r.texts[0].name, "path");
  EXPECT_EQ(r.texts[0].value, "/o/x.jpg");
  EXPECT_EQ(r.texts[1].name, "reason");
  ASSERT_EQ(r.boxes.size(), 2u);
  EXPECT_EQ(r.boxes[0].x, 1);
  EXPECT_EQ(r.boxes[0].y, 2);
  EXPECT_EQ(r.boxes[0].width, 30);
  EXPECT_EQ(r.boxes[0].height, 40);
  EXPECT_EQ(r.boxes[1].height, 8);
  EXPECT_EQ(r.boxes[0].label, "");  // people's boxes have no class
}

TEST(Record, DetectCountsAreNumbersAndItsBoxesKeepTheirClass) {
  const auto r = to_record(4, 40, 0.4, json::parse(R"({"person":2,"face":0,"boxes":[
      {"class":"person","x":10,"y":20,"w":64,"h":128},
      {"class":"face","x":5,"y":6,"w":24,"h":24},
      {"x":1,"y":2,"w":3,"h":4},
      {"class":"face","x":"1","y":2,"w":3,"h":4},
      {"class":7,"x":1,"y":2,"w":3,"h":4}]})"));
  ASSERT_EQ(r.numbers.size(), 2u);  // keys in JSON order: face, person
  EXPECT_EQ(r.numbers[0].name, "face");
  EXPECT_EQ(r.numbers[0].value, 0);
  EXPECT_EQ(r.numbers[1].name, "person");
  EXPECT_EQ(r.numbers[1].value, 2);
  ASSERT_EQ(r.boxes.size(), 2u);  // without a class, or with a field not a number: skipped
  EXPECT_EQ(r.boxes[0].label, "person");
  EXPECT_EQ(r.boxes[0].x, 10);
  EXPECT_EQ(r.boxes[0].y, 20);
  EXPECT_EQ(r.boxes[0].width, 64);
  EXPECT_EQ(r.boxes[0].height, 128);
  EXPECT_EQ(r.boxes[1].label, "face");
  EXPECT_EQ(r.boxes[1].height, 24);
}

TEST(Record, AQuarantinedFrameCarriesItsReason) {
  const auto r = to_record(3, 0, 0, json::parse(R"({"quarantined":true,"reason":"poison frame","ms":0.1})"));
  EXPECT_TRUE(r.quarantined);
  EXPECT_EQ(r.reason, "poison frame");
  EXPECT_TRUE(r.texts.empty());
  EXPECT_TRUE(r.numbers.empty());
}

TEST(Record, MalformedBoxesAreSkipped) {
  const auto r = to_record(0, 0, 0, json::parse(R"({"boxes":[[1,2,3],[1,2,3,"4"],"x",[9,8,7,6],{"x":1}]})"));
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_EQ(r.boxes[0].x, 9);
  const auto not_a_list = to_record(0, 0, 0, json::parse(R"({"boxes":5})"));
  EXPECT_TRUE(not_a_list.boxes.empty());
}

TEST(Record, DataThatIsNotAnObjectGivesOnlyFrameAndPts) {
  for (const json& data : {json(nullptr), json(42), json("text"), json::array({1, 2, 3})}) {
    frame_record r;
    ASSERT_NO_THROW(r = to_record(9, 90, 3.6, data)) << data;
    EXPECT_EQ(r.frame, 9);
    EXPECT_EQ(r.pts, 90);
    EXPECT_DOUBLE_EQ(r.t, 3.6);
    EXPECT_TRUE(r.numbers.empty()) << data;
    EXPECT_TRUE(r.texts.empty()) << data;
    EXPECT_TRUE(r.boxes.empty()) << data;
    EXPECT_FALSE(r.quarantined);
  }
}

TEST(Record, WrongTypesForKnownKeysDoNotThrow) {
  frame_record r;
  ASSERT_NO_THROW(
      r = to_record(0, 0, 0, json::parse(R"({"ms":"slow","t":null,"quarantined":"yes","reason":5,"deep":{"a":1}})")));
  EXPECT_EQ(r.ms, 0);
  EXPECT_EQ(r.t, 0);
  EXPECT_FALSE(r.quarantined);
  ASSERT_EQ(r.numbers.size(), 1u);  // "reason": 5 is just a number
  EXPECT_EQ(r.numbers[0].name, "reason");
  EXPECT_TRUE(r.texts.empty());
}

// -- summary text --------------------------------------------------------------------------------

analyzer_summary full_summary() {
  analyzer_summary s;
  s.frames_processed = 1234;
  s.mean_ms = 1.25;
  s.p95_ms = 3.5;
  s.quarantined = {{12, "analyzer threw: boom"}, {40, "poison frame"}};
  s.numbers = {{"total_detections", 17}, {"frames_with_people", 9}, {"max_people", 3}, {"big", 1e15 + 1}};
  s.segments = {{10, 29, 0.4, 1.16}, {100, 180, 4.0, 7.2}};
  s.paths = {"/out/thumb_0.jpg", "/out/thumb_125.jpg"};
  s.top_classes = {"person", "face"};
  return s;
}

void expect_equal(const analyzer_summary& a, const analyzer_summary& b) {
  EXPECT_EQ(a.frames_processed, b.frames_processed);
  EXPECT_DOUBLE_EQ(a.mean_ms, b.mean_ms);
  EXPECT_DOUBLE_EQ(a.p95_ms, b.p95_ms);
  ASSERT_EQ(a.quarantined.size(), b.quarantined.size());
  for (std::size_t i = 0; i < a.quarantined.size(); ++i) {
    EXPECT_EQ(a.quarantined[i].frame, b.quarantined[i].frame);
    EXPECT_EQ(a.quarantined[i].reason, b.quarantined[i].reason);
  }
  ASSERT_EQ(a.numbers.size(), b.numbers.size());
  for (std::size_t i = 0; i < a.numbers.size(); ++i) {
    EXPECT_EQ(a.numbers[i].name, b.numbers[i].name);
    EXPECT_EQ(a.numbers[i].value, b.numbers[i].value);
  }
  ASSERT_EQ(a.segments.size(), b.segments.size());
  for (std::size_t i = 0; i < a.segments.size(); ++i) {
    EXPECT_EQ(a.segments[i].start_frame, b.segments[i].start_frame);
    EXPECT_EQ(a.segments[i].end_frame, b.segments[i].end_frame);
    EXPECT_EQ(a.segments[i].start_s, b.segments[i].start_s);
    EXPECT_EQ(a.segments[i].end_s, b.segments[i].end_s);
  }
  EXPECT_EQ(a.paths, b.paths);
  EXPECT_EQ(a.top_classes, b.top_classes);
}

TEST(SummaryText, RoundTripsEveryFieldInOrder) {
  const auto s = full_summary();
  analyzer_summary back;
  ASSERT_TRUE(summary_from_text(summary_to_text(s), back));
  expect_equal(back, s);
}

TEST(SummaryText, RoundTripsAnEmptySummary) {
  analyzer_summary back = full_summary();
  ASSERT_TRUE(summary_from_text(summary_to_text(analyzer_summary{}), back));
  expect_equal(back, analyzer_summary{});
}

TEST(SummaryText, RoundTripsWhatSummarizeComputes) {
  std::vector<stored_frame> frames;
  for (int i = 0; i < 50; ++i)
    frames.push_back(stored_frame{i, {{"fg", i >= 10 && i < 30 ? 0.2 : 0.0}, {"ms", i * 0.1}}, i / 25.0});
  frames.push_back(at(50, {{"quarantined", true}, {"reason", "poison"}}));
  const auto s = summarize("motion", frames);
  analyzer_summary back;
  ASSERT_TRUE(summary_from_text(summary_to_text(s), back));
  expect_equal(back, s);
}

TEST(SummaryText, RoundTripsADetectSummary) {
  const auto s = summarize("detect", {at(0, {{"person", 2}, {"face", 1}}), at(1, {{"person", 1}, {"face", 0}})});
  ASSERT_EQ(s.top_classes.size(), 2u);
  analyzer_summary back;
  ASSERT_TRUE(summary_from_text(summary_to_text(s), back));
  expect_equal(back, s);
}

TEST(SummaryText, ReadsTheFlatSummariesOlderVersionsStored) {
  const std::string old = R"({"active_frames":20,"frames_processed":50,"mean_ms":2.5,"p95_ms":4.0,
    "quarantined":[{"frame":50,"reason":"poison"}],
    "segments":[{"end_frame":29,"end_s":1.16,"start_frame":10,"start_s":0.4}]})";
  analyzer_summary s;
  ASSERT_TRUE(summary_from_text(old, s));
  EXPECT_EQ(s.frames_processed, 50u);
  EXPECT_DOUBLE_EQ(s.p95_ms, 4.0);
  ASSERT_EQ(s.quarantined.size(), 1u);
  EXPECT_EQ(s.quarantined[0].reason, "poison");
  EXPECT_EQ(number(s, "active_frames"), 20);
  ASSERT_EQ(s.segments.size(), 1u);
  EXPECT_EQ(s.segments[0].end_frame, 29);
}

TEST(SummaryText, GarbageIsRefusedAndLeavesTheOutputAlone) {
  for (const std::string& text :
       {std::string(""), std::string("garbage"), std::string("[1]"), std::string("{\"mean_ms\":"),
        std::string("{\"mean_ms\":\"x\"}"), std::string("{\"frames_processed\":-1}"),
        std::string("{\"quarantined\":[{\"reason\":\"no frame\"}]}"),
        std::string("{\"segments\":[{\"start_s\":1}]}"), std::string("{\"paths\":[1]}"),
        std::string("{\"top_classes\":[\"face\",2]}"),
        std::string("{\"figure\":\"text\"}"), std::string("{\"paths\":\"\xff\"}")}) {
    analyzer_summary out = full_summary();
    bool ok = true;
    ASSERT_NO_THROW(ok = summary_from_text(text, out)) << text;
    EXPECT_FALSE(ok) << text;
    expect_equal(out, full_summary());
  }
}

TEST(SummaryText, InvalidUtf8InPathsAndReasonsIsReplacedNotThrown) {
  analyzer_summary s;
  s.paths = {"/out/caf\xff.jpg"};
  s.quarantined = {{1, "threw: \xc3"}};
  std::string text;
  ASSERT_NO_THROW(text = summary_to_text(s));
  analyzer_summary back;
  ASSERT_TRUE(summary_from_text(text, back));
  ASSERT_EQ(back.paths.size(), 1u);
  EXPECT_EQ(back.paths[0], "/out/caf\xef\xbf\xbd.jpg");  // U+FFFD
  ASSERT_EQ(back.quarantined.size(), 1u);
  EXPECT_EQ(back.quarantined[0].reason, "threw: \xef\xbf\xbd");
}

}  // namespace
}  // namespace framehive::analysis

// -- detect with a job's model (issue 13 item 5) -----------------------------------------

namespace framehive::analysis {
namespace {

TEST(Summary, DetectCountsAModelsClassesByNameAfterTheBuiltInOnes) {
  const auto s = summarize("detect", {at(0, {{"zebra", 1}, {"person", 2}, {"dog", 0}, {"ms", 5}}),
                                      at(1, {{"zebra", 3}, {"person", 0}, {"dog", 0}, {"ms", 5}})});
  EXPECT_EQ(names_of(s), (std::vector<std::string>{"total_person", "frames_with_person", "total_dog",
                                                   "frames_with_dog", "total_zebra", "frames_with_zebra"}));
  EXPECT_EQ(number(s, "total_zebra"), 4);
  EXPECT_EQ(number(s, "frames_with_zebra"), 2);
  EXPECT_EQ(s.top_classes, (std::vector<std::string>{"zebra", "person"}));
}

TEST(DetectOptions, AreCheckedBeforeAnythingRuns) {
  const std::vector<std::string> job{"stats", "detect.cam@5fps"};
  detect_options d;
  EXPECT_EQ(check_detect_options(d, {"stats"}), "");  // none given
  d.classes = {"face"};
  EXPECT_EQ(check_detect_options(d, job), "");
  EXPECT_NE(check_detect_options(d, {"stats"}).find("no detect analyzer"), std::string::npos);
  d.classes = {"unicorn"};
  EXPECT_NE(check_detect_options(d, job).find("'unicorn'"), std::string::npos);
  d.classes = {"anything"};  // with a model, classes are its names: checked when it loads
  d.model.network = "blob:" + std::string(64, 'a') + "/yolo.cfg";
  EXPECT_NE(check_detect_options(d, job).find("names file"), std::string::npos);
  d.model.names = "/models/coco.names";
  EXPECT_EQ(check_detect_options(d, job), "");
  for (auto bad : {std::pair<uint32_t, uint32_t>{0, 416}, {416, max_dnn_input + 1}}) {
    auto x = d;
    x.model.width = bad.first;
    x.model.height = bad.second;
    EXPECT_NE(check_detect_options(x, job).find("input size"), std::string::npos);
  }
  auto x = d;
  x.model.scale = 0;
  EXPECT_NE(check_detect_options(x, job).find("scale"), std::string::npos);
  x = d;
  x.model.mean = {1, 2};
  EXPECT_NE(check_detect_options(x, job).find("mean"), std::string::npos);
  x = d;
  x.model.threshold = 1.5;
  EXPECT_NE(check_detect_options(x, job).find("threshold"), std::string::npos);
  x = d;
  x.model.nms = 0;
  EXPECT_NE(check_detect_options(x, job).find("NMS"), std::string::npos);
  detect_options weights_alone;
  weights_alone.model.weights = "/m/yolo.weights";
  EXPECT_NE(check_detect_options(weights_alone, job).find("--detect-model"), std::string::npos);
}

}  // namespace
}  // namespace framehive::analysis

namespace framehive::analysis {

TEST(Catalog, ClipsTakeEveryFrameAndSummarizeTheirClipsAndDigest) {
  EXPECT_FALSE(parse_analyzer("clips/2"));
  EXPECT_FALSE(parse_analyzer("clips@5fps"));
  const auto plain = parse_analyzer("clips", 10);  // --stride does not apply either
  ASSERT_TRUE(plain);
  EXPECT_TRUE(plain->take.takes_all());
  std::vector<stored_frame> frames{
      {0, {{"changed", 0.0}, {"ms", 1.0}}},
      {1, {{"changed", 0.2}, {"in_clip", true}, {"ms", 1.0}}},
      {2,
       {{"changed", 0.2},
        {"in_clip", true},
        {"clip",
         {{"index", 0}, {"start_frame", 1}, {"end_frame", 2}, {"start_s", 0.04}, {"end_s", 0.08},
          {"artifact", "clip_000.mp4"}}},
        {"ms", 1.0}}},
      {3, {{"changed", 0.0}, {"clips", 1}, {"digest", "digest.mp4"}, {"ms", 1.0}}},
  };
  const auto s = summarize("clips", frames);
  ASSERT_EQ(s.segments.size(), 1u);
  EXPECT_EQ(s.segments[0].start_frame, 1);
  EXPECT_EQ(s.segments[0].end_frame, 2);
  EXPECT_EQ(s.paths, (std::vector<std::string>{"clip_000.mp4", "digest.mp4"}));
  EXPECT_TRUE(s.error.empty());
  // The summary text keeps it all, the error included.
  auto failed = s;
  failed.error = "clips: disk full";
  analyzer_summary back;
  ASSERT_TRUE(summary_from_text(summary_to_text(failed), back));
  EXPECT_EQ(back.error, "clips: disk full");
  EXPECT_EQ(back.paths, failed.paths);
}

}  // namespace framehive::analysis
