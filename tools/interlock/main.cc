// interlock: the administrator's command line for interlockd.
//
// One parser for every subcommand (CLI11, cli.h): "--flag VALUE" and "--flag=VALUE" both
// work, unknown flags and extra arguments are refused, every command takes -h/--help and
// --config may come before or after the command. A usage error is one line on stderr,
// "interlock: COMMAND: what is wrong (interlock COMMAND --help)", and exit status 2 — 125
// for `interlock run`, whose other exit statuses are CMD's (as env(1) and timeout(1) do).
//
// `interlock run`'s CMD is everything after the first "--", handed on verbatim: the parser
// sees only the part before it, so none of CMD's own flags can be taken for ours.
//
// CLI11 reports parse results (errors, --help, --version) as exceptions: Main catches them
// around parse() and turns them into exit codes; no other code sees one.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/control/client.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "tools/interlock/cli.h"
#include "userspace/common/version.h"


namespace interlock::cli {

namespace {

constexpr char kDefaultConfigPath[] = "/etc/interlock/interlock.yaml";

constexpr char kFooter[] =
    "Every command takes --help. The configuration is read from --config, $INTERLOCK_CONFIG,\n"
    "/etc/interlock/interlock.yaml or the embedded default, in that order.\n"
    "\n"
    "Exit status: 0 on success; 1 when the operation fails; 2 for bad arguments or\n"
    "configuration. interlock run exits with CMD's status, or 125 when it fails itself;\n"
    "verify and report exit 3 for an incomplete and 4 for a tampered recording or log.";

// The subcommands the parser entered, outermost first ("ca", "init").
std::vector<const CLI::App*> ParsedChain(const CLI::App& root) {
  std::vector<const CLI::App*> chain;
  const CLI::App* app = &root;
  while (!app->get_subcommands().empty()) {
    app = app->get_subcommands().front();
    chain.push_back(app);
  }
  return chain;
}

// The index of CMD's "--" when the command is `run`, else argc. Only --config takes a
// value before the command.
int RunCommandSplit(int argc, char** argv) {
  int i = 1;
  while (i < argc && argv[i][0] == '-' && std::strcmp(argv[i], "--") != 0) {
    i += std::strcmp(argv[i], "--config") == 0 ? 2 : 1;
  }
  if (i >= argc || std::strcmp(argv[i], "run") != 0) return argc;
  for (int j = i + 1; j < argc; ++j) {
    if (std::strcmp(argv[j], "--") == 0) return j;
  }
  return argc;
}

// "init, show or bundle"
std::string Names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (!sub->get_group().empty()) names.push_back(sub->get_name());
  }
  if (names.size() < 2) return absl::StrJoin(names, "");
  const std::string last = names.back();
  names.pop_back();
  return absl::StrCat(absl::StrJoin(names, ", "), " or ", last);
}

// One line for a usage error, in our words where CLI11's would read oddly.
std::string UsageMessage(const CLI::ParseError& e, const CLI::App& root,
                         const std::vector<const CLI::App*>& chain) {
  const CLI::App& where = chain.empty() ? root : *chain.back();
  absl::string_view said = e.what();
  std::string what(said);
  if (absl::ConsumePrefix(&said, "The following argument was not expected: ")) {
    what = absl::StrCat("unexpected argument \"", said, "\"");
  } else if (absl::ConsumePrefix(&said, "The following arguments were not expected: ")) {
    what = absl::StrCat("unexpected arguments \"", said, "\"");
  } else if (what == "A subcommand is required") {
    std::vector<std::string> stray = root.remaining(true);
    what = stray.empty() ? absl::StrCat("which one: ", Names(where))
                         : absl::StrCat("unknown command \"", stray.front(), "\"",
                                        chain.empty() ? "" : absl::StrCat(", not ", Names(where)));
  }
  std::string path;
  for (const CLI::App* sub : chain) absl::StrAppend(&path, path.empty() ? "" : " ", sub->get_name());
  if (!path.empty() && chain.back()->get_name() == "run" && absl::StartsWith(what, "unexpected")) {
    absl::StrAppend(&what, " (CMD goes after --)");
  }
  return absl::StrCat(path, path.empty() ? "" : ": ", what, " (interlock ", path, path.empty() ? "" : " ",
                      "--help)");
}

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

void AddJsonFlag(CLI::App* sub, Globals& g) {
  sub->add_flag("--json", g.json, "one JSON object per line (protobuf JSON mapping)");
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

absl::StatusOr<v1::ControlResponse> Call(const Globals& g, const v1::ControlRequest& req) {
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return cfg.status();
  return control::CallControl(cfg->control_socket, req);
}

namespace {

int Main(int argc, char** argv) {
  Globals g;
  const int split = RunCommandSplit(argc, argv);
  // CMD of `interlock run`: what follows its "--"; nullopt when there is none.
  std::optional<std::vector<std::string>> run_cmd;
  if (split < argc) run_cmd.emplace(argv + split + 1, argv + argc);

  CLI::App app("interlock: the administrator's command line for interlockd", "interlock");
  app.set_help_flag("-h,--help", "print this help and exit");
  app.set_version_flag("--version", absl::StrCat("interlock ", InterlockVersion()),
                       "print the version and exit");
  app.add_option("--config", g.config_path, "interlockd's configuration file")->option_text("PATH");
  app.require_subcommand(1);
  app.fallthrough();  // --config after the command too
  app.footer(kFooter);

  Commands commands;
  AddRunCommand(app, g, run_cmd, &commands);
  AddAdminCommands(app, g, &commands);
  AddRecordingCommands(app, g, &commands);
  AddReportCommand(app, g, &commands);
  AddApprovalCommands(app, g, &commands);
  AddAuditorKeygenCommand(app, g, &commands);
  AddCaCommand(app, g, &commands);
  AddSshCommand(app, g, &commands);
  AddAssertionKeyCommand(app, g, &commands);

  if (argc <= 1) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  try {
    app.parse(split, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::vector<const CLI::App*> chain = ParsedChain(app);
    int code = 2;
    for (const Command& c : commands) {
      for (const CLI::App* sub : chain) {
        if (c.app == sub) code = c.usage_exit;
      }
    }
    return Fail(code, UsageMessage(e, app, chain));
  }
  const std::vector<const CLI::App*> chain = ParsedChain(app);
  for (const Command& c : commands) {
    if (!chain.empty() && c.app == chain.back()) return c.run();
  }
  std::fputs(app.help().c_str(), stderr);
  return 2;
}

}  // namespace

}  // namespace interlock::cli

int main(int argc, char** argv) { return interlock::cli::Main(argc, argv); }
