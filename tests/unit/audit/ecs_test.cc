#include "userspace/audit/ecs.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/unit/audit/format_test_util.h"
#include "tests/unit/audit/ocsf_samples.h"

// Field names, types and allowed values are checked by ecs_schema_check.py against
// tests/data/ecs (ctest EcsSchema.*); these tests check the mapping's choices, the JSON
// text, and that nothing of the event is lost.

namespace interlock::audit {
namespace {

using testing::ExpectFields;
using testing::Fields;
using testing::kAbsent;
using testing::ParseStrict;

// The category/type table in ecs.h, event by event (keyed by "KIND outcome [http]").
TEST(Ecs, CategoryTypeAndOutcomePerKind) {
  const std::map<std::string, std::vector<std::string>> kWant = {
      // category 0, category 1 / type 0, type 1, type 2 / outcome
      {"AUDIT_KIND_SESSION_START allowed", {"network", "session", "connection", "start", "", "success"}},
      {"AUDIT_KIND_CONNECT_DENIED denied", {"network", "", "connection", "denied", "", "failure"}},
      {"AUDIT_KIND_STATEMENT ok", {"database", "", "access", "", "", "success"}},
      {"AUDIT_KIND_STATEMENT error", {"database", "", "access", "change", "", "failure"}},
      {"AUDIT_KIND_POLICY_DECISION denied", {"database", "", "access", "change", "", "failure"}},
      {"AUDIT_KIND_POLICY_DECISION held http", {"web", "network", "access", "allowed", "", "failure"}},
      {"AUDIT_KIND_HTTP_REQUEST allowed http", {"web", "network", "access", "allowed", "", "success"}},
      {"AUDIT_KIND_HTTP_REQUEST denied http", {"web", "network", "access", "denied", "", "failure"}},
      {"AUDIT_KIND_AUTH closed", {"authentication", "", "end", "", "", "success"}},
      {"AUDIT_KIND_SSH_REQUEST allowed ssh", {"process", "network", "start", "allowed", "", "success"}},
      {"AUDIT_KIND_SSH_REQUEST denied ssh", {"process", "network", "start", "denied", "", "failure"}},
      {"AUDIT_KIND_SSH_REQUEST refused ssh", {"network", "", "connection", "denied", "", "failure"}},
      {"AUDIT_KIND_AUTH denied ssh", {"authentication", "", "start", "", "", "failure"}},
      {"AUDIT_KIND_POLICY_DECISION held ssh", {"process", "network", "start", "allowed", "", "failure"}},
      {"AUDIT_KIND_APPROVAL approved ssh", {"process", "network", "start", "allowed", "", "success"}},
      {"AUDIT_KIND_GRANT granted", {"iam", "", "creation", "", "", "success"}},
      {"AUDIT_KIND_ENROLLMENT enrolled", {"iam", "", "creation", "", "", "success"}},
      {"AUDIT_KIND_DAEMON started", {"process", "", "start", "", "", "success"}},
      {"AUDIT_KIND_POLICY rejected", {"configuration", "", "change", "", "", "failure"}},
      {"AUDIT_KIND_AUDIT_CHECKPOINT signed", {"process", "", "info", "", "", "success"}},
  };
  int checked = 0;
  for (const auto& e : testing::OcsfSampleEvents()) {
    const std::string key = testing::SampleKey(e);
    auto want = kWant.find(key);
    if (want == kWant.end()) continue;
    ++checked;
    auto f = Fields(EventToEcsJson(e), {"/event/category/0", "/event/category/1", "/event/type/0",
                                        "/event/type/1", "/event/type/2", "/event/outcome"});
    const std::vector<std::string> got = {f["/event/category/0"], f["/event/category/1"], f["/event/type/0"],
                                          f["/event/type/1"],     f["/event/type/2"],     f["/event/outcome"]};
    EXPECT_EQ(got, want->second) << key;
  }
  EXPECT_EQ(checked, static_cast<int>(kWant.size()));
}

TEST(Ecs, HttpAndPrincipalFieldsLandInEcsSlots) {
  for (const auto& e : testing::OcsfSampleEvents()) {
    if (e.kind() != v1::AUDIT_KIND_HTTP_REQUEST || e.outcome() != "allowed") continue;
    auto f = Fields(EventToEcsJson(e),
                    {"/@timestamp", "/ecs/version", "/event/id", "/event/duration", "/url/full", "/url/query",
                     "/http/request/method", "/http/response/status_code", "/user/id", "/user/roles/1",
                     "/process/executable", "/destination/port", "/service/name", "/rule/id"});
    EXPECT_EQ(f["/@timestamp"], e.time());
    EXPECT_EQ(f["/ecs/version"], kEcsVersion);
    EXPECT_EQ(f["/event/id"], e.id());
    EXPECT_EQ(f["/event/duration"], "42000000");  // ns
    EXPECT_EQ(f["/url/full"], "https://crm.example/v1/customers?limit=10&api_key=<elided>");
    EXPECT_EQ(f["/url/query"], "limit=10&api_key=<elided>");
    EXPECT_EQ(f["/http/request/method"], "GET");
    EXPECT_EQ(f["/http/response/status_code"], "200");
    EXPECT_EQ(f["/user/id"], "agent:billing");
    EXPECT_EQ(f["/user/roles/1"], "billing");
    EXPECT_EQ(f["/process/executable"], "/usr/bin/python3.11");
    EXPECT_EQ(f["/destination/port"], "443");
    EXPECT_EQ(f["/service/name"], "crm-api");
    EXPECT_EQ(f["/rule/id"], "no-unbounded-delete");
  }
}

// The SSH sample with `kind` and `outcome`, as ECS.
std::string SshSample(v1::AuditKind kind, const std::string& outcome) {
  const v1::AuditEvent e = testing::SshSampleEvent(kind, outcome);
  EXPECT_EQ(e.protocol(), "ssh") << "no ssh sample " << v1::AuditKind_Name(kind) << " " << outcome;
  return EventToEcsJson(e);
}

TEST(Ecs, SshCommandIsTheProcessWithTheAgentAsParent) {
  ExpectFields(SshSample(v1::AUDIT_KIND_SSH_REQUEST, "allowed"),
               {{"/process/command_line", "/usr/bin/make -C /srv/billing test"},
                {"/process/args/0", "/usr/bin/make"},
                {"/process/args/3", "test"},
                {"/process/args_count", "4"},
                {"/process/name", "make"},
                {"/process/exit_code", "3"},
                {"/process/user/name", "deploy"},
                {"/process/parent/pid", "31337"},
                {"/process/parent/executable", "/usr/bin/python3.11"},
                {"/process/pid", kAbsent},  // the upstream pid is not known
                {"/user/id", "agent:billing"},
                {"/user/target/name", "deploy"},
                {"/related/user/0", "agent"},
                {"/related/user/1", "deploy"},
                {"/event/duration", "2500000000"},  // ns
                {"/event/outcome", "success"},
                {"/network/protocol", "ssh"},
                {"/destination/ip", "10.0.0.9"},
                {"/destination/port", "22"},
                {"/destination/bytes", "3456"},
                {"/source/bytes", "12"},
                {"/rule/id", "builds"},
                {"/interlock/ssh/agent_user", "agent"},
                {"/interlock/ssh/bytes_out", "3456"},
                {"/interlock/ssh/channel", "1"}});
}

TEST(Ecs, SshDeniedRefusedAndFailedLogin) {
  ExpectFields(SshSample(v1::AUDIT_KIND_SSH_REQUEST, "denied"),
               {{"/process/command_line", "rm -rf /srv/billing/* && echo done"},
                {"/process/exit_code", kAbsent},  // never ran
                {"/rule/id", "no-rm"},
                {"/rule/description", "no recursive deletes"},
                {"/interlock/ssh/shell", "and-list"}});
  ExpectFields(SshSample(v1::AUDIT_KIND_SSH_REQUEST, "refused"),
               {{"/event/code", "ssh_direct-tcpip_refused"},
                {"/process/pid", "31337"},  // no upstream process: the agent's own
                {"/process/command_line", kAbsent},
                {"/interlock/ssh/request", "direct-tcpip"},
                {"/interlock/ssh/command", "10.1.2.3:5432"},
                {"/user/target/name", "deploy"}});
  ExpectFields(SshSample(v1::AUDIT_KIND_AUTH, "denied"),
               {{"/event/code", "upstream_login_failed"},
                {"/event/outcome", "failure"},
                {"/user/target/name", "deploy"},
                {"/user/id", "agent:billing"},
                {"/related/user/0", "agent"},
                {"/interlock/ssh/request", "userauth"}});
}

TEST(Ecs, SshHeldAndApprovedCommandShowTheCommand) {
  ExpectFields(SshSample(v1::AUDIT_KIND_POLICY_DECISION, "held"),
               {{"/process/command_line", "systemctl restart billing"},
                {"/rule/id", "review-restarts"},
                {"/interlock/decision/approval_id", "apr-0123456789abcdef"}});
  ExpectFields(SshSample(v1::AUDIT_KIND_APPROVAL, "approved"),
               {{"/process/command_line", "systemctl restart billing"},
                {"/process/user/name", "deploy"},
                {"/user/target/name", "deploy"},
                {"/rule/id", "review-restarts"},
                {"/interlock/approval/approver/user", "alice"},
                {"/interlock/approval/statement", kAbsent}});  // it is process.command_line
}

TEST(Ecs, HostileStringsGiveStrictJson) {
  const auto* kinds = v1::AuditKind_descriptor();
  for (const std::string& hostile : testing::HostileStrings()) {
    for (int k = 0; k < kinds->value_count(); ++k) {
      for (v1::AuditEvent& e : testing::OcsfSampleEvents()) {
        e.set_kind(static_cast<v1::AuditKind>(kinds->value(k)->number()));
        testing::SetEveryString(&e, hostile);
        const std::string json = EventToEcsJson(e);
        ASSERT_TRUE(ParseStrict(json).ok()) << ParseStrict(json) << "\n" << json;
        for (char c : json) ASSERT_GE(static_cast<unsigned char>(c), 0x20) << json;
        auto f = Fields(json, {"/ecs/version", "/injected"});
        EXPECT_EQ(f["/ecs/version"], kEcsVersion);
        EXPECT_EQ(f.count("/injected"), 0u) << "a string value broke out of its quotes";
      }
    }
  }
}

TEST(Ecs, EveryValueOfTheEventIsKept) {
  const auto* kinds = v1::AuditKind_descriptor();
  for (int k = -1; k < kinds->value_count(); ++k) {
    for (const char* protocol : {"postgres", "http", "ssh"}) {
      v1::AuditEvent e;
      int n = 0;
      testing::FillEveryField(&e, &n);
      e.set_kind(k < 0 ? static_cast<v1::AuditKind>(77) : static_cast<v1::AuditKind>(kinds->value(k)->number()));
      testing::SetProtocol(&e, protocol);
      const std::string json = EventToEcsJson(e);
      ASSERT_TRUE(ParseStrict(json).ok()) << json;
      for (const std::string& v : testing::LeafValues(e)) {
        EXPECT_NE(json.find(v), std::string::npos)
            << "kind " << e.kind() << " " << protocol << ": value " << v << " lost\n" << json;
      }
    }
  }
}

TEST(Ecs, AppendKeepsWhatIsThereAndAddsNoNewline) {
  v1::AuditEvent e;
  e.set_kind(v1::AUDIT_KIND_DAEMON);
  e.set_outcome("started");
  std::string out = "previous\n";
  AppendEcsJson(&out, e);
  EXPECT_EQ(out.substr(9), EventToEcsJson(e));
  EXPECT_EQ(out.back(), '}');
  auto f = Fields(EventToEcsJson(e), {"/@timestamp", "/event/action"});
  EXPECT_EQ(f["/@timestamp"], "1970-01-01T00:00:00Z");  // no time in the event: never the clock
  EXPECT_EQ(f["/event/action"], "daemon");
}

}  // namespace
}  // namespace interlock::audit
