#include "common/faults.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace framehive {

fault_plan fault_plan::parse(const std::string& spec, std::string* error) {
  fault_plan plan;
  std::stringstream in(spec);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty())
      continue;
    auto colon = item.find(':');
    auto at = item.find('@');
    if (colon == std::string::npos || at == std::string::npos || at < colon) {
      if (error)
        *error += "bad fault '" + item + "' (want WHERE:KIND@FRAME); ";
      continue;
    }
    fault f;
    f.where = item.substr(0, colon);
    std::string kind = item.substr(colon + 1, at - colon - 1);
    if (kind == "crash")
      f.kind = fault_kind::crash;
    else if (kind == "abort")
      f.kind = fault_kind::abort;
    else if (kind == "throw")
      f.kind = fault_kind::throw_exception;
    else if (kind == "hang")
      f.kind = fault_kind::hang;
    else {
      if (error)
        *error += "unknown fault kind '" + kind + "'; ";
      continue;
    }
    try {
      f.frame = std::stoll(item.substr(at + 1));
    } catch (...) {
      if (error)
        *error += "bad frame in '" + item + "'; ";
      continue;
    }
    plan.faults_.push_back(f);
  }
  return plan;
}

std::optional<fault_kind> fault_plan::at(const std::string& where, int64_t frame) const {
  for (const auto& f : faults_)
    if (f.frame == frame && f.where == where)
      return f.kind;
  return std::nullopt;
}

void trigger(fault_kind kind, const std::string& what) {
  switch (kind) {
    case fault_kind::crash:
      std::raise(SIGSEGV);
      break;
    case fault_kind::abort:
      std::abort();
    case fault_kind::throw_exception:
      throw std::runtime_error("injected fault: " + what);
    case fault_kind::hang:
      while (true)
        pause();
  }
}

}  // namespace framehive
