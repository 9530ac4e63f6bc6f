// interlock: the administrator's command line for interlockd.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "google/protobuf/util/json_util.h"
#include "tools/interlock/cli.h"

namespace interlock::cli {

namespace {

constexpr char kDefaultConfigPath[] = "/etc/interlock/interlock.yaml";

constexpr char kUsage[] =
    "usage: interlock [--config PATH] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  run --as NAME [--user U] -- CMD...         run CMD as an enrolled, unprivileged workload\n"
    "  status [--json]                            interlockd state, enrollments\n"
    "  sessions [--json]                          recorded and live sessions\n"
    "  replay ID [--hex] [--raw DIR]              a session's timeline\n"
    "  replay ID --unseal KEYFILE                 ... with the originals masking replaced\n"
    "  verify ID                                  check a recording's hash chain and seal\n"
    "  verify --audit [FILE...]                   check the audit log's chain and checkpoints\n"
    "  report [--from T] [--to T] [--format md|html|json]  the evidence summary of a period\n"
    "  auditor-keygen --out PREFIX                key pair for sealed masked originals\n"
    "  ca init|show|bundle                        the local CA for HTTPS interception\n"
    "  assertion-key init|show                    the key of Interlock-Assertion headers\n"
    "  teardown                                   remove pins and cgroups (interlockd stopped)\n"
    "  approvals [--all] [--json]                 statements held for review\n"
    "  approve ID [--reason TEXT] [--for 15m]     release a held statement\n"
    "  deny ID --reason TEXT                      refuse a held statement (42501)\n"
    "  grant --workload W --resource R --for 15m --reason TEXT   just-in-time access\n"
    "  grants [--all] [--json]                    active grants\n"
    "  revoke ID                                  end a grant now\n"
    "  reload                                     re-read the policy file\n"
    "\n"
    "Every command takes --help. The configuration is read from --config, $INTERLOCK_CONFIG,\n"
    "/etc/interlock/interlock.yaml or the embedded default, in that order.\n";

}  // namespace

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "interlock: %s\n", message.c_str());
  return code;
}

bool WantsHelp(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--") return false;
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

absl::StatusOr<config::ServiceConfig> LoadCliConfig(const Globals& g) {
  std::string path = g.config_path;
  if (path.empty()) {
    const char* env = std::getenv("INTERLOCK_CONFIG");
    if (env != nullptr && *env != '\0') path = env;
  }
  if (path.empty() && ::access(kDefaultConfigPath, R_OK) == 0) path = kDefaultConfigPath;
  if (path.empty()) return config::LoadConfigText(config::DefaultConfigText(), "<embedded default>");
  return config::LoadConfigFile(path);
}

}  // namespace interlock::cli

int main(int argc, char** argv) {
  using namespace interlock::cli;
  Globals g;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      g.config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      g.config_path = a.substr(9);
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      break;
    }
  }
  if (i >= argc) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[i++];
  std::vector<std::string> args(argv + i, argv + argc);
  for (const std::string& a : args) {
    if (a == "--") break;
    if (a == "--json") g.json = true;
  }
  static const std::map<std::string, int (*)(const Globals&, const std::vector<std::string>&)>
      kCommands = {{"run", CmdRun},         {"status", CmdStatus}, {"sessions", CmdSessions},
                   {"replay", CmdReplay},   {"verify", CmdVerify}, {"teardown", CmdTeardown},
                   {"approvals", CmdApprovals}, {"approve", CmdApprove}, {"deny", CmdDeny},
                   {"grant", CmdGrant},     {"grants", CmdGrants}, {"revoke", CmdRevoke},
                   {"reload", CmdReload},   {"auditor-keygen", CmdAuditorKeygen},
                   {"ca", CmdCa},           {"assertion-key", CmdAssertionKey},
                   {"report", CmdReport}};
  auto it = kCommands.find(cmd);
  if (it == kCommands.end()) {
    std::fprintf(stderr, "interlock: unknown command \"%s\"\n\n%s", cmd.c_str(), kUsage);
    return 2;
  }
  return it->second(g, args);
}
