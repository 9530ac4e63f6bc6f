#include "userspace/approval/slack_message.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace interlock::approval {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::ApprovalNotification Sample() {
  v1::ApprovalNotification n;
  n.set_event("approval.requested");
  n.set_host("db-host-1");
  v1::ApprovalRequest* r = n.mutable_request();
  r->set_id("apr-00000000000000ab");
  r->set_deadline_us(1796601600000000);  // 2026-12-07 00:00:00 UTC
  r->mutable_requester()->set_workload("billing-agent");
  r->mutable_requester()->set_uid(1001);
  r->mutable_requester()->set_user("agent");
  r->mutable_requester()->set_pid(4242);
  r->mutable_requester()->set_comm("python3");
  r->set_token_subject("spiffe://example.org/agent");
  r->set_resource("pg-prod");
  r->set_database("billing");
  r->set_db_user("app");
  r->set_statement("DELETE FROM clients WHERE pan = $1");
  r->set_rule_id("hold-deletes");
  r->set_reason("DELETE on clients needs a human");
  n.set_approve_command("interlock approve apr-00000000000000ab --reason '...'");
  n.set_deny_command("interlock deny apr-00000000000000ab --reason '...'");
  return n;
}

// Parses the body as JSON (protobuf's parser is strict) and returns it.
google::protobuf::Struct Parse(const std::string& body) {
  google::protobuf::Struct s;
  auto st = google::protobuf::util::JsonStringToMessage(body, &s);
  EXPECT_TRUE(st.ok()) << st << "\n" << body;
  return s;
}

std::string Text(const google::protobuf::Struct& s) { return s.fields().at("text").string_value(); }

// Every section's mrkdwn text.
std::vector<std::string> Sections(const google::protobuf::Struct& s) {
  std::vector<std::string> out;
  for (const auto& b : s.fields().at("blocks").list_value().values()) {
    const auto& f = b.struct_value().fields();
    EXPECT_EQ(f.at("type").string_value(), "section");
    out.push_back(f.at("text").struct_value().fields().at("text").string_value());
  }
  return out;
}

TEST(SlackApprovalMessage, TextCarriesEverythingAnApproverNeeds) {
  google::protobuf::Struct s = Parse(SlackApprovalMessage(Sample()));
  const std::string text = Text(s);
  for (const char* want :
       {"apr-00000000000000ab", "db-host-1", "billing-agent", "spiffe://example.org/agent", "uid 1001", "pg-prod",
        "billing", "DELETE FROM clients WHERE pan = $1", "hold-deletes", "DELETE on clients needs a human",
        "2026-12-07 00:00:00 UTC", "interlock approve apr-00000000000000ab --reason '...'",
        "interlock deny apr-00000000000000ab --reason '...'"}) {
    EXPECT_THAT(text, HasSubstr(want));
  }
  std::vector<std::string> sections = Sections(s);
  ASSERT_EQ(sections.size(), 4u);
  for (const std::string& sec : sections) EXPECT_THAT(text, HasSubstr(sec));  // text = all of it
}

TEST(SlackApprovalMessage, PrefersTheAuditStatementOverTheRawOne) {
  v1::ApprovalNotification n = Sample();
  n.mutable_request()->set_statement("DELETE FROM clients WHERE pan = '4111111111111111'");
  n.mutable_request()->set_audit_statement("DELETE FROM clients WHERE pan = $1");
  const std::string body = SlackApprovalMessage(n);
  EXPECT_THAT(body, Not(HasSubstr("4111111111111111")));
  EXPECT_THAT(Text(Parse(body)), HasSubstr("WHERE pan = $1"));
}

TEST(SlackApprovalMessage, HostileStatementCannotMentionOrLink) {
  v1::ApprovalNotification n = Sample();
  n.mutable_request()->set_statement(
      "SELECT 1 ``` <!channel> <!here> <@U024BE7LH> <http://evil.example/|click to approve> & *bold*");
  google::protobuf::Struct s = Parse(SlackApprovalMessage(n));
  const std::string text = Text(s);
  for (const char* bad : {"<!channel>", "<!here>", "<@U024BE7LH>", "<http://evil", "|click to approve>", "```<",
                          "SELECT 1 ```"}) {
    EXPECT_THAT(text, Not(HasSubstr(bad))) << bad;
  }
  EXPECT_THAT(text, HasSubstr("&lt;!channel&gt; &lt;!here&gt; &lt;@U024BE7LH&gt;"));
  EXPECT_THAT(text, HasSubstr("&lt;http://evil.example/|click to approve&gt; &amp; *bold*"));
  // Only the '<' we never emit could start a Slack control sequence.
  EXPECT_EQ(text.find('<'), std::string::npos);
}

TEST(SlackApprovalMessage, HostileWorkloadReasonAndRuleCannotBreakOutOfTheirSpans) {
  v1::ApprovalNotification n = Sample();
  n.mutable_request()->mutable_requester()->set_workload("x` <!channel> `<https://evil.example|approve here>");
  n.mutable_request()->set_reason("ok`\n*APPROVED BY SECURITY* <!everyone>");
  n.mutable_request()->set_rule_id("r\"}],\"text\":\"pwned");
  n.mutable_request()->set_token_subject("<@U1>");
  google::protobuf::Struct s = Parse(SlackApprovalMessage(n));  // still one valid object
  const std::string text = Text(s);
  EXPECT_EQ(text.find('<'), std::string::npos);
  EXPECT_THAT(text, Not(HasSubstr("x` ")));  // the span's backtick is defused
  EXPECT_THAT(text, HasSubstr("x\xCB\x8B &lt;!channel&gt;"));
  EXPECT_THAT(text, Not(HasSubstr("ok`\n")));  // no newline escapes the reason's span
  EXPECT_THAT(text, HasSubstr("r\"}],\"text\":\"pwned"));  // JSON-escaped, kept as text
  EXPECT_EQ(s.fields().size(), 2u);
}

TEST(SlackApprovalMessage, CapsEverySectionAndKeepsUtf8Whole) {
  v1::ApprovalNotification n = Sample();
  // 3-byte characters and 5-byte escapes, so a naive cut would split one.
  std::string huge;
  for (int i = 0; i < 5000; ++i) huge += (i % 2 == 0) ? "\xE2\x82\xAC" : "&";
  n.mutable_request()->set_statement(huge);
  n.mutable_request()->set_reason(huge);
  n.mutable_request()->mutable_requester()->set_workload(huge);
  n.mutable_request()->set_resource(huge);
  n.mutable_request()->set_rule_id(huge);
  n.mutable_request()->set_token_subject(huge);
  const std::string body = SlackApprovalMessage(n);
  google::protobuf::Struct s = Parse(body);
  for (const std::string& sec : Sections(s)) {
    EXPECT_LE(sec.size(), kMaxSlackSectionChars);
  }
  EXPECT_THAT(Text(s), HasSubstr("\xE2\x80\xA6"));  // the cut is marked
  EXPECT_THAT(Text(s), Not(HasSubstr("\xEF\xBF\xBD")));  // and no character was split
  EXPECT_THAT(Text(s), HasSubstr("interlock approve apr-00000000000000ab"));  // commands survive
}

TEST(SlackApprovalMessage, InvalidUtf8AndControlBytesStillGiveValidJson) {
  v1::ApprovalNotification n = Sample();
  n.mutable_request()->set_statement(std::string("SELECT '\xff\xfe\x00\x01\x1b[31m'", 17));
  n.mutable_request()->mutable_requester()->set_workload(std::string("w\xc3", 2));
  google::protobuf::Struct s = Parse(SlackApprovalMessage(n));
  EXPECT_THAT(Text(s), HasSubstr("SELECT '"));
}

TEST(SlackApprovalMessage, EmptyRequestStillFormats) {
  google::protobuf::Struct s = Parse(SlackApprovalMessage(v1::ApprovalNotification()));
  EXPECT_THAT(Text(s), HasSubstr("interlock approve "));
  EXPECT_THAT(Text(s), HasSubstr("Deadline:* none"));
}

TEST(SlackCodeText, EscapesDefusesAndCuts) {
  EXPECT_EQ(SlackCodeText("a<b>&c", 100), "a&lt;b&gt;&amp;c");
  EXPECT_EQ(SlackCodeText("```", 100), "`\xE2\x80\x8B`\xE2\x80\x8B`\xE2\x80\x8B");
  EXPECT_EQ(SlackCodeText("abcdef", 6), "abcdef");
  EXPECT_EQ(SlackCodeText("abcdefg", 6), "abc\xE2\x80\xA6");
  EXPECT_EQ(SlackCodeText("&&&&", 8), "&amp;\xE2\x80\xA6");  // never half an escape
  EXPECT_EQ(SlackCodeText("", 8), "");
}

}  // namespace
}  // namespace interlock::approval
