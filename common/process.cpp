#include "common/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

extern char** environ;

namespace framehive {

namespace {

exit_status decode_status(int raw) {
  exit_status st;
  if (WIFSIGNALED(raw)) {
    st.signaled = true;
    st.signal = WTERMSIG(raw);
  } else if (WIFEXITED(raw)) {
    st.code = WEXITSTATUS(raw);
  }
  return st;
}

/// This process's environment with `extra` ("NAME=VALUE") added or replacing
/// variables of the same name; null-terminated, pointing into `environ` and `extra`.
std::vector<char*> child_environment(const std::vector<std::string>& extra) {
  auto name_of = [](const char* entry) {
    const char* eq = std::strchr(entry, '=');
    return eq ? std::string(entry, static_cast<std::size_t>(eq - entry)) : std::string(entry);
  };
  std::vector<char*> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string name = name_of(*e);
    const bool replaced = std::any_of(extra.begin(), extra.end(),
                                      [&](const std::string& x) { return name_of(x.c_str()) == name; });
    if (!replaced)
      env.push_back(*e);
  }
  for (const auto& x : extra)
    env.push_back(const_cast<char*>(x.c_str()));
  env.push_back(nullptr);
  return env;
}

}  // namespace

std::string exit_status::describe() const {
  if (signaled)
    return std::string("killed by signal ") + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exited with code " + std::to_string(code);
}

child_process::child_process(child_process&& other) noexcept
    : pid_(other.pid_), status_(std::move(other.status_)) {
  other.pid_ = -1;
  other.status_.reset();
}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    reap_now();
    pid_ = other.pid_;
    status_ = std::move(other.status_);
    other.pid_ = -1;
    other.status_.reset();
  }
  return *this;
}

child_process::~child_process() { reap_now(); }

void child_process::reap_now() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int raw = 0;
    while (waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
  status_.reset();
}

std::optional<child_process> child_process::spawn(const std::vector<std::string>& argv, std::string* error,
                                                  const std::string& stdout_path,
                                                  const std::vector<std::string>& extra_env) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto env = child_environment(extra_env);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!stdout_path.empty())
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    if (error)
      *error = "cannot start " + argv[0] + ": " + std::strerror(rc);
    return std::nullopt;
  }
  return child_process{pid};
}

bool child_process::kill(int sig) {
  if (!running())
    return false;
  return ::kill(pid_, sig) == 0;
}

std::optional<exit_status> child_process::poll() {
  if (status_ || pid_ <= 0)
    return status_;
  int raw = 0;
  pid_t r = waitpid(pid_, &raw, WNOHANG);
  if (r == pid_)
    status_ = decode_status(raw);
  return status_;
}

std::optional<exit_status> child_process::wait_for(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  while (true) {
    if (auto st = poll())
      return st;
    if (std::chrono::steady_clock::now() >= deadline)
      return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20'000));
  }
}

exit_status child_process::wait() {
  if (status_)
    return *status_;
  int raw = 0;
  while (waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
  }
  status_ = decode_status(raw);
  return *status_;
}

std::string self_executable() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0)
    return {};
  buf[n] = '\0';
  return buf;
}

uint16_t free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(fd);
  return ok ? ntohs(a.sin_port) : 0;
}

}  // namespace framehive
