// The keys an SSH session stands on, loaded and checked before any byte is relayed:
//
//   - interlockd's own host key (<state_dir>/ssh-host-key, `interlock ca init`): what the
//     agent's ssh sees as the server's key. Agents trust it through known_hosts lines
//     (`interlock ssh known-hosts`); libssh 0.10's server side cannot present an OpenSSH host
//     certificate (it advertises only plain key algorithms), so there is no @cert-authority
//     line to install — see SECURITY.md "SSH host trust".
//   - the upstream's host key, pinned per resource (known_hosts file and/or SHA256
//     fingerprints): UpstreamKeyMatches says whether a key the upstream presented is one of
//     them. Never trust on first use.
//   - the private key (and optional user certificate) interlockd logs in upstream with,
//     read from its file reference at each session (LoadLoginKey).
//
//   INTERLOCK_ASSIGN_OR_RETURN(HostKey host, HostKey::Load(state_dir));
//   KeyPtr per_session = host.Copy();         // ssh_bind takes ownership of its key
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/config/config.h"
#include "userspace/proxy/ssh/libssh.h"

namespace interlock::proxy::ssh {

// The host key file's name in the state directory.
inline constexpr absl::string_view kHostKeyFile = "ssh-host-key";

class HostKey {
 public:
  // Loads <state_dir>/ssh-host-key: NOT_FOUND when absent; FAILED_PRECONDITION when it is
  // readable by anyone but its owner, or is not an unencrypted OpenSSH private key.
  static absl::StatusOr<HostKey> Load(const std::string& state_dir);
  // Creates a new Ed25519 host key in <state_dir>/ssh-host-key (0600). ALREADY_EXISTS when
  // one exists, unless `replace` (agents must then be given the new known_hosts lines).
  static absl::StatusOr<HostKey> Init(const std::string& state_dir, bool replace);
  // A fresh copy of the private key (libssh's ssh_bind frees the key it is given).
  KeyPtr Copy() const;
  // "ssh-ed25519 AAAA..." as a known_hosts line carries it.
  const std::string& public_line() const { return public_line_; }
  // "SHA256:..." of the public key, as `ssh-keygen -l` and ssh's prompts print it.
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  std::string pem_;  // the private key file's text
  std::string public_line_;
  std::string fingerprint_;
};

// "SHA256:<unpadded base64>" of `key`, as `ssh-keygen -l` prints it.
absl::StatusOr<std::string> Sha256Fingerprint(ssh_key key);

// Whether the host key `session` (connected, key exchange done) presented is pinned by
// `config`: its fingerprint is listed, or the known_hosts file names it for the host and
// port `session` was told (SSH_OPTIONS_HOST/PORT). OK when it is; PERMISSION_DENIED naming
// the key's fingerprint when it is not (or known_hosts revokes it); other errors when the
// file cannot be read.
absl::Status CheckUpstreamHostKey(ssh_session session, const config::SshConfig& config);

// The private key of `login` (file reference, owner-only), with its certificate attached
// when certificate_file is set. Errors name the file, never the key's bytes.
absl::StatusOr<KeyPtr> LoadLoginKey(const config::SshLoginConfig& login);

}  // namespace interlock::proxy::ssh
