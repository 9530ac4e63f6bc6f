// interlock ssh known-hosts: the known_hosts lines that make an agent's ssh trust
// interlockd for the configured SSH resources (userspace/proxy/ssh/host_keys.h).
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/interlock/cli.h"
#include "userspace/config/ip_address.h"
#include "userspace/proxy/ssh/host_keys.h"

namespace interlock::cli {

namespace {

constexpr char kSshHelp[] =
    "An enrolled agent's ssh to an SSH resource reaches interlockd, which presents its own\n"
    "host key (<state_dir>/ssh-host-key, made by `interlock ca init`). These lines tell ssh to\n"
    "accept that key for exactly the configured resources' addresses. Install them where the\n"
    "agent's ssh looks, without changing the agent:\n"
    "\n"
    "  interlock ssh known-hosts >> /etc/ssh/ssh_known_hosts      # every user of the host\n"
    "  interlock ssh known-hosts >> ~agent/.ssh/known_hosts        # one account\n"
    "\n"
    "A resource given as a prefix is written as a wildcard pattern when the prefix is a whole\n"
    "IPv4 octet boundary (/8, /16, /24), and skipped with a comment otherwise.\n"
    "\n"
    "Exit status: 0; 1 when there is no host key; 2 for bad arguments or configuration.\n";

// The known_hosts host pattern of a resource ("" when it cannot be written as one).
std::string HostPattern(const config::ResourceConfig& r) {
  std::string host;
  const bool v4 = r.prefix.address.is_v4();
  if (r.prefix.prefix_bits == 128) {
    host = config::FormatIp(r.prefix.address);
  } else if (v4 && (r.prefix.prefix_bits - 96) % 8 == 0 && r.prefix.prefix_bits > 96) {
    // "10.1.0.0/16" -> "10.1.*.*"
    std::string ip = config::FormatIp(r.prefix.address);
    int keep = static_cast<int>(r.prefix.prefix_bits - 96) / 8;
    std::string out;
    int octet = 0;
    for (absl::string_view part : absl::StrSplit(ip, '.')) {
      absl::StrAppend(&out, octet == 0 ? "" : ".", octet < keep ? std::string(part) : "*");
      ++octet;
    }
    host = out;
  } else {
    return "";
  }
  if (r.port == 22) return host;
  return absl::StrCat("[", host, "]:", r.port == 0 ? std::string("*") : absl::StrCat(r.port));
}

int KnownHosts(const Globals& g, std::string state_dir) {
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  if (state_dir.empty()) state_dir = cfg->state_dir;
  auto lines = SshKnownHostsLines(*cfg, state_dir, g.config_path);
  if (absl::IsNotFound(lines.status())) {
    return Fail(1, absl::StrCat("ssh known-hosts: no SSH host key in ", state_dir, " (run `interlock ca init`)"));
  }
  if (!lines.ok()) return Fail(1, absl::StrCat("ssh known-hosts: ", lines.status().message()));
  std::fputs(lines->c_str(), stdout);
  return 0;
}

}  // namespace

absl::StatusOr<std::string> SshKnownHostsLines(const config::ServiceConfig& cfg, const std::string& state_dir,
                                               const std::string& config_label) {
  auto key = proxy::ssh::HostKey::Load(state_dir);
  if (!key.ok()) return key.status();
  std::string out = absl::StrCat("# interlockd's SSH host key ", key->fingerprint(), " for the SSH resources of ",
                                 config_label.empty() ? "the configuration" : config_label, "\n");
  for (const config::ResourceConfig& r : cfg.resources) {
    if (r.protocol != config::Protocol::kSsh) continue;
    const std::string pattern = HostPattern(r);
    if (pattern.empty()) {
      absl::StrAppend(&out, "# ", r.name, ": ", config::FormatIpPrefix(r.prefix),
                      " cannot be written as a known_hosts pattern\n");
      continue;
    }
    absl::StrAppend(&out, pattern, " ", key->public_line(), " interlock:", r.name, "\n");
  }
  return out;
}

void AddSshCommand(CLI::App& root, const Globals& g, Commands* commands) {
  CLI::App* ssh = root.add_subcommand("ssh", "SSH resources: host trust for agents");
  ssh->require_subcommand(1);
  ssh->footer(kSshHelp);
  auto state_dir = std::make_shared<std::string>();
  CLI::App* kh = ssh->add_subcommand("known-hosts", "known_hosts lines for the SSH resources");
  kh->add_option("--state-dir", *state_dir, "where the host key is (default: the state dir)")->option_text("DIR");
  kh->footer(kSshHelp);
  commands->push_back({kh, [&g, state_dir] { return KnownHosts(g, *state_dir); }});
}

}  // namespace interlock::cli
