#include "userspace/audit/sinks/syslog_format.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace interlock::audit::sinks {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::AuditEvent Statement() {
  v1::AuditEvent e;
  e.set_id("00112233445566778899aabbccddeeff");
  e.set_kind(v1::AUDIT_KIND_STATEMENT);
  e.set_time("2026-11-26T01:36:20.123456789Z");
  e.set_host("db-host-1");
  e.set_session_id("5e55");
  e.mutable_identity()->set_workload("billing-agent");
  e.set_resource("pg-main");
  e.mutable_statement()->mutable_decision()->set_action("ALLOW");
  e.set_outcome("allowed");
  return e;
}

SyslogFormatOptions Options() {
  return SyslogFormatOptions{.app_name = "interlockd", .facility = 13, .procid = 42};
}

TEST(SyslogFormat, HeaderStructuredDataAndBomJson) {
  const std::string msg = FormatSyslogMessage(Statement(), Options());
  // 13 * 8 + 5 (notice) = 109; time cut to microseconds (RFC 5424 6.2.3).
  EXPECT_THAT(
      msg, StartsWith("<109>1 2026-11-26T01:36:20.123456Z db-host-1 interlockd 42 STATEMENT "
                      "[interlock@32473 id=\"00112233445566778899aabbccddeeff\" kind=\"STATEMENT\" "
                      "session=\"5e55\" workload=\"billing-agent\" resource=\"pg-main\" "
                      "decision=\"ALLOW\" outcome=\"allowed\"] \xEF\xBB\xBF{"));
  const size_t bom = msg.find("\xEF\xBB\xBF");
  ASSERT_NE(bom, std::string::npos);
  v1::AuditEvent back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(msg.substr(bom + 3), &back).ok());
  EXPECT_EQ(back.id(), "00112233445566778899aabbccddeeff");
  EXPECT_EQ(back.identity().workload(), "billing-agent");
  EXPECT_FALSE(absl::StrContains(msg, "\n"));
}

TEST(SyslogFormat, OcsfMessageKeepsTheHeaderAndStructuredData) {
  SyslogFormatOptions o = Options();
  o.format = config::AuditSinkFormat::kOcsf;
  const std::string msg = FormatSyslogMessage(Statement(), o);
  EXPECT_THAT(msg, StartsWith("<109>1 2026-11-26T01:36:20.123456Z db-host-1 interlockd 42 STATEMENT "));
  const size_t bom = msg.find("\xEF\xBB\xBF");
  ASSERT_NE(bom, std::string::npos);
  google::protobuf::Struct ocsf;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(msg.substr(bom + 3), &ocsf).ok()) << msg;
  EXPECT_EQ(ocsf.fields().at("class_uid").number_value(), 6005);  // Datastore Activity
  EXPECT_FALSE(absl::StrContains(msg, "\n"));
}

TEST(SyslogFormat, EcsMessageIsTheEcsDocument) {
  SyslogFormatOptions o = Options();
  o.format = config::AuditSinkFormat::kEcs;
  const std::string msg = FormatSyslogMessage(Statement(), o);
  EXPECT_THAT(msg, StartsWith("<109>1 2026-11-26T01:36:20.123456Z db-host-1 interlockd 42 STATEMENT "));
  const size_t bom = msg.find("\xEF\xBB\xBF");
  ASSERT_NE(bom, std::string::npos);
  google::protobuf::Struct ecs;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(msg.substr(bom + 3), &ecs).ok()) << msg;
  EXPECT_EQ(ecs.fields().at("ecs").struct_value().fields().at("version").string_value(), "8.17.0");
  EXPECT_EQ(ecs.fields().at("event").struct_value().fields().at("id").string_value(),
            "00112233445566778899aabbccddeeff");
  EXPECT_FALSE(absl::StrContains(msg, "\n"));
}

TEST(SyslogFormat, SeverityWarningForRefusals) {
  v1::AuditEvent e = Statement();
  e.set_kind(v1::AUDIT_KIND_CONNECT_DENIED);
  EXPECT_THAT(FormatSyslogMessage(e, Options()), StartsWith("<108>1 "));
  e.set_kind(v1::AUDIT_KIND_STATEMENT);
  e.set_outcome("denied");
  EXPECT_THAT(FormatSyslogMessage(e, Options()), StartsWith("<108>1 "));
}

TEST(SyslogFormat, NilValuesWhenMissing) {
  v1::AuditEvent e;
  e.set_kind(v1::AUDIT_KIND_DAEMON);
  SyslogFormatOptions o = Options();
  o.procid = 0;
  EXPECT_THAT(FormatSyslogMessage(e, o),
              StartsWith("<109>1 - - interlockd - DAEMON [interlock@32473 kind=\"DAEMON\"] "));
}

TEST(SyslogFormat, HostWithSpacesAndControlsStaysOneToken) {
  v1::AuditEvent e = Statement();
  e.set_host("evil host\nX");
  EXPECT_THAT(FormatSyslogMessage(e, Options()), HasSubstr(" evil_host_X interlockd "));
}

TEST(SyslogFormat, TimeThatIsNotOurStampIsNil) {
  v1::AuditEvent e = Statement();
  e.set_time("yesterday ] [x");
  EXPECT_THAT(FormatSyslogMessage(e, Options()), StartsWith("<109>1 - db-host-1 "));
  e.set_time("2026-11-26T01:36:20Z");
  EXPECT_THAT(FormatSyslogMessage(e, Options()), StartsWith("<109>1 2026-11-26T01:36:20Z "));
}

TEST(SdEscaping, QuoteBackslashBracketAreEscaped) {
  std::string out;
  AppendSdParamValue(R"(a"b\c]d)", kMaxSdValueBytes, &out);
  EXPECT_EQ(out, R"(a\"b\\c\]d)");
}

TEST(SdEscaping, AttackerWorkloadCannotCloseTheElement) {
  v1::AuditEvent e = Statement();
  e.mutable_identity()->set_workload(R"(x"] [fake@1 decision="ALLOW"])");
  const std::string msg = FormatSyslogMessage(e, Options());
  EXPECT_THAT(msg, HasSubstr(R"(workload="x\"\] [fake@1 decision=\"ALLOW\"\]")"));
  // Exactly one unescaped ']' before the BOM: the end of our element.
  const std::string sd = msg.substr(0, msg.find("\xEF\xBB\xBF"));
  int closes = 0;
  for (size_t i = 0; i < sd.size(); ++i) {
    if (sd[i] == ']' && sd[i - 1] != '\\') ++closes;
  }
  EXPECT_EQ(closes, 1);
}

TEST(SdEscaping, InvalidUtf8AndControlsAreReplaced) {
  std::string out;
  AppendSdParamValue(std::string("a\xff\x01z\xC3\xA9", 6), kMaxSdValueBytes, &out);
  EXPECT_EQ(out, "a\xEF\xBF\xBD?z\xC3\xA9");
}

TEST(SdEscaping, CutOnACharacterBoundaryWithinTheLimit) {
  std::string value = std::string(10, 'a') + "\xC3\xA9" + "]]]]";
  std::string out;
  AppendSdParamValue(value, 11, &out);
  EXPECT_EQ(out, std::string(10, 'a'));  // the 2-byte é would pass 11
  out.clear();
  AppendSdParamValue(value, 13, &out);
  EXPECT_EQ(out, std::string(10, 'a') + "\xC3\xA9");  // "\]" would pass 13
  out.clear();
  AppendSdParamValue(std::string(1000, ']'), kMaxSdValueBytes, &out);
  EXPECT_LE(out.size(), kMaxSdValueBytes);
  EXPECT_EQ(out.size() % 2, 0u);  // never half an escape
}

TEST(SyslogFormat, HeaderAndSdFitTheBoundWithHostileFields) {
  v1::AuditEvent e = Statement();
  const std::string big(5000, '"');
  e.set_host(std::string(5000, 'h'));
  e.set_id(big);
  e.set_session_id(big);
  e.mutable_identity()->set_workload(std::string(5000, '\xff'));
  e.set_resource(big);
  e.mutable_statement()->mutable_decision()->set_action(big);
  e.set_outcome(big);
  SyslogFormatOptions o = Options();
  o.app_name = std::string(48, 'a');
  const std::string msg = FormatSyslogMessage(e, o);
  const size_t bom = msg.find("\xEF\xBB\xBF");
  ASSERT_NE(bom, std::string::npos);
  EXPECT_LE(bom + 3, kMaxHeaderAndSdBytes);
}

TEST(OctetFraming, LengthSpaceMessage) {
  EXPECT_EQ(OctetCountedFrame("<13>1 - - - - - - hi"), "20 <13>1 - - - - - - hi");
  EXPECT_EQ(OctetCountedFrame(""), "0 ");
  // The length counts octets, not characters.
  EXPECT_EQ(OctetCountedFrame("\xC3\xA9"), "2 \xC3\xA9");
}

TEST(OctetFraming, TwoFramesParseBack) {
  std::string stream;
  const std::string a = FormatSyslogMessage(Statement(), Options());
  v1::AuditEvent e2 = Statement();
  e2.set_detail("line\nbreak and 12 digits");
  const std::string b = FormatSyslogMessage(e2, Options());
  AppendOctetCountedFrame(a, &stream);
  AppendOctetCountedFrame(b, &stream);
  std::vector<std::string> got;
  absl::string_view rest = stream;
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    size_t len = 0;
    ASSERT_TRUE(absl::SimpleAtoi(rest.substr(0, sp), &len));
    got.emplace_back(rest.substr(sp + 1, len));
    rest.remove_prefix(sp + 1 + len);
  }
  EXPECT_THAT(got, ::testing::ElementsAre(a, b));
}

TEST(DatagramTruncation, CutsOnUtf8Boundary) {
  EXPECT_EQ(TruncateForDatagram("abc", 10), "abc");
  EXPECT_EQ(TruncateForDatagram("abcdef", 4), "abcd");
  EXPECT_EQ(TruncateForDatagram("ab\xE2\x82\xAC", 4), "ab");  // € is 3 bytes
  EXPECT_EQ(TruncateForDatagram("ab\xE2\x82\xAC"
                                "d",
                                5),
            "ab\xE2\x82\xAC");
}

TEST(DatagramTruncation, LongEventKeepsHeaderAndSd) {
  v1::AuditEvent e = Statement();
  e.set_detail(std::string(100000, 'x'));
  const std::string msg = FormatSyslogMessage(e, Options());
  const std::string d = TruncateForDatagram(msg, 2048);
  EXPECT_EQ(d.size(), 2048u);
  EXPECT_THAT(d, HasSubstr("outcome=\"allowed\"] \xEF\xBB\xBF{"));
}

TEST(KindName, WithoutPrefix) {
  EXPECT_EQ(KindName(v1::AUDIT_KIND_HTTP_REQUEST), "HTTP_REQUEST");
  EXPECT_EQ(KindName(static_cast<v1::AuditKind>(999)), "UNKNOWN");
}

}  // namespace
}  // namespace interlock::audit::sinks
