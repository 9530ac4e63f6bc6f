#include "userspace/config/config.h"

#include <sys/un.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bpf/include/interlock/datapath.h"
#include "userspace/common/file_util.h"
#include "userspace/common/privileges.h"
#include "userspace/common/status_macros.h"

namespace interlock::config {
namespace {

constexpr absl::string_view kCgroupMount = "/sys/fs/cgroup";
// interlockd's own cgroup below cgroup_root; it is never enrolled.
constexpr absl::string_view kDaemonCgroup = "daemon";

// Collects every problem, each placed by the source map, and reports them together.
class Problems {
 public:
  explicit Problems(const SourceMap& source) : source_(source) {}

  void Add(absl::string_view path, absl::string_view what) {
    items_.push_back({source_.Line(path), absl::StrCat(source_.Where(path), ": ", what)});
  }

  absl::Status Status() && {
    if (items_.empty()) return absl::OkStatus();
    std::stable_sort(items_.begin(), items_.end(), [](const auto& a, const auto& b) {
      int la = a.first > 0 ? a.first : std::numeric_limits<int>::max();
      int lb = b.first > 0 ? b.first : std::numeric_limits<int>::max();
      return la < lb;
    });
    std::vector<std::string> lines;
    for (auto& item : items_) lines.push_back(std::move(item.second));
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }

 private:
  const SourceMap& source_;
  std::vector<std::pair<int, std::string>> items_;  // line, message
};

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

// Splits a path into components, dropping empty ones ("a//b/" -> a, b). Returns an
// error text for "." and ".." components and NUL bytes.
std::optional<std::string> PathComponents(absl::string_view path,
                                          std::vector<absl::string_view>* parts) {
  if (path.find('\0') != absl::string_view::npos) return "contains a NUL byte";
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == "." || part == "..") {
      return absl::StrCat(Quote(path), " must not contain \"", part, "\" components");
    }
    parts->push_back(part);
  }
  return std::nullopt;
}

// An absolute path, normalized ("/a//b/" -> "/a/b"); nullopt after reporting a problem.
std::optional<std::string> AbsolutePath(absl::string_view value, absl::string_view path,
                                        Problems& problems) {
  if (!absl::StartsWith(value, "/")) {
    problems.Add(path, absl::StrCat(Quote(value), " must be an absolute path"));
    return std::nullopt;
  }
  std::vector<absl::string_view> parts;
  if (auto bad = PathComponents(value, &parts)) {
    problems.Add(path, *bad);
    return std::nullopt;
  }
  if (parts.empty()) {
    problems.Add(path, "must not be \"/\"");
    return std::nullopt;
  }
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

bool IsValidGroupName(absl::string_view name) {
  if (name.empty() || name.size() > 32 || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string NameProblem(absl::string_view name) {
  return absl::StrCat(Quote(name), " is not a valid name: use 1..63 of a-z 0-9 . _ -");
}

// A uint32 field that must fit `max` and, when written (not left to its default), be
// at least `min`. Returns `fallback` when unset.
uint32_t Ranged(uint32_t value, uint32_t min, uint32_t max, uint32_t fallback,
                absl::string_view path, const SourceMap& source, Problems& problems) {
  if (value == 0 && !source.Contains(path)) return fallback;
  if (value < min || value > max) {
    problems.Add(path, absl::StrCat(value, " is out of range ", min, "..", max));
    return fallback;
  }
  return value == 0 ? fallback : value;
}

void BuildRecordings(const v1::RecordingsConfig& in, const SourceMap& source, Problems& problems,
                     RecordingsSettings& out) {
  // 0, written or not, means no limit.
  if (in.retain_mib() != 0) {
    out.retain_bytes = uint64_t{Ranged(in.retain_mib(), 1, kMaxRecordingsRetainMib, 0, "recordings.retain_mib",
                                       source, problems)}
                       << 20;
  }
  if (in.retain_days() != 0) {
    out.retain_days =
        Ranged(in.retain_days(), 1, kMaxRecordingsRetainDays, 0, "recordings.retain_days", source, problems);
  }
  // Written 0 turns the floor off; absent is the default.
  if (source.Contains("recordings.min_free_mib")) {
    if (in.min_free_mib() > kMaxRecordingsMinFreeMib) {
      problems.Add("recordings.min_free_mib",
                   absl::StrCat(in.min_free_mib(), " is out of range 0..", kMaxRecordingsMinFreeMib));
    } else {
      out.min_free_bytes = uint64_t{in.min_free_mib()} << 20;
    }
  }
}

void BuildMetrics(const v1::MetricsConfig& in, Problems& problems, MetricsSettings& out) {
  if (!in.address().empty() && !in.unix_path().empty()) {
    problems.Add("metrics.unix_path", "set address or unix_path, not both");
    return;
  }
  if (!in.address().empty()) {
    auto hp = SplitHostPort(in.address());
    if (!hp.ok()) {
      problems.Add("metrics.address", std::string(hp.status().message()));
      return;
    }
    auto ip = ParseIpAddress(hp->first);
    // 127.0.0.0/8 (held IPv4-mapped: byte 12 is 127) or ::1.
    const bool loopback =
        ip.ok() && (ip->is_v4() ? ip->bytes[12] == 127
                                : ip->bytes == std::array<uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
    if (!loopback) {
      problems.Add("metrics.address",
                   absl::StrCat(Quote(hp->first), " is not a loopback address (127.0.0.0/8 or ::1): the "
                                "endpoint has no authentication"));
      return;
    }
    out.address = hp->first;
    out.port = hp->second;
  }
  if (!in.unix_path().empty()) {
    if (auto p = AbsolutePath(in.unix_path(), "metrics.unix_path", problems)) out.unix_path = *std::move(p);
  }
}

void BuildAuditFile(const v1::AuditFileConfig& in, const std::string& state_dir, const SourceMap& source,
                    Problems& problems, AuditFileSettings& out) {
  if (!in.path().empty()) {
    if (auto p = AbsolutePath(in.path(), "audit.file.path", problems)) {
      if (absl::EndsWith(in.path(), "/") || absl::EndsWith(*p, "/")) {
        problems.Add("audit.file.path", absl::StrCat(Quote(in.path()), " names a directory; name the file"));
      } else {
        out.path = *std::move(p);
      }
    }
  } else if (!state_dir.empty()) {
    out.path = absl::StrCat(state_dir, "/audit/audit.jsonl");
  }
  out.rotate_bytes = uint64_t{Ranged(in.rotate_mib(), 1, kMaxAuditRotateMib, kDefaultAuditRotateMib,
                                     "audit.file.rotate_mib", source, problems)}
                     << 20;
  if (in.rotate_bytes() != 0) {
    if (in.rotate_bytes() < kMinAuditRotateBytes) {
      problems.Add("audit.file.rotate_bytes",
                   absl::StrCat(in.rotate_bytes(), " is below the minimum of ", kMinAuditRotateBytes));
    } else {
      out.rotate_bytes = in.rotate_bytes();
    }
  }
  if (in.rotate_age_s() != 0) {
    out.rotate_age_s = Ranged(in.rotate_age_s(), kMinAuditRotateAgeS, kMaxAuditRotateAgeS, 0,
                              "audit.file.rotate_age_s", source, problems);
  }
  // 0, written or not, means no limit.
  if (in.retain_files() != 0) {
    out.retain_files = Ranged(in.retain_files(), 1, kMaxAuditRetainFiles, 0, "audit.file.retain_files", source, problems);
  }
  if (in.retain_days() != 0) {
    out.retain_days = Ranged(in.retain_days(), 1, kMaxAuditRetainDays, 0, "audit.file.retain_days", source, problems);
  }
  if (!in.group_readable().empty() && !IsValidGroupName(in.group_readable())) {
    problems.Add("audit.file.group_readable",
                 absl::StrCat(Quote(in.group_readable()), " is not a valid group name"));
  }
  out.group_readable = in.group_readable();
  out.checkpoint_interval_s =
      Ranged(in.checkpoint_interval_s(), 1, kMaxAuditCheckpointIntervalS, kDefaultAuditCheckpointIntervalS,
             "audit.file.checkpoint_interval_s", source, problems);
}

void BuildListener(const v1::Listener& in, const SourceMap& source, ServiceConfig& out,
                   Problems& problems) {
  const std::string v4_text =
      in.address_v4().empty() ? std::string(kDefaultListenV4) : in.address_v4();
  absl::StatusOr<IpAddress> v4 = ParseIpAddress(v4_text);
  if (!v4.ok()) {
    problems.Add("listener.address_v4", v4.status().message());
  } else if (!v4->is_v4() || v4->bytes[12] != 127) {
    problems.Add("listener.address_v4",
                 absl::StrCat(Quote(v4_text),
                              " is not an IPv4 loopback address (127.0.0.0/8); interlockd "
                              "never listens elsewhere"));
  } else {
    out.listener.address_v4 = *std::move(v4);
  }

  const std::string v6_text =
      in.address_v6().empty() ? std::string(kDefaultListenV6) : in.address_v6();
  if (v6_text != "-") {
    absl::StatusOr<IpAddress> v6 = ParseIpAddress(v6_text);
    if (!v6.ok()) {
      problems.Add("listener.address_v6", v6.status().message());
    } else if (v6->is_v4() || v6->bytes != ParseIpAddress("::1")->bytes) {
      problems.Add("listener.address_v6",
                   absl::StrCat(Quote(v6_text),
                                " is not the IPv6 loopback address ::1 (or \"-\" to disable "
                                "IPv6); interlockd never listens elsewhere"));
    } else {
      out.listener.address_v6 = *std::move(v6);
    }
  }

  out.listener.port = static_cast<uint16_t>(
      Ranged(in.port(), 1, 65535, kDefaultListenPort, "listener.port", source, problems));

  for (int i = 0; i < in.network_namespaces_size(); ++i) {
    const std::string& path = in.network_namespaces(i);
    if (path.empty() || path[0] != '/') {
      problems.Add(absl::StrCat("listener.network_namespaces[", i, "]"),
                   absl::StrCat(Quote(path), " is not an absolute path of a network namespace "
                                             "file (e.g. /run/netns/NAME)"));
      continue;
    }
    out.listener.network_namespaces.push_back(path);
  }
  out.listener.discover_network_namespaces = in.netns_discovery() != v1::NETNS_DISCOVERY_OFF;
  if (!in.unix_dir().empty()) {
    std::string dir(absl::StripSuffix(in.unix_dir(), "/"));
    if (dir.empty() || dir[0] != '/') {
      problems.Add("listener.unix_dir",
                   absl::StrCat(Quote(in.unix_dir()), " is not an absolute path"));
    } else {
      out.listener.unix_dir = dir;
    }
  }
}

bool ValidCredentialRef(absl::string_view ref) {
  if (absl::StartsWith(ref, "file:/")) return ref.size() > 6;
  if (!absl::ConsumePrefix(&ref, "env:") || ref.empty()) return false;
  for (char c : ref) {
    if (!(absl::ascii_isalnum(c) || c == '_')) return false;
  }
  return true;
}

bool BuildLogin(const v1::PostgresLogin& in, const std::string& path, Problems& problems,
                PostgresLoginConfig& out) {
  bool ok = true;
  out.user = in.user();
  out.database = in.database().empty() ? in.user() : in.database();
  out.password_ref = in.password_ref();
  if (in.user().empty()) {
    problems.Add(path + ".user", "required: the upstream role interlockd logs in as");
    ok = false;
  }
  if (!in.password_ref().empty() && !ValidCredentialRef(in.password_ref())) {
    problems.Add(path + ".password_ref",
                 "must be \"file:/absolute/path\" or \"env:NAME\" (the secret itself never goes here)");
    ok = false;
  }
  return ok;
}

bool BuildSshLogin(const v1::SshLogin& in, const std::string& path, Problems& problems, SshLoginConfig& out) {
  bool ok = true;
  out.user = in.user();
  out.private_key_ref = in.private_key_ref();
  out.certificate_file = in.certificate_file();
  if (out.user.find_first_of(std::string("\0\r\n", 3)) != std::string::npos) {
    problems.Add(path + ".user", "must not contain NUL or line breaks");
    ok = false;
  }
  // Only a file: a private key in interlockd's environment would be one `env` away from
  // every child it ever starts.
  if (!absl::StartsWith(in.private_key_ref(), "file:/") || in.private_key_ref().size() <= 6) {
    problems.Add(path + ".private_key_ref",
                 "required: \"file:/absolute/path\" of an OpenSSH private key (the key itself never goes here)");
    ok = false;
  }
  if (!out.certificate_file.empty() && out.certificate_file[0] != '/') {
    problems.Add(path + ".certificate_file", absl::StrCat(Quote(out.certificate_file), " is not an absolute path"));
    ok = false;
  }
  return ok;
}

SshConfig BuildSsh(const v1::SshResource& in, const std::string& path, Problems& problems, bool& ok) {
  SshConfig out;
  ok = BuildSshLogin(in.login(), path + ".login", problems, out.login) && ok;
  for (const auto& [workload, login] : in.by_workload()) {
    ok = BuildSshLogin(login, absl::StrCat(path, ".by_workload.", workload), problems, out.by_workload[workload]) && ok;
  }
  out.upstream_known_hosts_file = in.upstream_known_hosts_file();
  if (!out.upstream_known_hosts_file.empty() && out.upstream_known_hosts_file[0] != '/') {
    problems.Add(path + ".upstream_known_hosts_file",
                 absl::StrCat(Quote(out.upstream_known_hosts_file), " is not an absolute path"));
    ok = false;
  }
  for (int i = 0; i < in.upstream_host_key_sha256_size(); ++i) {
    const std::string& fp = in.upstream_host_key_sha256(i);
    // "SHA256:" + 43 characters of unpadded base64 (32 bytes).
    bool valid = absl::StartsWith(fp, "SHA256:") && fp.size() == 7 + 43;
    for (size_t k = 7; valid && k < fp.size(); ++k) {
      valid = absl::ascii_isalnum(fp[k]) || fp[k] == '+' || fp[k] == '/';
    }
    if (!valid) {
      problems.Add(absl::StrCat(path, ".upstream_host_key_sha256[", i, "]"),
                   absl::StrCat(Quote(fp), " is not a fingerprint as `ssh-keygen -l` prints it (SHA256:...)"));
      ok = false;
    }
    out.upstream_host_key_sha256.push_back(fp);
  }
  if (out.upstream_known_hosts_file.empty() && out.upstream_host_key_sha256.empty()) {
    problems.Add(path + ".upstream_known_hosts_file",
                 "required (or upstream_host_key_sha256): the upstream's host key is pinned, never trusted on first use");
    ok = false;
  }
  out.allow_sftp = in.allow_sftp();
  if (in.forward_env_size() == 0) {
    out.forward_env = {"LANG", "LC_*"};
  } else {
    out.forward_env.assign(in.forward_env().begin(), in.forward_env().end());
  }
  if (in.upstream_login_timeout_s() > 0) out.upstream_login_timeout = absl::Seconds(in.upstream_login_timeout_s());
  out.token_issuers.assign(in.token_issuers().begin(), in.token_issuers().end());
  out.require_agent_token = in.require_agent_token();
  out.mask_output = in.mask_output();
  if (out.require_agent_token && out.token_issuers.empty()) {
    problems.Add(path + ".require_agent_token", "needs token_issuers (the issuers whose tokens are accepted)");
    ok = false;
  }
  return out;
}

bool ValidHttpFieldName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(c) || absl::StrContains("!#$%&'*+-.^_`|~", c))) return false;
  }
  return true;
}

HttpConfig BuildHttp(const v1::HttpResource& in, const std::string& path, Problems& problems, bool& ok) {
  HttpConfig out;
  const v1::HttpCredential& c = in.credential();
  auto secret = [&](const std::string& ref, const std::string& where) {
    if (!ValidCredentialRef(ref)) {
      problems.Add(where, "must be \"file:/absolute/path\" or \"env:NAME\" (the secret itself never goes here)");
      ok = false;
    }
    out.credential.secret_ref = ref;
  };
  switch (c.kind_case()) {
    case v1::HttpCredential::kBearerRef:
      out.credential.kind = HttpCredentialConfig::Kind::kBearer;
      secret(c.bearer_ref(), path + ".credential.bearer_ref");
      break;
    case v1::HttpCredential::kBasic:
      out.credential.kind = HttpCredentialConfig::Kind::kBasic;
      out.credential.user = c.basic().user();
      if (c.basic().user().find(':') != std::string::npos || c.basic().user().find_first_of("\r\n") != std::string::npos) {
        problems.Add(path + ".credential.basic.user", "must not contain ':' or line breaks (RFC 7617)");
        ok = false;
      }
      secret(c.basic().password_ref(), path + ".credential.basic.password_ref");
      break;
    case v1::HttpCredential::kHeader:
      out.credential.kind = HttpCredentialConfig::Kind::kHeader;
      out.credential.header_name = c.header().name();
      if (!ValidHttpFieldName(c.header().name())) {
        problems.Add(path + ".credential.header.name", absl::StrCat(Quote(c.header().name()), " is not a header name"));
        ok = false;
      }
      secret(c.header().value_ref(), path + ".credential.header.value_ref");
      break;
    case v1::HttpCredential::KIND_NOT_SET:
      break;
  }
  out.upstream_ca_file = in.upstream_ca_file();
  if (!out.upstream_ca_file.empty() && out.upstream_ca_file[0] != '/') {
    problems.Add(path + ".upstream_ca_file", absl::StrCat(Quote(out.upstream_ca_file), " is not an absolute path"));
    ok = false;
  }
  out.upstream_server_name = in.upstream_server_name();
  if (in.max_judged_body_bytes() > 0) out.max_judged_body_bytes = in.max_judged_body_bytes();
  out.refuse_unmaskable_bodies = in.refuse_unmaskable_bodies();
  out.pass_text_past_field_rules = in.pass_text_past_field_rules();
  out.record_request_bodies = in.record_request_bodies();
  if (out.max_judged_body_bytes > (uint64_t{64} << 20)) {
    problems.Add(path + ".max_judged_body_bytes", absl::StrCat(in.max_judged_body_bytes(), " is more than 64 MiB"));
    ok = false;
  }
  out.elide_query_params.assign(in.elide_query_params().begin(), in.elide_query_params().end());
  out.token_issuers.assign(in.token_issuers().begin(), in.token_issuers().end());
  out.require_agent_token = in.require_agent_token();
  out.identity_headers = in.identity_headers();
  if (out.require_agent_token && out.token_issuers.empty()) {
    problems.Add(path + ".require_agent_token", "needs token_issuers (the issuers whose tokens are accepted)");
    ok = false;
  }
  return out;
}

absl::StatusOr<PostgresConfig> BuildPostgres(const v1::PostgresResource& in, const std::string& path,
                                             Problems& problems) {
  PostgresConfig out;
  bool ok = true;
  switch (in.agent_auth()) {
    case v1::AGENT_AUTH_UNSPECIFIED:
    case v1::AGENT_AUTH_WORKLOAD:
      out.agent_auth = AgentAuth::kWorkload;
      break;
    case v1::AGENT_AUTH_TOKEN:
      out.agent_auth = AgentAuth::kToken;
      if (in.token_sha256().empty() && in.token_issuers().empty()) {
        problems.Add(path + ".token_issuers",
                     "AGENT_AUTH_TOKEN needs token_issuers (OIDC) or token_sha256 (static tokens)");
        ok = false;
      }
      break;
    default:
      problems.Add(path + ".agent_auth", absl::StrCat("unknown agent_auth ", in.agent_auth()));
      ok = false;
  }
  for (const auto& name : in.token_issuers()) out.token_issuers.push_back(name);
  switch (in.token_expiry()) {
    case v1::TOKEN_EXPIRY_UNSPECIFIED:
    case v1::TOKEN_EXPIRY_CLOSE:
      break;
    case v1::TOKEN_EXPIRY_RECHECK:
      out.token_expiry_recheck = true;
      break;
    default:
      problems.Add(path + ".token_expiry", absl::StrCat("unknown token_expiry ", in.token_expiry()));
      ok = false;
  }
  ok = BuildLogin(in.login(), path + ".login", problems, out.login) && ok;
  for (const auto& [name, login] : in.by_workload()) {
    std::string wpath = absl::StrCat(path, ".by_workload[\"", name, "\"]");
    if (!IsValidName(name)) {
      problems.Add(wpath, NameProblem(name));
      ok = false;
      continue;
    }
    PostgresLoginConfig l;
    ok = BuildLogin(login, wpath, problems, l) && ok;
    out.by_workload[name] = std::move(l);
  }
  static constexpr absl::string_view kModes[] = {"disable", "allow", "prefer", "require",
                                                 "verify-ca", "verify-full"};
  if (!in.sslmode().empty()) out.sslmode = in.sslmode();
  if (std::find(std::begin(kModes), std::end(kModes), out.sslmode) == std::end(kModes)) {
    problems.Add(path + ".sslmode",
                 absl::StrCat(Quote(out.sslmode),
                              " is not one of disable, allow, prefer, require, verify-ca, verify-full"));
    ok = false;
  }
  out.sslrootcert = in.sslrootcert();
  out.sslservername = in.sslservername();
  if ((out.sslmode == "verify-ca" || out.sslmode == "verify-full") && out.sslrootcert.empty()) {
    problems.Add(path + ".sslrootcert", absl::StrCat("required with sslmode ", out.sslmode));
    ok = false;
  }
  if (!out.sslrootcert.empty() && !absl::StartsWith(out.sslrootcert, "/")) {
    problems.Add(path + ".sslrootcert", "must be an absolute path");
    ok = false;
  }
  // A credential goes only to a server that proved who it is, unless the operator
  // accepted the risk in writing: otherwise whoever binds the address (the server down,
  // restarting, or a resource address nobody listens on yet) is sent the password.
  out.allow_unverified_upstream = in.allow_unverified_upstream();
  out.extra_startup_parameters.assign(in.extra_startup_parameters().begin(), in.extra_startup_parameters().end());
  if (out.HasPassword() && !out.VerifiesUpstream() && !out.allow_unverified_upstream) {
    std::string where = path + ".login.password_ref";
    if (out.login.password_ref.empty()) {
      for (const auto& [name, l] : out.by_workload) {
        if (!l.password_ref.empty()) {
          where = absl::StrCat(path, ".by_workload[\"", name, "\"].password_ref");
          break;
        }
      }
    }
    problems.Add(where,
                 absl::StrCat("the upstream password would be sent to a server whose identity is not "
                              "verified (sslmode ", out.sslmode,
                              "): set sslmode verify-full (or verify-ca) with sslrootcert, or "
                              "allow_unverified_upstream: true to accept that anyone who can bind the "
                              "address while the server is down receives the password"));
    ok = false;
  }
  out.agent_tls_cert_file = in.agent_tls_cert_file();
  out.agent_tls_key_file = in.agent_tls_key_file();
  if (out.agent_tls_cert_file.empty() != out.agent_tls_key_file.empty()) {
    problems.Add(path + (out.agent_tls_cert_file.empty() ? ".agent_tls_cert_file" : ".agent_tls_key_file"),
                 "agent TLS needs both agent_tls_cert_file and agent_tls_key_file");
    ok = false;
  }
  for (const std::string* f : {&out.agent_tls_cert_file, &out.agent_tls_key_file}) {
    if (!f->empty() && !absl::StartsWith(*f, "/")) {
      problems.Add(path + (f == &out.agent_tls_cert_file ? ".agent_tls_cert_file" : ".agent_tls_key_file"),
                   "must be an absolute path");
      ok = false;
    }
  }
  out.audit_parameters = in.audit_parameters();
  out.audit_literals = in.audit_literals();
  if (in.max_statement_bytes() != 0) out.max_statement_bytes = in.max_statement_bytes();
  for (int i = 0; i < in.token_sha256_size(); ++i) {
    std::string t = absl::AsciiStrToLower(in.token_sha256(i));
    bool hex = t.size() == 64 && std::all_of(t.begin(), t.end(), [](char c) {
      return absl::ascii_isxdigit(c);
    });
    if (!hex) {
      problems.Add(absl::StrCat(path, ".token_sha256[", i, "]"), "must be 64 hex digits (a SHA-256)");
      ok = false;
    }
    out.token_sha256.push_back(std::move(t));
  }
  if (!ok) return absl::InvalidArgumentError("postgres");
  return out;
}

// `<path>.address` (an address or CIDR prefix, required) and `<path>.port` (0..65535, 0 =
// every port), as resources and allowed destinations write them. False when either has
// a problem (added to `problems`).
bool BuildDestination(const std::string& address, uint32_t port, const std::string& path,
                      Problems& problems, IpPrefix& prefix_out, uint16_t& port_out) {
  bool ok = true;
  if (address.empty()) {
    problems.Add(path + ".address", "required: an IPv4/IPv6 address or CIDR prefix");
    ok = false;
  } else if (absl::StatusOr<IpPrefix> prefix = ParseIpPrefix(address); !prefix.ok()) {
    problems.Add(path + ".address", prefix.status().message());
    ok = false;
  } else {
    prefix_out = *std::move(prefix);
  }
  if (port > 65535) {
    problems.Add(path + ".port", absl::StrCat(port, " is out of range 0..65535"));
    ok = false;
  }
  port_out = static_cast<uint16_t>(port);
  return ok;
}

void BuildResources(const v1::Config& in, const ServiceConfig& partial, Problems& problems,
                    std::vector<ResourceConfig>& out) {
  if (in.resources_size() > IL_MAX_RESOURCES) {
    problems.Add("resources",
                 absl::StrCat(in.resources_size(), " resources is more than the limit of ",
                              IL_MAX_RESOURCES));
  }
  absl::flat_hash_map<std::string, int> names;  // name -> index
  absl::flat_hash_map<std::string, int> unix_paths;  // unix_path -> index
  std::map<std::tuple<std::array<uint8_t, 16>, uint32_t, uint32_t>, int> destinations;
  for (int i = 0; i < in.resources_size(); ++i) {
    const v1::Resource& r = in.resources(i);
    const std::string path = absl::StrCat("resources[", i, "]");
    ResourceConfig res;
    res.id = static_cast<uint32_t>(i + 1);
    res.name = r.name();
    bool ok = true;

    if (r.name().empty()) {
      problems.Add(path + ".name", "required");
      ok = false;
    } else if (!IsValidName(r.name())) {
      problems.Add(path + ".name", NameProblem(r.name()));
      ok = false;
    } else if (auto [it, fresh] = names.emplace(r.name(), i); !fresh) {
      problems.Add(path + ".name", absl::StrCat("duplicate name ", Quote(r.name()),
                                                " (also resources[", it->second, "])"));
      ok = false;
    }

    ok = BuildDestination(r.address(), r.port(), path, problems, res.prefix, res.port) && ok;

    switch (r.protocol()) {
      case v1::PROTOCOL_UNSPECIFIED:
      case v1::PROTOCOL_TCP:
        res.protocol = Protocol::kTcp;
        break;
      case v1::PROTOCOL_HTTP:
      case v1::PROTOCOL_HTTPS:
        res.protocol = r.protocol() == v1::PROTOCOL_HTTP ? Protocol::kHttp : Protocol::kHttps;
        res.http = BuildHttp(r.http(), path + ".http", problems, ok);
        break;
      case v1::PROTOCOL_SSH:
        res.protocol = Protocol::kSsh;
        if (!r.has_ssh()) {
          problems.Add(path + ".ssh", "required for PROTOCOL_SSH (at least login.private_key_ref and the upstream host key)");
          ok = false;
        } else {
          res.ssh = BuildSsh(r.ssh(), path + ".ssh", problems, ok);
        }
        break;
      case v1::PROTOCOL_POSTGRES:
        res.protocol = Protocol::kPostgres;
        if (!r.has_postgres()) {
          problems.Add(path + ".postgres", "required for PROTOCOL_POSTGRES (at least login.user)");
          ok = false;
        } else if (absl::StatusOr<PostgresConfig> pg = BuildPostgres(r.postgres(), path + ".postgres", problems);
                   pg.ok()) {
          res.postgres = *std::move(pg);
        } else {
          ok = false;
        }
        break;
      default:
        problems.Add(path + ".protocol", absl::StrCat("unknown protocol ", r.protocol()));
        ok = false;
    }
    // A protocol's settings block belongs to that protocol only.
    if (r.has_postgres() && res.protocol != Protocol::kPostgres) {
      problems.Add(path + ".postgres", "set on a resource whose protocol is not PROTOCOL_POSTGRES");
      ok = false;
    }
    if (r.has_http() && res.protocol != Protocol::kHttp && res.protocol != Protocol::kHttps) {
      problems.Add(path + ".http", "set on a resource whose protocol is not PROTOCOL_HTTP or PROTOCOL_HTTPS");
      ok = false;
    }
    if (r.has_ssh() && res.protocol != Protocol::kSsh) {
      problems.Add(path + ".ssh", "set on a resource whose protocol is not PROTOCOL_SSH");
      ok = false;
    }

    if (!r.unix_path().empty()) {
      const std::string& up = r.unix_path();
      // The listener path must fit a sun_path too.
      const std::string listener = partial.listener.UnixListenerPath(r.name());
      if (up[0] != '/') {
        problems.Add(path + ".unix_path", absl::StrCat(Quote(up), " is not an absolute path"));
        ok = false;
      } else if (up.size() >= IL_UNIX_PATH_MAX) {
        problems.Add(path + ".unix_path", absl::StrCat(Quote(up), " is longer than ",
                                                       IL_UNIX_PATH_MAX - 1, " bytes"));
        ok = false;
      } else if (listener.size() >= IL_UNIX_PATH_MAX) {
        problems.Add(path + ".unix_path",
                     absl::StrCat("interlockd's listener for it, ", Quote(listener),
                                  ", is longer than ", IL_UNIX_PATH_MAX - 1,
                                  " bytes (shorten listener.unix_dir or the name)"));
        ok = false;
      } else if (auto [it, fresh] = unix_paths.emplace(up, i); !fresh) {
        problems.Add(path + ".unix_path", absl::StrCat("duplicate unix path ", Quote(up),
                                                       " (also resources[", it->second, "])"));
        ok = false;
      } else {
        res.unix_path = up;
      }
    }

    if (!r.upstream_address().empty()) {
      absl::StatusOr<IpAddress> up = ParseIpAddress(r.upstream_address());
      if (!up.ok()) {
        problems.Add(path + ".upstream_address",
                     absl::StrCat(up.status().message(), " (host names are not supported)"));
        ok = false;
      } else {
        res.upstream_address = *std::move(up);
      }
    }
    if (r.upstream_port() > 65535) {
      problems.Add(path + ".upstream_port",
                   absl::StrCat(r.upstream_port(), " is out of range 0..65535"));
      ok = false;
    }
    res.upstream_port = static_cast<uint16_t>(r.upstream_port());

    // interlockd logs in to a PostgreSQL upstream with the resource's credential. With a
    // prefix or every port and no fixed upstream, "the upstream" is whatever the agent
    // chose to dial inside the range: the agent could point the login at a listener of
    // its own and collect the password.
    // The same holds for an HTTP resource with a credential to inject.
    const bool sends_credential =
        res.protocol == Protocol::kPostgres || res.protocol == Protocol::kSsh ||
        (res.http.has_value() && res.http->credential.kind != HttpCredentialConfig::Kind::kNone);
    if (sends_credential && r.upstream_address().empty() &&
        (res.prefix.prefix_bits != 128 || res.port == 0) && !r.address().empty()) {
      problems.Add(path + ".upstream_address",
                   absl::StrCat("required for a ",
                                res.protocol == Protocol::kPostgres ? "PROTOCOL_POSTGRES"
                                : res.protocol == Protocol::kSsh  ? "PROTOCOL_SSH"
                                                                  : "credential-injecting HTTP",
                                " resource whose ",
                                res.port == 0 ? "port is 0 (every port)" : "address is a prefix",
                                ": the login would go to whatever answers at the destination the "
                                "agent picked"));
      ok = false;
    }

    // interlockd dialing its own listener would relay the connection to itself forever.
    if (res.upstream_address.has_value()) {
      uint16_t upstream_port = res.upstream_port != 0 ? res.upstream_port : res.port;
      const ListenerConfig& l = partial.listener;
      if (upstream_port == l.port && (*res.upstream_address == l.address_v4 ||
                                      (l.address_v6 && *res.upstream_address == *l.address_v6))) {
        problems.Add(path + ".upstream_address",
                     absl::StrCat(FormatIpPort(res.upstream_address->bytes, upstream_port),
                                  " is interlockd's own listener"));
        ok = false;
      }
    }

    if (!ok) continue;
    auto [it, fresh] = destinations.emplace(
        std::make_tuple(res.prefix.address.bytes, res.prefix.prefix_bits, uint32_t{res.port}), i);
    if (!fresh) {
      const v1::Resource& other = in.resources(it->second);
      problems.Add(
          path + ".address",
          absl::StrCat("same address and port as resources[", it->second, "] (",
                       Quote(other.name()), ": ", FormatIpPrefix(res.prefix),
                       res.port == 0 ? " every port" : absl::StrCat(" port ", res.port), ")"));
      continue;
    }
    out.push_back(std::move(res));
  }
}

// cgroup_root relative to the cgroup2 mount, when it can be known from the config alone.
std::optional<std::string> CgroupRootBelowMount(absl::string_view cgroup_root) {
  if (!absl::StartsWith(cgroup_root, "/")) return std::string(cgroup_root);
  absl::string_view rest = cgroup_root;
  if (absl::ConsumePrefix(&rest, kCgroupMount) && absl::ConsumePrefix(&rest, "/")) {
    return std::string(rest);
  }
  return std::nullopt;  // another mount point: interlockd checks at startup
}

void BuildDefaultDenyAllow(const v1::Config& in, const SourceMap& source, Problems& problems,
                           std::optional<std::vector<AllowedDestinationConfig>>& out) {
  if (!source.Contains("default_deny_allow") && in.default_deny_allow_size() == 0) return;
  out.emplace();
  if (in.default_deny_allow_size() > IL_MAX_ALLOWED) {
    problems.Add("default_deny_allow", absl::StrCat(in.default_deny_allow_size(),
                                                    " entries is more than the limit of ",
                                                    IL_MAX_ALLOWED));
    return;
  }
  for (int i = 0; i < in.default_deny_allow_size(); ++i) {
    const v1::AllowedDestination& a = in.default_deny_allow(i);
    const std::string path = absl::StrCat("default_deny_allow[", i, "]");
    AllowedDestinationConfig d;
    if (BuildDestination(a.address(), a.port(), path, problems, d.prefix, d.port)) {
      out->push_back(d);
    }
  }
}

// systemd's unit name rules (systemd.unit(5)): the characters of unit_name_is_valid, and
// one of the suffixes whose units own a cgroup.
std::optional<std::string> UnitNameProblem(absl::string_view unit) {
  if (unit.empty() || unit.size() > 255) {
    return absl::StrCat(Quote(unit), " must be 1..255 bytes long");
  }
  if (!absl::EndsWith(unit, ".service") && !absl::EndsWith(unit, ".scope") &&
      !absl::EndsWith(unit, ".slice")) {
    return absl::StrCat(Quote(unit), " must end in .service, .scope or .slice (units with a cgroup)");
  }
  for (char c : unit) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && !absl::StrContains(":-_.\\@*", c)) {
      return absl::StrCat(Quote(unit), " has a character systemd does not allow in unit names");
    }
  }
  if (const size_t star = unit.find('*'); star != absl::string_view::npos) {
    if (unit.find('*', star + 1) != absl::string_view::npos) {
      return absl::StrCat(Quote(unit), " has more than one '*'; a pattern is PREFIX*SUFFIX");
    }
    if (star >= IL_NAME_PATTERN_PART || unit.size() - star - 1 >= IL_NAME_PATTERN_PART) {
      return absl::StrCat(Quote(unit), ": each side of the '*' must be under ",
                          IL_NAME_PATTERN_PART, " bytes");
    }
    if (star == 0) {
      return absl::StrCat(Quote(unit), " would enroll every unit of its type; name a prefix");
    }
  }
  return std::nullopt;
}

// A user or group (name, or numeric id) from the system's databases. nullopt after
// reporting a problem.
std::optional<uint32_t> ResolveAccount(absl::string_view text, bool group, absl::string_view path,
                                       Problems& problems, std::string& name) {
  const char* what = group ? "group" : "user";
  const UserDb& db = SystemUserDb();
  uint32_t id = 0;
  if (absl::SimpleAtoi(text, &id)) {
    std::optional<UserEntry> user = group ? std::nullopt : db.UserById(id);
    name = user ? user->name : "";  // no name known: the workload is named by the id
  } else {
    std::optional<uint32_t> found;
    if (group) {
      found = db.GroupByName(std::string(text));
    } else if (auto user = db.UserByName(std::string(text))) {
      found = user->uid;
    }
    if (!found) {
      problems.Add(path, absl::StrCat("no ", what, " named ", Quote(text), " on this host"));
      return std::nullopt;
    }
    id = *found;
    name = std::string(text);
  }
  if (id == 0) {
    problems.Add(path, absl::StrCat(Quote(text), " is root's ", what, "; root can detach the "
                                    "programs, so enrolling it would promise what it cannot keep"));
    return std::nullopt;
  }
  return id;
}

// The enrollments of `in`, the shortcut lists (units, slices, users, groups) as entries
// with only their selector set. `attach` is attach_cgroup and `cgroup_root` interlock's
// own, both relative to the cgroup2 mount ("" is its root), when the config alone tells.
void BuildEnrollments(const v1::Config& in, const std::optional<std::string>& attach,
                      const std::optional<std::string>& cgroup_root, Problems& problems,
                      std::vector<EnrollmentConfig>& out) {
  std::vector<std::pair<v1::Enrollment, std::string>> entries;
  for (int i = 0; i < in.enrollments_size(); ++i) {
    entries.emplace_back(in.enrollments(i), absl::StrCat("enrollments[", i, "]"));
  }
  const auto shortcut = [&](const auto& list, absl::string_view field,
                            void (v1::Enrollment::*set)(const std::string&)) {
    for (int i = 0; i < list.size(); ++i) {
      v1::Enrollment e;
      (e.*set)(list.Get(i));
      entries.emplace_back(std::move(e), absl::StrCat(field, "[", i, "]"));
    }
  };
  shortcut(in.units(), "units", &v1::Enrollment::set_unit);
  shortcut(in.slices(), "slices", &v1::Enrollment::set_unit);
  shortcut(in.users(), "users", &v1::Enrollment::set_user);
  shortcut(in.groups(), "groups", &v1::Enrollment::set_group);
  for (int i = 0; i < in.slices_size(); ++i) {
    if (!absl::EndsWith(in.slices(i), ".slice")) {
      problems.Add(absl::StrCat("slices[", i, "]"),
                   absl::StrCat(Quote(in.slices(i)), " is not a slice (name.slice); units go "
                                "in units"));
    }
  }

  size_t by_cgroup = 0, by_name = 0, by_id = 0, by_pattern = 0;
  absl::flat_hash_map<std::string, std::string> names, selectors;
  for (auto& [e, path] : entries) {
    EnrollmentConfig enr;
    enr.default_deny = e.default_deny();
    bool ok = true;
    const int selected = !e.cgroup_path().empty() + !e.unit().empty() + !e.user().empty() +
                         !e.group().empty();
    if (selected != 1) {
      problems.Add(path, selected == 0
                             ? "needs one of cgroup_path, unit, user or group"
                             : "sets more than one of cgroup_path, unit, user and group");
      continue;
    }
    std::string derived;  // the workload name when none is given
    std::string selector;  // what makes two entries the same enrollment
    if (!e.cgroup_path().empty()) {
      enr.kind = EnrollmentConfig::Kind::kCgroupPath;
      ++by_cgroup;
      const std::string cg_path = path + ".cgroup_path";
      std::vector<absl::string_view> parts;
      if (auto bad = PathComponents(e.cgroup_path(), &parts)) {
        problems.Add(cg_path, *bad);
        ok = false;
      } else if (parts.empty()) {
        problems.Add(cg_path, "must not be the cgroup2 root");
        ok = false;
      } else {
        // A leading '/' is accepted: /proc/<pid>/cgroup writes paths that way.
        enr.cgroup_path = absl::StrJoin(parts, "/");
        selector = absl::StrCat("cgroup ", enr.cgroup_path);
        if (enr.cgroup_path.size() + 1 >= IL_CGROUP_PATH_MAX) {
          problems.Add(cg_path, absl::StrCat("is ", enr.cgroup_path.size(),
                                             " bytes long; at most ", IL_CGROUP_PATH_MAX - 2,
                                             " can be enrolled by path"));
          ok = false;
        } else if (attach && !attach->empty() && enr.cgroup_path != *attach &&
                   !absl::StartsWith(enr.cgroup_path, absl::StrCat(*attach, "/"))) {
          problems.Add(cg_path,
                       absl::StrCat(Quote(e.cgroup_path()), " is not below attach_cgroup ",
                                    Quote(*attach), ", where interlock's programs are attached"));
          ok = false;
        } else if (const std::string daemon = absl::StrCat(cgroup_root.value_or(""), "/", kDaemonCgroup);
                   cgroup_root && (enr.cgroup_path == daemon ||
                                   absl::StartsWith(enr.cgroup_path, daemon + "/"))) {
          problems.Add(cg_path, absl::StrCat(Quote(e.cgroup_path()),
                                             " is interlockd's own cgroup, which is never enrolled"));
          ok = false;
        } else if (cgroup_root && absl::StartsWith(daemon, enr.cgroup_path + "/")) {
          problems.Add(cg_path, absl::StrCat(Quote(e.cgroup_path()), " contains interlockd's own cgroup ",
                                             daemon, ", which is never enrolled"));
          ok = false;
        }
      }
    } else if (!e.unit().empty()) {
      enr.kind = EnrollmentConfig::Kind::kUnit;
      ++by_name;
      enr.unit = e.unit();
      selector = absl::StrCat("unit ", enr.unit);
      if (const size_t star = enr.unit.find('*'); star != std::string::npos) {
        // A pattern's workloads share the name of its prefix ("docker-*.scope": docker);
        // each keeps its own cgroup path in the audit trail.
        derived = enr.unit.substr(0, star);
        while (!derived.empty() && absl::StrContains("-._@", derived.back())) derived.pop_back();
        derived = derived.empty() ? "units" : WorkloadNameOfUnit(derived);
        ++by_pattern;
      } else {
        derived = WorkloadNameOfUnit(enr.unit);
      }
      if (auto bad = UnitNameProblem(enr.unit)) {
        problems.Add(path + (absl::StartsWith(path, "enrollments") ? ".unit" : ""), *bad);
        ok = false;
      }
    } else {
      const bool group = !e.group().empty();
      enr.kind = group ? EnrollmentConfig::Kind::kGroup : EnrollmentConfig::Kind::kUser;
      ++by_id;
      const std::string field =
          absl::StartsWith(path, "enrollments") ? path + (group ? ".group" : ".user") : path;
      std::string account;
      if (auto id = ResolveAccount(group ? e.group() : e.user(), group, field, problems, account)) {
        enr.id = *id;
        selector = absl::StrCat(group ? "gid " : "uid ", *id);
        std::string name = absl::AsciiStrToLower(absl::StrCat(group ? "group-" : "", account));
        derived = !account.empty() && IsValidName(name) ? name
                                                        : absl::StrCat(group ? "gid-" : "uid-", *id);
      } else {
        ok = false;
      }
      if (!e.token_file().empty()) {
        problems.Add(path + ".token_file",
                     "cannot be bound to a user or group (the token would travel with every "
                     "process of theirs); bind it to a cgroup_path or unit");
        ok = false;
      }
    }

    enr.name = e.name().empty() ? derived : e.name();
    if (enr.name.empty() && ok) {
      problems.Add(path + ".name", "required");
      ok = false;
    } else if (!enr.name.empty() && !IsValidName(enr.name)) {
      problems.Add(path + ".name", NameProblem(enr.name));
      ok = false;
    } else if (auto [it, fresh] = names.emplace(enr.name, path); !enr.name.empty() && !fresh) {
      problems.Add(path + (e.name().empty() ? "" : ".name"),
                   absl::StrCat("duplicate workload name ", Quote(enr.name), " (also ",
                                it->second, ")"));
      ok = false;
    }
    if (!selector.empty()) {
      if (auto [it, fresh] = selectors.emplace(selector, path); !fresh) {
        problems.Add(path, absl::StrCat("same ", selector, " as ", it->second));
        ok = false;
      }
    }
    if (!e.token_file().empty() && enr.kind != EnrollmentConfig::Kind::kUser &&
        enr.kind != EnrollmentConfig::Kind::kGroup) {
      if (auto p = AbsolutePath(e.token_file(), path + ".token_file", problems)) {
        enr.token_file = *std::move(p);
      } else {
        ok = false;
      }
    }
    if (ok) out.push_back(std::move(enr));
  }
  for (auto [count, limit, what] :
       {std::tuple{by_cgroup, size_t{IL_MAX_ENROLLED}, "cgroup enrollments"},
        std::tuple{by_name, size_t{IL_MAX_ENROLLED_NAMES}, "unit and slice enrollments"},
        std::tuple{by_id, size_t{IL_MAX_ENROLLED_IDS}, "user and group enrollments"},
        std::tuple{by_pattern, size_t{IL_MAX_NAME_PATTERNS}, "unit patterns"}}) {
    if (count > limit) {
      problems.Add("enrollments",
                   absl::StrCat(count, " ", what, " is more than the limit of ", limit));
    }
  }
}

}  // namespace

std::string WorkloadNameOfUnit(absl::string_view unit) {
  for (absl::string_view suffix : {".service", ".scope", ".slice"}) {
    if (absl::ConsumeSuffix(&unit, suffix)) break;
  }
  std::string name;
  for (char c : unit.substr(0, 63)) {
    char l = absl::ascii_tolower(static_cast<unsigned char>(c));
    name.push_back(absl::ascii_isalnum(static_cast<unsigned char>(l)) || l == '.' || l == '_' ||
                           l == '-'
                       ? l
                       : '-');
  }
  if (name.empty() || name == "." || name == "..") name = "unit";
  return name;
}

bool UnitMatches(absl::string_view unit, absl::string_view name) {
  const size_t star = unit.find('*');
  if (star == absl::string_view::npos) return unit == name;
  const absl::string_view prefix = unit.substr(0, star), suffix = unit.substr(star + 1);
  return name.size() >= prefix.size() + suffix.size() && absl::StartsWith(name, prefix) &&
         absl::EndsWith(name, suffix);
}

std::optional<std::string> WorkloadNameInSlice(absl::string_view cgroup_path,
                                               absl::string_view slice) {
  bool below = false;
  for (absl::string_view part : absl::StrSplit(cgroup_path, '/', absl::SkipEmpty())) {
    if (!below) {
      below = part == slice;
    } else if (!absl::EndsWith(part, ".slice")) {
      return WorkloadNameOfUnit(part);
    }
  }
  return std::nullopt;
}

bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > 63 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(absl::string_view address) {
  std::string host;
  absl::string_view port_text;
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat(Quote(address), " is not \"[v6 address]:port\""));
    }
    host = std::string(address.substr(1, close - 1));
    port_text = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos || address.find(':') != colon) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quote(address), " is not \"host:port\" (IPv6: \"[address]:port\")"));
    }
    host = std::string(address.substr(0, colon));
    port_text = address.substr(colon + 1);
  }
  uint32_t port = 0;
  if (host.empty() || !absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535 ||
      port_text.size() > 5) {
    return absl::InvalidArgumentError(absl::StrCat(Quote(address), " needs a host and a port 1..65535"));
  }
  if (host.size() > 253 || !std::all_of(host.begin(), host.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
               c == '_';
      })) {
    return absl::InvalidArgumentError(absl::StrCat(Quote(address), ": not a valid host name or address"));
  }
  return std::make_pair(std::move(host), static_cast<uint16_t>(port));
}

namespace {
bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  absl::StatusOr<IpAddress> a = ParseIpAddress(host);
  return a.ok() && absl::StartsWith(host, "127.");
}

bool IsCredentialRef(absl::string_view ref) {
  return (absl::StartsWith(ref, "file:/") && ref.size() > 6) || (absl::StartsWith(ref, "env:") && ref.size() > 4);
}

void BuildSyslogSink(const v1::SyslogSinkConfig& in, const std::string& path, const SourceMap& source,
                     Problems& problems, SyslogSinkSettings& out) {
  if (in.address().empty()) {
    problems.Add(path + ".address", "required: \"host:port\" of the syslog receiver");
  } else if (auto hp = SplitHostPort(in.address()); !hp.ok()) {
    problems.Add(path + ".address", hp.status().message());
  } else {
    out.host = hp->first;
    out.port = hp->second;
  }
  const bool tls = in.transport() == v1::SYSLOG_TRANSPORT_TLS;
  switch (in.transport()) {
    case v1::SYSLOG_TRANSPORT_UDP: out.transport = SyslogTransport::kUdp; break;
    case v1::SYSLOG_TRANSPORT_TCP: out.transport = SyslogTransport::kTcp; break;
    case v1::SYSLOG_TRANSPORT_TLS: out.transport = SyslogTransport::kTls; break;
    default:
      problems.Add(path + ".transport", "required: SYSLOG_TRANSPORT_UDP, SYSLOG_TRANSPORT_TCP or SYSLOG_TRANSPORT_TLS");
  }
  if (tls) {
    if (in.ca_file().empty()) {
      problems.Add(path + ".ca_file", "required with SYSLOG_TRANSPORT_TLS (the receiver's certificate is always verified)");
    } else if (auto p = AbsolutePath(in.ca_file(), path + ".ca_file", problems)) {
      out.ca_file = *std::move(p);
    }
    out.server_name = in.server_name().empty() ? out.host : in.server_name();
    if (in.client_cert_file().empty() != in.client_key_file().empty()) {
      problems.Add(path + (in.client_cert_file().empty() ? ".client_cert_file" : ".client_key_file"),
                   "client_cert_file and client_key_file go together");
    }
    if (!in.client_cert_file().empty()) {
      if (auto p = AbsolutePath(in.client_cert_file(), path + ".client_cert_file", problems)) out.client_cert_file = *p;
    }
    if (!in.client_key_file().empty()) {
      if (auto p = AbsolutePath(in.client_key_file(), path + ".client_key_file", problems)) out.client_key_file = *p;
    }
  } else {
    for (const auto& [set, field] : {std::pair{!in.ca_file().empty(), "ca_file"},
                                     std::pair{!in.server_name().empty(), "server_name"},
                                     std::pair{!in.client_cert_file().empty(), "client_cert_file"},
                                     std::pair{!in.client_key_file().empty(), "client_key_file"}}) {
      if (set) problems.Add(absl::StrCat(path, ".", field), "applies to SYSLOG_TRANSPORT_TLS only");
    }
  }
  if (!in.app_name().empty()) {
    if (in.app_name().size() > 48 || !std::all_of(in.app_name().begin(), in.app_name().end(),
                                                   [](char c) { return c >= 33 && c <= 126; })) {
      problems.Add(path + ".app_name", "1..48 printable US-ASCII characters without spaces (RFC 5424 APP-NAME)");
    } else {
      out.app_name = in.app_name();
    }
  }
  if (in.facility() > 23) {
    problems.Add(path + ".facility", absl::StrCat(in.facility(), " is out of range 0..23"));
  } else if (source.Contains(path + ".facility")) {
    out.facility = in.facility();
  }
  out.udp_max_bytes = Ranged(in.udp_max_bytes(), 2048, 65000, 8192, path + ".udp_max_bytes", source, problems);
  if (!source.Contains(path + ".udp_max_bytes")) out.udp_max_bytes = 8192;
}

void BuildHecSink(const v1::HecSinkConfig& in, const std::string& path, const SourceMap& source,
                  Problems& problems, HecSinkSettings& out) {
  absl::string_view url = in.url();
  out.url = in.url();
  if (url.empty()) {
    problems.Add(path + ".url", "required: https://host[:port]/services/collector/event");
  } else {
    absl::string_view rest;
    if (absl::StartsWith(url, "https://")) {
      out.tls = true;
      rest = url.substr(8);
    } else if (absl::StartsWith(url, "http://")) {
      out.tls = false;
      rest = url.substr(7);
    } else {
      problems.Add(path + ".url", absl::StrCat(Quote(url), " must start with https://"));
    }
    if (!rest.empty()) {
      size_t slash = rest.find('/');
      absl::string_view authority = rest.substr(0, slash);
      out.path = slash == absl::string_view::npos ? "/services/collector/event" : std::string(rest.substr(slash));
      const bool bracketed = absl::StartsWith(authority, "[");
      const bool has_port = bracketed ? absl::StrContains(authority, "]:")
                                      : absl::StrContains(authority, ":");
      auto hp = SplitHostPort(has_port ? std::string(authority)
                                       : absl::StrCat(authority, out.tls ? ":443" : ":80"));
      if (!hp.ok()) {
        problems.Add(path + ".url", hp.status().message());
      } else {
        out.host = hp->first;
        out.port = hp->second;
        if (!out.tls && !IsLoopbackHost(out.host)) {
          problems.Add(path + ".url", "http:// is accepted only to a loopback address (tests); use https://");
        }
      }
      if (absl::StrContains(authority, "@")) problems.Add(path + ".url", "must not contain credentials");
      if (!std::all_of(out.path.begin(), out.path.end(), [](char c) { return c > 32 && c < 127; })) {
        problems.Add(path + ".url", "the path must be printable US-ASCII without spaces");
      }
    }
  }
  if (in.token_ref().empty()) {
    problems.Add(path + ".token_ref", "required: \"file:/absolute/path\" or \"env:NAME\" naming the HEC token");
  } else if (!IsCredentialRef(in.token_ref())) {
    problems.Add(path + ".token_ref",
                 "must be \"file:/absolute/path\" or \"env:NAME\" (the token itself never goes here)");
  } else {
    out.token_ref = in.token_ref();
  }
  if (!in.ca_file().empty()) {
    if (auto p = AbsolutePath(in.ca_file(), path + ".ca_file", problems)) out.ca_file = *std::move(p);
  }
  for (const auto& [value, field] : {std::pair{&in.index(), "index"}, std::pair{&in.source(), "source"},
                                     std::pair{&in.sourcetype(), "sourcetype"}}) {
    if (value->size() > 256 || !std::all_of(value->begin(), value->end(), [](char c) { return c >= 32 && c < 127; })) {
      problems.Add(absl::StrCat(path, ".", field), "at most 256 printable US-ASCII characters");
    }
  }
  out.index = in.index();
  if (!in.source().empty()) out.source = in.source();
  if (!in.sourcetype().empty()) out.sourcetype = in.sourcetype();
  out.batch_max_events = Ranged(in.batch_max_events(), 1, 10000, 100, path + ".batch_max_events", source, problems);
  out.batch_max_bytes =
      Ranged(in.batch_max_bytes(), 1024, 16 << 20, 1 << 20, path + ".batch_max_bytes", source, problems);
  if (in.batch_max_delay_ms() > 60000) {
    problems.Add(path + ".batch_max_delay_ms", absl::StrCat(in.batch_max_delay_ms(), " is out of range 0..60000"));
  } else if (source.Contains(path + ".batch_max_delay_ms")) {
    out.batch_max_delay = absl::Milliseconds(in.batch_max_delay_ms());
  }
  out.timeout = absl::Milliseconds(Ranged(in.timeout_ms(), 100, 600000, 10000, path + ".timeout_ms", source, problems));
}

void BuildAuditSinks(const v1::Config& in, const SourceMap& source, Problems& problems,
                     std::vector<AuditSinkSettings>& out) {
  absl::flat_hash_map<std::string, int> names;
  for (int i = 0; i < in.audit().sinks_size(); ++i) {
    const v1::AuditSinkConfig& c = in.audit().sinks(i);
    const std::string path = absl::StrCat("audit.sinks[", i, "]");
    AuditSinkSettings s;
    if (c.name().empty()) {
      problems.Add(path + ".name", "required (names the spool directory and the sink in status)");
    } else if (!IsValidName(c.name())) {
      problems.Add(path + ".name", NameProblem(c.name()));
    } else if (auto [it, fresh] = names.emplace(c.name(), i); !fresh) {
      problems.Add(path + ".name", absl::StrCat(Quote(c.name()), " is already the name of audit.sinks[", it->second, "]"));
    }
    s.name = c.name();
    switch (c.format()) {
      case v1::AUDIT_SINK_FORMAT_UNSPECIFIED:
      case v1::AUDIT_SINK_FORMAT_JSON:
        s.format = AuditSinkFormat::kJson;
        break;
      case v1::AUDIT_SINK_FORMAT_OCSF:
        s.format = AuditSinkFormat::kOcsf;
        break;
      case v1::AUDIT_SINK_FORMAT_ECS:
        s.format = AuditSinkFormat::kEcs;
        break;
      default:
        problems.Add(path + ".format", absl::StrCat("unknown format ", c.format()));
    }
    for (int j = 0; j < c.kinds_size(); ++j) {
      if (c.kinds(j) == v1::AUDIT_KIND_UNSPECIFIED || !v1::AuditKind_IsValid(c.kinds(j))) {
        problems.Add(absl::StrCat(path, ".kinds[", j, "]"), "not an audit kind (AUDIT_KIND_SESSION_START, ...)");
      } else {
        s.kinds.push_back(c.kinds(j));
      }
    }
    switch (c.destination_case()) {
      case v1::AuditSinkConfig::kSyslog:
        BuildSyslogSink(c.syslog(), path + ".syslog", source, problems, s.syslog.emplace());
        break;
      case v1::AuditSinkConfig::kHec:
        BuildHecSink(c.hec(), path + ".hec", source, problems, s.hec.emplace());
        break;
      default:
        problems.Add(path, "needs a destination: a `syslog` or a `hec` block");
    }
    s.spool_max_bytes =
        uint64_t{Ranged(c.spool_max_mib(), 1, 1048576, 256, path + ".spool_max_mib", source, problems)} << 20;
    s.queue_max_events = Ranged(c.queue_max_events(), 16, 1000000, 10000, path + ".queue_max_events", source, problems);
    const uint32_t initial = Ranged(c.retry_initial_ms(), 10, 60000, 500, path + ".retry_initial_ms", source, problems);
    uint32_t max = Ranged(c.retry_max_ms(), 10, 3600000, 60000, path + ".retry_max_ms", source, problems);
    if (max < initial) {
      problems.Add(path + ".retry_max_ms", absl::StrCat(max, " is less than retry_initial_ms ", initial));
      max = initial;
    }
    s.retry_initial = absl::Milliseconds(initial);
    s.retry_max = absl::Milliseconds(max);
    out.push_back(std::move(s));
  }
}
}  // namespace

static void BuildOidcIssuers(const v1::Config& in, Problems& problems, std::vector<OidcIssuerConfig>& out) {
  absl::flat_hash_map<std::string, int> names;
  for (int i = 0; i < in.oidc_issuers_size(); ++i) {
    const v1::OidcIssuer& o = in.oidc_issuers(i);
    const std::string path = absl::StrCat("oidc_issuers[", i, "]");
    OidcIssuerConfig c;
    c.name = o.name();
    if (!IsValidName(o.name())) problems.Add(path + ".name", NameProblem(o.name()));
    if (!names.emplace(o.name(), i).second) {
      problems.Add(path + ".name", absl::StrCat("duplicate issuer name ", Quote(o.name())));
    }
    c.issuer = o.issuer();
    if (o.issuer().empty()) problems.Add(path + ".issuer", "required (the exact iss claim)");
    c.audiences.assign(o.audiences().begin(), o.audiences().end());
    if (c.audiences.empty()) problems.Add(path + ".audiences", "at least one accepted audience is required");
    for (int j = 0; j < o.algorithms_size(); ++j) {
      const std::string& a = o.algorithms(j);
      if (a != "RS256" && a != "PS256" && a != "ES256" && a != "EdDSA") {
        problems.Add(absl::StrCat(path, ".algorithms[", j, "]"),
                     absl::StrCat(Quote(a), " is not one of RS256, PS256, ES256, EdDSA"));
      }
      c.algorithms.push_back(a);
    }
    if (c.algorithms.empty()) problems.Add(path + ".algorithms", "pin at least one algorithm");
    int sources = !o.jwks_file().empty() + !o.jwks_uri().empty() + o.discovery();
    if (sources != 1) {
      problems.Add(path + ".jwks_file", "set exactly one of jwks_file, jwks_uri and discovery");
    }
    if (!o.jwks_file().empty()) {
      if (auto p = AbsolutePath(o.jwks_file(), path + ".jwks_file", problems)) c.jwks_file = *std::move(p);
    }
    if (!o.jwks_uri().empty() && !absl::StartsWith(o.jwks_uri(), "https://")) {
      problems.Add(path + ".jwks_uri", "must be an https:// URL");
    }
    c.jwks_uri = o.jwks_uri();
    c.discovery = o.discovery();
    if (o.discovery() && !absl::StartsWith(o.issuer(), "https://")) {
      problems.Add(path + ".issuer", "discovery needs an https:// issuer");
    }
    if (!o.ca_file().empty()) {
      if (auto p = AbsolutePath(o.ca_file(), path + ".ca_file", problems)) c.ca_file = *std::move(p);
    }
    if (o.clock_skew_s() > 600) problems.Add(path + ".clock_skew_s", "at most 600 seconds");
    if (o.clock_skew_s() > 0) c.clock_skew = absl::Seconds(o.clock_skew_s());
    if (!o.groups_claim().empty()) c.groups_claim = o.groups_claim();
    if (o.min_refresh_interval_s() > 0) c.min_refresh_interval = absl::Seconds(o.min_refresh_interval_s());
    c.max_token_lifetime = absl::Seconds(o.max_token_lifetime_s());
    c.require_low_s = o.require_low_s();
    out.push_back(std::move(c));
  }
}

absl::StatusOr<ServiceConfig> BuildServiceConfig(v1::Config proto, SourceMap source) {
  ServiceConfig out;
  Problems problems(source);
  out.file_name = source.file_name();

  BuildListener(proto.listener(), source, out, problems);

  const std::string state_dir =
      proto.state_dir().empty() ? std::string(kDefaultStateDir) : proto.state_dir();
  if (auto p = AbsolutePath(state_dir, "state_dir", problems)) out.state_dir = *std::move(p);

  const std::string pin_path =
      proto.pin_path().empty() ? std::string(kDefaultPinPath) : proto.pin_path();
  if (auto p = AbsolutePath(pin_path, "pin_path", problems)) {
    if (!absl::StartsWith(*p, absl::StrCat(kBpffsRoot, "/"))) {
      problems.Add("pin_path",
                   absl::StrCat(Quote(pin_path), " is not below ", kBpffsRoot, " (the bpffs)"));
    } else {
      out.pin_path = *std::move(p);
    }
  }

  const std::string cgroup_root =
      proto.cgroup_root().empty() ? std::string(kDefaultCgroupRoot) : proto.cgroup_root();
  {
    std::vector<absl::string_view> parts;
    if (auto bad = PathComponents(cgroup_root, &parts)) {
      problems.Add("cgroup_root", *bad);
    } else if (parts.empty()) {
      problems.Add("cgroup_root", absl::StrCat(Quote(cgroup_root),
                                               " is the cgroup2 root; interlock needs its own "
                                               "directory"));
    } else {
      out.cgroup_root =
          absl::StrCat(absl::StartsWith(cgroup_root, "/") ? "/" : "", absl::StrJoin(parts, "/"));
    }
  }

  switch (proto.relay_mode()) {
    case v1::RELAY_MODE_SOCKMAP:
      out.relay_mode = RelayMode::kSockmap;
      break;
    case v1::RELAY_MODE_UNSPECIFIED:
    case v1::RELAY_MODE_PLAIN:
      out.relay_mode = RelayMode::kPlain;
      break;
    default:
      problems.Add("relay_mode", absl::StrCat("unknown relay mode ", proto.relay_mode()));
  }

  BuildResources(proto, out, problems, out.resources);
  BuildDefaultDenyAllow(proto, source, problems, out.default_deny_allow);
  {
    std::vector<absl::string_view> parts;
    if (auto bad = PathComponents(proto.attach_cgroup(), &parts)) {
      problems.Add("attach_cgroup", *bad);
    } else {
      out.attach_cgroup = absl::StrCat(absl::StartsWith(proto.attach_cgroup(), "/") ? "/" : "",
                                       absl::StrJoin(parts, "/"));
      if (out.attach_cgroup == "/") out.attach_cgroup.clear();
    }
  }
  const std::optional<std::string> attach =
      out.attach_cgroup.empty() ? std::optional<std::string>("")
                                : CgroupRootBelowMount(out.attach_cgroup);
  const std::optional<std::string> root =
      out.cgroup_root.empty() ? std::nullopt : CgroupRootBelowMount(out.cgroup_root);
  if (attach && root && !attach->empty() && *root != *attach &&
      !absl::StartsWith(*root, absl::StrCat(*attach, "/"))) {
    problems.Add("cgroup_root", absl::StrCat(Quote(out.cgroup_root), " is not below attach_cgroup ",
                                             Quote(out.attach_cgroup), ", so the workloads of "
                                             "`interlock run` would not be enforced"));
  }
  BuildEnrollments(proto, attach, root, problems, out.enrollments);

  const v1::Timeouts& t = proto.timeouts();
  out.timeouts.connect = absl::Milliseconds(Ranged(t.connect_ms(), 1, kMaxConnectTimeoutMs, 5000,
                                                   "timeouts.connect_ms", source, problems));
  out.timeouts.idle = absl::Milliseconds(
      Ranged(t.idle_ms(), 1, kMaxIdleTimeoutMs, 3600000, "timeouts.idle_ms", source, problems));
  out.timeouts.drain = absl::Milliseconds(
      Ranged(t.drain_ms(), 1, kMaxDrainTimeoutMs, 10000, "timeouts.drain_ms", source, problems));

  if (!proto.control_socket().empty()) {
    if (auto p = AbsolutePath(proto.control_socket(), "control_socket", problems)) {
      out.control_socket = *std::move(p);
    }
  } else if (!out.state_dir.empty()) {
    out.control_socket = absl::StrCat(out.state_dir, "/", kControlSocketName);
  }
  if (out.control_socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
    problems.Add(proto.control_socket().empty() ? "state_dir" : "control_socket",
                 absl::StrCat("control socket path ", Quote(out.control_socket), " is longer than ",
                              sizeof(sockaddr_un{}.sun_path) - 1, " bytes"));
  }

  if (!proto.admin_group().empty() && !IsValidGroupName(proto.admin_group())) {
    problems.Add("admin_group",
                 absl::StrCat(Quote(proto.admin_group()), " is not a valid group name"));
  }
  out.admin_group = proto.admin_group();

  out.max_sessions = Ranged(proto.max_sessions(), 1, kMaxMaxSessions, kDefaultMaxSessions,
                            "max_sessions", source, problems);
  out.memory_budget_bytes =
      uint64_t{Ranged(proto.memory_budget_mib(), kMinMemoryBudgetMib, kMaxMemoryBudgetMib,
                      kDefaultMemoryBudgetMib, "memory_budget_mib", source, problems)}
      << 20;
  // 0 is a meaningful value here (write every iteration): only an absent field defaults.
  if (!source.Contains("write_batch_ms")) {
    out.write_batch_ms = kDefaultWriteBatchMs;
  } else if (proto.write_batch_ms() > kMaxWriteBatchMs) {
    problems.Add("write_batch_ms", absl::StrCat(proto.write_batch_ms(), " is out of range 0..", kMaxWriteBatchMs));
  } else {
    out.write_batch_ms = proto.write_batch_ms();
  }

  if (!proto.policy_file().empty()) {
    if (auto p = AbsolutePath(proto.policy_file(), "policy_file", problems)) out.policy_file = *std::move(p);
  }
  if (!proto.auditor_public_key_file().empty()) {
    if (auto p = AbsolutePath(proto.auditor_public_key_file(), "auditor_public_key_file", problems)) {
      out.auditor_public_key_file = *std::move(p);
    }
  }
  const v1::Approvals& ap = proto.approvals();
  if (!ap.webhook_url().empty()) {
    if (!absl::StartsWith(ap.webhook_url(), "http://") && !absl::StartsWith(ap.webhook_url(), "https://")) {
      problems.Add("approvals.webhook_url", absl::StrCat(Quote(ap.webhook_url()), " must be an http:// or https:// URL"));
    }
    out.approvals.webhook_url = ap.webhook_url();
  }
  if (!ap.webhook_ca_file().empty()) {
    if (auto p = AbsolutePath(ap.webhook_ca_file(), "approvals.webhook_ca_file", problems)) {
      out.approvals.webhook_ca_file = *std::move(p);
    }
  }
  if (!ap.webhook_header_ref().empty()) {
    if (!absl::StartsWith(ap.webhook_header_ref(), "file:/") && !absl::StartsWith(ap.webhook_header_ref(), "env:")) {
      problems.Add("approvals.webhook_header_ref",
                   "must be \"file:/absolute/path\" or \"env:NAME\" (the secret itself never goes here)");
    }
    out.approvals.webhook_header_ref = ap.webhook_header_ref();
  }
  if (!ap.webhook_signing_key_ref().empty()) {
    const std::string& ref = ap.webhook_signing_key_ref();
    if (!absl::StartsWith(ref, "file:/") && !absl::StartsWith(ref, "env:")) {
      problems.Add("approvals.webhook_signing_key_ref",
                   "must be \"file:/absolute/path\" or \"env:NAME\" (the secret itself never goes here)");
    }
    if (ap.webhook_url().empty()) problems.Add("approvals.webhook_signing_key_ref", "set without webhook_url");
    out.approvals.webhook_signing_key_ref = ref;
  }
  switch (ap.webhook_format()) {
    case v1::WEBHOOK_FORMAT_UNSPECIFIED:
    case v1::WEBHOOK_FORMAT_INTERLOCK:
      out.approvals.webhook_format = WebhookFormat::kInterlock;
      break;
    case v1::WEBHOOK_FORMAT_SLACK:
      out.approvals.webhook_format = WebhookFormat::kSlack;
      break;
    default:
      problems.Add("approvals.webhook_format",
                   absl::StrCat("unknown value ", static_cast<int>(ap.webhook_format()),
                                " (want WEBHOOK_FORMAT_INTERLOCK or WEBHOOK_FORMAT_SLACK)"));
  }
  if (ap.webhook_format() != v1::WEBHOOK_FORMAT_UNSPECIFIED && ap.webhook_url().empty()) {
    problems.Add("approvals.webhook_format", "set without webhook_url");
  }
  out.approvals.allow_same_uid = ap.allow_same_uid();
  if (!ap.store().empty() && ap.store() != "sqlite") {
    if (!absl::StartsWith(ap.store(), "postgres://") && !absl::StartsWith(ap.store(), "postgresql://")) {
      // Not echoed: a URL may carry a password.
      problems.Add("approvals.store", "must be \"sqlite\" or a postgres:// or postgresql:// URL");
    }
    out.approvals.store_url = ap.store();
  }
  if (!ap.store_password_ref().empty()) {
    const std::string& ref = ap.store_password_ref();
    if (!absl::StartsWith(ref, "file:/") && !absl::StartsWith(ref, "env:")) {
      problems.Add("approvals.store_password_ref",
                   "must be \"file:/absolute/path\" or \"env:NAME\" (the secret itself never goes here)");
    }
    if (out.approvals.store_url.empty()) problems.Add("approvals.store_password_ref", "set without a postgres store");
    out.approvals.store_password_ref = ref;
  }
  if (!ap.instance_name().empty()) {
    bool ok = ap.instance_name().size() <= 253;
    for (char c : ap.instance_name()) ok &= absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    if (!ok) {
      problems.Add("approvals.instance_name",
                   absl::StrCat(Quote(ap.instance_name()), " must be at most 253 of [A-Za-z0-9._-]"));
    }
    out.approvals.instance_name = ap.instance_name();
  }
  out.approvals.store_timeout_ms =
      Ranged(ap.store_timeout_ms(), 100, 30000, 2000, "approvals.store_timeout_ms", source, problems);
  BuildOidcIssuers(proto, problems, out.oidc_issuers);
  BuildAuditSinks(proto, source, problems, out.audit_sinks);
  for (size_t i = 0; i < out.resources.size(); ++i) {
    const ResourceConfig& r = out.resources[i];
    const auto& names = r.token_issuers();
    const char* block = r.settings_block();
    for (size_t j = 0; j < names.size(); ++j) {
      bool known = false;
      for (const auto& iss : out.oidc_issuers) known |= iss.name == names[j];
      if (!known) {
        problems.Add(absl::StrCat("resources[", i, "].", block, ".token_issuers[", j, "]"),
                     absl::StrCat("no oidc_issuers entry named ", Quote(names[j])));
      }
    }
  }
  out.approvals.max_window_s = Ranged(ap.max_window_s(), 1, 30 * 86400, 86400, "approvals.max_window_s", source, problems);
  BuildAuditFile(proto.audit().file(), out.state_dir, source, problems, out.audit_file);
  BuildRecordings(proto.recordings(), source, problems, out.recordings);
  BuildMetrics(proto.metrics(), problems, out.metrics);

  INTERLOCK_RETURN_IF_ERROR(std::move(problems).Status());
  out.proto = std::move(proto);
  out.source = std::move(source);
  return out;
}

absl::StatusOr<ServiceConfig> LoadConfigText(absl::string_view text, absl::string_view file_name) {
  v1::Config proto;
  SourceMap source;
  INTERLOCK_RETURN_IF_ERROR(YamlToProto(text, file_name, &proto, &source));
  return BuildServiceConfig(std::move(proto), std::move(source));
}

absl::StatusOr<ServiceConfig> LoadConfigFile(const std::string& path) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  if (text.size() > kMaxConfigFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", text.size(), " bytes is larger than the limit of ", kMaxConfigFileBytes));
  }
  return LoadConfigText(text, path);
}

std::vector<IpAddress> ParseResolvConfNameservers(absl::string_view text) {
  std::vector<IpAddress> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.size() < 2 || words[0] != "nameserver") continue;
    if (absl::StatusOr<IpAddress> a = ParseIpAddress(words[1]); a.ok()) out.push_back(*a);
  }
  return out;
}

std::vector<AllowedDestinationConfig> DefaultDenyAllowFromResolvConf(
    absl::string_view resolv_conf_text) {
  std::vector<AllowedDestinationConfig> out;
  for (const IpAddress& a : ParseResolvConfNameservers(resolv_conf_text)) {
    AllowedDestinationConfig d;
    d.prefix.address = a;
    d.prefix.prefix_bits = 128;
    d.port = 53;
    out.push_back(d);
  }
  return out;
}

const std::vector<std::string>& ResourceConfig::token_issuers() const {
  static const std::vector<std::string> kNone;
  if (postgres.has_value()) return postgres->token_issuers;
  if (http.has_value()) return http->token_issuers;
  if (ssh.has_value()) return ssh->token_issuers;
  return kNone;
}

const char* ResourceConfig::settings_block() const {
  return postgres.has_value() ? "postgres" : http.has_value() ? "http" : ssh.has_value() ? "ssh" : "";
}

}  // namespace interlock::config
