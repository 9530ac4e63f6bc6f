// SshdServer: a real, throwaway OpenSSH sshd for SSH integration tests, benchmarks and the
// demo's checks — Debian's /usr/sbin/sshd in the foreground (-D -e), its own config, host
// key, authorized_keys and pid file in its own temp dir, listening on one loopback
// address (127.0.0.0/8 or ::1; anything else is refused). It lets in exactly one login:
// `user` (root by default: sshd needs an account with a shell, and the tests must not add
// accounts to the host) with the login key it generates (login_key(): the file interlockd's
// resource points at). Port forwarding is ALLOWED here on purpose, so that a test showing
// interlockd refuses it does not pass because the upstream refused. Stopped by pid and
// removed in the destructor, also when the test failed half-way.
//
//   auto sshd = SshdServer::Start({.address = "127.0.0.71"});
//   ASSERT_TRUE(sshd.ok()) << sshd.status();
//   // (*sshd)->host_key_sha256() pins it; (*sshd)->login_key() logs in.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace interlock::testing {

struct SshdOptions {
  std::string address = "127.0.0.71";
  uint16_t port = 0;  // 0: a free one
  std::string user = "root";
  // Log in by an OpenSSH user certificate only: the server trusts a user CA it generates
  // (TrustedUserCAKeys), authorized_keys is empty, and login_certificate() is the login
  // key's certificate for `user`.
  bool certificate_login = false;
  // More sshd_config lines ("RekeyLimit 8M\n").
  std::string extra_config;
};

class SshdServer {
 public:
  static absl::StatusOr<std::unique_ptr<SshdServer>> Start(const SshdOptions& options);
  ~SshdServer();
  SshdServer(const SshdServer&) = delete;
  SshdServer& operator=(const SshdServer&) = delete;

  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }
  const std::string& dir() const { return dir_; }
  // The private key authorized for `user` (0600), and its public half's line.
  const std::string& login_key() const { return login_key_; }
  // With certificate_login: "<login_key>-cert.pub"; else "".
  const std::string& login_certificate() const { return login_certificate_; }
  // "SHA256:..." of the server's host key, and a known_hosts file naming it for
  // [address]:port.
  const std::string& host_key_sha256() const { return host_key_sha256_; }
  const std::string& known_hosts_file() const { return known_hosts_; }
  std::string Log() const;
  pid_t pid() const { return pid_; }

 private:
  SshdServer() = default;
  std::string dir_, address_, login_key_, login_certificate_, host_key_sha256_, known_hosts_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace interlock::testing
