// Ring header validation: real rings in /dev/shm whose headers are corrupted
// through a second mapping of the file, the way a stray or hostile process
// would. Every reader must refuse impossible geometry with an error that names
// the ring and the field; none may die of a signal (slot_count 0 used to be
// a SIGFPE). Roles that validated a ring keep their own copy of its geometry.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/interprocess/shared_memory_object.hpp>

#include "common/process.hpp"
#include "shm/frame_ring.hpp"
#include "tests/support/wait.hpp"

using namespace framehive;
using namespace std::chrono_literals;

namespace {

/// A second, independent mapping of a ring's segment file.
class raw_mapping {
 public:
  explicit raw_mapping(const std::string& name) {
    const std::string path = std::string(shm::default_shm_dir) + "/" + name;
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    EXPECT_GE(fd, 0) << path;
    struct stat st {};
    fstat(fd, &st);
    size_ = static_cast<std::size_t>(st.st_size);
    addr_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    EXPECT_NE(addr_, MAP_FAILED);
  }
  ~raw_mapping() { munmap(addr_, size_); }
  shm::ring_header& header() { return *static_cast<shm::ring_header*>(addr_); }

 private:
  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

struct corruption {
  std::string what;   ///< for the trace
  std::string field;  ///< the error must name it
  std::function<void(shm::ring_header&)> apply;
};

std::vector<corruption> corruptions() {
  using h = shm::ring_header;
  return {
      {"zero slots", "slot_count", [](h& x) { x.slot_count = 0; }},
      {"one slot", "slot_count", [](h& x) { x.slot_count = 1; }},
      {"more slots than the segment holds", "slot_count", [](h& x) { x.slot_count = 0xffffffffu; }},
      {"slot count times slot size overflows", "slot_bytes",
       [](h& x) { x.slot_bytes = (uint64_t{1} << 63) + 4096; }},
      {"slots that overflow 64 bits together", "slot_count",
       [](h& x) {
         x.slot_count = 0x80000000u;
         x.slot_bytes = x.segment_bytes / 2;
       }},
      {"a huge width", "width", [](h& x) { x.width = 1u << 31; }},
      {"zero height", "height", [](h& x) { x.height = 0; }},
      {"a huge height", "height", [](h& x) { x.height = 100000; }},
      {"a stride that does not match the width", "stride", [](h& x) { x.stride = 0xffffffffu; }},
      {"a width whose rows outgrow the slots", "stride", [](h& x) { x.width = 30000; }},
      {"slots starting past the segment", "slots_offset", [](h& x) { x.slots_offset = uint64_t{1} << 40; }},
      {"slots starting inside the header", "slots_offset", [](h& x) { x.slots_offset = 64; }},
      {"a segment size that is not the file's", "segment_bytes", [](h& x) { x.segment_bytes *= 2; }},
      {"more consumer entries than the layout has", "consumer_capacity",
       [](h& x) { x.consumer_capacity = shm::max_consumers + 1; }},
      {"a huge consumer table", "consumer_capacity", [](h& x) { x.consumer_capacity = 0xffffffffu; }},
      {"no consumer entries", "consumer_capacity", [](h& x) { x.consumer_capacity = 0; }},
      {"another pixel format", "format", [](h& x) { x.format = 7; }},
      {"another header size", "header_bytes", [](h& x) { x.header_bytes = 16; }},
      {"another layout version", "layout version",
       [](h& x) { x.layout_version = shm::ring_layout_version + 1; }},
      {"a wrong magic", "magic", [](h& x) { x.magic.store(0x4141414141414141ull); }},
  };
}

class RingHeader : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    name_ = "fhhdr" + std::to_string(getpid()) + "x" + std::to_string(++counter);
  }
  void TearDown() override { boost::interprocess::shared_memory_object::remove(name_.c_str()); }

  shm::frame_ring make_ring(uint32_t slots = 8) {
    shm::ring_options o;
    o.name = name_;
    o.width = 64;
    o.height = 48;
    o.slot_count = slots;
    auto r = shm::frame_ring::create(o);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return std::move(*r);
  }

  /// An attach and a producer open both fail, naming the ring and `field`.
  void expect_refused(const std::string& field) {
    auto c = shm::ring_consumer::attach(name_, 1);
    ASSERT_FALSE(c) << "consumer attached to a corrupted ring";
    EXPECT_EQ(c.error().code, shm::ring_errc::bad_layout) << c.error().message;
    EXPECT_NE(c.error().message.find(name_), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find(field), std::string::npos) << c.error().message;
    auto p = shm::ring_producer::open(name_);
    ASSERT_FALSE(p) << "producer opened a corrupted ring";
    EXPECT_EQ(p.error().code, shm::ring_errc::bad_layout) << p.error().message;
    EXPECT_NE(p.error().message.find(field), std::string::npos) << p.error().message;
  }

  std::string name_;
};

}  // namespace

TEST_F(RingHeader, EveryImpossibleGeometryIsRefusedNamingTheRingAndTheField) {
  for (const auto& c : corruptions()) {
    SCOPED_TRACE(c.what);
    {
      auto ring = make_ring();
      ring.reserve_consumer(1, 0);
      raw_mapping m(name_);
      c.apply(m.header());
      expect_refused(c.field);
    }
    ASSERT_FALSE(std::filesystem::exists("/dev/shm/" + name_)) << "the owner removes its ring";
  }
}

TEST_F(RingHeader, TheErrorSaysWhatTheFieldHoldsAndWhyThatIsImpossible) {
  auto ring = make_ring();
  raw_mapping(name_).header().slot_count = 0;
  auto c = shm::ring_consumer::attach(name_, 1);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            "ring '" + name_ + "': header field slot_count is 0 (a ring has at least 2 slots)");
}

TEST_F(RingHeader, ASegmentTooSmallForAHeaderIsNotARing) {
  namespace bip = boost::interprocess;
  bip::shared_memory_object shm(bip::create_only, name_.c_str(), bip::read_write);
  shm.truncate(100);
  auto c = shm::ring_consumer::attach(name_, 1);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, shm::ring_errc::bad_layout);
  EXPECT_NE(c.error().message.find("too small"), std::string::npos) << c.error().message;
}

TEST_F(RingHeader, ReaderProcessesGetAnErrorNotASignal) {
  const auto dir = std::filesystem::temp_directory_path() / name_;
  std::filesystem::create_directories(dir);
  for (const auto& c : corruptions()) {
    SCOPED_TRACE(c.what);
    auto ring = make_ring();
    raw_mapping m(name_);
    c.apply(m.header());
    const std::string out = (dir / "consumer.txt").string();
    std::string err;
    auto consumer =
        child_process::spawn({FRAMEHIVE_RING_PEER, "consume", name_, "1", "--timeout-ms", "200"}, &err, out);
    ASSERT_TRUE(consumer) << err;
    auto producer = child_process::spawn({FRAMEHIVE_RING_PEER, "produce", name_, "4"}, &err,
                                         (dir / "producer.txt").string());
    ASSERT_TRUE(producer) << err;
    for (auto* p : {&*consumer, &*producer}) {
      auto st = p->wait_for(30s);
      ASSERT_TRUE(st) << "a reader hangs on a corrupted ring";
      EXPECT_FALSE(st->signaled) << st->describe();
      EXPECT_EQ(st->code, 2) << st->describe();
    }
    const auto lines = framehive::testing::read_lines(out);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0].rfind("error bad_layout", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(c.field), std::string::npos) << lines[0];
  }
  std::filesystem::remove_all(dir);
}

TEST_F(RingHeader, TheOwnerKeepsTheGeometryItCreatedWhateverTheSegmentSays) {
  auto ring = make_ring(8);
  ASSERT_TRUE(ring.reserve_consumer(1, 0));
  const auto created = ring.geometry();
  raw_mapping m(name_);
  m.header().slot_count = 0;
  m.header().slot_bytes = ~uint64_t{0};
  m.header().width = 1u << 31;
  m.header().consumer_capacity = 0xffffffffu;
  m.header().producer_seq.store(5);  // frame_index_at() looks into a slot
  EXPECT_EQ(ring.slot_count(), 8u);
  EXPECT_EQ(ring.geometry().slot_bytes, created.slot_bytes);
  const auto st = ring.status();
  EXPECT_EQ(st.slot_count, 8u);
  EXPECT_EQ(st.width, 64u);
  EXPECT_EQ(st.segment_bytes, created.segment_bytes);
  EXPECT_EQ(st.consumers.size(), 1u) << "only the layout's consumer entries are scanned";
  EXPECT_FALSE(ring.frame_index_at(4)) << "no frame was written there";
  ring.reclaim_dead_consumers();
}

TEST_F(RingHeader, RolesThatValidatedARingKeepTheirGeometryWhenItIsOverwrittenLater) {
  auto ring = make_ring(4);
  auto consumer = shm::ring_consumer::attach(name_, 1);
  ASSERT_TRUE(consumer) << consumer.error().message;
  auto producer = shm::ring_producer::open(name_);
  ASSERT_TRUE(producer) << producer.error().message;
  raw_mapping m(name_);
  m.header().slot_count = 0;
  m.header().width = 1u << 31;
  m.header().height = 1u << 31;
  m.header().stride = 1;
  m.header().consumer_capacity = 0xffffffffu;
  for (int64_t i = 0; i < 10; ++i) {
    shm::ring_producer::slot s;
    ASSERT_EQ(producer->acquire(s, 1s), shm::ring_producer::acquire_status::ready);
    EXPECT_EQ(s.width, 64u);
    EXPECT_EQ(s.stride, producer->stride());
    s.pixels[0] = static_cast<uint8_t>(i);
    ASSERT_TRUE(producer->publish({i, i, 1, 25, false, 0, 0}));
    // A slot header that claims a larger frame than the ring holds is clamped.
    m.header().consumers[0].sample_every.store(1);
    shm::frame_view v;
    ASSERT_EQ(consumer->next(v, 1s), shm::ring_consumer::read_status::frame);
    EXPECT_EQ(v.frame_index, i);
    EXPECT_EQ(v.width, 64u);
    EXPECT_EQ(v.height, 48u);
    EXPECT_EQ(v.pixels[0], static_cast<uint8_t>(i));
    ASSERT_TRUE(consumer->commit(v.seq));
  }
  EXPECT_EQ(consumer->width(), 64u);
  EXPECT_EQ(producer->slot_count(), 4u);
}
