// The stored form of a per-frame result: what goes in comes back (at the
// precision the header promises), it is small, and bytes that are not one —
// truncated, forged, nested without end — are an error naming where, never a
// crash or an exception.

#include "analysis/result_codec.hpp"

#include <gtest/gtest.h>

#include <random>

namespace framehive::analysis {
namespace {

using nlohmann::json;

json round_trip(const json& in) {
  auto out = decode_result(encode_result(in));
  EXPECT_TRUE(out.ok()) << (out ? "" : out.error());
  return out ? *out : json();
}

TEST(ResultCodec, EveryAnalyzersShapeComesBack) {
  const std::vector<json> shapes{
      {{"ms", 1.5}, {"brightness", 120.25}, {"sharpness", 875.5}},                          // stats
      {{"ms", 60.125}, {"count", 2}, {"boxes", {{10, 20, 64, 128}, {300, 40, 70, 140}}}},   // people
      {{"ms", 2.0}, {"fg", 0.125}},                                                          // motion
      {{"ms", 3.5}, {"path", "/out/video-1/thumbnails/frame-000120.jpg"}},                  // thumbnails
      {{"ms", 0.25}, {"sum", 123456789}},                                                    // touch
      {{"ms", 1.0}, {"person", 1}, {"face", 0},                                              // detect
       {"boxes", {{{"class", "person"}, {"x", 1}, {"y", 2}, {"w", 3}, {"h", 4}}}}},
      {{"ms", 4.0}, {"changed", 0.5}, {"in_clip", true},                                     // clips
       {"clip", {{"index", 0}, {"start_frame", 95}, {"end_frame", 204}, {"start_s", 3.8}, {"end_s", 8.16},
                 {"artifact", "clip-000.mp4"}}}},
      {{"ms", 0.0}, {"quarantined", true}, {"reason", "analyzer threw: bad frame"}},         // quarantined
      {{"ms", 1.0}, {"a model's class", 3}, {"negative", -7}, {"none", nullptr}, {"off", false}},
      json::object(),
  };
  for (const auto& s : shapes)
    EXPECT_EQ(round_trip(s), s) << s.dump();  // every value here is exact in float32
}

TEST(ResultCodec, AStatsResultIsFifteenBytesAndFitsAStringsOwnBuffer) {
  const std::string b = encode_result({{"ms", 9.87654321}, {"brightness", 123.456789}, {"sharpness", 2345.6789}});
  EXPECT_EQ(b.size(), 15u);  // three members: a head byte and a float32 each
  EXPECT_EQ(encode_result({{"fg", 0.0123}}).size(), 5u);
  EXPECT_LE(b.size(), std::string().capacity());  // no heap allocation per frame (libstdc++: 15)
}

TEST(ResultCodec, MeasurementsReadBackAsTheShortestFloatDecimal) {
  const json back = round_trip({{"brightness", 0.1}, {"sharpness", 123.456789123}, {"ms", 1e-7}});
  EXPECT_EQ(back["brightness"].get<double>(), 0.1);  // not 0.10000000149011612
  EXPECT_EQ(back["sharpness"].get<double>(), 123.45679);
  EXPECT_EQ(back["ms"].get<double>(), 1e-7);
  EXPECT_EQ(back.dump(), R"({"brightness":0.1,"ms":1e-07,"sharpness":123.45679})");
}

TEST(ResultCodec, TimesInSecondsKeepDoublePrecision) {
  const double long_video = 12345.678901234;  // 3.4 hours: float32 would lose the milliseconds
  const json back = round_trip({{"clip", {{"start_s", long_video}, {"end_s", long_video + 0.02}}}, {"t", 0.1}});
  EXPECT_EQ(back["clip"]["start_s"].get<double>(), long_video);
  EXPECT_EQ(back["clip"]["end_s"].get<double>(), long_video + 0.02);
  EXPECT_EQ(back["t"].get<double>(), 0.1);
}

TEST(ResultCodec, IntegersOfEverySizeAndSignAreExact) {
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{127}, int64_t{128}, int64_t{-129},
                    int64_t{1} << 40, INT64_MAX, INT64_MIN}) {
    const json back = round_trip({{"count", v}});
    EXPECT_EQ(back["count"].get<int64_t>(), v);
  }
  EXPECT_EQ(round_trip({{"sum", UINT64_MAX}})["sum"].get<uint64_t>(), UINT64_MAX);
}

TEST(ResultCodec, StringsAreKeptAsBytes) {
  const std::string bytes("a\xff\xfe\0b", 5);  // a path's bytes need not be UTF-8
  const json back = round_trip({{"path", bytes}, {std::string("k\xc3", 2), "v"}});
  EXPECT_EQ(back["path"].get<std::string>(), bytes);
  EXPECT_EQ(back[std::string("k\xc3", 2)], "v");
}

TEST(ResultCodec, NonFiniteNumbersAndNonObjectsAreWhatJsonTextMadeOfThem) {
  const json back = round_trip({{"fg", std::nan("")}, {"ms", INFINITY}});
  EXPECT_TRUE(back["fg"].is_null());
  EXPECT_TRUE(back["ms"].is_null());
  EXPECT_EQ(encode_result(json::array({1, 2})), "");  // not an object: no members
  EXPECT_EQ(encode_result(json(5)), "");
}

TEST(ResultCodec, SummariesLeaveTheBoxesOutAndReadFloatsAsStored) {
  const json people{{"ms", 60.5}, {"count", 2}, {"boxes", {{10, 20, 64, 128}, {300, 40, 70, 140}}}};
  const std::string b = encode_result(people);
  auto without = decode_result(b, decode_scope::summary);
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(*without, json({{"ms", 60.5}, {"count", 2}}));
  // Nested `boxes` (not a top-level member) are kept; broken boxes are an error either way.
  const json nested{{"clip", {{"boxes", 1}}}};
  EXPECT_EQ(*decode_result(encode_result(nested), decode_scope::summary), nested);
  EXPECT_FALSE(decode_result(b.substr(0, b.size() - 1), decode_scope::summary).ok());
  // Measurements as the float32 they are stored as.
  EXPECT_EQ((*decode_result(encode_result({{"fg", 0.1}}), decode_scope::summary))["fg"].get<double>(),
            static_cast<double>(0.1f));
}

TEST(ResultCodec, EveryTruncationIsAnErrorNamingWhere) {
  const std::string whole = encode_result(
      {{"ms", 1.5}, {"boxes", {{1, 2, 3, 4}}}, {"path", "/x.jpg"}, {"my class", 2}, {"clip", {{"start_s", 1.5}}}});
  for (std::size_t n = 1; n < whole.size(); ++n) {
    const std::string cut = whole.substr(0, n);
    const auto r = decode_result(cut);
    const std::string why = check_result(cut);
    // A cut between two members is a shorter, valid result; any other is an error.
    if (r) {
      EXPECT_EQ(why, "") << n;
      continue;
    }
    EXPECT_NE(r.error().find("at byte"), std::string::npos) << r.error();
    EXPECT_EQ(why, r.error()) << n;  // the check and the decoder agree
  }
  EXPECT_EQ(check_result(whole), "");
}

TEST(ResultCodec, ForgedBytesAreRefusedWithTheCause) {
  auto error_of = [](const std::string& b) {
    auto r = decode_result(b);
    return r ? std::string("decoded") : r.error();
  };
  EXPECT_NE(error_of(std::string(1, '\x0b')).find("unknown type 11"), std::string::npos);
  EXPECT_NE(error_of(std::string("\xe3\xff", 2)).find("unknown key number"), std::string::npos);
  EXPECT_NE(error_of(std::string("\x08\x01\x13", 3)).find("key bits in an array element"), std::string::npos);
  // A count of a billion elements in a few bytes: refused, nothing reserved.
  EXPECT_NE(error_of(std::string("\x08\x80\x94\xeb\xdc\x03", 6)).find("count beyond the end"), std::string::npos);
  EXPECT_NE(error_of(std::string(12, '\xff')).find("overlong varint"), std::string::npos);
  // Nesting without end: refused at the limit, not on the stack's.
  std::string deep("\x58\x01", 2);  // boxes: [ [ [ ...
  for (int i = 0; i < 10000; ++i)
    deep += std::string("\x08\x01", 2);
  EXPECT_NE(error_of(deep).find("nesting deeper than"), std::string::npos);
}

TEST(ResultCodec, RandomBytesNeverCrashAndCheckAgreesWithDecode) {
  std::mt19937_64 rng(15);
  std::uniform_int_distribution<int> len(0, 40), byte(0, 255);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b(static_cast<std::size_t>(len(rng)), '\0');
    for (auto& c : b)
      c = static_cast<char>(byte(rng));
    auto r = decode_result(b);
    EXPECT_EQ(check_result(b), r ? "" : r.error());
    if (r) {
      ++decoded;
      EXPECT_TRUE(r->is_object());
    }
  }
  EXPECT_GT(decoded, 0);  // some random bytes are results: the test reaches the decoder's end
}

}  // namespace
}  // namespace framehive::analysis
