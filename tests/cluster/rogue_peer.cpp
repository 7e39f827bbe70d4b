// A rogue peer for tests/cluster/trust_test.cpp: a program that can reach the
// coordinator and speaks the real protocol, trying what a compromised or
// malicious peer would. Plaintext, it holds what a connection gives; with
// --tls.* it holds a valid node certificate of the cluster CA under a name of
// its own ("rogue") and, given --client-cert/--client-key, a client
// certificate too. It prints one line per attempt:
//
//   step=<name> result=refused code=<errc number> message=<the coordinator's reason>
//   step=<name> result=accepted
//
// and, at the end, the coordinator's refusal counts (`refusal <key> <count>`)
// and the state of the victim's job. It exits 0 if it could talk to the
// coordinator at all; judging the lines is the test's business.
//
//   rogue_peer --coordinator=127.0.0.1:PORT --node=n1 --job=J --video=V --epoch=1 --input=CLIP
//              [--tls.ca=CA --tls.cert=rogue.crt --tls.key=rogue.key --client-cert=C --client-key=K]

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "actors/lifecycle.hpp"
#include "analysis/result_codec.hpp"
#include "actors/messages.hpp"
#include "caf/io/all.hpp"
#include "caf/openssl/all.hpp"
#include "common/identity.hpp"

namespace {

using namespace framehive;

constexpr auto timeout = std::chrono::seconds(10);

struct rogue_config : caf::actor_system_config {
  std::string coordinator = "127.0.0.1:4242";
  std::string node = "n1";  ///< the live node it impersonates
  uint64_t job = 0;         ///< the victim's job
  uint64_t video = 0;       ///< the victim's video (running on `node`)
  uint64_t epoch = 1;
  std::string input;        ///< a video for the rogue's own job
  tls_files tls;            ///< its own (node) certificate: TLS on
  std::string client_cert;  ///< a client certificate it also holds
  std::string client_key;
  rogue_config() {
    opt_group{custom_options_, "global"}
        .add(coordinator, "coordinator", "host:port")
        .add(node, "node", "name of the live node to impersonate")
        .add(job, "job", "the victim's job")
        .add(video, "video", "the victim's video")
        .add(epoch, "epoch", "the victim's assignment epoch")
        .add(input, "input", "a video for the rogue's own job")
        .add(client_cert, "client-cert", "a client certificate to try as a node's")
        .add(client_key, "client-key", "its key");
    add_tls_options(custom_options_, tls);
    register_protocol(*this);
    configure_network(*this);
  }
};

/// Sends a request and prints what came back.
template <class Reply, class... Ts>
void attempt(caf::scoped_actor& self, const coordinator_actor& coord, const std::string& step, Ts&&... xs) {
  self->request(coord, timeout, std::forward<Ts>(xs)...)
      .receive([&](Reply&) { std::printf("step=%s result=accepted\n", step.c_str()); },
               [&](caf::error& e) {
                 std::printf("step=%s result=refused code=%u message=%s\n", step.c_str(), e.code(),
                             describe(e).c_str());
               });
  std::fflush(stdout);
}

result_batch forged_batch(const rogue_config& cfg, uint64_t video, uint64_t epoch,
                          std::vector<int64_t> frames) {
  result_batch b;
  b.video = video;
  b.epoch = epoch;
  b.analyzer = "stats";
  b.node = cfg.node;  // the field a naive coordinator would believe
  b.time_base = 1.0 / 30;
  for (int64_t f : frames)
    b.frames.push_back({f, f, analysis::encode_result({{"ms", 1.0}, {"brightness", 999.0}, {"sharpness", 999.0}})});
  return b;
}

video_report forged_report(const rogue_config& cfg, video_outcome outcome) {
  video_report r;
  r.video = cfg.video;
  r.epoch = cfg.epoch;
  r.node = cfg.node;
  r.outcome = outcome;
  r.error = outcome == video_outcome::failed ? "forged failure" : "";
  r.frames_total = 1;
  r.frames_decoded = 1;
  return r;
}

node_info info_of(const std::string& name, uint32_t cores) {
  node_info info;
  info.name = name;
  info.host = "rogue-host";
  info.cores = cores;
  info.shm_budget = 64ull << 20;
  info.version = version;
  info.pid = static_cast<uint32_t>(getpid());
  return info;
}

/// A registration of `info`: with TLS, answering a fresh challenge with
/// `cert`'s certificate and a signature made with `key` (the coordinator checks
/// that the certificate is a node's, for this very name). Returns what it sent.
node_info register_as(caf::scoped_actor& self, const coordinator_actor& coord, const std::string& step,
                      node_info info, const std::string& cert, const std::string& key) {
  if (!cert.empty()) {
    std::string challenge;
    self->request(coord, timeout, challenge_atom::value)
        .receive([&](std::string& c) { challenge = std::move(c); },
                 [&](caf::error& e) { std::printf("challenge: %s\n", describe(e).c_str()); });
    auto pem = read_certificate(cert);
    auto proof = sign_challenge(key, challenge);
    if (!pem || !proof) {
      std::printf("step=%s result=skipped (cannot read %s or sign with %s)\n", step.c_str(), cert.c_str(),
                  key.c_str());
      return info;
    }
    info.certificate = std::move(*pem);
    info.proof = std::move(*proof);
  }
  attempt<node_welcome>(self, coord, step, info, caf::actor_cast<node_actor>(self));
  return info;
}

/// Attempts as a peer that has not registered: take over the live node's
/// name, register with a client certificate or without a proof (TLS), send
/// results and reports in the node's name, claim absurd figures.
void as_a_stranger(caf::scoped_actor& self, const coordinator_actor& coord, const rogue_config& cfg) {
  const auto& own = cfg.tls;
  register_as(self, coord, "takeover", info_of(cfg.node, 2), own.cert, own.key);
  if (own.enabled()) {
    register_as(self, coord, "client_as_node", info_of("client", 2), cfg.client_cert, cfg.client_key);
    register_as(self, coord, "no_proof", info_of("rogue", 1), "", "");
  }
  attempt<batch_ack>(self, coord, "forged_batch_unregistered",
                     forged_batch(cfg, cfg.video, cfg.epoch, {0, 1, 2, 3}));
  attempt<caf::ok_atom>(self, coord, "forged_report_unregistered", forged_report(cfg, video_outcome::done));
  register_as(self, coord, "greedy_cores", info_of("rogue", 4'000'000'000u), own.cert, own.key);
  register_as(self, coord, "zero_cores", info_of("rogue", 0), own.cert, own.key);
}

/// Attempts as a registered node that does not hold the victim's video.
void as_a_node(caf::scoped_actor& self, const coordinator_actor& coord, const rogue_config& cfg) {
  const auto& own = cfg.tls;
  const auto sent = register_as(self, coord, "register_own_name", info_of("rogue", 1), own.cert, own.key);
  if (own.enabled())  // the same signed answer again: a challenge is good for one registration
    attempt<node_welcome>(self, coord, "replayed_proof", sent, caf::actor_cast<node_actor>(self));
  register_as(self, coord, "takeover_while_registered", info_of(cfg.node, 2), own.cert, own.key);
  attempt<batch_ack>(self, coord, "forged_batch", forged_batch(cfg, cfg.video, cfg.epoch, {0, 1, 2, 3}));
  attempt<batch_ack>(self, coord, "forged_batch_next_epoch",
                     forged_batch(cfg, cfg.video, cfg.epoch + 1, {0, 1}));
  attempt<caf::ok_atom>(self, coord, "forged_report_done", forged_report(cfg, video_outcome::done));
  attempt<caf::ok_atom>(self, coord, "forged_report_failed", forged_report(cfg, video_outcome::failed));
  node_status st;  // fire and forget: counted as name_mismatch
  st.node = cfg.node;
  self->send(coord, st);
  std::vector<std::string> many(10'001, "/tmp/x.mp4");
  attempt<uint64_t>(self, coord, "job_too_many_inputs", job_spec{many, {"stats"}, 1});
  attempt<uint64_t>(self, coord, "job_too_many_analyzers",
                    job_spec{{cfg.input}, std::vector<std::string>(33, "stats"), 1});
  attempt<uint64_t>(self, coord, "job_input_too_long", job_spec{{std::string(5000, 'x')}, {"stats"}, 1});
}

/// Attempts as the holder of a video of its own: results outside any video, a batch over the limit.
void as_a_holder(caf::scoped_actor& self, const coordinator_actor& coord, const rogue_config& cfg) {
  uint64_t own_job = 0;
  self->request(coord, timeout, job_spec{{cfg.input}, {"stats"}, 1})
      .receive([&](uint64_t j) { own_job = j; },
               [&](caf::error& e) { std::printf("own job not accepted: %s\n", describe(e).c_str()); });
  if (own_job == 0)
    return;
  // The least-loaded node gets it: this one (no video on 1 core) before the victim's node.
  video_task task;
  self->receive(
      [&](video_task& t) {
        task = t;
        return caf::ok_atom::value;
      },
      caf::after(timeout) >> [] { std::printf("no assignment of its own video\n"); });
  if (task.video == 0)
    return;
  std::printf("assigned video=%llu epoch=%llu\n", static_cast<unsigned long long>(task.video),
              static_cast<unsigned long long>(task.epoch));
  attempt<batch_ack>(self, coord, "out_of_range_frame",
                     forged_batch(cfg, task.video, task.epoch, {0, 1'000'000'000'000'000}));
  std::vector<int64_t> frames(5000);
  for (std::size_t i = 0; i < frames.size(); ++i)
    frames[i] = static_cast<int64_t>(i);
  attempt<batch_ack>(self, coord, "oversized_batch", forged_batch(cfg, task.video, task.epoch, frames));
  // It ends its own video honestly, so nothing of it is left to run elsewhere.
  video_report r;
  r.video = task.video;
  r.epoch = task.epoch;
  r.node = "rogue";
  r.outcome = video_outcome::failed;
  r.error = "rogue test: not analysed";
  attempt<caf::ok_atom>(self, coord, "own_report", r);
}

void print_counts(caf::scoped_actor& self, const coordinator_actor& coord, const rogue_config& cfg) {
  self->request(coord, timeout, nodes_atom::value)
      .receive(
          [&](cluster_nodes& n) {
            for (const auto& r : n.refusals)
              std::printf("refusal %s %llu\n", r.reason.c_str(), static_cast<unsigned long long>(r.count));
          },
          [&](caf::error& e) { std::printf("nodes: %s\n", describe(e).c_str()); });
  self->request(coord, timeout, status_atom::value, cfg.job)
      .receive([&](job_status& s) { std::printf("victim_job_state=%s\n", to_string(s.state).c_str()); },
               [&](caf::error& e) { std::printf("victim_job_state=unknown (%s)\n", describe(e).c_str()); });
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  rogue_config cfg;
  cfg.load<caf::io::middleman>();
  if (auto err = cfg.parse(argc, argv)) {
    std::fprintf(stderr, "rogue_peer: %s\n", to_string(err).c_str());
    return 2;
  }
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(cfg.coordinator, host, port)) {
    std::fprintf(stderr, "rogue_peer: bad --coordinator %s\n", cfg.coordinator.c_str());
    return 2;
  }
  if (auto ok = use_tls(cfg, cfg.tls); !ok) {
    std::fprintf(stderr, "rogue_peer: %s\n", ok.error().c_str());
    return 2;
  }
  caf::actor_system sys{cfg};
  auto coord = cfg.tls.enabled() ? caf::openssl::remote_actor<coordinator_actor>(sys, host, port)
                                 : sys.middleman().remote_actor<coordinator_actor>(host, port);
  if (!coord) {
    std::fprintf(stderr, "rogue_peer: cannot connect: %s\n", sys.render(coord.error()).c_str());
    return 1;
  }
  {
    caf::scoped_actor self{sys};
    as_a_stranger(self, *coord, cfg);
    as_a_node(self, *coord, cfg);
    as_a_holder(self, *coord, cfg);
    print_counts(self, *coord, cfg);
  }
  // Leave without ~actor_system waiting on the middleman (CAF 0.17, see README "Shutdown").
  std::fflush(stdout);
  std::_Exit(0);
}
