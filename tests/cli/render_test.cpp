// Inputs are bytes; the CLI's JSON and tables must render any of them.

#include <gtest/gtest.h>

#include "cli/render.hpp"
#include "common/text.hpp"

using framehive::printable_utf8;

namespace {

const std::string fffd = "\xEF\xBF\xBD";

}  // namespace

TEST(PrintableUtf8, ValidTextIsUnchanged) {
  const std::string text = "plain ascii, caf\xC3\xA9, \xE2\x82\xAC, \xF0\x9F\x8E\xA5";
  EXPECT_EQ(printable_utf8(text), text);
  EXPECT_EQ(printable_utf8(""), "");
}

TEST(PrintableUtf8, EveryInvalidByteBecomesOneReplacementCharacter) {
  EXPECT_EQ(printable_utf8("x\xff.mp4"), "x" + fffd + ".mp4");
  EXPECT_EQ(printable_utf8("\xC0\xAF"), fffd + fffd);          // overlong '/'
  EXPECT_EQ(printable_utf8("\xED\xA0\x80"), fffd + fffd + fffd);  // a UTF-16 surrogate
  EXPECT_EQ(printable_utf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
  EXPECT_EQ(printable_utf8("ab\xE2\x82"), "ab" + fffd + fffd);  // truncated at the end
}

TEST(Render, JsonOfAnInputThatIsNotUtf8DumpsWithReplacementCharacters) {
  framehive::job_status st;
  st.job = 7;
  st.state = framehive::job_state::running;
  framehive::video_status v;
  v.video = 1;
  v.input = "/videos/match\xff.mp4";
  v.error = "cannot open /videos/match\xff.mp4";
  st.videos.push_back(v);
  const auto j = framehive::cli::to_json(st);
  EXPECT_EQ(j["videos"][0]["input"], "/videos/match" + fffd + ".mp4");
  EXPECT_EQ(j["state"], "running");
  EXPECT_NO_THROW(framehive::cli::dump(j));
}

TEST(Render, OutOfRangeEnumFromAPeerRendersAsUnknown) {
  framehive::cluster_tree t;
  framehive::tree_entry e;
  e.kind = static_cast<framehive::actor_kind>(200);
  e.state = static_cast<framehive::actor_state>(201);
  t.entries.push_back(e);
  const auto j = framehive::cli::to_json(t);
  EXPECT_EQ(j["entries"][0]["kind"], "unknown");
  EXPECT_EQ(j["entries"][0]["state"], "unknown");
}

TEST(Render, WholeNumbersPrintAsIntegersAndFramesKeepTheirFields) {
  framehive::analysis::frame_record f;
  f.frame = 3;
  f.pts = 3000;
  f.t = 0.1;
  f.numbers = {{"count", 2}, {"fg", 0.25}};
  f.boxes = {{1, 2, 3, 4, ""}};
  const auto j = framehive::cli::to_json("people", f);
  EXPECT_TRUE(j["count"].is_number_integer());
  EXPECT_DOUBLE_EQ(j["fg"].get<double>(), 0.25);
  EXPECT_EQ(j["boxes"][0], nlohmann::json({1, 2, 3, 4}));
  EXPECT_EQ(j["frame"], 3);
  EXPECT_FALSE(j.contains("quarantined"));
}

TEST(Render, DetectBoxesAreObjectsWithTheirClassAndPeopleBoxesStayArrays) {
  framehive::analysis::frame_record f;
  f.numbers = {{"person", 1}, {"face", 0}};
  f.boxes = {{10, 20, 64, 128, "person"}};
  const auto j = framehive::cli::to_json("detect", f);
  EXPECT_EQ(j["person"], 1);
  EXPECT_EQ(j["face"], 0);
  EXPECT_EQ(j["boxes"][0], nlohmann::json({{"class", "person"}, {"x", 10}, {"y", 20}, {"w", 64}, {"h", 128}}));
  f.boxes.clear();
  EXPECT_EQ(framehive::cli::to_json("detect.cam", f)["boxes"], nlohmann::json::array());  // none found: still a list

  framehive::analysis::frame_record p;
  p.boxes = {{1, 2, 3, 4, ""}};
  EXPECT_EQ(framehive::cli::to_json("people", p)["boxes"][0], nlohmann::json({1, 2, 3, 4}));
}

TEST(Render, DetectSummaryShowsTheTopClassesEvenWhenNoneWereFound) {
  framehive::analysis::analyzer_summary s;
  s.numbers = {{"total_person", 12}, {"frames_with_person", 7}};
  s.top_classes = {"person"};
  const auto j = framehive::cli::to_json("detect", s);
  EXPECT_EQ(j["total_person"], 12);
  EXPECT_EQ(j["top_classes"], nlohmann::json::array({"person"}));
  EXPECT_EQ(framehive::cli::to_json("detect", framehive::analysis::analyzer_summary{})["top_classes"],
            nlohmann::json::array());
  EXPECT_FALSE(framehive::cli::to_json("stats", framehive::analysis::analyzer_summary{}).contains("top_classes"));
}

TEST(Render, EverySummarySaysHowManyFramesItsSamplingGaveTheAnalyzer) {
  framehive::analysis::analyzer_summary s;
  s.frames_seen = 30;
  s.sampling = "every 5th frame";
  s.frames_processed = 29;
  const auto j = framehive::cli::to_json("stats.fast", s);
  EXPECT_EQ(j["frames_seen"], 30);
  EXPECT_EQ(j["sampling"], "every 5th frame");
  EXPECT_EQ(j["frames_processed"], 29);
}
