// interlock ca init | show | bundle: the local interception CA interlockd uses to
// terminate agents' HTTPS (userspace/net/interception_ca.h), kept in the state dir.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/interlock/cli.h"
#include "tools/interlock/trust.h"
#include "userspace/common/clock.h"
#include "userspace/net/interception_ca.h"
#include "userspace/proxy/ssh/host_keys.h"

namespace interlock::cli {

namespace {

constexpr char kCaHelp[] =
    "The local CA interlockd mints HTTPS leaf certificates with, for agents whose TLS it\n"
    "terminates, and the SSH host key interlockd presents to agents' ssh. Kept in the state\n"
    "dir (--state-dir, else the configuration's state_dir): interception-ca.key (0600),\n"
    "interception-ca.crt and ssh-host-key (0600).\n"
    "\n"
    "  init    create whichever of the two is missing; refused when both exist, unless\n"
    "          --replace (agents then need the new certificate, which `interlock run` hands\n"
    "          them by itself, and the new `interlock ssh known-hosts` lines)\n"
    "  show    the certificate's path, subject, SHA-256 fingerprint and validity, and the\n"
    "          SSH host key's fingerprint\n"
    "  bundle  write FILE (0644): the system CAs, then ours. For clients that take one\n"
    "          CA file; system-wide enrolment is update-ca-certificates (see README)\n"
    "\n"
    "Exit status: 0; 1 when the operation fails; 2 for bad arguments or configuration.\n";

void PrintCert(const std::string& path, const CertInfo& info) {
  std::printf("certificate %s\nsubject     %s\nsha256      %s\nvalid       %s .. %s%s\n",
              path.c_str(), info.subject.c_str(), info.sha256.c_str(), info.not_before.c_str(),
              info.not_after.c_str(), info.expired ? "  (EXPIRED)" : "");
}

struct CaOptions {
  std::string state_dir;
  std::string out;
  bool replace = false;
};

int Ca(const Globals& g, const std::string& sub, CaOptions o) {
  std::string& state_dir = o.state_dir;
  const std::string& out = o.out;
  const bool replace = o.replace;
  if (sub == "bundle" && out.empty()) return Fail(2, "ca bundle: --out FILE is required");
  if (state_dir.empty()) {
    auto cfg = LoadCliConfig(g);
    if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
    state_dir = cfg->state_dir;
  }
  const std::string cert_path = absl::StrCat(state_dir, "/", net::kInterceptionCaCertFile);

  bool created_ca = false;
  if (sub == "init") {
    // Each of the two is made when missing: an install from before SSH gets its host key.
    auto ca = net::LocalCa::Init(state_dir, RealClock::Get(), replace);
    if (!ca.ok() && !absl::IsAlreadyExists(ca.status())) return Fail(1, absl::StrCat("ca init: ", ca.status().message()));
    created_ca = ca.ok();
    auto host = proxy::ssh::HostKey::Init(state_dir, replace);
    if (!host.ok() && !absl::IsAlreadyExists(host.status())) {
      return Fail(1, absl::StrCat("ca init: SSH host key: ", host.status().message()));
    }
    if (host.ok()) std::printf("created a new SSH host key %s\n", host->fingerprint().c_str());
    if (!created_ca && !host.ok()) {
      return Fail(1, absl::StrCat("ca init: a CA and an SSH host key exist in ", state_dir,
                                  " (--replace makes new ones; agents must then trust them)"));
    }
    if (!created_ca) return 0;
  } else {
    // Load checks the pair (key private and matching the certificate), not only the file.
    auto ca = net::LocalCa::Load(state_dir, RealClock::Get());
    if (absl::IsNotFound(ca.status())) {
      return Fail(1, absl::StrCat("ca ", sub, ": no CA in ", state_dir,
                                  " (create one with `interlock ca init`)"));
    }
    if (!ca.ok()) return Fail(1, absl::StrCat("ca ", sub, ": ", ca.status().message()));
  }
  if (sub == "bundle") {
    absl::Status st = net::WriteTrustBundle(cert_path, out);
    if (!st.ok()) return Fail(1, absl::StrCat("ca bundle: ", st.message()));
    std::printf("wrote %s (system CAs + %s)\n", out.c_str(), cert_path.c_str());
    return 0;
  }
  auto info = ReadCertInfo(cert_path);
  if (!info.ok()) return Fail(1, absl::StrCat("ca ", sub, ": ", info.status().message()));
  if (sub == "init") std::printf("created a new interception CA\n");
  PrintCert(cert_path, *info);
  if (sub == "show") {
    auto host = proxy::ssh::HostKey::Load(state_dir);
    if (host.ok()) {
      std::printf("ssh host key %s/%s\nsha256       %s\n", state_dir.c_str(), std::string(proxy::ssh::kHostKeyFile).c_str(),
                  host->fingerprint().c_str());
    } else if (!absl::IsNotFound(host.status())) {
      return Fail(1, absl::StrCat("ca show: SSH host key: ", host.status().message()));
    }
  }
  return 0;
}

}  // namespace

void AddCaCommand(CLI::App& root, const Globals& g, Commands* commands) {
  CLI::App* ca = root.add_subcommand("ca", "the local CA for HTTPS interception");
  ca->require_subcommand(1);
  ca->footer(kCaHelp);
  auto o = std::make_shared<CaOptions>();
  struct Sub {
    const char* name;
    const char* what;
  };
  for (const Sub& s : {Sub{"init", "create the CA"},
                       Sub{"show", "the certificate's path, subject, fingerprint and validity"},
                       Sub{"bundle", "write the system CAs, then ours, to FILE"}}) {
    CLI::App* sub = ca->add_subcommand(s.name, s.what);
    sub->add_option("--state-dir", o->state_dir, "the CA's directory (default: the state dir)")
        ->option_text("DIR");
    if (std::string(s.name) == "init") sub->add_flag("--replace", o->replace, "replace an existing CA");
    if (std::string(s.name) == "bundle") {
      sub->add_option("--out", o->out, "the bundle to write (0644, required)")->option_text("FILE")->required();
    }
    sub->footer(kCaHelp);
    commands->push_back({sub, [&g, o, name = std::string(s.name)] { return Ca(g, name, *o); }});
  }
}

}  // namespace interlock::cli
