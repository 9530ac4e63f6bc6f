// The `interlock` command line: shared pieces of the subcommands.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "userspace/config/config.h"

namespace interlock::cli {

struct Globals {
  std::string config_path;  // "" = /etc/interlock/interlock.yaml or the embedded default
  bool json = false;
};

// Loads the same configuration interlockd uses, for paths (state dir, control socket,
// pin path, cgroup root).
absl::StatusOr<config::ServiceConfig> LoadCliConfig(const Globals& g);

// Subcommands. Each returns the process exit code and prints its own errors.
int CmdRun(const Globals& g, const std::vector<std::string>& args);
int CmdStatus(const Globals& g, const std::vector<std::string>& args);
int CmdSessions(const Globals& g, const std::vector<std::string>& args);
int CmdReplay(const Globals& g, const std::vector<std::string>& args);
int CmdVerify(const Globals& g, const std::vector<std::string>& args);
int CmdReport(const Globals& g, const std::vector<std::string>& args);
int CmdTeardown(const Globals& g, const std::vector<std::string>& args);
int CmdApprovals(const Globals& g, const std::vector<std::string>& args);
int CmdApprove(const Globals& g, const std::vector<std::string>& args);
int CmdDeny(const Globals& g, const std::vector<std::string>& args);
int CmdGrant(const Globals& g, const std::vector<std::string>& args);
int CmdGrants(const Globals& g, const std::vector<std::string>& args);
int CmdRevoke(const Globals& g, const std::vector<std::string>& args);
int CmdReload(const Globals& g, const std::vector<std::string>& args);
int CmdAuditorKeygen(const Globals& g, const std::vector<std::string>& args);
int CmdCa(const Globals& g, const std::vector<std::string>& args);
int CmdAssertionKey(const Globals& g, const std::vector<std::string>& args);

// One line of JSON (protobuf JSON mapping, snake_case names) for --json output.
std::string ToJson(const google::protobuf::Message& m);

// "interlock: <message>" on stderr; returns `code`.
int Fail(int code, const std::string& message);
bool WantsHelp(const std::vector<std::string>& args);

}  // namespace interlock::cli
