// Config audit.sinks: defaults, every destination, and the errors an operator sees.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/config/config.h"

namespace interlock::config {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<ServiceConfig> Load(absl::string_view sinks_yaml) {
  return LoadConfigText(
      absl::StrCat("state_dir: /var/lib/interlock\naudit:\n  sinks:\n", sinks_yaml), "il.yaml");
}

std::string ErrorOf(absl::string_view sinks_yaml) {
  absl::StatusOr<ServiceConfig> cfg = Load(sinks_yaml);
  EXPECT_FALSE(cfg.ok()) << sinks_yaml;
  return std::string(cfg.status().message());
}

TEST(AuditSinksConfig, SyslogTlsWithDefaults) {
  auto cfg = Load(R"(    - name: siem
      syslog:
        address: siem.example:6514
        transport: SYSLOG_TRANSPORT_TLS
        ca_file: /etc/interlock/siem-ca.pem
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_EQ(cfg->audit_sinks.size(), 1u);
  const AuditSinkSettings& s = cfg->audit_sinks[0];
  EXPECT_EQ(s.name, "siem");
  EXPECT_EQ(s.format, AuditSinkFormat::kJson);
  EXPECT_TRUE(s.kinds.empty());
  ASSERT_TRUE(s.syslog.has_value());
  EXPECT_EQ(s.syslog->host, "siem.example");
  EXPECT_EQ(s.syslog->port, 6514);
  EXPECT_EQ(s.syslog->transport, SyslogTransport::kTls);
  EXPECT_EQ(s.syslog->server_name, "siem.example");
  EXPECT_EQ(s.syslog->app_name, "interlockd");
  EXPECT_EQ(s.syslog->facility, 13u);
  EXPECT_EQ(s.syslog->udp_max_bytes, 8192u);
  EXPECT_EQ(s.spool_max_bytes, uint64_t{256} << 20);
  EXPECT_EQ(s.queue_max_events, 10000u);
  EXPECT_EQ(s.retry_initial, absl::Milliseconds(500));
  EXPECT_EQ(s.retry_max, absl::Seconds(60));
}

TEST(AuditSinksConfig, HecAndFilters) {
  auto cfg = Load(R"(    - name: splunk
      kinds: [AUDIT_KIND_STATEMENT, AUDIT_KIND_SESSION_START]
      spool_max_mib: 8
      hec:
        url: https://splunk.example:8088/services/collector/event
        token_ref: file:/etc/interlock/hec-token
        index: security
        batch_max_events: 50
        batch_max_delay_ms: 0
    - name: local-udp
      syslog: {address: "[::1]:5514", transport: SYSLOG_TRANSPORT_UDP, facility: 0}
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_EQ(cfg->audit_sinks.size(), 2u);
  const AuditSinkSettings& h = cfg->audit_sinks[0];
  EXPECT_THAT(h.kinds,
              ::testing::ElementsAre(v1::AUDIT_KIND_STATEMENT, v1::AUDIT_KIND_SESSION_START));
  EXPECT_EQ(h.spool_max_bytes, uint64_t{8} << 20);
  ASSERT_TRUE(h.hec.has_value());
  EXPECT_TRUE(h.hec->tls);
  EXPECT_EQ(h.hec->host, "splunk.example");
  EXPECT_EQ(h.hec->port, 8088);
  EXPECT_EQ(h.hec->path, "/services/collector/event");
  EXPECT_EQ(h.hec->index, "security");
  EXPECT_EQ(h.hec->source, "interlockd");
  EXPECT_EQ(h.hec->sourcetype, "interlock:audit");
  EXPECT_EQ(h.hec->batch_max_events, 50u);
  EXPECT_EQ(h.hec->batch_max_delay, absl::ZeroDuration());
  EXPECT_EQ(h.hec->timeout, absl::Seconds(10));
  const AuditSinkSettings& u = cfg->audit_sinks[1];
  EXPECT_EQ(u.syslog->host, "::1");
  EXPECT_EQ(u.syslog->port, 5514);
  EXPECT_EQ(u.syslog->facility, 0u);
}

TEST(AuditSinksConfig, OcsfIsAFormat) {
  auto cfg = Load(R"(    - name: a
      format: AUDIT_SINK_FORMAT_OCSF
      syslog: {address: "127.0.0.1:514", transport: SYSLOG_TRANSPORT_UDP}
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->audit_sinks[0].format, AuditSinkFormat::kOcsf);
  cfg = Load(R"(    - name: a
      format: AUDIT_SINK_FORMAT_ECS
      syslog: {address: "127.0.0.1:514", transport: SYSLOG_TRANSPORT_UDP}
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->audit_sinks[0].format, AuditSinkFormat::kEcs);
}

TEST(AuditSinksConfig, ClearErrors) {
  EXPECT_THAT(ErrorOf("    - name: a\n"), HasSubstr("needs a destination"));
  EXPECT_THAT(ErrorOf("    - syslog: {address: \"h:1\", transport: SYSLOG_TRANSPORT_TCP}\n"),
              HasSubstr("audit.sinks[0].name: required"));
  EXPECT_THAT(
      ErrorOf(
          "    - name: A/B\n      syslog: {address: \"h:1\", transport: SYSLOG_TRANSPORT_TCP}\n"),
      HasSubstr("not a valid name"));
  EXPECT_THAT(
      ErrorOf("    - name: a\n      syslog: {address: \"h:1\", transport: SYSLOG_TRANSPORT_TCP}\n"
              "    - name: a\n      syslog: {address: \"h:2\", transport: SYSLOG_TRANSPORT_TCP}\n"),
      HasSubstr("already the name of audit.sinks[0]"));
  EXPECT_THAT(
      ErrorOf("    - name: a\n      syslog: {address: \"h\", transport: SYSLOG_TRANSPORT_TCP}\n"),
      HasSubstr("is not \"host:port\""));
  EXPECT_THAT(
      ErrorOf(
          "    - name: a\n      syslog: {address: \"h:70000\", transport: SYSLOG_TRANSPORT_TCP}\n"),
      HasSubstr("port 1..65535"));
  EXPECT_THAT(ErrorOf("    - name: a\n      syslog: {address: \"h:1\"}\n"),
              HasSubstr("transport: required"));
  EXPECT_THAT(
      ErrorOf("    - name: a\n      syslog: {address: \"h:1\", transport: SYSLOG_TRANSPORT_TLS}\n"),
      HasSubstr("ca_file: required with SYSLOG_TRANSPORT_TLS"));
  EXPECT_THAT(ErrorOf("    - name: a\n      syslog: {address: \"h:1\", transport: "
                      "SYSLOG_TRANSPORT_UDP, ca_file: /x}\n"),
              HasSubstr("applies to SYSLOG_TRANSPORT_TLS only"));
  EXPECT_THAT(ErrorOf("    - name: a\n      syslog: {address: \"h:1\", transport: "
                      "SYSLOG_TRANSPORT_TLS, ca_file: /x, "
                      "client_cert_file: /c}\n"),
              HasSubstr("go together"));
  EXPECT_THAT(ErrorOf("    - name: a\n      syslog: {address: \"h:1\", transport: "
                      "SYSLOG_TRANSPORT_UDP, facility: 24}\n"),
              HasSubstr("out of range 0..23"));
  EXPECT_THAT(ErrorOf("    - name: a\n      syslog: {address: \"h:1\", transport: "
                      "SYSLOG_TRANSPORT_UDP, app_name: \"a b\"}\n"),
              HasSubstr("APP-NAME"));
  EXPECT_THAT(
      ErrorOf("    - name: a\n      hec: {url: \"http://splunk.example/services/collector/event\", "
              "token_ref: \"file:/t\"}\n"),
      HasSubstr("only to a loopback address"));
  EXPECT_THAT(ErrorOf("    - name: a\n      hec: {url: \"https://s/services/collector/event\", "
                      "token_ref: \"hunter2\"}\n"),
              HasSubstr("the token itself never goes here"));
  EXPECT_THAT(ErrorOf("    - name: a\n      hec: {url: \"ftp://s/\", token_ref: \"env:T\"}\n"),
              HasSubstr("must start with https://"));
  EXPECT_THAT(ErrorOf("    - name: a\n      retry_initial_ms: 5000\n      retry_max_ms: 1000\n"
                      "      syslog: {address: \"h:1\", transport: SYSLOG_TRANSPORT_UDP}\n"),
              HasSubstr("less than retry_initial_ms"));
  EXPECT_THAT(ErrorOf("    - name: a\n      kinds: [AUDIT_KIND_UNSPECIFIED]\n"
                      "      syslog: {address: \"h:1\", transport: SYSLOG_TRANSPORT_UDP}\n"),
              HasSubstr("not an audit kind"));
}

TEST(AuditSinksConfig, PlainHttpToLoopbackIsAllowed) {
  auto cfg = Load(
      "    - name: a\n      hec: {url: \"http://127.0.0.1:8088/services/collector/event\", "
      "token_ref: \"env:T\"}\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_FALSE(cfg->audit_sinks[0].hec->tls);
  EXPECT_EQ(cfg->audit_sinks[0].hec->port, 8088);
}

}  // namespace
}  // namespace interlock::config
