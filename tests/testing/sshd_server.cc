#include "tests/testing/sshd_server.h"

#include <sys/stat.h>

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {

namespace {

absl::StatusOr<std::string> Keygen(const std::string& path) {
  CommandResult r = RunCommand({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "interlock-test", "-f", path});
  if (r.exit_code != 0) return absl::InternalError(absl::StrCat("ssh-keygen: ", r.err));
  CommandResult fp = RunCommand({"/usr/bin/ssh-keygen", "-l", "-f", path + ".pub"});
  const size_t at = fp.out.find("SHA256:");
  if (fp.exit_code != 0 || at == std::string::npos) return absl::InternalError(absl::StrCat("ssh-keygen -l: ", fp.err));
  return fp.out.substr(at, fp.out.find(' ', at) - at);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SshdServer>> SshdServer::Start(const SshdOptions& options) {
  if (!absl::StartsWith(options.address, "127.") && options.address != "::1") {
    return absl::InvalidArgumentError(absl::StrCat(options.address, ": tests use loopback addresses only"));
  }
  std::unique_ptr<SshdServer> s(new SshdServer());
  s->dir_ = MakeTempDir("interlock-sshd-");
  s->address_ = options.address;
  s->port_ = options.port != 0 ? options.port : FreePort(options.address);
  const std::string host_key = absl::StrCat(s->dir_, "/host_ed25519");
  auto host_fp = Keygen(host_key);
  if (!host_fp.ok()) return host_fp.status();
  s->host_key_sha256_ = *host_fp;
  s->login_key_ = absl::StrCat(s->dir_, "/login_key");
  auto login_fp = Keygen(s->login_key_);
  if (!login_fp.ok()) return login_fp.status();
  auto login_pub = ReadFile(s->login_key_ + ".pub");
  auto host_pub = ReadFile(host_key + ".pub");
  if (!login_pub.ok() || !host_pub.ok()) return absl::InternalError("ssh-keygen wrote no public key");
  absl::Status st =
      WriteFileAtomic(absl::StrCat(s->dir_, "/authorized_keys"), options.certificate_login ? "" : *login_pub, 0600);
  if (!st.ok()) return st;
  std::string user_ca_line;
  if (options.certificate_login) {
    const std::string ca = absl::StrCat(s->dir_, "/user_ca");
    auto ca_fp = Keygen(ca);
    if (!ca_fp.ok()) return ca_fp.status();
    CommandResult sign = RunCommand({"/usr/bin/ssh-keygen", "-q", "-s", ca, "-I", "interlock-test", "-n", options.user,
                                     "-V", "-5m:+1h", s->login_key_ + ".pub"});
    if (sign.exit_code != 0) return absl::InternalError(absl::StrCat("ssh-keygen -s: ", sign.err));
    s->login_certificate_ = s->login_key_ + "-cert.pub";
    user_ca_line = absl::StrCat("TrustedUserCAKeys ", ca, ".pub\n");
  }
  const std::string host_pattern =
      options.address == "::1" ? absl::StrCat("[::1]:", s->port_) : absl::StrCat("[", options.address, "]:", s->port_);
  std::vector<std::string> pub_fields = absl::StrSplit(*host_pub, ' ');
  s->known_hosts_ = absl::StrCat(s->dir_, "/known_hosts");
  st = WriteFileAtomic(s->known_hosts_, absl::StrCat(host_pattern, " ", pub_fields[0], " ", pub_fields[1], "\n"), 0644);
  if (!st.ok()) return st;
  const std::string config = absl::StrCat(
      "Port ", s->port_, "\nListenAddress ", options.address, "\nHostKey ", host_key, "\nPidFile ", s->dir_,
      "/sshd.pid\nAuthorizedKeysFile ", s->dir_, "/authorized_keys\nAllowUsers ", options.user,
      "\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
      "KbdInteractiveAuthentication no\nUsePAM no\nAllowTcpForwarding yes\nAllowAgentForwarding yes\n"
      "X11Forwarding no\nAcceptEnv LANG LC_* INTERLOCK_TEST_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
      "LogLevel VERBOSE\n", user_ca_line, options.extra_config);
  const std::string config_path = absl::StrCat(s->dir_, "/sshd_config");
  st = WriteFileAtomic(config_path, config, 0644);
  if (!st.ok()) return st;
  // sshd wants its privilege separation directory; the package makes it at service start,
  // which never happens here. Left in place: it is the system's own, empty, directory.
  ::mkdir("/run/sshd", 0755);
  CommandResult check = RunCommand({"/usr/sbin/sshd", "-t", "-f", config_path});
  if (check.exit_code != 0) return absl::InternalError(absl::StrCat("sshd -t: ", check.err));
  s->pid_ = Spawn({"/usr/sbin/sshd", "-D", "-e", "-f", config_path}, absl::StrCat(s->dir_, "/sshd.log"));
  if (s->pid_ <= 0) return absl::InternalError("could not start sshd");
  const bool up = WaitFor([&] { return absl::StrContains(s->Log(), "Server listening on"); }, 15);
  if (!up) return absl::InternalError(absl::StrCat("sshd did not start: ", s->Log()));
  return s;
}

SshdServer::~SshdServer() {
  if (pid_ > 0) KillProcess(pid_);
  RemoveTree(dir_);
}

std::string SshdServer::Log() const {
  auto log = ReadFile(absl::StrCat(dir_, "/sshd.log"));
  return log.ok() ? *log : "";
}

}  // namespace interlock::testing
