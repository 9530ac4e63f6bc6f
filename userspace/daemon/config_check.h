// CheckConfigFiles: every file a loaded configuration refers to, opened and parsed the way
// interlockd will use it, for `interlockd --check-config` (and a reload's own checks run
// the same code paths when they build what the files feed). A configuration can be
// well-formed and still fail at its first session: a password file readable by others, a
// CA bundle that is not PEM, a policy whose mask profile does not compile. Those are found
// here, before the file is put in force.
//
//   std::vector<ConfigFileProblem> problems = CheckConfigFiles(config);
//   for (const auto& p : problems) printf("%s: %s\n", p.where.c_str(), p.problem.c_str());
//
// `env:` secret references are not checked: the checking shell's environment is not the
// service's.
#pragma once

#include <string>
#include <vector>

#include "userspace/config/config.h"

namespace interlock::daemon {

struct ConfigFileProblem {
  std::string where;    // "file:line: field" (SourceMap::Where)
  std::string problem;  // what is wrong, naming the file
};

std::vector<ConfigFileProblem> CheckConfigFiles(const config::ServiceConfig& config);

}  // namespace interlock::daemon
