#include "userspace/config/config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <ostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/file_util.h"

namespace interlock::config {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

using Bytes = std::array<uint8_t, 16>;

Bytes Mapped(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

// Line numbers below are referred to by the tests; keep them in place.
constexpr char kFullConfig[] = R"(listener:
  address_v4: 127.0.0.2
  address_v6: "::1"
  port: 16001
state_dir: /srv/interlock/
pin_path: /sys/fs/bpf/il
cgroup_root: agents.slice/interlock
relay_mode: RELAY_MODE_PLAIN
resources:
  - name: pg-main
    address: 10.0.0.0/8
    port: 5432
    protocol: PROTOCOL_TCP
  - name: api.v6
    address: "2001:db8::/32"
    port: 443
    upstream_address: 10.9.9.9
    upstream_port: 8443
  - name: echo
    address: ::ffff:127.0.0.42
enrollments:
  - name: billing-agent
    cgroup_path: /agents.slice/interlock/workloads/billing
    default_deny: true
  - name: etl
    cgroup_path: agents.slice/interlock/etl.scope
timeouts:
  connect_ms: 2500
  idle_ms: 60000
  drain_ms: 1
control_socket: /run/interlock/control.sock
admin_group: interlock-admins
max_sessions: 42
)";

ServiceConfig MustLoad(absl::string_view yaml) {
  absl::StatusOr<ServiceConfig> cfg = LoadConfigText(yaml, "interlock.yaml");
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  return cfg.ok() ? *std::move(cfg) : ServiceConfig{};
}

std::string ErrorOf(absl::string_view yaml) {
  absl::StatusOr<ServiceConfig> cfg = LoadConfigText(yaml, "interlock.yaml");
  EXPECT_FALSE(cfg.ok()) << yaml;
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument) << cfg.status();
  return std::string(cfg.status().message());
}

TEST(LoadConfig, FullConfigBecomesTheExpectedServiceConfig) {
  ServiceConfig cfg = MustLoad(kFullConfig);
  EXPECT_EQ(cfg.file_name, "interlock.yaml");

  EXPECT_EQ(cfg.listener.address_v4.bytes, Mapped(127, 0, 0, 2));
  EXPECT_EQ(cfg.listener.address_v4.text, "127.0.0.2");
  EXPECT_EQ(cfg.listener.address_v4.ToInAddr().s_addr, htonl(0x7f000002));
  ASSERT_TRUE(cfg.listener.address_v6.has_value());
  EXPECT_EQ(FormatIp(*cfg.listener.address_v6), "::1");
  EXPECT_EQ(cfg.listener.port, 16001);

  EXPECT_EQ(cfg.state_dir, "/srv/interlock");
  EXPECT_EQ(cfg.pin_path, "/sys/fs/bpf/il");
  EXPECT_EQ(cfg.cgroup_root, "agents.slice/interlock");
  EXPECT_EQ(cfg.relay_mode, RelayMode::kPlain);

  ASSERT_THAT(cfg.resources, SizeIs(3));
  const ResourceConfig& pg = cfg.resources[0];
  EXPECT_EQ(pg.name, "pg-main");
  EXPECT_EQ(pg.id, 1u);
  EXPECT_EQ(pg.prefix.address.bytes, Mapped(10, 0, 0, 0));
  EXPECT_EQ(pg.prefix.prefix_bits, 104u);
  EXPECT_EQ(pg.port, 5432);
  EXPECT_EQ(pg.protocol, Protocol::kTcp);
  EXPECT_FALSE(pg.upstream_address.has_value());
  EXPECT_EQ(pg.upstream_port, 0);

  const ResourceConfig& api = cfg.resources[1];
  EXPECT_EQ(api.name, "api.v6");
  EXPECT_EQ(api.id, 2u);
  EXPECT_EQ(api.prefix.address.family, AF_INET6);
  EXPECT_EQ(api.prefix.address.bytes, (Bytes{0x20, 0x01, 0x0d, 0xb8}));
  EXPECT_EQ(api.prefix.prefix_bits, 32u);
  EXPECT_EQ(api.port, 443);
  ASSERT_TRUE(api.upstream_address.has_value());
  EXPECT_EQ(api.upstream_address->bytes, Mapped(10, 9, 9, 9));
  EXPECT_EQ(api.upstream_port, 8443);

  const ResourceConfig& echo = cfg.resources[2];
  EXPECT_EQ(echo.id, 3u);
  EXPECT_TRUE(echo.prefix.address.is_v4());
  EXPECT_EQ(echo.prefix.address.bytes, Mapped(127, 0, 0, 42));
  EXPECT_EQ(echo.prefix.prefix_bits, 128u);
  EXPECT_EQ(echo.port, 0);

  ASSERT_THAT(cfg.enrollments, SizeIs(2));
  EXPECT_EQ(cfg.enrollments[0].name, "billing-agent");
  EXPECT_EQ(cfg.enrollments[0].cgroup_path, "agents.slice/interlock/workloads/billing");
  EXPECT_TRUE(cfg.enrollments[0].default_deny);
  EXPECT_EQ(cfg.enrollments[1].cgroup_path, "agents.slice/interlock/etl.scope");
  EXPECT_FALSE(cfg.enrollments[1].default_deny);

  EXPECT_EQ(cfg.timeouts.connect, absl::Milliseconds(2500));
  EXPECT_EQ(cfg.timeouts.idle, absl::Seconds(60));
  EXPECT_EQ(cfg.timeouts.drain, absl::Milliseconds(1));
  EXPECT_EQ(cfg.control_socket, "/run/interlock/control.sock");
  EXPECT_EQ(cfg.admin_group, "interlock-admins");
  EXPECT_EQ(cfg.max_sessions, 42u);

  // The proto is kept as written; the source map still places fields.
  EXPECT_EQ(cfg.proto.state_dir(), "/srv/interlock/");
  EXPECT_EQ(cfg.proto.resources(2).address(), "::ffff:127.0.0.42");
  EXPECT_EQ(cfg.source.Line("resources[1].upstream_port"), 18);
  EXPECT_EQ(cfg.source.Where("enrollments[1].cgroup_path"),
            "interlock.yaml:26: enrollments[1].cgroup_path");
}

TEST(LoadConfig, NetworkNamespacesAndDiscovery) {
  ServiceConfig cfg = MustLoad(
      "listener:\n  network_namespaces: [/run/netns/agent1, /proc/42/ns/net]\n"
      "  netns_discovery: NETNS_DISCOVERY_OFF\n");
  EXPECT_THAT(cfg.listener.network_namespaces,
              ::testing::ElementsAre("/run/netns/agent1", "/proc/42/ns/net"));
  EXPECT_FALSE(cfg.listener.discover_network_namespaces);
  EXPECT_TRUE(MustLoad("listener:\n  netns_discovery: NETNS_DISCOVERY_ENROLLED\n")
                  .listener.discover_network_namespaces);
}

TEST(LoadConfig, UnixPathAndItsListener) {
  ServiceConfig cfg = MustLoad(
      "listener:\n  unix_dir: /run/il/\nresources:\n  - name: pg\n    address: 127.0.0.1\n"
      "    port: 5432\n    unix_path: /run/postgresql/.s.PGSQL.5432\n");
  ASSERT_THAT(cfg.resources, SizeIs(1));
  EXPECT_EQ(cfg.resources[0].unix_path, "/run/postgresql/.s.PGSQL.5432");
  EXPECT_EQ(cfg.listener.UnixListenerPath("pg"), "/run/il/pg.sock");
  EXPECT_EQ(MustLoad("").listener.unix_dir, "/run/interlock/listeners");
}

TEST(LoadConfig, DefaultsFollowConfigProto) {
  ServiceConfig cfg = MustLoad("");
  EXPECT_EQ(FormatIp(cfg.listener.address_v4), "127.0.0.1");
  ASSERT_TRUE(cfg.listener.address_v6.has_value());
  EXPECT_EQ(FormatIp(*cfg.listener.address_v6), "::1");
  EXPECT_EQ(cfg.listener.port, 1015);  // privileged: no unprivileged squatter
  EXPECT_TRUE(cfg.listener.network_namespaces.empty());
  EXPECT_TRUE(cfg.listener.discover_network_namespaces);
  EXPECT_EQ(cfg.state_dir, "/var/lib/interlock");
  EXPECT_EQ(cfg.pin_path, "/sys/fs/bpf/interlock");
  EXPECT_EQ(cfg.cgroup_root, "interlock");
  EXPECT_EQ(cfg.relay_mode, RelayMode::kPlain);
  EXPECT_TRUE(cfg.resources.empty());
  EXPECT_TRUE(cfg.enrollments.empty());
  EXPECT_EQ(cfg.timeouts.connect, absl::Seconds(5));
  EXPECT_EQ(cfg.timeouts.idle, absl::Hours(1));
  EXPECT_EQ(cfg.timeouts.drain, absl::Seconds(10));
  EXPECT_EQ(cfg.control_socket, "/var/lib/interlock/control.sock");
  EXPECT_EQ(cfg.admin_group, "");
  EXPECT_EQ(cfg.max_sessions, 10000u);
  EXPECT_EQ(cfg.write_batch_ms, 5u);
}

TEST(LoadConfig, AuditFileDefaultsAndValues) {
  config::AuditFileSettings d = MustLoad("state_dir: /srv/il\n").audit_file;
  EXPECT_EQ(d.path, "/srv/il/audit/audit.jsonl");
  EXPECT_EQ(d.rotate_bytes, uint64_t{64} << 20);
  EXPECT_EQ(d.rotate_age_s, 0u);
  EXPECT_EQ(d.retain_files, 0u);
  EXPECT_EQ(d.retain_days, 0u);
  EXPECT_EQ(d.group_readable, "");
  EXPECT_EQ(d.checkpoint_interval_s, 60u);
  config::AuditFileSettings s = MustLoad(
      "audit:\n  file:\n    path: /var/log/interlock/audit.jsonl\n    rotate_mib: 8\n"
      "    rotate_age_s: 86400\n    retain_files: 30\n    retain_days: 0\n    group_readable: adm\n"
      "    checkpoint_interval_s: 10\n").audit_file;
  EXPECT_EQ(s.path, "/var/log/interlock/audit.jsonl");
  EXPECT_EQ(s.rotate_bytes, uint64_t{8} << 20);
  EXPECT_EQ(s.rotate_age_s, 86400u);
  EXPECT_EQ(s.retain_files, 30u);
  EXPECT_EQ(s.retain_days, 0u) << "0 written means no limit";
  EXPECT_EQ(s.group_readable, "adm");
  EXPECT_EQ(s.checkpoint_interval_s, 10u);
  EXPECT_EQ(MustLoad("audit:\n  file:\n    rotate_bytes: 4096\n").audit_file.rotate_bytes, 4096u);
}

TEST(LoadConfig, RecordingsDefaultsAndValues) {
  config::RecordingsSettings d = MustLoad("state_dir: /srv/il\n").recordings;
  EXPECT_EQ(d.retain_bytes, 0u);
  EXPECT_EQ(d.retain_days, 0u);
  EXPECT_EQ(d.min_free_bytes, uint64_t{256} << 20);
  config::RecordingsSettings s =
      MustLoad("recordings:\n  retain_mib: 1024\n  retain_days: 90\n  min_free_mib: 16\n").recordings;
  EXPECT_EQ(s.retain_bytes, uint64_t{1024} << 20);
  EXPECT_EQ(s.retain_days, 90u);
  EXPECT_EQ(s.min_free_bytes, uint64_t{16} << 20);
  EXPECT_EQ(MustLoad("recordings:\n  min_free_mib: 0\n").recordings.min_free_bytes, 0u)
      << "0 written turns the floor off";
  EXPECT_EQ(MustLoad("recordings:\n  retain_days: 0\n").recordings.retain_days, 0u) << "0 written means no limit";
}

TEST(LoadConfig, MetricsOffByDefaultLoopbackOrUnixSocket) {
  config::MetricsSettings d = MustLoad("state_dir: /x\n").metrics;
  EXPECT_TRUE(d.address.empty());
  EXPECT_TRUE(d.unix_path.empty());
  config::MetricsSettings v4 = MustLoad("metrics:\n  address: \"127.0.0.1:9187\"\n").metrics;
  EXPECT_EQ(v4.address, "127.0.0.1");
  EXPECT_EQ(v4.port, 9187);
  EXPECT_EQ(MustLoad("metrics:\n  address: \"127.1.2.3:1\"\n").metrics.address, "127.1.2.3");
  config::MetricsSettings v6 = MustLoad("metrics:\n  address: \"[::1]:9187\"\n").metrics;
  EXPECT_EQ(v6.address, "::1");
  EXPECT_EQ(MustLoad("metrics:\n  unix_path: /run/interlock/metrics.sock\n").metrics.unix_path,
            "/run/interlock/metrics.sock");
}

TEST(LoadConfig, WriteBatchZeroMeansEveryIteration) {
  EXPECT_EQ(MustLoad("write_batch_ms: 0\n").write_batch_ms, 0u);
  EXPECT_EQ(MustLoad("write_batch_ms: 1000\n").write_batch_ms, 1000u);
}

// Absent: nullopt (interlockd takes /etc/resolv.conf's resolvers); an explicit empty list
// allows nothing; entries are prefixes and ports.
TEST(LoadConfig, DefaultDenyAllow) {
  EXPECT_FALSE(MustLoad("state_dir: /x\n").default_deny_allow.has_value());
  auto none = MustLoad("default_deny_allow: []\n").default_deny_allow;
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
  auto some = MustLoad(
      "default_deny_allow:\n  - {address: 127.0.0.53, port: 53}\n  - {address: \"fd00::/8\"}\n")
                  .default_deny_allow;
  ASSERT_TRUE(some.has_value());
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ(FormatIpPrefix((*some)[0].prefix), "127.0.0.53");
  EXPECT_EQ((*some)[0].port, 53);
  EXPECT_EQ(FormatIpPrefix((*some)[1].prefix), "fd00::/8");
  EXPECT_EQ((*some)[1].port, 0);
}

TEST(ResolvConf, NameserversBecomePort53Destinations) {
  const char* text =
      "# generated\nsearch example.org\nnameserver 127.0.0.53\n; comment\n"
      "nameserver\t::1\nnameserver fe80::1%eth0\nnameserver not-an-ip\noptions edns0\n"
      "  nameserver 10.0.0.2  # trailing\n";
  std::vector<AllowedDestinationConfig> d = DefaultDenyAllowFromResolvConf(text);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(FormatIpPrefix(d[0].prefix), "127.0.0.53");
  EXPECT_EQ(FormatIpPrefix(d[1].prefix), "::1");
  EXPECT_EQ(FormatIpPrefix(d[2].prefix), "10.0.0.2");
  for (const auto& a : d) EXPECT_EQ(a.port, 53);
  EXPECT_TRUE(DefaultDenyAllowFromResolvConf("").empty());
}

TEST(LoadConfig, ControlSocketFollowsStateDir) {
  EXPECT_EQ(MustLoad("state_dir: /opt/il\n").control_socket, "/opt/il/control.sock");
}

TEST(LoadConfig, PolicyAndApprovals) {
  ServiceConfig cfg = MustLoad(
      "policy_file: /etc/interlock/policy.yaml\n"
      "approvals:\n  webhook_url: https://approvals.bank.example/hook\n"
      "  webhook_header_ref: file:/etc/interlock/webhook.header\n  max_window_s: 600\n"
      "  webhook_signing_key_ref: env:INTERLOCK_WEBHOOK_KEY\n");
  EXPECT_EQ(cfg.policy_file, "/etc/interlock/policy.yaml");
  EXPECT_EQ(cfg.approvals.webhook_url, "https://approvals.bank.example/hook");
  EXPECT_EQ(cfg.approvals.webhook_header_ref, "file:/etc/interlock/webhook.header");
  EXPECT_EQ(cfg.approvals.max_window_s, 600u);
  EXPECT_EQ(cfg.approvals.webhook_signing_key_ref, "env:INTERLOCK_WEBHOOK_KEY");
  EXPECT_FALSE(cfg.approvals.allow_same_uid);
  EXPECT_EQ(MustLoad("state_dir: /x\n").approvals.max_window_s, 86400u);
  EXPECT_THAT(ErrorOf("policy_file: policy.yaml\n"), HasSubstr("interlock.yaml:1: policy_file"));
  EXPECT_THAT(ErrorOf("approvals:\n  webhook_url: ftp://x/\n"), HasSubstr("approvals.webhook_url"));
  // A secret in place of a reference is refused and not echoed.
  std::string e = ErrorOf("approvals:\n  webhook_header_ref: \"Authorization: Bearer hunter2\"\n");
  EXPECT_THAT(e, HasSubstr("approvals.webhook_header_ref"));
  EXPECT_THAT(e, ::testing::Not(HasSubstr("hunter2")));
  e = ErrorOf("approvals:\n  webhook_url: https://h/x\n  webhook_signing_key_ref: 0123456789abcdef-hunter2\n");
  EXPECT_THAT(e, HasSubstr("approvals.webhook_signing_key_ref"));
  EXPECT_THAT(e, ::testing::Not(HasSubstr("hunter2")));
  EXPECT_THAT(ErrorOf("approvals:\n  webhook_signing_key_ref: env:K\n"), HasSubstr("set without webhook_url"));
}

TEST(LoadConfig, SharedApprovalStore) {
  ServiceConfig cfg = MustLoad(
      "approvals:\n  store: \"postgres://interlock@10.0.0.5/approvals?sslrootcert=/etc/interlock/db-ca.pem\"\n"
      "  store_password_ref: file:/etc/interlock/approvals-store.pw\n  instance_name: agents-host-7\n"
      "  store_timeout_ms: 500\n");
  EXPECT_EQ(cfg.approvals.store_url, "postgres://interlock@10.0.0.5/approvals?sslrootcert=/etc/interlock/db-ca.pem");
  EXPECT_EQ(cfg.approvals.store_password_ref, "file:/etc/interlock/approvals-store.pw");
  EXPECT_EQ(cfg.approvals.instance_name, "agents-host-7");
  EXPECT_EQ(cfg.approvals.store_timeout_ms, 500u);
  ServiceConfig local = MustLoad("approvals:\n  store: sqlite\n");
  EXPECT_EQ(local.approvals.store_url, "");
  EXPECT_EQ(local.approvals.store_timeout_ms, 2000u);
  std::string e = ErrorOf("approvals:\n  store: \"mysql://root:hunter2@db/x\"\n");
  EXPECT_THAT(e, HasSubstr("approvals.store"));
  EXPECT_THAT(e, ::testing::Not(HasSubstr("hunter2")));
  e = ErrorOf("approvals:\n  store: postgres://h/x\n  store_password_ref: hunter2\n");
  EXPECT_THAT(e, HasSubstr("approvals.store_password_ref"));
  EXPECT_THAT(e, ::testing::Not(HasSubstr("hunter2")));
  EXPECT_THAT(ErrorOf("approvals:\n  store_password_ref: env:PW\n"), HasSubstr("set without a postgres store"));
  EXPECT_THAT(ErrorOf("approvals:\n  instance_name: \"host 1; rm\"\n"), HasSubstr("approvals.instance_name"));
  EXPECT_THAT(ErrorOf("approvals:\n  store_timeout_ms: 50\n"), HasSubstr("approvals.store_timeout_ms"));
}

TEST(LoadConfig, WebhookFormat) {
  EXPECT_EQ(MustLoad("approvals:\n  webhook_url: https://h/x\n").approvals.webhook_format, WebhookFormat::kInterlock);
  EXPECT_EQ(MustLoad("approvals:\n  webhook_url: https://h/x\n  webhook_format: WEBHOOK_FORMAT_INTERLOCK\n")
                .approvals.webhook_format,
            WebhookFormat::kInterlock);
  EXPECT_EQ(MustLoad("approvals:\n  webhook_url: https://hooks.slack.example/services/T/B/x\n"
                     "  webhook_format: WEBHOOK_FORMAT_SLACK\n")
                .approvals.webhook_format,
            WebhookFormat::kSlack);
  const std::string e = ErrorOf("approvals:\n  webhook_format: WEBHOOK_FORMAT_SLACK\n");
  EXPECT_THAT(e, HasSubstr("approvals.webhook_format"));
  EXPECT_THAT(e, HasSubstr("set without webhook_url"));
  EXPECT_THAT(ErrorOf("approvals:\n  webhook_url: https://h/x\n  webhook_format: WEBHOOK_FORMAT_TEAMS\n"),
              HasSubstr("webhook_format"));
}

TEST(LoadConfig, AuditorPublicKeyFile) {
  EXPECT_EQ(MustLoad("state_dir: /x\n").auditor_public_key_file, "");
  ServiceConfig cfg = MustLoad("auditor_public_key_file: /etc/interlock//auditor.pub\n");
  EXPECT_EQ(cfg.auditor_public_key_file, "/etc/interlock/auditor.pub");
  EXPECT_THAT(ErrorOf("auditor_public_key_file: auditor.pub\n"),
              HasSubstr("interlock.yaml:1: auditor_public_key_file"));
}

TEST(LoadConfig, OidcIssuersAndTokenBinding) {
  ServiceConfig cfg = MustLoad(R"(
oidc_issuers:
  - name: corp
    issuer: https://login.bank.example/realms/agents
    audiences: [interlock]
    algorithms: [RS256, EdDSA]
    discovery: true
    groups_claim: realm_access.roles
    clock_skew_s: 30
    require_low_s: true
enrollments:
  - {name: etl, cgroup_path: interlock/etl, token_file: /run/etl/token}
resources:
  - name: db
    address: 127.0.0.9
    port: 5432
    protocol: PROTOCOL_POSTGRES
    postgres:
      agent_auth: AGENT_AUTH_TOKEN
      token_issuers: [corp]
      token_expiry: TOKEN_EXPIRY_RECHECK
      login: {user: u, database: d}
)");
  ASSERT_EQ(cfg.oidc_issuers.size(), 1u);
  EXPECT_EQ(cfg.oidc_issuers[0].groups_claim, "realm_access.roles");
  EXPECT_EQ(cfg.oidc_issuers[0].clock_skew, absl::Seconds(30));
  EXPECT_TRUE(cfg.oidc_issuers[0].discovery);
  EXPECT_TRUE(cfg.oidc_issuers[0].require_low_s);  // ES256 high-s refusal, opt-in
  EXPECT_EQ(cfg.enrollments[0].token_file, "/run/etl/token");
  ASSERT_TRUE(cfg.resources[0].postgres.has_value());
  EXPECT_TRUE(cfg.resources[0].postgres->token_expiry_recheck);

  std::string e = ErrorOf(R"(
oidc_issuers:
  - {name: a, issuer: "", audiences: [], algorithms: [HS256], jwks_file: rel.json, discovery: true}
resources:
  - name: db
    address: 127.0.0.9
    port: 5432
    protocol: PROTOCOL_POSTGRES
    postgres: {agent_auth: AGENT_AUTH_TOKEN, token_issuers: [nobody], login: {user: u, database: d}}
)");
  EXPECT_THAT(e, HasSubstr("oidc_issuers[0].issuer: required"));
  EXPECT_THAT(e, HasSubstr("oidc_issuers[0].audiences"));
  EXPECT_THAT(e, HasSubstr("oidc_issuers[0].algorithms[0]: \"HS256\" is not one of"));
  EXPECT_THAT(e, HasSubstr("set exactly one of jwks_file, jwks_uri and discovery"));
  EXPECT_THAT(e, HasSubstr("resources[0].postgres.token_issuers[0]: no oidc_issuers entry named \"nobody\""));
}

TEST(LoadConfig, HttpAgentTokensAndIdentityHeaders) {
  ServiceConfig cfg = MustLoad(R"(
oidc_issuers:
  - {name: corp, issuer: "https://idp.example", audiences: [interlock], algorithms: [ES256], discovery: true}
resources:
  - name: api
    address: 127.0.0.9
    port: 80
    protocol: PROTOCOL_HTTP
    http: {token_issuers: [corp], require_agent_token: true, identity_headers: true}
  - name: plain
    address: 127.0.0.10
    port: 80
    protocol: PROTOCOL_HTTP
)");
  ASSERT_TRUE(cfg.resources[0].http.has_value());
  EXPECT_THAT(cfg.resources[0].http->token_issuers, ::testing::ElementsAre("corp"));
  EXPECT_TRUE(cfg.resources[0].http->require_agent_token);
  EXPECT_TRUE(cfg.resources[0].http->identity_headers);
  // Defaults: no agent tokens, no identity headers.
  ASSERT_TRUE(cfg.resources[1].http.has_value());
  EXPECT_TRUE(cfg.resources[1].http->token_issuers.empty());
  EXPECT_FALSE(cfg.resources[1].http->require_agent_token);
  EXPECT_FALSE(cfg.resources[1].http->identity_headers);

  // An issuer name no oidc_issuers entry has, as for PostgreSQL; a token required with no
  // issuer to verify it.
  std::string e = ErrorOf(R"(
resources:
  - name: api
    address: 127.0.0.9
    port: 80
    protocol: PROTOCOL_HTTP
    http: {token_issuers: [nobody]}
  - name: api2
    address: 127.0.0.10
    port: 80
    protocol: PROTOCOL_HTTPS
    http: {require_agent_token: true}
)");
  EXPECT_THAT(e, HasSubstr("resources[0].http.token_issuers[0]: no oidc_issuers entry named \"nobody\""));
  EXPECT_THAT(e, HasSubstr("resources[1].http.require_agent_token: needs token_issuers"));
}

TEST(LoadConfig, Ipv6ListenerCanBeDisabled) {
  ServiceConfig cfg = MustLoad("listener:\n  address_v6: \"-\"\n");
  EXPECT_FALSE(cfg.listener.address_v6.has_value());
}

TEST(LoadConfig, AbsoluteCgroupRoot) {
  ServiceConfig cfg = MustLoad(
      "cgroup_root: /sys/fs/cgroup/interlock/\nenrollments:\n"
      "  - {name: a, cgroup_path: interlock/workloads/a}\n");
  EXPECT_EQ(cfg.cgroup_root, "/sys/fs/cgroup/interlock");
  EXPECT_EQ(cfg.enrollments[0].cgroup_path, "interlock/workloads/a");
}

// Units, slices, users and groups: the shortcut lists and full entries, each with the
// workload name it gives its processes.
TEST(LoadConfig, EnrollsUnitsSlicesUsersAndGroups) {
  ServiceConfig cfg = MustLoad(
      "units: [Billing-Agent@1.service]\nslices: [interlock-agents.slice]\n"
      "users: [nobody, \"61234\"]\ngroups: [\"61235\"]\n"
      "enrollments:\n  - {name: etl, unit: etl.scope, default_deny: true, token_file: /run/t}\n"
      "  - {name: ops, user: \"61236\"}\n");
  ASSERT_THAT(cfg.enrollments, SizeIs(7));
  using Kind = EnrollmentConfig::Kind;
  auto find = [&](const std::string& name) -> const EnrollmentConfig& {
    for (const auto& e : cfg.enrollments) {
      if (e.name == name) return e;
    }
    ADD_FAILURE() << "no enrollment " << name;
    return cfg.enrollments[0];
  };
  EXPECT_EQ(find("etl").kind, Kind::kUnit);
  EXPECT_EQ(find("etl").unit, "etl.scope");
  EXPECT_TRUE(find("etl").default_deny);
  EXPECT_EQ(find("etl").token_file, "/run/t");
  EXPECT_EQ(find("ops").kind, Kind::kUser);
  EXPECT_EQ(find("ops").id, 61236u);
  EXPECT_EQ(find("billing-agent-1").unit, "Billing-Agent@1.service");
  EXPECT_EQ(find("interlock-agents").unit, "interlock-agents.slice");
  EXPECT_EQ(find("nobody").kind, Kind::kUser);
  EXPECT_EQ(find("nobody").id, 65534u);
  EXPECT_EQ(find("uid-61234").id, 61234u);
  EXPECT_EQ(find("gid-61235").kind, Kind::kGroup);
  EXPECT_EQ(find("gid-61235").id, 61235u);
  EXPECT_TRUE(cfg.attach_cgroup.empty()) << "the default attach point is the hierarchy's root";
  EXPECT_EQ(MustLoad("attach_cgroup: /\n").attach_cgroup, "");
  EXPECT_EQ(MustLoad("attach_cgroup: interlock/\n").attach_cgroup, "interlock");
  // With the programs at the root, a cgroup anywhere can be enrolled by path.
  EXPECT_THAT(MustLoad("enrollments:\n  - {name: cron, cgroup_path: system.slice/cron.service}\n")
                  .enrollments,
              SizeIs(1));
}

// A container runtime's scopes by pattern: one workload name for all (the prefix), each
// cgroup matched by prefix and suffix.
TEST(LoadConfig, UnitPatterns) {
  ServiceConfig cfg = MustLoad("units: [\"docker-*.scope\", \"libpod-*.scope\"]\n");
  ASSERT_THAT(cfg.enrollments, SizeIs(2));
  EXPECT_EQ(cfg.enrollments[0].name, "docker");
  EXPECT_EQ(cfg.enrollments[1].name, "libpod");
  EXPECT_TRUE(UnitMatches("docker-*.scope", "docker-3f2a.scope"));
  EXPECT_TRUE(UnitMatches("docker-*.scope", "docker-.scope"));
  EXPECT_FALSE(UnitMatches("docker-*.scope", "docker.scope"));
  EXPECT_FALSE(UnitMatches("docker-*.scope", "docker-3f2a.service"));
  EXPECT_FALSE(UnitMatches("docker-*.scope", "podman-3f2a.scope"));
  EXPECT_TRUE(UnitMatches("cron.service", "cron.service"));
  EXPECT_FALSE(UnitMatches("cron.service", "cron2.service"));
}

TEST(WorkloadNames, OfAUnitAndOfAUnitBelowASlice) {
  EXPECT_EQ(WorkloadNameOfUnit("billing-agent.service"), "billing-agent");
  EXPECT_EQ(WorkloadNameOfUnit("Agent@2.service"), "agent-2");
  EXPECT_EQ(WorkloadNameOfUnit("x\\x2dy.scope"), "x-x2dy");
  EXPECT_EQ(WorkloadNameOfUnit(".slice"), "unit");
  EXPECT_EQ(WorkloadNameOfUnit(std::string(100, 'a') + ".service"), std::string(63, 'a'));
  EXPECT_EQ(WorkloadNameInSlice("/interlock.slice/interlock-agents.slice/billing.service/sub",
                                "interlock-agents.slice"),
            "billing");
  EXPECT_EQ(WorkloadNameInSlice("/a.slice/agents.slice/agents-eu.slice/etl.scope", "agents.slice"),
            "etl");
  EXPECT_EQ(WorkloadNameInSlice("/a.slice/agents.slice", "agents.slice"), std::nullopt);
  EXPECT_EQ(WorkloadNameInSlice("/other.slice/x.service", "agents.slice"), std::nullopt);
}

TEST(DefaultConfig, LoadsAndValidates) {
  EXPECT_THAT(DefaultConfigText(), HasSubstr("demo-echo"));
  absl::StatusOr<ServiceConfig> cfg = LoadConfigText(DefaultConfigText(), "<default>");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_THAT(cfg->resources, SizeIs(1));
  EXPECT_EQ(cfg->resources[0].name, "demo-echo");
  EXPECT_EQ(cfg->resources[0].id, 1u);
  EXPECT_EQ(cfg->resources[0].prefix.address.bytes, Mapped(127, 0, 0, 42));
  EXPECT_EQ(cfg->resources[0].prefix.prefix_bits, 128u);
  EXPECT_EQ(cfg->resources[0].port, 7000);
  EXPECT_EQ(FormatIpPort(cfg->listener.address_v4.bytes, cfg->listener.port), "127.0.0.1:1015");
  ASSERT_TRUE(cfg->listener.address_v6.has_value());
  EXPECT_EQ(FormatIp(*cfg->listener.address_v6), "::1");
  EXPECT_EQ(cfg->state_dir, "/var/lib/interlock");
  EXPECT_EQ(cfg->pin_path, "/sys/fs/bpf/interlock");
  EXPECT_EQ(cfg->cgroup_root, "interlock");
  EXPECT_EQ(cfg->relay_mode, RelayMode::kPlain);
  EXPECT_EQ(cfg->file_name, "<default>");
}

TEST(LoadConfigFile, ReadsAFileAndNamesItInErrors) {
  std::string dir = ::testing::TempDir();
  std::string path = absl::StrCat(dir, "/config_test_", ::getpid(), ".yaml");
  ASSERT_TRUE(WriteFileAtomic(path, "resources:\n  - name: x\n    address: nope\n", 0600).ok());
  absl::StatusOr<ServiceConfig> cfg = LoadConfigFile(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), HasSubstr(absl::StrCat(path, ":3: resources[0].address")));
  ::unlink(path.c_str());

  EXPECT_EQ(LoadConfigFile(path).status().code(), absl::StatusCode::kNotFound);
}

// ---- every check names the file, the line and the field -------------------------------

struct ErrorCase {
  const char* name;
  const char* yaml;
  const char* want;  // a substring of the message
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrors, NameFileLineAndField) {
  const ErrorCase& c = GetParam();
  std::string msg = ErrorOf(c.yaml);
  EXPECT_THAT(msg, HasSubstr(c.want)) << c.name;
  // One problem, one line.
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigErrors,
    ::testing::Values(
        ErrorCase{"yaml syntax", "listener:\n  port: [1\nstate_dir: /x\n",
                  "interlock.yaml:3: invalid YAML"},
        ErrorCase{
            "unknown field", "resources:\n  - name: a\n    adress: 127.0.0.1\n",
            "interlock.yaml:3: resources[0].adress: unknown field (did you mean \"address\"?)"},
        ErrorCase{
            "wrong type",
            "resources:\n  - name: a\n    address: 127.0.0.1\n  - name: b\n    address: "
            "127.0.0.2\n    port: abc\n",
            "interlock.yaml:6: resources[1].port: invalid value \"abc\" for type TYPE_UINT32"},
        ErrorCase{"relative network namespace path",
                  "listener:\n  network_namespaces: [/run/netns/a, netns/b]\n",
                  "interlock.yaml:2: listener.network_namespaces[1]: \"netns/b\" is not an "
                  "absolute path"},
        ErrorCase{"relative unix path",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    unix_path: pg.sock\n",
                  "interlock.yaml:4: resources[0].unix_path: \"pg.sock\" is not an absolute path"},
        ErrorCase{"unix path too long for sun_path",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    unix_path: /"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
                  "resources[0].unix_path: \"/xxx"},
        ErrorCase{"unix listener path too long",
                  "listener:\n  unix_dir: /"
                  "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
                  "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n"
                  "resources:\n  - name: a\n    address: 127.0.0.1\n"
                  "    unix_path: /run/pg.sock\n",
                  "interlock.yaml:6: resources[0].unix_path: interlockd's listener for it"},
        ErrorCase{"duplicate unix path",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    unix_path: /run/pg.sock\n"
                  "  - name: b\n    address: 127.0.0.2\n    unix_path: /run/pg.sock\n",
                  "interlock.yaml:7: resources[1].unix_path: duplicate unix path \"/run/pg.sock\""},
        ErrorCase{"relative unix_dir", "listener:\n  unix_dir: run/il\n",
                  "interlock.yaml:2: listener.unix_dir: \"run/il\" is not an absolute path"},
        ErrorCase{"unknown enum", "\nrelay_mode: fast\n",
                  "interlock.yaml:2: relay_mode: unknown value \"fast\" for enum "
                  "interlock.v1.RelayMode (expected one of RELAY_MODE_SOCKMAP, RELAY_MODE_PLAIN)"},
        ErrorCase{"enum number out of range", "relay_mode: 9\n",
                  "interlock.yaml:1: relay_mode: unknown relay mode 9"},
        ErrorCase{"protocol out of range",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    protocol: 9\n",
                  "interlock.yaml:4: resources[0].protocol: unknown protocol 9"},
        ErrorCase{"http block on a tcp resource",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    port: 5432\n    protocol: PROTOCOL_TCP\n"
                  "    http: {}\n",
                  "resources[0].http: set on a resource whose protocol is not PROTOCOL_HTTP or PROTOCOL_HTTPS"},
        ErrorCase{"http credential given in clear",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    port: 80\n    protocol: PROTOCOL_HTTP\n"
                  "    http: {credential: {bearer_ref: \"hunter2\"}}\n",
                  "resources[0].http.credential.bearer_ref: must be \"file:/absolute/path\" or \"env:NAME\""},
        ErrorCase{"http credential to a prefix",
                  "resources:\n  - name: a\n    address: 127.0.0.0/24\n    port: 80\n    protocol: PROTOCOL_HTTP\n"
                  "    http: {credential: {bearer_ref: \"env:TOKEN\"}}\n",
                  "resources[0].upstream_address: required for a credential-injecting HTTP resource whose address "
                  "is a prefix"},
        ErrorCase{"listener v4 not loopback", "listener:\n  address_v4: 10.0.0.1\n",
                  "interlock.yaml:2: listener.address_v4: \"10.0.0.1\" is not an IPv4 loopback "
                  "address (127.0.0.0/8)"},
        ErrorCase{"listener v4 is v6", "listener:\n  address_v4: \"::1\"\n",
                  "interlock.yaml:2: listener.address_v4: \"::1\" is not an IPv4 loopback"},
        ErrorCase{"listener v4 garbage", "listener:\n  address_v4: localhost\n",
                  "interlock.yaml:2: listener.address_v4: \"localhost\" is not an IPv4 or IPv6 "
                  "address"},
        ErrorCase{"listener v6 not loopback", "listener:\n  address_v6: \"2001:db8::1\"\n",
                  "interlock.yaml:2: listener.address_v6: \"2001:db8::1\" is not the IPv6 "
                  "loopback address ::1"},
        ErrorCase{"listener v6 mapped v4", "listener:\n  address_v6: \"::ffff:127.0.0.1\"\n",
                  "interlock.yaml:2: listener.address_v6: \"::ffff:127.0.0.1\" is not the IPv6"},
        ErrorCase{"listener port too big", "listener:\n  port: 65536\n",
                  "interlock.yaml:2: listener.port: 65536 is out of range 1..65535"},
        ErrorCase{"listener port zero", "listener:\n  port: 0\n",
                  "interlock.yaml:2: listener.port: 0 is out of range 1..65535"},
        ErrorCase{"resource name invalid",
                  "resources:\n  - name: Demo Echo\n    address: 127.0.0.1\n",
                  "interlock.yaml:2: resources[0].name: \"Demo Echo\" is not a valid name"},
        ErrorCase{"resource name too long",
                  "resources:\n  - name: "
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    address: "
                  "127.0.0.1\n",
                  "interlock.yaml:2: resources[0].name: "},
        ErrorCase{"resource name dotdot", "resources:\n  - name: ..\n    address: 127.0.0.1\n",
                  "interlock.yaml:2: resources[0].name: \"..\" is not a valid name"},
        ErrorCase{"resource name missing", "resources:\n  - address: 127.0.0.1\n    port: 1\n",
                  "interlock.yaml:2: resources[0].name: required"},
        ErrorCase{"resource name duplicate",
                  "resources:\n  - name: db\n    address: 127.0.0.1\n  - name: db\n    address: "
                  "127.0.0.2\n",
                  "interlock.yaml:4: resources[1].name: duplicate name \"db\" (also resources[0])"},
        ErrorCase{"resource address missing", "resources:\n  - name: a\n    port: 1\n",
                  "interlock.yaml:2: resources[0].address: required"},
        ErrorCase{"resource address garbage", "resources:\n  - name: a\n    address: db.internal\n",
                  "interlock.yaml:3: resources[0].address: \"db.internal\" is not an IPv4 or IPv6 "
                  "address"},
        ErrorCase{"resource host bits", "resources:\n  - name: a\n    address: 10.0.0.1/8\n",
                  "interlock.yaml:3: resources[0].address: \"10.0.0.1/8\" has host bits set (the "
                  "network is 10.0.0.0/8)"},
        ErrorCase{"resource prefix too long", "resources:\n  - name: a\n    address: 10.0.0.0/40\n",
                  "interlock.yaml:3: resources[0].address: \"10.0.0.0/40\": prefix length"},
        ErrorCase{"resource port",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    port: 70000\n",
                  "interlock.yaml:4: resources[0].port: 70000 is out of range 0..65535"},
        ErrorCase{"resource upstream port",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    upstream_port: 65536\n",
                  "interlock.yaml:4: resources[0].upstream_port: 65536 is out of range 0..65535"},
        ErrorCase{"resource upstream address",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    upstream_address: db\n",
                  "interlock.yaml:4: resources[0].upstream_address: \"db\" is not an IPv4 or IPv6 "
                  "address (host names are not supported)"},
        ErrorCase{"resource upstream is the listener",
                  "resources:\n  - name: a\n    address: 127.0.0.1\n    port: 80\n"
                  "    upstream_address: 127.0.0.1\n    upstream_port: 1015\n",
                  "interlock.yaml:5: resources[0].upstream_address: 127.0.0.1:1015 is "
                  "interlockd's own listener"},
        ErrorCase{"resource duplicate destination (mapped form)",
                  "resources:\n  - name: a\n    address: 127.0.0.42\n    port: 7000\n"
                  "  - name: b\n    address: ::ffff:127.0.0.42\n    port: 7000\n",
                  "interlock.yaml:6: resources[1].address: same address and port as "
                  "resources[0] (\"a\": 127.0.0.42 port 7000)"},
        ErrorCase{"state_dir relative", "state_dir: var/lib/interlock\n",
                  "interlock.yaml:1: state_dir: \"var/lib/interlock\" must be an absolute path"},
        ErrorCase{"state_dir dotdot", "\nstate_dir: /var/../etc\n",
                  "interlock.yaml:2: state_dir: \"/var/../etc\" must not contain \"..\""},
        ErrorCase{"pin_path relative", "pin_path: bpf/interlock\n",
                  "interlock.yaml:1: pin_path: \"bpf/interlock\" must be an absolute path"},
        ErrorCase{"pin_path outside bpffs", "pin_path: /tmp/interlock\n",
                  "interlock.yaml:1: pin_path: \"/tmp/interlock\" is not below /sys/fs/bpf"},
        ErrorCase{"pin_path is the bpffs root", "pin_path: /sys/fs/bpf/\n",
                  "interlock.yaml:1: pin_path: \"/sys/fs/bpf/\" is not below /sys/fs/bpf"},
        ErrorCase{"pin_path lookalike", "pin_path: /sys/fs/bpfx/il\n",
                  "interlock.yaml:1: pin_path: \"/sys/fs/bpfx/il\" is not below /sys/fs/bpf"},
        ErrorCase{"cgroup_root dotdot", "cgroup_root: ../escape\n",
                  "interlock.yaml:1: cgroup_root: \"../escape\" must not contain \"..\""},
        ErrorCase{"cgroup_root is the root", "cgroup_root: /\n",
                  "interlock.yaml:1: cgroup_root: \"/\" is the cgroup2 root"},
        ErrorCase{"enrollment name invalid",
                  "enrollments:\n  - name: Billing\n    cgroup_path: interlock/b\n",
                  "interlock.yaml:2: enrollments[0].name: \"Billing\" is not a valid name"},
        ErrorCase{"enrollment name duplicate",
                  "enrollments:\n  - name: b\n    cgroup_path: interlock/b\n  - name: b\n"
                  "    cgroup_path: interlock/c\n",
                  "interlock.yaml:4: enrollments[1].name: duplicate workload name \"b\" (also "
                  "enrollments[0])"},
        ErrorCase{"enrollment selector missing", "enrollments:\n  - name: b\n",
                  "interlock.yaml:2: enrollments[0]: needs one of cgroup_path, unit, user or group"},
        ErrorCase{"enrollment two selectors",
                  "enrollments:\n  - name: b\n    unit: b.service\n    user: \"1000\"\n",
                  "interlock.yaml:2: enrollments[0]: sets more than one of cgroup_path, unit, user"},
        ErrorCase{"unit without a cgroup suffix", "units: [cron.timer]\n",
                  "interlock.yaml:1: units[0]: \"cron.timer\" must end in .service, .scope or .slice"},
        ErrorCase{"unit with a path", "units: [system.slice/cron.service]\n",
                  "units[0]: \"system.slice/cron.service\" has a character systemd does not allow"},
        ErrorCase{"pattern without a prefix", "units: [\"*.scope\"]\n",
                  "units[0]: \"*.scope\" would enroll every unit of its type; name a prefix"},
        ErrorCase{"pattern with two stars", "units: [\"a*b*.scope\"]\n",
                  "units[0]: \"a*b*.scope\" has more than one '*'"},
        ErrorCase{"slice that is not a slice", "slices: [cron.service]\n",
                  "interlock.yaml:1: slices[0]: \"cron.service\" is not a slice"},
        ErrorCase{"unit twice", "units: [a.service]\nenrollments:\n  - {name: x, unit: a.service}\n",
                  "units[0]: same unit a.service as enrollments[0]"},
        ErrorCase{"user root", "users: [root]\n",
                  "interlock.yaml:1: users[0]: \"root\" is root's user"},
        ErrorCase{"uid 0", "users: [\"0\"]\n", "users[0]: \"0\" is root's user"},
        ErrorCase{"group root", "groups: [\"0\"]\n", "groups[0]: \"0\" is root's group"},
        ErrorCase{"unknown user", "users: [no-such-user-here]\n",
                  "interlock.yaml:1: users[0]: no user named \"no-such-user-here\" on this host"},
        ErrorCase{"user token", "enrollments:\n  - user: nobody\n    token_file: /run/t\n",
                  "interlock.yaml:3: enrollments[0].token_file: cannot be bound to a user or group"},
        ErrorCase{"user and unit with one name",
                  "users: [nobody]\nunits: [nobody.service]\n",
                  "users[0]: duplicate workload name \"nobody\" (also units[0])"},
        ErrorCase{"attach_cgroup dotdot", "attach_cgroup: a/../b\n",
                  "interlock.yaml:1: attach_cgroup: \"a/../b\" must not contain \"..\""},
        ErrorCase{"cgroup_root outside attach_cgroup",
                  "attach_cgroup: agents.slice\ncgroup_root: interlock\n",
                  "interlock.yaml:2: cgroup_root: \"interlock\" is not below attach_cgroup"},
        ErrorCase{"enrollment cgroup_path dotdot",
                  "enrollments:\n  - name: b\n    cgroup_path: interlock/../system.slice\n",
                  "interlock.yaml:3: enrollments[0].cgroup_path: \"interlock/../system.slice\" "
                  "must not contain \"..\""},
        ErrorCase{"enrollment outside attach_cgroup",
                  "attach_cgroup: interlock\nenrollments:\n  - name: b\n"
                  "    cgroup_path: system.slice/cron.service\n",
                  "interlock.yaml:4: enrollments[0].cgroup_path: \"system.slice/cron.service\" is "
                  "not below attach_cgroup \"interlock\""},
        ErrorCase{"enrollment is cgroup_root",
                  "enrollments:\n  - name: b\n    cgroup_path: interlock\n",
                  "interlock.yaml:3: enrollments[0].cgroup_path: \"interlock\" contains "
                  "interlockd's own cgroup interlock/daemon"},
        ErrorCase{"enrollment is the daemon",
                  "enrollments:\n  - name: b\n    cgroup_path: interlock/daemon\n",
                  "interlock.yaml:3: enrollments[0].cgroup_path: \"interlock/daemon\" is "
                  "interlockd's own cgroup"},
        ErrorCase{"enrollment same cgroup",
                  "enrollments:\n  - name: a\n    cgroup_path: interlock/x\n  - name: b\n"
                  "    cgroup_path: /interlock/x/\n",
                  "interlock.yaml:4: enrollments[1]: same cgroup interlock/x as enrollments[0]"},
        ErrorCase{"max_sessions too big", "max_sessions: 1000001\n",
                  "interlock.yaml:1: max_sessions: 1000001 is out of range 1..1000000"},
        ErrorCase{"write batch too long", "write_batch_ms: 1001\n",
                  "interlock.yaml:1: write_batch_ms: 1001 is out of range 0..1000"},
        ErrorCase{"audit file path relative", "audit:\n  file:\n    path: audit.jsonl\n",
                  "interlock.yaml:3: audit.file.path: \"audit.jsonl\" must be an absolute path"},
        ErrorCase{"audit file path a directory", "audit:\n  file:\n    path: /var/log/\n",
                  "interlock.yaml:3: audit.file.path: \"/var/log/\" names a directory"},
        ErrorCase{"audit rotate_mib zero", "audit:\n  file:\n    rotate_mib: 0\n",
                  "interlock.yaml:3: audit.file.rotate_mib: 0 is out of range 1..65536"},
        ErrorCase{"audit rotate_mib too big", "audit:\n  file:\n    rotate_mib: 65537\n",
                  "interlock.yaml:3: audit.file.rotate_mib: 65537 is out of range 1..65536"},
        ErrorCase{"audit rotate_bytes tiny", "audit:\n  file:\n    rotate_bytes: 100\n",
                  "interlock.yaml:3: audit.file.rotate_bytes: 100 is below the minimum of 1024"},
        ErrorCase{"audit rotate_age_s too short", "audit:\n  file:\n    rotate_age_s: 59\n",
                  "interlock.yaml:3: audit.file.rotate_age_s: 59 is out of range 60..31536000"},
        ErrorCase{"audit retain_days too long", "audit:\n  file:\n    retain_days: 36501\n",
                  "interlock.yaml:3: audit.file.retain_days: 36501 is out of range 1..36500"},
        ErrorCase{"audit group name", "audit:\n  file:\n    group_readable: \"no such\"\n",
                  "interlock.yaml:3: audit.file.group_readable: \"no such\" is not a valid group name"},
        ErrorCase{"audit checkpoint interval zero", "audit:\n  file:\n    checkpoint_interval_s: 0\n",
                  "interlock.yaml:3: audit.file.checkpoint_interval_s: 0 is out of range 1..86400"},
        ErrorCase{"audit checkpoint interval too long", "audit:\n  file:\n    checkpoint_interval_s: 86401\n",
                  "interlock.yaml:3: audit.file.checkpoint_interval_s: 86401 is out of range 1..86400"},
        ErrorCase{"recordings retain_mib too big", "recordings:\n  retain_mib: 16777217\n",
                  "interlock.yaml:2: recordings.retain_mib: 16777217 is out of range 1..16777216"},
        ErrorCase{"recordings retain_days too long", "recordings:\n  retain_days: 36501\n",
                  "interlock.yaml:2: recordings.retain_days: 36501 is out of range 1..36500"},
        ErrorCase{"recordings min_free_mib too big", "recordings:\n  min_free_mib: 1048577\n",
                  "interlock.yaml:2: recordings.min_free_mib: 1048577 is out of range 0..1048576"},
        ErrorCase{"metrics on a public address", "metrics:\n  address: \"0.0.0.0:9187\"\n",
                  "interlock.yaml:2: metrics.address: \"0.0.0.0\" is not a loopback address"},
        ErrorCase{"metrics on a LAN address", "metrics:\n  address: \"[2001:db8::1]:9187\"\n",
                  "interlock.yaml:2: metrics.address: \"2001:db8::1\" is not a loopback address"},
        ErrorCase{"metrics without a port", "metrics:\n  address: \"127.0.0.1\"\n",
                  "interlock.yaml:2: metrics.address: "},
        ErrorCase{"metrics unix path relative", "metrics:\n  unix_path: m.sock\n",
                  "interlock.yaml:2: metrics.unix_path: \"m.sock\" must be an absolute path"},
        ErrorCase{"metrics both", "metrics:\n  address: \"127.0.0.1:1\"\n  unix_path: /m.sock\n",
                  "interlock.yaml:3: metrics.unix_path: set address or unix_path, not both"},
        ErrorCase{"max_sessions zero", "max_sessions: 0\n",
                  "interlock.yaml:1: max_sessions: 0 is out of range 1..1000000"},
        ErrorCase{"connect timeout", "timeouts:\n  connect_ms: 600001\n",
                  "interlock.yaml:2: timeouts.connect_ms: 600001 is out of range 1..600000"},
        ErrorCase{"idle timeout", "timeouts:\n  idle_ms: 604800001\n",
                  "interlock.yaml:2: timeouts.idle_ms: 604800001 is out of range 1..604800000"},
        ErrorCase{"drain timeout", "timeouts:\n\n  drain_ms: 0\n",
                  "interlock.yaml:3: timeouts.drain_ms: 0 is out of range 1..600000"},
        ErrorCase{"control_socket relative", "control_socket: control.sock\n",
                  "interlock.yaml:1: control_socket: \"control.sock\" must be an absolute path"},
        ErrorCase{
            "control_socket too long",
            "control_socket: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/control.sock\n",
            "interlock.yaml:1: control_socket: control socket path"},
        ErrorCase{"admin_group invalid", "admin_group: \"wheel:x\"\n",
                  "interlock.yaml:1: admin_group: \"wheel:x\" is not a valid group name"},
        ErrorCase{"default_deny_allow bad address",
                  "default_deny_allow:\n  - {address: 10.0.0.1/8, port: 53}\n",
                  "interlock.yaml:2: default_deny_allow[0].address: "},
        ErrorCase{"default_deny_allow port", "default_deny_allow:\n  - {address: 127.0.0.53, port: 70000}\n",
                  "interlock.yaml:2: default_deny_allow[0].port: 70000 is out of range 0..65535"},
        ErrorCase{"enrollment path too long for the kernel table",
                  "enrollments:\n  - name: a\n    cgroup_path: interlock/"
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                  "interlock.yaml:3: enrollments[0].cgroup_path: is 262 bytes long; at most 254"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) {
      std::string name = info.param.name;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST(ConfigErrors, AllProblemsAreReportedTogetherInDocumentOrder) {
  std::string msg = ErrorOf(R"(listener:
  address_v4: 10.0.0.1
  port: 70000
state_dir: relative
resources:
  - name: Bad Name
    address: 10.0.0.1/8
    port: 70000
  - name: ok
    address: 127.0.0.1
enrollments:
  - name: x
max_sessions: 0
)");
  std::vector<std::string> lines = absl::StrSplit(msg, '\n');
  ASSERT_THAT(lines, SizeIs(8)) << msg;
  EXPECT_THAT(lines[0], HasSubstr("interlock.yaml:2: listener.address_v4:"));
  EXPECT_THAT(lines[1], HasSubstr("interlock.yaml:3: listener.port:"));
  EXPECT_THAT(lines[2], HasSubstr("interlock.yaml:4: state_dir:"));
  EXPECT_THAT(lines[3], HasSubstr("interlock.yaml:6: resources[0].name:"));
  EXPECT_THAT(
      lines[4],
      HasSubstr("interlock.yaml:7: resources[0].address: \"10.0.0.1/8\" has host bits set"));
  EXPECT_THAT(lines[5], HasSubstr("interlock.yaml:8: resources[0].port:"));
  EXPECT_THAT(lines[6], HasSubstr("interlock.yaml:12: enrollments[0]: needs one of cgroup_path, unit, user or group"));
  EXPECT_THAT(lines[7], HasSubstr("interlock.yaml:13: max_sessions:"));
}

TEST(ConfigErrors, BuiltFromAProtoWithoutASourceStillNamesFields) {
  v1::Config proto;
  proto.add_resources()->set_address("127.0.0.1");
  absl::StatusOr<ServiceConfig> cfg = BuildServiceConfig(proto, SourceMap("api"));
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(), "api: resources[0].name: required");
}

TEST(IsValidName, Rule) {
  EXPECT_TRUE(IsValidName("billing-agent"));
  EXPECT_TRUE(IsValidName("a.b_c-9"));
  EXPECT_TRUE(IsValidName(std::string(63, 'a')));
  EXPECT_FALSE(IsValidName(std::string(64, 'a')));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("Upper"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName("a b"));
  EXPECT_FALSE(IsValidName("."));
  EXPECT_FALSE(IsValidName(".."));
}

}  // namespace
}  // namespace interlock::config
