#include "tools/interlock/trust.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/net/interception_ca.h"
#include "userspace/net/openssl_util.h"

namespace interlock::cli {

namespace {

constexpr char kCaCopy[] = "ca.crt";
constexpr char kBundle[] = "bundle.pem";
constexpr char kSshKnownHosts[] = "ssh_known_hosts";
constexpr size_t kDirFingerprintHex = 16;

std::string FormatTime(const ASN1_TIME* t) {
  tm parts{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &parts) != 1) return "(unreadable)";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromTM(parts, absl::UTCTimeZone()),
                          absl::UTCTimeZone());
}

// Created with 0755 when missing; then it must be a directory we own that nobody else can
// write, or an agent-side user could swap the files an agent is told to trust.
absl::Status EnsureTrustDir(const std::string& dir) {
  INTERLOCK_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", dir));
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": not a directory owned by uid ", ::geteuid(), " and writable by no one else (mode ",
        absl::Hex(st.st_mode & 07777), ", owner ", st.st_uid, ")"));
  }
  return absl::OkStatus();
}

bool OlderThan(const struct stat& a, const struct stat& b) {
  if (a.st_mtim.tv_sec != b.st_mtim.tv_sec) return a.st_mtim.tv_sec < b.st_mtim.tv_sec;
  return a.st_mtim.tv_nsec < b.st_mtim.tv_nsec;
}

}  // namespace

absl::StatusOr<CertInfo> ReadCertInfo(const std::string& path) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  net::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  net::X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, net::NoPassword, nullptr)
                        : nullptr);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no PEM certificate (", net::TakeOpensslReason(), ")"));
  }
  CertInfo info;
  net::BioPtr out(BIO_new(BIO_s_mem()));
  if (out != nullptr &&
      X509_NAME_print_ex(out.get(), X509_get_subject_name(cert.get()), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    long n = BIO_get_mem_data(out.get(), &data);
    info.subject.assign(data, static_cast<size_t>(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &md_len) != 1) {
    return absl::InternalError(absl::StrCat(path, ": sha-256: ", net::TakeOpensslReason()));
  }
  std::vector<std::string> pairs;
  for (unsigned int i = 0; i < md_len; ++i) {
    pairs.push_back(absl::AsciiStrToUpper(absl::StrCat(absl::Hex(md[i], absl::kZeroPad2))));
  }
  info.sha256 = absl::StrJoin(pairs, ":");
  info.not_before = FormatTime(X509_get0_notBefore(cert.get()));
  info.not_after = FormatTime(X509_get0_notAfter(cert.get()));
  info.expired = X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0;
  return info;
}

absl::StatusOr<std::optional<AgentTrust>> EnsureAgentTrust(const std::string& state_dir,
                                                           const std::string& trust_root,
                                                           const std::string& system_bundle) {
  const std::string ca_path = absl::StrCat(state_dir, "/", net::kInterceptionCaCertFile);
  struct stat ca_st {};
  if (::stat(ca_path.c_str(), &ca_st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return ErrnoStatus(errno, absl::StrCat("stat ", ca_path));
  }
  INTERLOCK_ASSIGN_OR_RETURN(CertInfo info, ReadCertInfo(ca_path));
  std::string hex;
  for (char c : info.sha256) {
    if (c != ':') hex.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  const std::string dir = absl::StrCat(trust_root, "/", hex.substr(0, kDirFingerprintHex));
  INTERLOCK_RETURN_IF_ERROR(EnsureTrustDir(trust_root));
  INTERLOCK_RETURN_IF_ERROR(EnsureTrustDir(dir));
  AgentTrust trust{absl::StrCat(dir, "/", kCaCopy), absl::StrCat(dir, "/", kBundle)};

  INTERLOCK_ASSIGN_OR_RETURN(std::string ca_pem, ReadFile(ca_path));
  auto copy = ReadFile(trust.ca_file);
  if (!copy.ok() || *copy != ca_pem) {
    INTERLOCK_RETURN_IF_ERROR(WriteFileAtomic(trust.ca_file, ca_pem, 0644));
  }
  struct stat bundle_st {};
  struct stat system_st {};
  bool stale = ::stat(trust.bundle_file.c_str(), &bundle_st) != 0 || OlderThan(bundle_st, ca_st) ||
               (::stat(system_bundle.c_str(), &system_st) == 0 && OlderThan(bundle_st, system_st));
  if (stale) {
    INTERLOCK_RETURN_IF_ERROR(
        net::WriteTrustBundle(trust.ca_file, trust.bundle_file, system_bundle));
  }
  return trust;
}

namespace {

// Each wanted variable is set unless the invoker's environment has it (even empty).
TrustEnv Plan(const std::vector<std::pair<const char*, std::string>>& wanted, char** environ_in) {
  TrustEnv out;
  for (const auto& [name, value] : wanted) {
    const std::string prefix = absl::StrCat(name, "=");
    bool present = false;
    for (char** e = environ_in; e != nullptr && *e != nullptr && !present; ++e) {
      present = std::strncmp(*e, prefix.c_str(), prefix.size()) == 0;
    }
    if (present) {
      out.kept.push_back(name);
    } else {
      out.set.emplace_back(name, value);
    }
  }
  return out;
}

}  // namespace

TrustEnv PlanTrustEnv(const AgentTrust& trust, char** environ_in) {
  return Plan({{"SSL_CERT_FILE", trust.bundle_file},
               {"REQUESTS_CA_BUNDLE", trust.bundle_file},
               {"CURL_CA_BUNDLE", trust.bundle_file},
               {"NODE_EXTRA_CA_CERTS", trust.ca_file}},
              environ_in);
}

absl::StatusOr<std::string> EnsureAgentSshKnownHosts(const AgentTrust& trust, const std::string& lines) {
  const std::string path = absl::StrCat(trust.ca_file.substr(0, trust.ca_file.rfind('/') + 1), kSshKnownHosts);
  auto current = ReadFile(path);
  if (!current.ok() || *current != lines) INTERLOCK_RETURN_IF_ERROR(WriteFileAtomic(path, lines, 0644));
  return path;
}

TrustEnv PlanSshTrustEnv(const std::string& known_hosts, char** environ_in) {
  // The path is ours (hex digits under /run/interlock/trust): nothing in it needs quoting
  // inside the single quotes.
  return Plan({{"INTERLOCK_SSH_KNOWN_HOSTS", known_hosts},
               {"GIT_SSH_COMMAND",
                absl::StrCat("ssh -o 'UserKnownHostsFile=~/.ssh/known_hosts ~/.ssh/known_hosts2 ", known_hosts, "'")}},
              environ_in);
}

}  // namespace interlock::cli
