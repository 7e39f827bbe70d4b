// The node's input policy as plain functions: protocols, allowed roots with
// real files and symlinks in a temporary folder, and output folders.

#include "node/input_policy.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace framehive;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> default_protocols{"file", "http", "https", "rtsp"};

/// A temporary tree: root/ (the allowed root) with a video, outside/ with another.
class InputPolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    base = fs::temp_directory_path() /
           ("fh-policy-" + std::to_string(getpid()) + "-" + std::to_string(++counter));
    root = base / "root";
    outside = base / "outside";
    fs::create_directories(root / "sub");
    fs::create_directories(outside);
    touch(root / "in.mp4");
    touch(root / "sub" / "deep.mp4");
    touch(outside / "secret.mp4");
  }
  void TearDown() override { fs::remove_all(base); }

  static void touch(const fs::path& p) { std::ofstream(p) << "not really a video"; }

  result<unit, std::string> check(const std::string& input) const {
    return check_input(input, default_protocols, {root.string()});
  }

  /// The refusal's text, or "" when the input was allowed.
  std::string why(const std::string& input) const {
    auto r = check(input);
    return r ? std::string() : r.error();
  }

  fs::path base, root, outside;
};

}  // namespace

TEST_F(InputPolicy, AProtocolOutsideTheListIsRefusedNamingTheInputTheProtocolAndTheList) {
  auto r = check_input("tcp://127.0.0.1:1", default_protocols, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "input 'tcp://127.0.0.1:1' refused by the node's input policy: protocol 'tcp' is not in "
            "allowed-protocols (file, http, https, rtsp)");
  for (const std::string& input :
       std::vector<std::string>{"udp://0.0.0.0:9", "concat://a|b", "HTTP://example.com/a.mp4", "data://x"})
    EXPECT_FALSE(check_input(input, default_protocols, {}).ok()) << input;
}

TEST_F(InputPolicy, AllowedUrlsPassAndAreNotJudgedByTheRoots) {
  EXPECT_TRUE(check("http://127.0.0.1:8080/a.mp4").ok());
  EXPECT_TRUE(check("https://example.com/a.mp4").ok());
  EXPECT_TRUE(check("rtsp://cam.local/stream").ok());
}

TEST_F(InputPolicy, PathsAndFileUrlsAreTheFileProtocol) {
  const std::vector<std::string> only_http{"http"};
  for (const std::string& input :
       std::vector<std::string>{(root / "in.mp4").string(), "file://" + (root / "in.mp4").string(),
                                "file:" + (root / "in.mp4").string(), std::string("relative.mp4")}) {
    auto r = check_input(input, only_http, {});
    ASSERT_FALSE(r.ok()) << input;
    EXPECT_NE(r.error().find("protocol 'file' is not in allowed-protocols (http)"), std::string::npos)
        << r.error();
  }
}

TEST_F(InputPolicy, WithoutRootsAnyLocalPathIsAllowed) {
  EXPECT_TRUE(check_input("/etc/passwd", default_protocols, {}).ok());
  EXPECT_TRUE(check_input("file:///etc/passwd", default_protocols, {}).ok());
}

TEST_F(InputPolicy, FilesBelowARootAreAllowedInEverySpelling) {
  EXPECT_EQ(why((root / "in.mp4").string()), "");
  EXPECT_EQ(why((root / "sub" / "deep.mp4").string()), "");
  EXPECT_EQ(why("file://" + (root / "in.mp4").string()), "");
  EXPECT_EQ(why("file:" + (root / "sub" / "deep.mp4").string()), "");
  EXPECT_EQ(why((root / "sub" / ".." / "in.mp4").string()), "");
  EXPECT_TRUE(check_input((root / "in.mp4").string(), default_protocols, {root.string() + "/"}).ok())
      << "a root written with a trailing slash";
}

TEST_F(InputPolicy, FilesOutsideEveryRootAreRefusedNamingThePathAndTheRoots) {
  EXPECT_EQ(why("/etc/passwd"),
            "input '/etc/passwd' refused by the node's input policy: '/etc/passwd' is not "
            "below allowed-roots (" +
                root.string() + ")");
  EXPECT_NE(why("file:///etc/passwd").find("'/etc/passwd' is not below allowed-roots"), std::string::npos);
  EXPECT_NE(why("file:/etc/passwd").find("'/etc/passwd' is not below allowed-roots"), std::string::npos);
  EXPECT_NE(why((outside / "secret.mp4").string()).find("not below allowed-roots"), std::string::npos);
}

TEST_F(InputPolicy, DotDotCannotClimbOutOfARoot) {
  const std::string input = (root / ".." / "outside" / "secret.mp4").string();
  const std::string w = why(input);
  EXPECT_NE(w.find("'" + (outside / "secret.mp4").string() + "' is not below allowed-roots"),
            std::string::npos)
      << w;
  fs::create_symlink(outside, root / "out");
  // Lexically root/out/../outside/secret.mp4 is root/outside/secret.mp4; the
  // kernel climbs from where the link points, and so does the policy.
  EXPECT_NE(why((root / "out" / ".." / "outside" / "secret.mp4").string())
                .find("resolves to '" + (outside / "secret.mp4").string() + "'"),
            std::string::npos);
  EXPECT_EQ(why((root / "out" / ".." / "root" / "in.mp4").string()), "");
}

TEST_F(InputPolicy, AFolderThatOnlySharesTheRootsPrefixIsNotBelowIt) {
  fs::create_directories(base / "rootkit");
  touch(base / "rootkit" / "x.mp4");
  EXPECT_NE(why((base / "rootkit" / "x.mp4").string()).find("not below allowed-roots"), std::string::npos);
}

TEST_F(InputPolicy, ASymlinkInsideARootPointingOutsideIsRefusedNamingWhereItResolves) {
  fs::create_symlink(outside / "secret.mp4", root / "link.mp4");
  const std::string w = why((root / "link.mp4").string());
  EXPECT_EQ(w, "input '" + (root / "link.mp4").string() + "' refused by the node's input policy: '" +
                   (root / "link.mp4").string() + "' resolves to '" + (outside / "secret.mp4").string() +
                   "', which is not below allowed-roots (" + root.string() + ")");
  fs::create_symlink("/etc", root / "etc");
  EXPECT_NE(why((root / "etc" / "passwd").string()).find("resolves to '/etc/passwd'"), std::string::npos)
      << "a symlinked folder on the way";
}

TEST_F(InputPolicy, ASymlinkThatStaysInsideIsAllowedAndSoIsARootThatIsASymlink) {
  fs::create_symlink(root / "sub" / "deep.mp4", root / "alias.mp4");
  EXPECT_EQ(why((root / "alias.mp4").string()), "");
  fs::create_directory_symlink(root, base / "root-link");
  EXPECT_TRUE(
      check_input((root / "in.mp4").string(), default_protocols, {(base / "root-link").string()}).ok());
  EXPECT_TRUE(check_input((base / "root-link" / "in.mp4").string(), default_protocols, {root.string()}).ok());
}

TEST_F(InputPolicy, AMissingFileIsJudgedByWhereItWouldBeSoItsRefusalTellsNothingAboutOutside) {
  EXPECT_EQ(why((root / "not-yet.mp4").string()), "") << "inside: the decoder says 'no such file'";
  EXPECT_NE(why((outside / "no-such.mp4").string()).find("not below allowed-roots"), std::string::npos);
  EXPECT_NE(why("/nonexistent/folder/x.mp4").find("not below allowed-roots"), std::string::npos);
  fs::create_symlink(outside / "later.mp4", root / "dangling.mp4");
  EXPECT_NE(why((root / "dangling.mp4").string()).find("not below allowed-roots"), std::string::npos)
      << "a dangling symlink to outside";
}

TEST(IsBelow, ComparesWholeComponentsOfNormalPaths) {
  EXPECT_TRUE(is_below("/data/in/a.mp4", "/data/in"));
  EXPECT_TRUE(is_below("/data/in", "/data/in"));
  EXPECT_TRUE(is_below("/data/in/a.mp4", "/data/in/"));
  EXPECT_TRUE(is_below("/anything", "/"));
  EXPECT_FALSE(is_below("/data/inside/a.mp4", "/data/in"));
  EXPECT_FALSE(is_below("/data/in/../out/a.mp4", "/data/in"));
  EXPECT_FALSE(is_below("/data", "/data/in"));
}

TEST(OutputFolders, AreBuiltFromNumericIdsAndPlainAnalyzerNames) {
  EXPECT_EQ(video_output_dir("/srv/out", 12, 345), "/srv/out/job-12/video-345");
  auto ok = analyzer_output_dir("/srv/out/job-12/video-345", "thumbnails");
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(*ok, "/srv/out/job-12/video-345/thumbnails");
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "../../../etc", "a/b", "/abs", std::string("a\0b", 3)}) {
    auto r = analyzer_output_dir("/srv/out/job-12/video-345", bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' was accepted as " << *r;
    EXPECT_NE(r.error().find("outside the video's output folder"), std::string::npos) << r.error();
  }
}

TEST(ProtocolNames, AreWhatFFmpegCallsItsProtocols) {
  for (const std::string& ok :
       std::vector<std::string>{"file", "http", "https", "rtsp", "rtmp", "srtp", "hls+http", "a-b.c"})
    EXPECT_TRUE(valid_protocol_name(ok)) << ok;
  for (const std::string& bad : std::vector<std::string>{"", "HTTP", "a,b", "a b", "x:", "file/"})
    EXPECT_FALSE(valid_protocol_name(bad)) << bad;
}
