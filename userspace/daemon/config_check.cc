#include "userspace/daemon/config_check.h"

#include <grp.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/auth/secret.h"
#include "userspace/common/clock.h"
#include "userspace/common/file_util.h"
#include "userspace/mask/masker.h"
#include "userspace/net/interception_ca.h"
#include "userspace/net/tls.h"
#include "userspace/proxy/ssh/host_keys.h"
#include "userspace/policy/loader.h"
#include "userspace/record/sealed_box.h"

namespace interlock::daemon {

namespace {

class Checker {
 public:
  explicit Checker(const config::ServiceConfig& config) : config_(config) {}

  void Problem(const std::string& field, const absl::Status& st) {
    if (st.ok()) return;
    problems_.push_back(ConfigFileProblem{config_.source.Where(field), std::string(st.message())});
  }

  // A secret reference: the file must be a regular file only its owner can read, not empty.
  void Secret(const std::string& field, const std::string& ref) {
    if (ref.empty()) return;
    auto parsed = auth::ParseCredentialRef(ref);
    if (!parsed.ok()) return Problem(field, parsed.status());
    if (!absl::StartsWith(ref, "file:")) return;  // env: the service's environment, not ours
    auto secret = auth::ResolveCredentialRef(ref);
    if (!secret.ok()) Problem(field, secret.status());
  }

  // PEM root certificates a TLS client verifies against (and a client certificate/key).
  void TrustFile(const std::string& field, const std::string& ca_file, const std::string& cert_file = "",
                 const std::string& key_file = "") {
    if (ca_file.empty() && cert_file.empty()) return;
    net::TlsClientOptions o;
    o.mode = ca_file.empty() ? net::SslMode::kRequire : net::SslMode::kVerifyCa;
    o.ca_file = ca_file;
    o.cert_file = cert_file;
    o.key_file = key_file;
    Problem(field, net::TlsClientContext::Create(o).status());
  }

  void Readable(const std::string& field, const std::string& path) {
    if (path.empty()) return;
    Problem(field, ReadFile(path).status());
  }

  void Group(const std::string& field, const std::string& name) {
    if (name.empty()) return;
    group gr{};
    group* found = nullptr;
    char buf[4096];
    if (::getgrnam_r(name.c_str(), &gr, buf, sizeof buf, &found) != 0 || found == nullptr) {
      Problem(field, absl::NotFoundError(absl::StrCat("no group named \"", name, "\"")));
    }
  }

  void Policy() {
    if (config_.policy_file.empty()) return;
    auto policy = policy::LoadPolicyFile(config_.policy_file);
    if (!policy.ok()) return Problem("policy_file", policy.status());
    // Mask profiles compile with the state dir's key at start; any 32 bytes prove the same.
    const std::string key(32, 'k');
    const v1::Policy& p = (*policy)->policy();
    for (int i = 0; i < p.mask_profiles_size(); ++i) {
      auto m = mask::Masker::Create(p.mask_profiles(i), key);
      if (!m.ok()) {
        Problem("policy_file", absl::InvalidArgumentError(absl::StrCat(config_.policy_file, ": mask_profiles[", i, "] (",
                                                                       p.mask_profiles(i).name(), "): ",
                                                                       m.status().message())));
      }
    }
  }

  std::vector<ConfigFileProblem> Run() {
    Policy();
    if (!config_.auditor_public_key_file.empty()) {
      Problem("auditor_public_key_file", record::LoadAuditorPublicKey(config_.auditor_public_key_file).status());
    }
    Group("admin_group", config_.admin_group);
    Group("audit.file.group_readable", config_.audit_file.group_readable);
    bool https = false;
    bool ssh = false;
    for (size_t i = 0; i < config_.resources.size(); ++i) {
      const config::ResourceConfig& r = config_.resources[i];
      const std::string path = absl::StrCat("resources[", i, "]");
      https |= r.protocol == config::Protocol::kHttps;
      if (r.postgres.has_value()) {
        const config::PostgresConfig& pg = *r.postgres;
        Secret(path + ".postgres.login.password_ref", pg.login.password_ref);
        for (const auto& [name, login] : pg.by_workload) {
          Secret(absl::StrCat(path, ".postgres.by_workload[\"", name, "\"].password_ref"), login.password_ref);
        }
        TrustFile(path + ".postgres.sslrootcert", pg.sslrootcert);
        if (!pg.agent_tls_cert_file.empty()) {
          Problem(path + ".postgres.agent_tls_cert_file",
                  net::TlsServerContext::Create(pg.agent_tls_cert_file, pg.agent_tls_key_file).status());
        }
      }
      if (r.http.has_value()) {
        Secret(path + ".http.credential", r.http->credential.secret_ref);
        TrustFile(path + ".http.upstream_ca_file", r.http->upstream_ca_file);
      }
      if (r.ssh.has_value()) {
        ssh = true;
        Problem(path + ".ssh.login", proxy::ssh::LoadLoginKey(r.ssh->login).status());
        for (const auto& [name, login] : r.ssh->by_workload) {
          Problem(absl::StrCat(path, ".ssh.by_workload[\"", name, "\"]"), proxy::ssh::LoadLoginKey(login).status());
        }
        Readable(path + ".ssh.upstream_known_hosts_file", r.ssh->upstream_known_hosts_file);
      }
    }
    if (ssh) {
      auto key = proxy::ssh::HostKey::Load(config_.state_dir);
      if (absl::IsNotFound(key.status())) {
        Problem("resources", absl::FailedPreconditionError(absl::StrCat(
                                 "an SSH resource is configured and there is no SSH host key in ", config_.state_dir,
                                 ": run `interlock ca init`")));
      } else {
        Problem("resources", key.status());
      }
    }
    if (https) {
      // The interception CA, made by `interlock ca init`, in the state dir.
      auto ca = net::LocalCa::Load(config_.state_dir, RealClock::Get());
      if (absl::IsNotFound(ca.status())) {
        Problem("resources", absl::FailedPreconditionError(absl::StrCat(
                                 "an HTTPS resource is configured and there is no interception CA in ",
                                 config_.state_dir, ": run `interlock ca init`")));
      } else {
        Problem("resources", ca.status());
      }
    }
    for (size_t i = 0; i < config_.oidc_issuers.size(); ++i) {
      const config::OidcIssuerConfig& o = config_.oidc_issuers[i];
      const std::string path = absl::StrCat("oidc_issuers[", i, "]");
      Readable(path + ".jwks_file", o.jwks_file);
      TrustFile(path + ".ca_file", o.ca_file);
    }
    for (const config::EnrollmentConfig& e : config_.enrollments) {
      if (e.token_file.empty()) continue;
      Problem("enrollments", [&]() -> absl::Status {
        auto st = ReadFile(e.token_file).status();
        return st.ok() ? st : absl::Status(st.code(), absl::StrCat("enrollment ", e.name, ": ", st.message()));
      }());
    }
    TrustFile("approvals.webhook_ca_file", config_.approvals.webhook_ca_file);
    Secret("approvals.webhook_header_ref", config_.approvals.webhook_header_ref);
    Secret("approvals.webhook_signing_key_ref", config_.approvals.webhook_signing_key_ref);
    Secret("approvals.store_password_ref", config_.approvals.store_password_ref);
    for (size_t i = 0; i < config_.audit_sinks.size(); ++i) {
      const config::AuditSinkSettings& s = config_.audit_sinks[i];
      const std::string path = absl::StrCat("audit.sinks[", i, "]");
      if (s.syslog.has_value()) {
        TrustFile(path + ".syslog.ca_file", s.syslog->ca_file, s.syslog->client_cert_file, s.syslog->client_key_file);
      }
      if (s.hec.has_value()) {
        Secret(path + ".hec.token_ref", s.hec->token_ref);
        TrustFile(path + ".hec.ca_file", s.hec->ca_file);
      }
    }
    return std::move(problems_);
  }

 private:
  const config::ServiceConfig& config_;
  std::vector<ConfigFileProblem> problems_;
};

}  // namespace

std::vector<ConfigFileProblem> CheckConfigFiles(const config::ServiceConfig& config) {
  return Checker(config).Run();
}

}  // namespace interlock::daemon
