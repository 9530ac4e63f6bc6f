// interlockd: the Interlock enforcement engine.
//
//   interlockd [--config PATH] [--check-config] [--verbose] [--version]
//
// The flags are parsed with CLI11, as the interlock CLI's are: "--config PATH" and
// "--config=PATH" both work; an unknown flag or argument is a usage error (exit 2). CLI11's
// exceptions (errors, --help, --version) are caught around parse() and nowhere else.
// Without --config, /etc/interlock/interlock.yaml is used when it exists, else the
// embedded default configuration (see userspace/config/default_config.yaml).
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "userspace/common/clock.h"
#include "userspace/common/log.h"
#include "userspace/config/config.h"
#include "userspace/daemon/config_check.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/handover.h"
#include "userspace/common/version.h"


namespace {

constexpr char kDefaultConfigPath[] = "/etc/interlock/interlock.yaml";

constexpr char kFooter[] =
    "Without --config, /etc/interlock/interlock.yaml is used when it exists, else the\n"
    "embedded default configuration (interlock.yaml(5)). interlockd runs as root: it loads\n"
    "eBPF programs and manages cgroups. SIGHUP reloads the policy file. SIGUSR2 (or\n"
    "`interlock upgrade`) hands the listening sockets to the interlockd now on disk, which\n"
    "serves from then on; this one drains its sessions and exits 0.\n"
    "\n"
    "Exit status: 0 after a clean stop (SIGTERM, SIGINT), a live upgrade's drain or a valid\n"
    "--check-config; 1 when it cannot start or fails; 2 for bad arguments or an invalid\n"
    "configuration.";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  bool verbose = false;
  CLI::App app(
      "interlockd: the Interlock enforcement engine. Loads the eBPF redirect, relays and\n"
      "records enrolled workloads' sessions to protected resources, serves the control API.",
      "interlockd");
  app.set_help_flag("-h,--help", "print this help and exit");
  app.set_version_flag("--version", absl::StrCat("interlockd ", interlock::InterlockVersion()),
                       "print the version and exit");
  app.add_option("--config", config_path,
                 "the configuration file (default: /etc/interlock/interlock.yaml if present)")
      ->option_text("PATH");
  app.add_flag("--check-config", check_only,
               "validate the configuration and every file and group it names, and exit");
  bool syntax_only = false;
  app.add_flag("--syntax-only", syntax_only,
               "with --check-config: the file's form only, not the files and groups it names "
               "(a configuration for another host, as when a package is built)")
      ->needs("--check-config");
  app.add_flag("--verbose", verbose, "debug logging");
  app.footer(kFooter);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
    std::fprintf(stderr, "interlockd: %s (interlockd --help)\n", what.c_str());
    return 2;
  }
  // `interlock upgrade` starts the program on disk with these same arguments.
  interlock::daemon::Handover::SetCommandLine(argc, argv);
  if (verbose) interlock::SetLogLevel(interlock::LogLevel::kDebug);
  if (config_path.empty() && ::access(kDefaultConfigPath, R_OK) == 0) {
    config_path = kDefaultConfigPath;
  }
  auto config = config_path.empty()
                    ? interlock::config::LoadConfigText(interlock::config::DefaultConfigText(),
                                                        "<embedded default>")
                    : interlock::config::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "interlockd: config: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (check_only) {
    // Well-formed is not enough: every file it names must open and parse as interlockd
    // will use it (secrets, certificates, the policy and its mask profiles, the CA).
    std::vector<interlock::daemon::ConfigFileProblem> problems;
    if (!syntax_only) problems = interlock::daemon::CheckConfigFiles(*config);
    for (const auto& p : problems) {
      std::fprintf(stderr, "interlockd: config: %s: %s\n", p.where.c_str(), p.problem.c_str());
    }
    if (!problems.empty()) return 2;
    std::printf("configuration %s is valid%s\n", config_path.empty() ? "<embedded default>" : config_path.c_str(),
                syntax_only ? " (its form; the files it names were not checked)" : ", and every file it names");
    return 0;
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "interlockd: must run as root (loads eBPF programs, manages cgroups)\n");
    return 1;
  }
  auto engine = interlock::daemon::Engine::Create(std::move(*config),
                                                  interlock::RealClock::Get());
  if (!engine.ok()) {
    std::fprintf(stderr, "interlockd: %s\n", std::string(engine.status().message()).c_str());
    return 1;
  }
  absl::Status st = (*engine)->Run();
  if (!st.ok()) {
    std::fprintf(stderr, "interlockd: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
