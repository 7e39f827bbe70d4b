// Live sources (issue 12 item 4): an http(s) URL of a stream that does not end
// by itself runs through the same ring until the stream ends or the job is
// cancelled; what is committed stays committed. The stream comes from the
// ffmpeg CLI (-re: real time) behind a tiny HTTP/1.0 server on 127.0.0.1 that
// runs one ffmpeg per connection (the node probes the input, then the decoder
// opens it again), in plain HTTP or in TLS with a certificate the test makes
// with the openssl CLI.

#include <csignal>
#include <fstream>
#include <iostream>

#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive::testing;
using framehive::child_process;
using nlohmann::json;

namespace {

const char* server_py = R"PY(
import ctypes, os, signal, socket, subprocess, sys, threading

port, seconds, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tls = None
if len(sys.argv) > 5:  # CERT KEY: serve https
    import ssl
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[4], sys.argv[5])
libc = ctypes.CDLL(None)
children = set()
lock = threading.Lock()

def die_with_parent():
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no ffmpeg outlives its server

def stop(*_):
    with lock:
        for p in children:
            try: p.kill()
            except Exception: pass
    os._exit(0)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

def serve(conn):
    p = None
    try:
        conn.settimeout(5)
        if tls:
            conn = tls.wrap_socket(conn, server_side=True)
        req = b""
        while b"\r\n\r\n" not in req and len(req) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            req += chunk
        conn.settimeout(None)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/MP2T\r\nConnection: close\r\n\r\n")
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]
        if seconds > 0:
            cmd += ["-t", str(seconds)]
        cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mpegts", "pipe:1"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        with lock:
            children.add(p)
        while True:  # through this process, so TLS can wrap the bytes
            data = p.stdout.read1(65536)
            if not data:
                break
            conn.sendall(data)
    except Exception as e:
        sys.stderr.write("serve: %r\n" % (e,))
    finally:
        if p:
            p.kill()
            p.wait()
            with lock:
                children.discard(p)
        try: conn.shutdown(socket.SHUT_RDWR)
        except Exception: pass
        conn.close()

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
open(ready, "w").write("ready\n")
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
)PY";

/// The live server: started by the constructor, always stopped by the
/// destructor (also when an assertion ends the test early).
class live_server {
 public:
  /// Serves plain http, or https with a fresh self-signed certificate.
  live_server(const std::filesystem::path& dir, int seconds, bool https = false)
      : port_(free_port()), https_(https) {
    const auto script = dir / "live_server.py";
    std::ofstream(script) << server_py;
    const auto ready = dir / ("live_ready_" + std::to_string(port_));
    std::vector<std::string> args{"/usr/bin/python3", script.string(), std::to_string(port_), std::to_string(seconds),
                                  ready.string()};
    if (https) {
      const auto cert = (dir / "live.crt").string(), key = (dir / "live.key").string();
      auto made = run_command("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                              "-subj /CN=127.0.0.1 -keyout '" + key + "' -out '" + cert + "' 2>&1");
      if (made.code != 0) {
        error_ = "openssl could not make the stream's certificate: " + made.out;
        return;
      }
      args.push_back(cert);
      args.push_back(key);
    }
    std::string err;
    auto p = child_process::spawn(args, &err, (dir / "live_server.log").string());
    if (!p) {
      error_ = err;
      return;
    }
    proc_ = std::move(*p);
    if (!wait_until([&] { return std::filesystem::exists(ready); }, std::chrono::seconds(20)))
      error_ = "the live server did not start listening within 20 s";
  }
  ~live_server() {
    if (proc_.running()) {
      proc_.kill(SIGTERM);
      if (!proc_.wait_for(std::chrono::seconds(5)))
        proc_.kill(SIGKILL);
    }
  }
  live_server(const live_server&) = delete;
  live_server& operator=(const live_server&) = delete;

  const std::string& error() const { return error_; }
  std::string url() const {
    return std::string(https_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/live.ts";
  }

 private:
  uint16_t port_;
  bool https_;
  child_process proc_;
  std::string error_;
};

class Live : public cluster {
 protected:
  /// The stats frames of the job's only video (empty if none yet).
  json stats_frames(uint64_t job) {
    const json r = cli_json("results " + std::to_string(job) + " --json --frames");
    if (!r.is_object() || !r.contains("videos") || r["videos"].empty())
      return json::array();
    const auto& a = r["videos"][0]["analyzers"];
    if (!a.is_object() || !a.contains("stats") || !a["stats"].contains("frames"))
      return json::array();
    return a["stats"]["frames"];
  }

  static void expect_contiguous(const json& frames, const std::string& what) {
    for (std::size_t i = 0; i < frames.size(); ++i)
      ASSERT_EQ(frames[i]["frame"].get<std::size_t>(), i) << what << ": frame missing or doubled";
  }
};

}  // namespace

TEST_F(Live, AStreamThatEndsFinishesTheJobWithEveryDecodedFrameStoredOnce) {
  live_server server(dir_, 4);  // 100 frames at 25 fps, in real time
  ASSERT_TRUE(server.error().empty()) << server.error();
  start_cluster({"n1"});
  const auto job = submit(server.url() + " --analyzers stats");
  ASSERT_GT(job, 0u);
  ASSERT_EQ(wait_job(job, std::chrono::seconds(90)), "done") << cli("status " + std::to_string(job)).out;
  const json r = cli_json("results " + std::to_string(job) + " --json --frames");
  ASSERT_EQ(r["state"], "done");
  const auto& v = r["videos"][0];
  EXPECT_EQ(v["state"], "done");
  const json frames = v["analyzers"]["stats"]["frames"];
  expect_contiguous(frames, "stats");
  const auto n = static_cast<int64_t>(frames.size());
  std::cout << "live stream of 100 frames: " << n << " stored\n";
  EXPECT_GE(n, 90) << "frames of a 100-frame stream lost";
  EXPECT_LE(n, 100);
  EXPECT_EQ(v["frames_total"].get<int64_t>(), n) << "every decoded frame is stored once";
  EXPECT_EQ(v["analyzers"]["stats"]["frames_processed"].get<int64_t>(), n);
  EXPECT_TRUE(wait_until([&] { return rings().empty(); }, std::chrono::seconds(10))) << "ring not removed";
}

TEST_F(Live, AnHttpsStreamRunsThroughTheSameRingUntilItEnds) {
  live_server server(dir_, 3, true);  // 75 frames at 25 fps, in real time, over TLS
  ASSERT_TRUE(server.error().empty()) << server.error();
  start_cluster({"n1"});
  const auto job = submit(server.url() + " --analyzers stats");
  ASSERT_GT(job, 0u);
  ASSERT_EQ(wait_job(job, std::chrono::seconds(90)), "done") << cli("status " + std::to_string(job)).out;
  const json frames = stats_frames(job);
  expect_contiguous(frames, "stats over https");
  std::cout << "https stream of 75 frames: " << frames.size() << " stored\n";
  EXPECT_GE(frames.size(), 65u) << "frames of a 75-frame https stream lost";
  EXPECT_LE(frames.size(), 75u);
  // The server speaks only TLS on this port: frames prove the node read it through TLS.
}

TEST_F(Live, CancellingAnEndlessStreamKeepsTheFramesCommittedSoFar) {
  live_server server(dir_, 0);  // never ends by itself
  ASSERT_TRUE(server.error().empty()) << server.error();
  start_cluster({"n1"});
  const auto job = submit(server.url() + " --analyzers stats");
  ASSERT_GT(job, 0u);
  ASSERT_TRUE(wait_until([&] { return stats_frames(job).size() >= 50; }, std::chrono::seconds(60)))
      << "fewer than 50 frames stored within 60 s: " << cli("status " + std::to_string(job)).out;

  // While it runs, its total is unknown (-1) and the job is still running.
  const json st = cli_json("status " + std::to_string(job) + " --json");
  EXPECT_EQ(st["state"], "running");
  EXPECT_LT(st["videos"][0]["total"].get<int64_t>(), 0) << st.dump();
  const std::string table = cli("status " + std::to_string(job)).out;
  EXPECT_NE(table.find("/?"), std::string::npos) << "an unknown total shows as '?':\n" << table;

  const json c = cli_json("cancel " + std::to_string(job) + " --json");
  EXPECT_EQ(c["state"], "cancelled");
  EXPECT_TRUE(wait_until([&] { return rings().empty(); }, std::chrono::seconds(15))) << "ring not removed";
  EXPECT_EQ(cli_json("status " + std::to_string(job) + " --json")["state"], "cancelled");

  const json frames = stats_frames(job);
  std::cout << "endless stream cancelled with " << frames.size() << " frames stored\n";
  EXPECT_GE(frames.size(), 50u) << "committed frames lost by the cancel";
  expect_contiguous(frames, "stats after cancel");

  // The cluster keeps serving.
  const auto next = submit(make_clip("after.mp4", 2, 15) + " --analyzers stats");
  EXPECT_EQ(wait_job(next), "done");
}
