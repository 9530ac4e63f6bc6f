// interlockd: the Interlock enforcement engine.
//
//   interlockd [--config PATH] [--check-config] [--verbose]
//
// Without --config, /etc/interlock/interlock.yaml is used when it exists, else the
// embedded default configuration (see userspace/config/default_config.yaml).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "userspace/common/clock.h"
#include "userspace/common/log.h"
#include "userspace/config/config.h"
#include "userspace/daemon/engine.h"

namespace {

constexpr char kDefaultConfigPath[] = "/etc/interlock/interlock.yaml";

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: interlockd [--config PATH] [--check-config] [--verbose]\n"
               "\n"
               "Interlock enforcement engine: loads the eBPF redirect, relays and records\n"
               "enrolled workloads' sessions to protected resources, serves the control API.\n"
               "\n"
               "  --config PATH    configuration file (default %s if present,\n"
               "                   else the embedded default)\n"
               "  --check-config   validate the configuration, print it, exit\n"
               "  --verbose        debug logging\n",
               kDefaultConfigPath);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--verbose") {
      interlock::SetLogLevel(interlock::LogLevel::kDebug);
    } else if (arg == "--help" || arg == "-h") {
      Usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "interlockd: unknown argument %s\n", arg.c_str());
      Usage(stderr);
      return 2;
    }
  }
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
    std::printf("configuration %s is valid\n",
                config_path.empty() ? "<embedded default>" : config_path.c_str());
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
