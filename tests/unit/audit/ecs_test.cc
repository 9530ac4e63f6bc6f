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
      {"AUDIT_KIND_GRANT granted", {"iam", "", "creation", "", "", "success"}},
      {"AUDIT_KIND_ENROLLMENT enrolled", {"iam", "", "creation", "", "", "success"}},
      {"AUDIT_KIND_DAEMON started", {"process", "", "start", "", "", "success"}},
      {"AUDIT_KIND_POLICY rejected", {"configuration", "", "change", "", "", "failure"}},
      {"AUDIT_KIND_AUDIT_CHECKPOINT signed", {"process", "", "info", "", "", "success"}},
  };
  int checked = 0;
  for (const auto& e : testing::OcsfSampleEvents()) {
    const std::string key = absl::StrCat(v1::AuditKind_Name(e.kind()), " ", e.outcome(),
                                         e.protocol() == "http" ? " http" : "");
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
    for (const char* protocol : {"postgres", "http"}) {
      v1::AuditEvent e;
      int n = 0;
      testing::FillEveryField(&e, &n);
      e.set_kind(k < 0 ? static_cast<v1::AuditKind>(77) : static_cast<v1::AuditKind>(kinds->value(k)->number()));
      e.mutable_approval()->set_protocol(protocol);
      if (std::string(protocol) == "postgres") e.clear_http();
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
