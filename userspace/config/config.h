// interlockd's configuration: the YAML file (schemas/interlock/v1/config.proto) turned
// into plain structs, with every default applied and every value checked, in one place.
// The daemon reads ServiceConfig and never looks at the proto or the YAML again.
//
//   INTERLOCK_ASSIGN_OR_RETURN(ServiceConfig cfg, LoadConfigFile("/etc/interlock/interlock.yaml"));
//   for (const ResourceConfig& r : cfg.resources) {
//     entries.push_back({.addr = r.prefix.address.bytes, .prefix_bits = r.prefix.prefix_bits,
//                        .port = r.port, .value = {.resource_id = r.id}});
//   }
//
// Errors are INVALID_ARGUMENT and list every problem found, one per line, each naming the
// file, line and field. Problems of form (YAML syntax, unknown fields, wrong types) come
// first; the value checks run once the file has the right form:
//   interlock.yaml:9: resources[0].adress: unknown field (did you mean "address"?)
//   interlock.yaml:14: resources[1].address: "10.0.0.1/8" has host bits set (the network
//   is 10.0.0.0/8)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "interlock/v1/config.pb.h"
#include "userspace/config/ip_address.h"
#include "userspace/config/yaml_to_proto.h"

namespace interlock::config {

// Defaults, as documented in config.proto.
inline constexpr absl::string_view kDefaultListenV4 = "127.0.0.1";
inline constexpr absl::string_view kDefaultListenV6 = "::1";
inline constexpr uint16_t kDefaultListenPort = 1015;
inline constexpr absl::string_view kDefaultUnixDir = "/run/interlock/listeners";
inline constexpr absl::string_view kDefaultStateDir = "/var/lib/interlock";
inline constexpr absl::string_view kDefaultPinPath = "/sys/fs/bpf/interlock";
inline constexpr absl::string_view kDefaultCgroupRoot = "interlock";
inline constexpr absl::string_view kControlSocketName = "control.sock";
inline constexpr uint32_t kDefaultMaxSessions = 10000;
inline constexpr uint32_t kMaxMaxSessions = 1000000;
inline constexpr uint32_t kDefaultMemoryBudgetMib = 1024;
inline constexpr uint32_t kMinMemoryBudgetMib = 16;
inline constexpr uint32_t kMaxMemoryBudgetMib = 1 << 20;
inline constexpr uint32_t kDefaultWriteBatchMs = 5;
inline constexpr uint32_t kMaxWriteBatchMs = 1000;
// audit.file (config.proto AuditFileConfig).
inline constexpr uint32_t kDefaultAuditRotateMib = 64;
inline constexpr uint32_t kMaxAuditRotateMib = 65536;
inline constexpr uint64_t kMinAuditRotateBytes = 1024;
inline constexpr uint32_t kMinAuditRotateAgeS = 60;
inline constexpr uint32_t kMaxAuditRotateAgeS = 31536000;
inline constexpr uint32_t kMaxAuditRetainFiles = 100000;
inline constexpr uint32_t kMaxAuditRetainDays = 36500;
inline constexpr uint32_t kDefaultAuditCheckpointIntervalS = 60;
inline constexpr uint32_t kMaxAuditCheckpointIntervalS = 86400;
// recordings (config.proto RecordingsConfig).
inline constexpr uint32_t kMaxRecordingsRetainMib = 1u << 24;
inline constexpr uint32_t kMaxRecordingsRetainDays = 36500;
inline constexpr uint32_t kDefaultRecordingsMinFreeMib = 256;
inline constexpr uint32_t kMaxRecordingsMinFreeMib = 1u << 20;
inline constexpr absl::string_view kBpffsRoot = "/sys/fs/bpf";
// Largest configuration file read.
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;

enum class RelayMode {
  kSockmap,  // sk_msg splices agent <-> interlockd bytes (RELAY_MODE_SOCKMAP, opt-in)
  kPlain,    // plain loopback TCP (RELAY_MODE_PLAIN, the default)
};

enum class Protocol {
  kTcp,       // protocol-agnostic relay (PROTOCOL_TCP, the default)
  kPostgres,  // PostgreSQL protocol 3.0 proxy (PROTOCOL_POSTGRES)
  kHttp,      // HTTP/1.1 proxy, in clear (PROTOCOL_HTTP)
  kHttps,     // HTTP/1.1 proxy, TLS terminated with a minted leaf (PROTOCOL_HTTPS)
  kSsh,       // SSH 2.0 proxy: libssh server to the agent, client upstream (PROTOCOL_SSH)
};

// How the agent authenticates to interlockd (config.proto AgentAuth).
enum class AgentAuth {
  kWorkload,  // the kernel-attested workload is enough
  kToken,     // a token in the PostgreSQL password field
};

struct PostgresLoginConfig {
  std::string user;
  std::string database;      // default: user
  std::string password_ref;  // "file:/abs/path" or "env:NAME"; resolved per session
};

// PostgresResource, validated. sslmode is one of disable, allow, prefer, require,
// verify-ca, verify-full.
struct PostgresConfig {
  AgentAuth agent_auth = AgentAuth::kWorkload;
  PostgresLoginConfig login;
  std::map<std::string, PostgresLoginConfig> by_workload;
  std::string sslmode = "prefer";
  std::string sslrootcert;
  std::string sslservername;
  bool audit_parameters = false;
  bool audit_literals = false;  // statement literals in clear in audit events and recordings
  uint32_t max_statement_bytes = 4096;
  std::vector<std::string> token_sha256;  // lower-case hex
  std::string agent_tls_cert_file;        // both set: TLS towards the agent
  std::string agent_tls_key_file;
  std::vector<std::string> token_issuers;  // OidcIssuerConfig names
  bool token_expiry_recheck = false;       // TOKEN_EXPIRY_RECHECK; else close at exp
  // The password may go to a server not verified by TLS verify-ca/verify-full.
  bool allow_unverified_upstream = false;
  // Startup parameters agents may set beyond the built-in allow-list (startup_params.h).
  std::vector<std::string> extra_startup_parameters;

  // sslmode verify-ca or verify-full: the server proves its identity before any secret.
  bool VerifiesUpstream() const { return sslmode == "verify-ca" || sslmode == "verify-full"; }
  // Whether any login (default or by_workload) has a password_ref.
  bool HasPassword() const {
    if (!login.password_ref.empty()) return true;
    for (const auto& [name, l] : by_workload) {
      if (!l.password_ref.empty()) return true;
    }
    return false;
  }

  // The login for `workload` (by_workload entry, else the default login).
  const PostgresLoginConfig& LoginFor(const std::string& workload) const {
    auto it = by_workload.find(workload);
    return it != by_workload.end() ? it->second : login;
  }
};

struct ListenerConfig {
  IpAddress address_v4;                 // in 127.0.0.0/8
  std::optional<IpAddress> address_v6;  // ::1; nullopt when disabled with "-"
  uint16_t port = kDefaultListenPort;
  // Namespace files of other network namespaces to listen in too (absolute paths).
  std::vector<std::string> network_namespaces;
  // Also listen in the namespaces of processes in enrolled cgroups (netns_discovery).
  bool discover_network_namespaces = true;
  // Directory of the per-resource unix listeners (absolute).
  std::string unix_dir = std::string(kDefaultUnixDir);
  // interlockd's unix listener for `resource_name`.
  std::string UnixListenerPath(const std::string& resource_name) const {
    return unix_dir + "/" + resource_name + ".sock";
  }
};

// HttpCredential, validated: what interlockd adds to every forwarded request.
struct HttpCredentialConfig {
  enum class Kind { kNone, kBearer, kBasic, kHeader };
  Kind kind = Kind::kNone;
  std::string user;         // kBasic
  std::string header_name;  // kHeader
  std::string secret_ref;   // "file:/..." or "env:NAME"
};

// HttpResource, validated (PROTOCOL_HTTP and PROTOCOL_HTTPS; defaults when the block is
// absent).
struct HttpConfig {
  HttpCredentialConfig credential;
  std::string upstream_ca_file;      // empty: the system trust store
  std::string upstream_server_name;  // empty: the agent's SNI, else its Host
  uint64_t max_judged_body_bytes = 1 << 20;
  std::vector<std::string> elide_query_params;  // beyond codec::http::kDefaultElidedParams
  bool refuse_unmaskable_bodies = false;  // binary bodies that must be masked: 502, not passed
  bool pass_text_past_field_rules = false;  // non-JSON text under field rules: detectors only, not 502
  bool record_request_bodies = false;     // request bodies in recordings in clear, not withheld
  // Agent identity (HttpResource.token_issuers, require_agent_token, identity_headers).
  std::vector<std::string> token_issuers;  // OidcIssuerConfig names
  bool require_agent_token = false;        // no valid token: 401
  bool identity_headers = false;           // Interlock-Workload/-Subject/-Assertion added
};

// config.proto SshLogin.
struct SshLoginConfig {
  std::string user;             // empty: the user the agent asked for
  std::string private_key_ref;  // "file:/abs/path"; read per session
  std::string certificate_file; // absolute or empty
};

// config.proto SshResource.
struct SshConfig {
  SshLoginConfig login;
  std::map<std::string, SshLoginConfig> by_workload;
  std::string upstream_known_hosts_file;              // absolute or empty
  std::vector<std::string> upstream_host_key_sha256;  // "SHA256:base64", as ssh-keygen -l prints
  bool allow_sftp = false;
  std::vector<std::string> forward_env;  // globs; default LANG, LC_*
  absl::Duration upstream_login_timeout = absl::Seconds(10);
  std::vector<std::string> token_issuers;  // OidcIssuerConfig names
  bool require_agent_token = false;
  bool mask_output = false;  // output that must be masked is masked (else: denied)
};

struct ResourceConfig {
  std::string name;
  uint32_t id = 0;    // 1-based position in the file; the BPF resource_id
  IpPrefix prefix;    // destinations that match; an IPv4 prefix also matches ::ffff:a.b.c.d
  uint16_t port = 0;  // host order; 0 = every port
  Protocol protocol = Protocol::kTcp;
  std::optional<IpAddress> upstream_address;  // nullopt: the original destination
  uint16_t upstream_port = 0;                 // 0: the original destination port
  std::optional<PostgresConfig> postgres;     // set iff protocol == kPostgres
  std::optional<HttpConfig> http;             // set iff protocol is kHttp or kHttps
  std::optional<SshConfig> ssh;               // set iff protocol == kSsh
  std::string unix_path;  // absolute unix socket path also protected; empty: none

  // The OIDC issuers whose tokens identify agents on this resource, whatever its protocol
  // (empty for TCP), and the name of the block that lists them ("postgres", "http", "ssh").
  const std::vector<std::string>& token_issuers() const;
  const char* settings_block() const;
};

// A destination a default-deny enrollment may still reach (config.proto AllowedDestination).
struct AllowedDestinationConfig {
  IpPrefix prefix;
  uint16_t port = 0;  // host order; 0 = every port
};

struct EnrollmentConfig {
  // What selects the enrolled processes (config.proto Enrollment).
  enum class Kind { kCgroupPath, kUnit, kUser, kGroup };
  Kind kind = Kind::kCgroupPath;
  std::string name;         // the workload's (derived when the file gave none)
  std::string cgroup_path;  // kCgroupPath: relative to the cgroup2 mount; no leading or trailing '/'
  std::string unit;         // kUnit: a unit's or slice's cgroup name
  uint32_t id = 0;          // kUser: uid; kGroup: gid (never 0)
  bool default_deny = false;
  std::string token_file;   // absolute or empty; never with kUser or kGroup
};

// True when `name` (a cgroup's own name) is `unit`, or matches it when `unit` is a pattern
// with one '*' ("docker-*.scope": the prefix, anything, the suffix).
bool UnitMatches(absl::string_view unit, absl::string_view name);

// The workload name of a unit's processes: the unit's name without its type suffix,
// lower-cased, other characters than [a-z0-9._-] as '-', at most 63 characters
// ("Billing-Agent@1.service" -> "billing-agent-1").
std::string WorkloadNameOfUnit(absl::string_view unit);

// The workload name of a process in cgroup `cgroup_path` (relative to the mount) below the
// enrolled slice `slice`: the first unit below it that is not itself a slice, named as
// WorkloadNameOfUnit ("/a.slice/agents.slice/billing.service/x" -> "billing"). nullopt
// when the path has no such unit below the slice.
std::optional<std::string> WorkloadNameInSlice(absl::string_view cgroup_path,
                                               absl::string_view slice);

// A trusted OIDC issuer (config.proto OidcIssuer), validated.
struct OidcIssuerConfig {
  std::string name;
  std::string issuer;
  std::vector<std::string> audiences;
  std::vector<std::string> algorithms;  // RS256 PS256 ES256 EdDSA
  std::string jwks_file;                // exactly one of jwks_file, jwks_uri, discovery
  std::string jwks_uri;
  bool discovery = false;
  std::string ca_file;
  absl::Duration clock_skew = absl::Seconds(60);
  std::string groups_claim = "groups";
  absl::Duration min_refresh_interval = absl::Seconds(30);
  absl::Duration max_token_lifetime = absl::ZeroDuration();  // zero: no limit
  bool require_low_s = false;                                // ES256: refuse s > n/2
};

struct TimeoutConfig {
  absl::Duration connect = absl::Milliseconds(5000);
  absl::Duration idle = absl::Milliseconds(3600000);
  absl::Duration drain = absl::Milliseconds(10000);
};

// Body of the approvals webhook (config.proto WebhookFormat).
enum class WebhookFormat { kInterlock, kSlack };

struct ApprovalsConfig {
  std::string webhook_url;         // empty: no webhook
  WebhookFormat webhook_format = WebhookFormat::kInterlock;
  std::string webhook_ca_file;     // absolute or empty
  std::string webhook_header_ref;  // secret reference or empty
  std::string webhook_signing_key_ref;  // secret reference or empty
  bool allow_same_uid = false;
  uint32_t max_window_s = 86400;
  std::string store_url;           // empty: SQLite in the state dir; else postgres://...
  std::string store_password_ref;  // secret reference or empty
  std::string instance_name;       // empty: the host name
  uint32_t store_timeout_ms = 2000;
};

// The local audit file (config.proto AuditFileConfig), defaults applied.
struct AuditFileSettings {
  std::string path;  // absolute; default <state_dir>/audit/audit.jsonl
  uint64_t rotate_bytes = uint64_t{kDefaultAuditRotateMib} << 20;
  uint32_t rotate_age_s = 0;     // 0: size only
  uint32_t retain_files = 0;     // 0: no limit
  uint32_t retain_days = 0;      // 0: no limit
  std::string group_readable;    // "": 0600
  uint32_t checkpoint_interval_s = kDefaultAuditCheckpointIntervalS;
};

// Session recordings (config.proto RecordingsConfig), defaults applied.
struct RecordingsSettings {
  uint64_t retain_bytes = 0;  // 0: no size limit
  uint32_t retain_days = 0;   // 0: no age limit
  uint64_t min_free_bytes = uint64_t{kDefaultRecordingsMinFreeMib} << 20;  // 0: no floor
};

// The Prometheus endpoint (config.proto MetricsConfig); both empty: off.
struct MetricsSettings {
  std::string address;    // loopback IP literal, without brackets
  uint16_t port = 0;
  std::string unix_path;  // absolute
};

// Audit sinks (config audit.sinks): see AuditSinkConfig in config.proto for meanings.
enum class AuditSinkFormat { kJson, kOcsf, kEcs };
enum class SyslogTransport { kUdp, kTcp, kTls };

struct SyslogSinkSettings {
  std::string host;  // name or address, without brackets
  uint16_t port = 0;
  SyslogTransport transport = SyslogTransport::kTcp;
  std::string ca_file;           // TLS: absolute
  std::string server_name;       // TLS: default host
  std::string client_cert_file;  // TLS: absolute or empty (with client_key_file)
  std::string client_key_file;
  std::string app_name = "interlockd";
  uint32_t facility = 13;  // log audit
  uint32_t udp_max_bytes = 8192;
};

struct HecSinkSettings {
  bool tls = true;  // https (http only to loopback)
  std::string host;
  uint16_t port = 0;
  std::string path;  // "/services/collector/event" and any query
  std::string url;   // as written, for status
  std::string token_ref;
  std::string ca_file;  // absolute; empty: system trust store
  std::string index;
  std::string source = "interlockd";
  std::string sourcetype = "interlock:audit";
  uint32_t batch_max_events = 100;
  uint32_t batch_max_bytes = 1 << 20;
  absl::Duration batch_max_delay = absl::Milliseconds(1000);
  absl::Duration timeout = absl::Milliseconds(10000);
};

struct AuditSinkSettings {
  std::string name;
  AuditSinkFormat format = AuditSinkFormat::kJson;
  std::vector<int> kinds;  // v1::AuditKind values; empty: all
  std::optional<SyslogSinkSettings> syslog;
  std::optional<HecSinkSettings> hec;
  uint64_t spool_max_bytes = uint64_t{256} << 20;
  uint32_t queue_max_events = 10000;
  absl::Duration retry_initial = absl::Milliseconds(500);
  absl::Duration retry_max = absl::Milliseconds(60000);
};

// "host:port" or "[v6]:port" split; INVALID_ARGUMENT when malformed or the port is not 1..65535.
absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(absl::string_view address);

struct ServiceConfig {
  std::string file_name;  // where it was read from, for messages
  ListenerConfig listener;
  std::string state_dir;    // absolute
  std::string pin_path;     // absolute, below /sys/fs/bpf
  std::string cgroup_root;  // absolute, or relative to the cgroup2 mount; no "..", no trailing '/'
  // Where the programs attach: absolute, or relative to the cgroup2 mount; empty for its root.
  std::string attach_cgroup;
  RelayMode relay_mode = RelayMode::kPlain;
  std::vector<ResourceConfig> resources;
  std::vector<EnrollmentConfig> enrollments;
  // nullopt: the field was absent, so the DNS resolvers of /etc/resolv.conf (interlockd
  // reads them at start, see ResolvConfNameservers); a list (maybe empty) otherwise.
  std::optional<std::vector<AllowedDestinationConfig>> default_deny_allow;
  TimeoutConfig timeouts;
  std::string control_socket;  // absolute; default <state_dir>/control.sock
  std::string admin_group;     // empty: root only
  uint32_t max_sessions = kDefaultMaxSessions;
  uint64_t memory_budget_bytes = uint64_t{kDefaultMemoryBudgetMib} << 20;
  uint32_t write_batch_ms = kDefaultWriteBatchMs;  // 0: every event-loop iteration
  std::string policy_file;  // absolute; empty: no policy
  std::string auditor_public_key_file;  // absolute; empty: masked originals are not kept
  ApprovalsConfig approvals;
  std::vector<OidcIssuerConfig> oidc_issuers;
  AuditFileSettings audit_file;
  std::vector<AuditSinkSettings> audit_sinks;
  RecordingsSettings recordings;
  MetricsSettings metrics;

  interlock::v1::Config proto;  // as written, before defaults
  SourceMap source;             // field path -> line, for later messages about this file
};

// Ranges of the timeouts, in milliseconds (0 in the file means the default).
inline constexpr uint32_t kMaxConnectTimeoutMs = 600000;  // 10 minutes
inline constexpr uint32_t kMaxIdleTimeoutMs = 604800000;  // 7 days
inline constexpr uint32_t kMaxDrainTimeoutMs = 600000;    // 10 minutes

// The nameserver addresses of a resolv.conf(5) text, in order; lines that are not
// "nameserver <address>" are skipped, so are addresses with a zone ("fe80::1%eth0").
std::vector<IpAddress> ParseResolvConfNameservers(absl::string_view text);

// The default of default_deny_allow: each nameserver of `resolv_conf_text` as a /32 or
// /128, port 53.
std::vector<AllowedDestinationConfig> DefaultDenyAllowFromResolvConf(
    absl::string_view resolv_conf_text);

// Reads and loads a YAML file (at most kMaxConfigFileBytes). NOT_FOUND when it does not
// exist, other file errors as ReadFile reports them, INVALID_ARGUMENT as above.
absl::StatusOr<ServiceConfig> LoadConfigFile(const std::string& path);

// Loads YAML text; `file_name` is only used in messages.
absl::StatusOr<ServiceConfig> LoadConfigText(absl::string_view text, absl::string_view file_name);

// Applies defaults to and checks a parsed proto. `source` places messages (an empty map
// still names the fields); its file_name names the file.
absl::StatusOr<ServiceConfig> BuildServiceConfig(interlock::v1::Config proto, SourceMap source);

// The built-in configuration (default_config.yaml, embedded at build time): protects the
// demo TCP service "demo-echo" at 127.0.0.42:7000.
absl::string_view DefaultConfigText();

// Resource and workload names: 1..63 of [a-z0-9._-], and not "." or ".." (workload names
// become cgroup directory names).
bool IsValidName(absl::string_view name);

}  // namespace interlock::config
