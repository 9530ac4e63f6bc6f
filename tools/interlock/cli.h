// The `interlock` command line: shared pieces of the subcommands.
//
// Every subcommand is declared with CLI11 (main.cc parses, reports usage errors and prints
// help; the Add*Commands functions below declare the flags). A subcommand's flags are bound
// to variables its Add* function owns; once the command line parsed, main runs the one
// chosen:
//
//   void AddThingCommand(CLI::App& root, const Globals& g, Commands* commands) {
//     auto o = std::make_shared<ThingOptions>();
//     CLI::App* sub = root.add_subcommand("thing", "one line for the command list");
//     sub->add_option("--out", o->out, "where it goes")->option_text("FILE")->required();
//     commands->push_back({sub, [&g, o] { return Thing(g, *o); }});
//   }
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "interlock/v1/control.pb.h"
#include "userspace/config/config.h"

namespace interlock::cli {

struct Globals {
  std::string config_path;  // "" = /etc/interlock/interlock.yaml or the embedded default
  bool json = false;
};

// Loads the same configuration interlockd uses, for paths (state dir, control socket,
// pin path, cgroup root).
absl::StatusOr<config::ServiceConfig> LoadCliConfig(const Globals& g);

// One request to interlockd on the configured control socket.
absl::StatusOr<v1::ControlResponse> Call(const Globals& g, const v1::ControlRequest& req);

// A subcommand and what runs it. `run` returns the process exit code and prints its own
// errors; it is called at most once, after the whole command line parsed.
struct Command {
  const CLI::App* app;
  std::function<int()> run;
  int usage_exit = 2;  // the exit code of a usage error in this subcommand's arguments
};
using Commands = std::vector<Command>;

// Each adds its subcommand(s) to `root`. `g` outlives parsing and running.
// `cmd`: what followed the first "--" after `run` (CMD), nullopt without one.
void AddRunCommand(CLI::App& root, const Globals& g,
                   const std::optional<std::vector<std::string>>& cmd, Commands* commands);
void AddAdminCommands(CLI::App& root, Globals& g, Commands* commands);     // status, teardown
void AddRecordingCommands(CLI::App& root, Globals& g, Commands* commands);  // sessions, replay, verify
void AddReportCommand(CLI::App& root, Globals& g, Commands* commands);
void AddApprovalCommands(CLI::App& root, Globals& g, Commands* commands);  // approvals ... reload
void AddAuditorKeygenCommand(CLI::App& root, const Globals& g, Commands* commands);
void AddCaCommand(CLI::App& root, const Globals& g, Commands* commands);
void AddSshCommand(CLI::App& root, const Globals& g, Commands* commands);  // ssh known-hosts
// The known_hosts lines naming interlockd's SSH host key (in `state_dir`) for `cfg`'s SSH
// resources, with a comment line first (`interlock ssh known-hosts`; `interlock run`
// hands them to the agent). NOT_FOUND when there is no host key.
absl::StatusOr<std::string> SshKnownHostsLines(const config::ServiceConfig& cfg, const std::string& state_dir,
                                               const std::string& config_label);
void AddAssertionKeyCommand(CLI::App& root, const Globals& g, Commands* commands);

// `--json`, bound to g.json, for the subcommands that print protobuf JSON.
void AddJsonFlag(CLI::App* sub, Globals& g);

// One line of JSON (protobuf JSON mapping, snake_case names) for --json output.
std::string ToJson(const google::protobuf::Message& m);

// "interlock: <message>" on stderr; returns `code`.
int Fail(int code, const std::string& message);

}  // namespace interlock::cli
