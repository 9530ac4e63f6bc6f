#include "userspace/audit/ocsf.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/unit/audit/format_test_util.h"
#include "tests/unit/audit/ocsf_samples.h"

// The schema itself (names, types, enums, required attributes) is checked by
// ocsf_schema_check.py against tests/data/ocsf (ctest OcsfSchema.*); these tests check the
// mapping's choices, the JSON text, and that nothing of the event is lost.

namespace interlock::audit {
namespace {

using testing::ExpectFields;
using testing::Fields;
using testing::kAbsent;
using testing::ParseStrict;

TEST(Ocsf, SamplesCoverEveryAuditKind) {
  std::set<int> seen;
  for (const auto& e : testing::OcsfSampleEvents()) seen.insert(e.kind());
  const auto* d = v1::AuditKind_descriptor();
  for (int i = 0; i < d->value_count(); ++i) EXPECT_TRUE(seen.count(d->value(i)->number())) << d->value(i)->name();
}

// The class table in ocsf.h, event by event.
TEST(Ocsf, ClassActivityAndDispositionPerKind) {
  struct Want {
    std::string class_uid, activity_id, disposition_id;
  };
  // Keyed by "KIND outcome" (the samples are unique on it, http ones marked).
  const std::map<std::string, Want> kWant = {
      {"AUDIT_KIND_SESSION_START allowed", {"4001", "1", "1"}},
      {"AUDIT_KIND_SESSION_END closed", {"4001", "2", ""}},
      {"AUDIT_KIND_CONNECT_DENIED denied", {"4001", "5", "2"}},
      {"AUDIT_KIND_SESSION_REJECTED rejected", {"4001", "5", "25"}},
      {"AUDIT_KIND_DAEMON started", {"6002", "3", ""}},
      {"AUDIT_KIND_DAEMON denied", {"6002", "99", ""}},
      {"AUDIT_KIND_ENROLLMENT enrolled", {"3004", "6", ""}},
      {"AUDIT_KIND_STATEMENT ok", {"6005", "4", "1"}},
      {"AUDIT_KIND_STATEMENT error", {"6005", "5", "1"}},  // forwarded; the SQL failed
      {"AUDIT_KIND_AUTH allowed", {"3002", "1", ""}},
      {"AUDIT_KIND_AUTH closed", {"3002", "2", ""}},
      {"AUDIT_KIND_CANCEL denied", {"4001", "99", "2"}},
      {"AUDIT_KIND_PROTOCOL_ERROR denied", {"4001", "99", "2"}},
      {"AUDIT_KIND_POLICY_DECISION denied", {"6005", "7", "2"}},
      {"AUDIT_KIND_POLICY_DECISION held", {"6005", "7", "14"}},
      {"AUDIT_KIND_POLICY_DECISION held http", {"4002", "6", "14"}},
      {"AUDIT_KIND_APPROVAL requested", {"6005", "7", "14"}},
      {"AUDIT_KIND_APPROVAL approved", {"6005", "7", "8"}},
      {"AUDIT_KIND_APPROVAL denied", {"6005", "7", "2"}},
      {"AUDIT_KIND_APPROVAL timed_out", {"6005", "7", "2"}},
      {"AUDIT_KIND_APPROVAL expired", {"6005", "7", "2"}},
      {"AUDIT_KIND_APPROVAL approver_refused", {"6005", "7", "26"}},
      {"AUDIT_KIND_APPROVAL approved http", {"4002", "6", "8"}},
      {"AUDIT_KIND_GRANT granted", {"3003", "1", ""}},
      {"AUDIT_KIND_GRANT revoked", {"3003", "99", ""}},
      {"AUDIT_KIND_GRANT expired", {"3003", "99", ""}},
      {"AUDIT_KIND_GRANT granter_refused", {"3003", "99", ""}},
      {"AUDIT_KIND_GRANT denied", {"3003", "99", ""}},
      {"AUDIT_KIND_POLICY loaded", {"6002", "8", ""}},
      {"AUDIT_KIND_POLICY rejected", {"6002", "8", ""}},
      {"AUDIT_KIND_AUDIT_CHECKPOINT signed", {"6002", "99", ""}},
      {"AUDIT_KIND_MASKING masked", {"6005", "1", "99"}},
      {"AUDIT_KIND_HTTP_REQUEST allowed http", {"4002", "3", "1"}},
      {"AUDIT_KIND_HTTP_REQUEST denied http", {"4002", "99", "2"}},
      {"AUDIT_KIND_SSH_REQUEST allowed ssh", {"1007", "1", "1"}},
      {"AUDIT_KIND_SSH_REQUEST denied ssh", {"1007", "1", "2"}},
      {"AUDIT_KIND_SSH_REQUEST refused ssh", {"4007", "5", "2"}},
      {"AUDIT_KIND_AUTH denied ssh", {"3002", "1", ""}},
      {"AUDIT_KIND_POLICY_DECISION held ssh", {"1007", "1", "14"}},
      {"AUDIT_KIND_APPROVAL approved ssh", {"1007", "1", "8"}},
      {" allowed", {"0", "99", ""}},
      {"AUDIT_KIND_UNSPECIFIED ", {"0", "99", ""}},
  };
  std::set<std::string> checked;
  for (const auto& e : testing::OcsfSampleEvents()) {
    const std::string key = testing::SampleKey(e);
    auto want = kWant.find(key);
    ASSERT_NE(want, kWant.end()) << "no expectation for sample " << key;
    checked.insert(key);
    const std::string json = EventToOcsfJson(e);
    auto f = Fields(json, {"/class_uid", "/activity_id", "/type_uid", "/disposition_id", "/metadata/uid"});
    EXPECT_EQ(f["/class_uid"], want->second.class_uid) << key;
    EXPECT_EQ(f["/activity_id"], want->second.activity_id) << key;
    EXPECT_EQ(f["/type_uid"], absl::StrCat(std::stoi(f["/class_uid"]) * 100 + std::stoi(f["/activity_id"]))) << key;
    EXPECT_EQ(f["/disposition_id"], want->second.disposition_id) << key;
    EXPECT_EQ(f["/metadata/uid"], e.id()) << key;
  }
  EXPECT_EQ(checked.size(), kWant.size());
}

TEST(Ocsf, StatementFieldsLandInDatastoreSlots) {
  for (const auto& e : testing::OcsfSampleEvents()) {
    if (e.kind() != v1::AUDIT_KIND_STATEMENT || e.outcome() != "ok") continue;
    auto f = Fields(EventToOcsfJson(e), {"/query_info/query_string", "/query_info/name", "/database/name",
                                         "/database/uid", "/actor/user/uid", "/actor/process/pid",
                                         "/actor/process/file/path", "/actor/session/uid", "/dst_endpoint/ip",
                                         "/dst_endpoint/port", "/time", "/authorizations/0/policy/uid",
                                         "/unmapped/interlock/statement/parameters/0"});
    EXPECT_EQ(f["/query_info/query_string"], "SELECT name FROM customers WHERE id = $1");
    EXPECT_EQ(f["/query_info/name"], "s1");
    EXPECT_EQ(f["/database/name"], "billing");
    EXPECT_EQ(f["/database/uid"], "billing-db");
    EXPECT_EQ(f["/actor/user/uid"], "agent:billing");  // the OIDC subject
    EXPECT_EQ(f["/actor/process/pid"], "31337");
    EXPECT_EQ(f["/actor/process/file/path"], "/usr/bin/python3.11");
    EXPECT_EQ(f["/actor/session/uid"], e.session_id());
    EXPECT_EQ(f["/dst_endpoint/ip"], "10.0.0.7");
    EXPECT_EQ(f["/dst_endpoint/port"], "5432");
    EXPECT_EQ(f["/time"], "1796585400123");  // 2026-12-06T19:30:00.123456789Z
    EXPECT_EQ(f["/authorizations/0/policy/uid"], "reads");
    EXPECT_EQ(f["/unmapped/interlock/statement/parameters/0"], "<redacted>");  // as audited
  }
}

// A grant outside a session: the workload is the user it is for, the operator the actor.
TEST(Ocsf, GrantNamesWorkloadAsUserAndOperatorAsActor) {
  std::map<std::string, std::string> actors;
  for (const auto& e : testing::OcsfSampleEvents()) {
    if (e.kind() != v1::AUDIT_KIND_GRANT) continue;
    auto f = Fields(EventToOcsfJson(e), {"/user/name", "/actor/user/name", "/actor/app_name", "/privileges/0"});
    EXPECT_EQ(f["/user/name"], "billing-agent") << e.outcome();
    EXPECT_EQ(f["/privileges/0"], "billing-db") << e.outcome();
    actors[e.outcome()] = f["/actor/user/name"].empty() ? f["/actor/app_name"] : f["/actor/user/name"];
  }
  EXPECT_EQ(actors["granted"], "alice");
  EXPECT_EQ(actors["granter_refused"], "alice");
  EXPECT_EQ(actors["revoked"], "root");
  EXPECT_EQ(actors["expired"], "interlockd");
  EXPECT_EQ(actors["denied"], "billing-agent");  // in a session: the workload asked
}

TEST(Ocsf, WithheldStatementTextIsNotInvented) {
  v1::AuditEvent e;
  e.set_kind(v1::AUDIT_KIND_STATEMENT);
  e.set_resource("db");
  e.mutable_statement()->set_text_sha256(std::string(64, 'c'));
  e.mutable_statement()->add_command_tags("DELETE 3");
  const std::string json = EventToOcsfJson(e);
  EXPECT_EQ(json.find("query_info"), std::string::npos) << json;
  auto f = Fields(json, {"/activity_id", "/database/uid"});
  EXPECT_EQ(f["/activity_id"], "7");  // Delete, from the command tag
  EXPECT_EQ(f["/database/uid"], "db");
}

TEST(Ocsf, HttpRequestFieldsLandInHttpSlots) {
  for (const auto& e : testing::OcsfSampleEvents()) {
    if (e.kind() != v1::AUDIT_KIND_HTTP_REQUEST || e.outcome() != "allowed") continue;
    auto f = Fields(EventToOcsfJson(e),
                    {"/http_request/http_method", "/http_request/url/url_string", "/http_request/url/path",
                     "/http_request/url/query_string", "/http_request/url/hostname", "/http_response/code",
                     "/http_response/length", "/http_response/content_type", "/duration"});
    EXPECT_EQ(f["/http_request/http_method"], "GET");
    EXPECT_EQ(f["/http_request/url/url_string"], "https://crm.example/v1/customers?limit=10&api_key=<elided>");
    EXPECT_EQ(f["/http_request/url/path"], "/v1/customers");
    EXPECT_EQ(f["/http_request/url/query_string"], "limit=10&api_key=<elided>");
    EXPECT_EQ(f["/http_request/url/hostname"], "crm.example");
    EXPECT_EQ(f["/http_response/code"], "200");
    EXPECT_EQ(f["/http_response/length"], "5120");
    EXPECT_EQ(f["/http_response/content_type"], "application/json");
    EXPECT_EQ(f["/duration"], "42");
  }
}

// The SSH sample with `kind` and `outcome`, as OCSF.
std::string SshSample(v1::AuditKind kind, const std::string& outcome) {
  const v1::AuditEvent e = testing::SshSampleEvent(kind, outcome);
  EXPECT_EQ(e.protocol(), "ssh") << "no ssh sample " << v1::AuditKind_Name(kind) << " " << outcome;
  return EventToOcsfJson(e);
}

TEST(Ocsf, SshCommandThatRanIsAProcessLaunchWithItsExitCode) {
  ExpectFields(SshSample(v1::AUDIT_KIND_SSH_REQUEST, "allowed"),
               {{"/process/cmd_line", "/usr/bin/make -C /srv/billing test"},
                {"/process/name", "make"},
                {"/process/uid", "ses-0000000000000046/1"},  // session / channel
                {"/process/user/name", "deploy"},            // the upstream account it ran as
                {"/exit_code", "3"},
                {"/device/ip", "10.0.0.9"},  // the host it ran on
                {"/device/name", "build-host"},
                {"/actor/process/pid", "31337"},  // the agent that asked
                {"/actor/user/uid", "agent:billing"},
                {"/duration", "2500"},  // ms
                {"/authorizations/0/policy/uid", "builds"},
                {"/authorizations/0/decision", "ALLOW"},
                {"/action_id", "1"},
                {"/status_id", "1"},
                {"/unmapped/interlock/ssh/argv/1", "-C"},
                {"/unmapped/interlock/ssh/agent_user", "agent"},
                {"/unmapped/interlock/ssh/bytes_out", "3456"},
                {"/unmapped/interlock/ssh/duration_us", "2500000"},
                {"/unmapped/interlock/bytes_to_agent", "3456"},
                {"/unmapped/interlock/protocol", "ssh"},
                {"/dst_endpoint/ip", kAbsent},  // not in System Activity: device is the host
                {"/src_endpoint/hostname", kAbsent}});
}

TEST(Ocsf, SshShellLineDeniedIsABlockedLaunchWithoutExitCode) {
  ExpectFields(SshSample(v1::AUDIT_KIND_SSH_REQUEST, "denied"),
               {{"/process/cmd_line", "rm -rf /srv/billing/* && echo done"},
                {"/process/name", kAbsent},  // a shell line: no argv[0] to name
                {"/disposition", "Blocked"},
                {"/action", "Denied"},
                {"/severity_id", "3"},
                {"/status_id", "2"},
                {"/authorizations/0/policy/uid", "no-rm"},
                {"/authorizations/0/policy/desc", "no recursive deletes"},
                {"/unmapped/interlock/ssh/shell", "and-list"},
                {"/exit_code", kAbsent}});  // it never ran
}

TEST(Ocsf, SshForwardingRefusedIsSshActivityRefuse) {
  ExpectFields(SshSample(v1::AUDIT_KIND_SSH_REQUEST, "refused"),
               {{"/class_name", "SSH Activity"},
                {"/activity_name", "Refuse"},
                {"/app_name", "ssh"},
                {"/status_code", "ssh_direct-tcpip_refused"},
                {"/dst_endpoint/ip", "10.0.0.9"},  // the SSH server it was asked of
                {"/dst_endpoint/port", "22"},
                {"/dst_endpoint/svc_name", "build-host"},
                {"/unmapped/interlock/ssh/request", "direct-tcpip"},
                {"/unmapped/interlock/ssh/command", "10.1.2.3:5432"},  // where it wanted to go
                {"/unmapped/interlock/ssh/upstream_user", "deploy"},
                {"/process/cmd_line", kAbsent}});
}

TEST(Ocsf, SshUpstreamLoginFailedNamesTheUpstreamAccount) {
  ExpectFields(SshSample(v1::AUDIT_KIND_AUTH, "denied"),
               {{"/user/name", "deploy"},
                {"/actor/user/uid", "agent:billing"},
                {"/status_id", "2"},
                {"/status_code", "upstream_login_failed"},
                {"/status_detail", "ssh: upstream: publickey refused for deploy"},
                {"/service/name", "build-host"},
                {"/unmapped/interlock/ssh/agent_user", "agent"},
                {"/unmapped/interlock/ssh/request", "userauth"}});
}

TEST(Ocsf, SshHeldAndApprovedCommandShowTheCommandNotSql) {
  ExpectFields(SshSample(v1::AUDIT_KIND_POLICY_DECISION, "held"),
               {{"/process/cmd_line", "systemctl restart billing"},
                {"/process/user/name", "deploy"},
                {"/disposition", "Delayed"},
                {"/authorizations/0/policy/uid", "review-restarts"},
                {"/unmapped/interlock/decision/approval_id", "apr-0123456789abcdef"},
                {"/exit_code", kAbsent}});
  ExpectFields(SshSample(v1::AUDIT_KIND_APPROVAL, "approved"),
               {{"/process/cmd_line", "systemctl restart billing"},
                {"/process/uid", "ses-0000000000000051/apr-0123456789abcdef"},
                {"/process/user/name", "deploy"},
                {"/disposition", "Approved"},
                {"/device/name", "build-host"},
                {"/authorizations/0/policy/uid", "review-restarts"},
                {"/unmapped/interlock/approval/approver/user", "alice"},
                {"/query_info/query_string", kAbsent},
                {"/database/name", kAbsent}});
}

// Every string field set to one hostile value, for every kind: the output is strict JSON
// (one object, no raw control bytes, valid UTF-8, no duplicate keys).
TEST(Ocsf, HostileStringsGiveStrictJson) {
  const auto* kinds = v1::AuditKind_descriptor();
  for (const std::string& hostile : testing::HostileStrings()) {
    for (int k = 0; k < kinds->value_count(); ++k) {
      for (v1::AuditEvent& e : testing::OcsfSampleEvents()) {
        e.set_kind(static_cast<v1::AuditKind>(kinds->value(k)->number()));
        testing::SetEveryString(&e, hostile);
        const std::string json = EventToOcsfJson(e);
        ASSERT_TRUE(ParseStrict(json).ok()) << ParseStrict(json) << "\n" << json;
        for (char c : json) ASSERT_GE(static_cast<unsigned char>(c), 0x20) << json;
        EXPECT_EQ(json.front(), '{');
        EXPECT_EQ(json.back(), '}');
        auto f = Fields(json, {"/class_uid", "/injected"});
        EXPECT_FALSE(f["/class_uid"].empty());
        EXPECT_EQ(f.count("/injected"), 0u) << "a string value broke out of its quotes";
      }
    }
  }
}

// Nothing of the Interlock event is lost: every string and every number it holds is in
// the OCSF event (mapped, or in unmapped), whatever the kind.
TEST(Ocsf, EveryValueOfTheEventIsKept) {
  const auto* kinds = v1::AuditKind_descriptor();
  for (int k = -1; k < kinds->value_count(); ++k) {
    for (const char* protocol : {"postgres", "http", "ssh"}) {
      v1::AuditEvent e;
      int n = 0;
      testing::FillEveryField(&e, &n);
      e.set_kind(k < 0 ? static_cast<v1::AuditKind>(77) : static_cast<v1::AuditKind>(kinds->value(k)->number()));
      testing::SetProtocol(&e, protocol);
      e.set_time("2026-12-06T19:30:00.5Z");
      const std::string json = EventToOcsfJson(e);
      ASSERT_TRUE(ParseStrict(json).ok()) << json;
      for (const std::string& v : testing::LeafValues(e)) {
        EXPECT_NE(json.find(v), std::string::npos)
            << "kind " << e.kind() << " " << protocol << ": value " << v << " lost\n" << json;
      }
    }
  }
}

TEST(Ocsf, AppendKeepsWhatIsThereAndAddsNoNewline) {
  v1::AuditEvent e;
  e.set_kind(v1::AUDIT_KIND_DAEMON);
  e.set_outcome("started");
  std::string out = "previous\n";
  AppendOcsfJson(&out, e);
  ASSERT_EQ(out.rfind("previous\n{", 0), 0u);
  EXPECT_EQ(out.back(), '}');
  EXPECT_EQ(out.substr(9), EventToOcsfJson(e));
  EXPECT_EQ(EventToOcsfJson(e), EventToOcsfJson(e));
}

TEST(Ocsf, MetadataNamesVersionAndProduct) {
  v1::AuditEvent e;
  e.set_kind(v1::AUDIT_KIND_SESSION_START);
  e.set_id("abc");
  auto f = Fields(EventToOcsfJson(e), {"/metadata/version", "/metadata/product/name",
                                       "/metadata/product/vendor_name", "/metadata/product/version",
                                       "/metadata/uid", "/time", "/severity_id", "/status_id"});
  EXPECT_EQ(f["/metadata/version"], kOcsfVersion);
  EXPECT_EQ(f["/metadata/product/name"], "Interlock");
  EXPECT_EQ(f["/metadata/product/vendor_name"], "Interlock");
  EXPECT_FALSE(f["/metadata/product/version"].empty());
  EXPECT_EQ(f["/metadata/uid"], "abc");
  EXPECT_EQ(f["/time"], "0");  // no time in the event: 0, never the clock
  EXPECT_EQ(f["/severity_id"], "1");
  EXPECT_EQ(f["/status_id"], "0");
}

}  // namespace
}  // namespace interlock::audit
