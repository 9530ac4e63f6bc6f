// The interception CA as the CLI sees it: what a certificate file says (for `interlock ca
// show`), and the trust material `interlock run` hands an agent so that its TLS clients
// accept the leaf certificates interlockd mints.
//
// The state dir is 0700 (interlockd re-applies it at every start), so an unprivileged
// agent cannot read anything in it. The public half is copied out instead, to
// <trust_root>/<first 16 hex digits of the CA's SHA-256>/ (root-owned, 0755): ca.crt and
// bundle.pem (the system CAs then ours, 0644). A new CA gets a new directory; a bundle
// older than the system store or than the CA certificate is rewritten.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::optional<AgentTrust> t, EnsureAgentTrust(cfg.state_dir));
//   if (t) for (auto& [k, v] : PlanTrustEnv(*t, environ).set) ...
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace interlock::cli {

inline constexpr char kAgentTrustRoot[] = "/run/interlock/trust";

struct CertInfo {
  std::string subject;     // RFC 2253 ("CN=Interlock local interception CA ...")
  std::string sha256;      // of the DER, upper-case hex pairs joined by ':'
  std::string not_before;  // "2026-12-06 13:00:00 UTC"
  std::string not_after;
  bool expired = false;  // now is past not_after
};

// Reads the first PEM certificate of `path`. Errno codes when unreadable;
// INVALID_ARGUMENT when it holds no certificate.
absl::StatusOr<CertInfo> ReadCertInfo(const std::string& path);

struct AgentTrust {
  std::string ca_file;      // for NODE_EXTRA_CA_CERTS (added to Node's own store)
  std::string bundle_file;  // for SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE
};

// nullopt when `state_dir` holds no interception-ca.crt (no CA: nothing to trust).
// Otherwise makes sure the agent-readable copies exist and are current (see above) and
// returns their paths. FAILED_PRECONDITION when a directory on the way is not root-owned
// or is writable by group/others; errno codes when a file cannot be read or written.
absl::StatusOr<std::optional<AgentTrust>> EnsureAgentTrust(
    const std::string& state_dir, const std::string& trust_root = kAgentTrustRoot,
    const std::string& system_bundle = "/etc/ssl/certs/ca-certificates.crt");

// What to add to an agent's environment. A variable already present in `environ_in`
// (even empty) is the invoker's explicit choice and is left alone: it is listed in
// `kept` instead, for a note on stderr.
struct TrustEnv {
  std::vector<std::pair<std::string, std::string>> set;  // name, value
  std::vector<std::string> kept;                         // names
};
TrustEnv PlanTrustEnv(const AgentTrust& trust, char** environ_in);

// SSH: the known_hosts lines that name interlockd's host key for the SSH resources
// (`interlock ssh known-hosts`), copied next to the CA's (same directory, so the same
// lifetime): <dir>/ssh_known_hosts, 0644, rewritten when the lines change. Returns its path.
absl::StatusOr<std::string> EnsureAgentSshKnownHosts(const AgentTrust& trust, const std::string& lines);

// What makes an agent's OpenSSH use that file without changing the agent:
//   INTERLOCK_SSH_KNOWN_HOSTS=<path>  read by the ssh_config include the package installs
//                                     (/etc/ssh/ssh_config.d/interlock.conf: a `Match exec`
//                                     block adding it to UserKnownHostsFile)
//   GIT_SSH_COMMAND=ssh -o 'UserKnownHostsFile=~/.ssh/known_hosts ~/.ssh/known_hosts2 <path>'
//                                     for git, which runs it through a shell
// A variable the invoker set is kept, as for PlanTrustEnv.
TrustEnv PlanSshTrustEnv(const std::string& known_hosts, char** environ_in);

}  // namespace interlock::cli
