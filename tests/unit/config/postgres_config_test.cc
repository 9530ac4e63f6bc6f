// PROTOCOL_POSTGRES resources: defaults, per-workload logins, and every validation
// error naming its file, line and field.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/config/config.h"

namespace interlock::config {
namespace {

using ::testing::HasSubstr;

constexpr char kHead[] = "resources:\n  - name: db\n    address: 127.0.0.43\n    port: 5432\n";

absl::StatusOr<ServiceConfig> Load(const std::string& tail) {
  return LoadConfigText(std::string(kHead) + tail, "interlock.yaml");
}

TEST(PostgresConfig, DefaultsAndPerWorkloadLogins) {
  auto cfg = Load(
      "    protocol: PROTOCOL_POSTGRES\n"
      "    postgres:\n"
      "      login: {user: app, password_ref: \"file:/etc/interlock/app.pw\"}\n"
      "      by_workload:\n"
      "        reporting: {user: reader, database: dw, password_ref: \"env:READER_PW\"}\n"
      "      allow_unverified_upstream: true\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_EQ(cfg->resources.size(), 1u);
  const ResourceConfig& r = cfg->resources[0];
  EXPECT_EQ(r.protocol, Protocol::kPostgres);
  ASSERT_TRUE(r.postgres.has_value());
  const PostgresConfig& pg = *r.postgres;
  EXPECT_EQ(pg.agent_auth, AgentAuth::kWorkload);
  EXPECT_EQ(pg.sslmode, "prefer");  // libpq's default
  EXPECT_EQ(pg.max_statement_bytes, 4096u);
  EXPECT_FALSE(pg.audit_parameters);
  EXPECT_EQ(pg.LoginFor("billing").user, "app");
  EXPECT_EQ(pg.LoginFor("billing").database, "app");  // defaults to the user
  EXPECT_EQ(pg.LoginFor("reporting").user, "reader");
  EXPECT_EQ(pg.LoginFor("reporting").database, "dw");
  EXPECT_EQ(pg.LoginFor("reporting").password_ref, "env:READER_PW");
  EXPECT_TRUE(pg.allow_unverified_upstream);
}

TEST(PostgresConfig, ExtraStartupParameters) {
  auto cfg = Load("    protocol: PROTOCOL_POSTGRES\n    postgres:\n      login: {user: app}\n"
                  "      extra_startup_parameters: [search_path, geqo]\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_THAT(cfg->resources[0].postgres->extra_startup_parameters, ::testing::ElementsAre("search_path", "geqo"));
  auto none = Load("    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: app}}\n");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->resources[0].postgres->extra_startup_parameters.empty());
}

// Issue 12 item 8: a password goes only to a server that proved its identity.
TEST(PostgresConfig, PasswordWithVerifiedTlsOrExplicitRiskLoads) {
  for (const char* tail : {
           "      sslmode: verify-full\n      sslrootcert: /etc/interlock/ca.pem\n",
           "      sslmode: verify-ca\n      sslrootcert: /etc/interlock/ca.pem\n",
           "      sslmode: disable\n      allow_unverified_upstream: true\n",
       }) {
    auto cfg = Load(absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    postgres:\n",
                                 "      login: {user: app, password_ref: \"file:/etc/interlock/app.pw\"}\n", tail));
    EXPECT_TRUE(cfg.ok()) << tail << cfg.status();
  }
  // No password (the server trusts interlockd): nothing to leak, any sslmode.
  EXPECT_TRUE(Load("    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: app}, sslmode: disable}\n").ok());
}

TEST(PostgresConfig, PrefixOrEveryPortNeedsAnUpstreamAddress) {
  auto prefix = LoadConfigText(
      "resources:\n  - name: db\n    address: 10.0.0.0/8\n    port: 5432\n"
      "    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: app}}\n",
      "interlock.yaml");
  ASSERT_FALSE(prefix.ok());
  EXPECT_THAT(prefix.status().message(),
              HasSubstr("interlock.yaml:2: resources[0].upstream_address: required for a PROTOCOL_POSTGRES "
                        "resource whose address is a prefix"));
  auto any_port = LoadConfigText(
      "resources:\n  - name: db\n    address: 127.0.0.43\n    port: 0\n"
      "    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: app}}\n",
      "interlock.yaml");
  ASSERT_FALSE(any_port.ok());
  EXPECT_THAT(any_port.status().message(), HasSubstr("resources[0].upstream_address: required for a "
                                                     "PROTOCOL_POSTGRES resource whose port is 0"));
  // A fixed upstream makes both fine; a plain TCP resource never needed one.
  EXPECT_TRUE(LoadConfigText("resources:\n  - name: db\n    address: 10.0.0.0/8\n    port: 0\n"
                             "    upstream_address: 127.0.0.1\n    upstream_port: 5432\n"
                             "    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: app}}\n",
                             "interlock.yaml")
                  .ok());
  EXPECT_TRUE(LoadConfigText("resources:\n  - name: web\n    address: 10.0.0.0/8\n    port: 0\n",
                             "interlock.yaml")
                  .ok());
}

struct BadCase {
  std::string yaml;
  std::string expected;  // substring of the error
};

class PostgresConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(PostgresConfigErrors, NameTheField) {
  auto cfg = Load(GetParam().yaml);
  ASSERT_FALSE(cfg.ok()) << GetParam().yaml;
  EXPECT_THAT(cfg.status().message(), HasSubstr(GetParam().expected)) << cfg.status();
  EXPECT_THAT(cfg.status().message(), HasSubstr("interlock.yaml:"));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PostgresConfigErrors,
    ::testing::Values(
        BadCase{"    protocol: PROTOCOL_POSTGRES\n", "resources[0].postgres: required for PROTOCOL_POSTGRES"},
        BadCase{"    postgres: {login: {user: a}}\n", "resources[0].postgres: set on a resource whose protocol"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {database: d}}\n",
                "resources[0].postgres.login.user: required"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: a, password_ref: hunter2}}\n",
                "password_ref: must be \"file:/absolute/path\" or \"env:NAME\""},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: a}, sslmode: strict}\n",
                "resources[0].postgres.sslmode: \"strict\" is not one of"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: a}, sslmode: verify-full}\n",
                "resources[0].postgres.sslrootcert: required with sslmode verify-full"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: a}, agent_auth: AGENT_AUTH_TOKEN}\n",
                "token_issuers: AGENT_AUTH_TOKEN needs token_issuers (OIDC) or token_sha256"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: a}, agent_auth: AGENT_AUTH_TOKEN, "
                "token_sha256: [abc]}\n",
                "token_sha256[0]: must be 64 hex digits"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: a}, agent_tls_cert_file: /x.crt}\n",
                "agent TLS needs both"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: a, password_ref: \"env:PW\"}}\n",
                "resources[0].postgres.login.password_ref: the upstream password would be sent to a server "
                "whose identity is not verified (sslmode prefer): set sslmode verify-full (or verify-ca) with "
                "sslrootcert, or allow_unverified_upstream: true to accept that anyone who can bind the "
                "address while the server is down receives the password"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: a, password_ref: \"env:PW\"}, "
                "sslmode: require}\n",
                "not verified (sslmode require)"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres:\n      login: {user: a}\n      sslmode: disable\n"
                "      by_workload:\n        rep: {user: b, password_ref: \"env:PW\"}\n",
                "by_workload[\"rep\"].password_ref: the upstream password would be sent"},
        BadCase{"    protocol: PROTOCOL_POSTGRES\n    postgres:\n      login: {user: a}\n      by_workload:\n"
                "        \"Bad Name\": {user: b}\n",
                "by_workload[\"Bad Name\"]"}));

TEST(PostgresConfig, SecretsNeverAppearInErrors) {
  auto cfg = Load("    protocol: PROTOCOL_POSTGRES\n    postgres: {login: {user: a, password_ref: \"s3cr3t-pw\"}}\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), ::testing::Not(HasSubstr("s3cr3t-pw")));
}

}  // namespace
}  // namespace interlock::config
