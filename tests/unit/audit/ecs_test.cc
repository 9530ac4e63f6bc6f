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

using testing::Fields;
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
    const std::string key = absl::StrCat(v1::AuditKind_Name(e.kind()), " ", e.outcome(),
                                         e.protocol() == "http" || e.protocol() == "ssh" ? " " : "",
                                         e.protocol() == "http" || e.protocol() == "ssh" ? e.protocol() : "");
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
  for (const auto& e : testing::OcsfSampleEvents()) {
    if (e.kind() == kind && e.outcome() == outcome && e.protocol() == "ssh") return EventToEcsJson(e);
  }
  ADD_FAILURE() << "no ssh sample " << v1::AuditKind_Name(kind) << " " << outcome;
  return "{}";
}

TEST(Ecs, SshCommandIsTheProcessWithTheAgentAsParent) {
  auto f = Fields(SshSample(v1::AUDIT_KIND_SSH_REQUEST, "allowed"),
                  {"/process/command_line", "/process/args/0", "/process/args/3", "/process/args_count",
                   "/process/name", "/process/exit_code", "/process/user/name", "/process/parent/pid",
                   "/process/parent/executable", "/process/pid", "/user/id", "/user/target/name", "/related/user/0",
                   "/related/user/1", "/event/duration", "/event/outcome", "/network/protocol", "/destination/ip",
                   "/destination/port", "/destination/bytes", "/source/bytes", "/rule/id",
                   "/interlock/ssh/agent_user", "/interlock/ssh/bytes_out", "/interlock/ssh/channel"});
  EXPECT_EQ(f["/process/command_line"], "/usr/bin/make -C /srv/billing test");
  EXPECT_EQ(f["/process/args/0"], "/usr/bin/make");
  EXPECT_EQ(f["/process/args/3"], "test");
  EXPECT_EQ(f["/process/args_count"], "4");
  EXPECT_EQ(f["/process/name"], "make");
  EXPECT_EQ(f["/process/exit_code"], "3");
  EXPECT_EQ(f["/process/user/name"], "deploy");
  EXPECT_EQ(f["/process/parent/pid"], "31337");
  EXPECT_EQ(f["/process/parent/executable"], "/usr/bin/python3.11");
  EXPECT_EQ(f.count("/process/pid"), 0u);  // the upstream pid is not known
  EXPECT_EQ(f["/user/id"], "agent:billing");
  EXPECT_EQ(f["/user/target/name"], "deploy");
  EXPECT_EQ(f["/related/user/0"], "agent");
  EXPECT_EQ(f["/related/user/1"], "deploy");
  EXPECT_EQ(f["/event/duration"], "2500000000");  // ns
  EXPECT_EQ(f["/event/outcome"], "success");
  EXPECT_EQ(f["/network/protocol"], "ssh");
  EXPECT_EQ(f["/destination/ip"], "10.0.0.9");
  EXPECT_EQ(f["/destination/port"], "22");
  EXPECT_EQ(f["/destination/bytes"], "3456");
  EXPECT_EQ(f["/source/bytes"], "12");
  EXPECT_EQ(f["/rule/id"], "builds");
  EXPECT_EQ(f["/interlock/ssh/agent_user"], "agent");
  EXPECT_EQ(f["/interlock/ssh/bytes_out"], "3456");
  EXPECT_EQ(f["/interlock/ssh/channel"], "1");
}

TEST(Ecs, SshDeniedRefusedAndFailedLogin) {
  const std::string denied_json = SshSample(v1::AUDIT_KIND_SSH_REQUEST, "denied");
  auto denied = Fields(denied_json, {"/process/command_line", "/process/exit_code", "/rule/id",
                                     "/rule/description", "/interlock/ssh/shell"});
  EXPECT_EQ(denied["/process/command_line"], "rm -rf /srv/billing/* && echo done");
  EXPECT_EQ(denied.count("/process/exit_code"), 0u) << denied_json;  // never ran
  EXPECT_EQ(denied["/rule/id"], "no-rm");
  EXPECT_EQ(denied["/rule/description"], "no recursive deletes");
  EXPECT_EQ(denied["/interlock/ssh/shell"], "and-list");

  auto refused = Fields(SshSample(v1::AUDIT_KIND_SSH_REQUEST, "refused"),
                        {"/event/code", "/process/pid", "/process/command_line", "/interlock/ssh/request",
                         "/interlock/ssh/command", "/user/target/name"});
  EXPECT_EQ(refused["/event/code"], "ssh_direct-tcpip_refused");
  EXPECT_EQ(refused["/process/pid"], "31337");  // no upstream process: the agent's own
  EXPECT_EQ(refused.count("/process/command_line"), 0u);
  EXPECT_EQ(refused["/interlock/ssh/request"], "direct-tcpip");
  EXPECT_EQ(refused["/interlock/ssh/command"], "10.1.2.3:5432");
  EXPECT_EQ(refused["/user/target/name"], "deploy");

  auto login = Fields(SshSample(v1::AUDIT_KIND_AUTH, "denied"),
                      {"/event/code", "/event/outcome", "/user/target/name", "/user/id", "/related/user/0",
                       "/interlock/ssh/request"});
  EXPECT_EQ(login["/event/code"], "upstream_login_failed");
  EXPECT_EQ(login["/event/outcome"], "failure");
  EXPECT_EQ(login["/user/target/name"], "deploy");
  EXPECT_EQ(login["/user/id"], "agent:billing");
  EXPECT_EQ(login["/related/user/0"], "agent");
  EXPECT_EQ(login["/interlock/ssh/request"], "userauth");
}

TEST(Ecs, SshHeldAndApprovedCommandShowTheCommand) {
  auto held = Fields(SshSample(v1::AUDIT_KIND_POLICY_DECISION, "held"),
                     {"/process/command_line", "/rule/id", "/interlock/decision/approval_id"});
  EXPECT_EQ(held["/process/command_line"], "systemctl restart billing");
  EXPECT_EQ(held["/rule/id"], "review-restarts");
  EXPECT_EQ(held["/interlock/decision/approval_id"], "apr-0123456789abcdef");
  auto approved = Fields(SshSample(v1::AUDIT_KIND_APPROVAL, "approved"),
                         {"/process/command_line", "/process/user/name", "/user/target/name", "/rule/id",
                          "/interlock/approval/approver/user", "/interlock/approval/statement"});
  EXPECT_EQ(approved["/process/command_line"], "systemctl restart billing");
  EXPECT_EQ(approved["/process/user/name"], "deploy");
  EXPECT_EQ(approved["/user/target/name"], "deploy");
  EXPECT_EQ(approved["/rule/id"], "review-restarts");
  EXPECT_EQ(approved["/interlock/approval/approver/user"], "alice");
  EXPECT_EQ(approved.count("/interlock/approval/statement"), 0u);  // it is process.command_line
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
