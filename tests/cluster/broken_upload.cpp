// A client whose upload breaks off, for tests/cluster/data_path_test.cpp: it
// connects to the coordinator (plaintext), begins the upload of FILE, sends
// whole chunks up to about half of it, then exits without a word, as a laptop
// whose network went away. It prints the offset the coordinator acknowledged
// last (`acknowledged=N`), so the test can check that the next upload of the
// same bytes starts there.
//
//   broken_upload --coordinator=127.0.0.1:PORT --file=FILE

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "actors/lifecycle.hpp"
#include "actors/messages.hpp"
#include "caf/io/all.hpp"
#include "common/digest.hpp"

namespace {

using namespace framehive;

constexpr auto timeout = std::chrono::seconds(10);

struct broken_config : caf::actor_system_config {
  std::string coordinator = "127.0.0.1:4242";
  std::string file;
  broken_config() {
    opt_group{custom_options_, "global"}
        .add(coordinator, "coordinator", "host:port")
        .add(file, "file", "the video to upload in part");
    register_protocol(*this);
    configure_network(*this);
  }
};

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "broken_upload: %s\n", why.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

/// Sends chunks of `bytes` from the offered offset up to about half of them;
/// returns the last offset the coordinator acknowledged.
uint64_t send_half(caf::scoped_actor& self, const coordinator_actor& coord, const std::string& sha,
                   const std::vector<char>& bytes) {
  upload_offer offer;
  self->request(coord, timeout, upload_begin{sha, bytes.size(), "broken.mp4"})
      .receive([&](upload_offer& o) { offer = o; }, [&](caf::error& e) { fail("begin: " + describe(e)); });
  if (offer.complete || offer.offset != 0)
    fail("the store already had these bytes (offset " + std::to_string(offer.offset) + ")");
  uint64_t offset = 0;
  do {
    const auto n = std::min<uint64_t>(blob_chunk_bytes, bytes.size() - offset);
    upload_chunk c{offer.upload, offset, std::vector<char>(bytes.begin() + offset, bytes.begin() + offset + n)};
    self->request(coord, timeout, std::move(c))
        .receive([&](uint64_t next) { offset = next; }, [&](caf::error& e) { fail("chunk: " + describe(e)); });
  } while (offset + blob_chunk_bytes < bytes.size() / 2);
  if (offset == 0 || offset >= bytes.size())
    fail("the file is too small to break its upload in the middle (" + std::to_string(bytes.size()) + " bytes)");
  return offset;
}

}  // namespace

int main(int argc, char** argv) {
  broken_config cfg;
  cfg.load<caf::io::middleman>();
  if (auto err = cfg.parse(argc, argv))
    fail(to_string(err));
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(cfg.coordinator, host, port))
    fail("bad --coordinator " + cfg.coordinator);
  std::ifstream in(cfg.file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto sha = sha256_of_file(cfg.file);
  if (!in.good() && !in.eof())
    fail("cannot read " + cfg.file);
  if (!sha)
    fail(sha.error());
  caf::actor_system sys{cfg};
  auto coord = sys.middleman().remote_actor<coordinator_actor>(host, port);
  if (!coord)
    fail("cannot connect: " + sys.render(coord.error()));
  uint64_t acknowledged = 0;
  {
    caf::scoped_actor self{sys};
    acknowledged = send_half(self, *coord, *sha, bytes);
  }
  std::printf("acknowledged=%llu\n", static_cast<unsigned long long>(acknowledged));
  std::fflush(stdout);
  std::_Exit(0);  // the connection drops with the process, mid-upload
}
