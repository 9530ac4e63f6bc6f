#include "userspace/audit/sinks/hec_format.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace interlock::audit::sinks {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::AuditEvent Event(int i) {
  v1::AuditEvent e;
  e.set_id(absl::StrCat("id-", i));
  e.set_kind(v1::AUDIT_KIND_SESSION_START);
  e.set_time("2026-11-26T01:36:20.123456789Z");
  e.set_host("h\"1");
  e.set_resource("pg-main");
  return e;
}

TEST(HecFormat, EventObjectWithMetadata) {
  std::string out;
  AppendHecEvent(Event(1),
                 {.index = "sec", .source = "interlockd", .sourcetype = "interlock:audit"}, &out);
  EXPECT_THAT(
      out, StartsWith("{\"time\":1795656980.123456,\"host\":\"h\\\"1\",\"source\":\"interlockd\","
                      "\"sourcetype\":\"interlock:audit\",\"index\":\"sec\",\"event\":{"));
  EXPECT_EQ(out.back(), '\n');
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, &parsed).ok()) << out;
  const auto& ev = parsed.fields().at("event").struct_value();
  EXPECT_EQ(ev.fields().at("id").string_value(), "id-1");
  EXPECT_EQ(ev.fields().at("resource").string_value(), "pg-main");
}

TEST(HecFormat, EmptyMetadataLeftOutAndBadTimeIsNull) {
  v1::AuditEvent e = Event(1);
  e.set_time("not a time");
  e.clear_host();
  std::string out;
  AppendHecEvent(e, {}, &out);
  EXPECT_THAT(out, StartsWith("{\"time\":null,\"event\":{"));
}

TEST(HecFormat, BodiesSplitByBytesKeepingOrder) {
  std::vector<v1::AuditEvent> events;
  for (int i = 0; i < 10; ++i) events.push_back(Event(i));
  std::string one;
  AppendHecEvent(events[0], {}, &one);
  auto bodies = BuildHecBodies(events, {}, one.size() * 3 + 5);
  ASSERT_EQ(bodies.size(), 4u);  // 3 + 3 + 3 + 1
  std::vector<std::string> ids;
  for (const auto& b : bodies) {
    EXPECT_LE(b.size(), one.size() * 3 + 5);
    for (absl::string_view line : absl::StrSplit(b, '\n', absl::SkipEmpty())) {
      google::protobuf::Struct s;
      ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &s).ok());
      ids.push_back(s.fields().at("event").struct_value().fields().at("id").string_value());
    }
  }
  ASSERT_EQ(ids.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ids[i], absl::StrCat("id-", i));
}

TEST(HecFormat, OversizedEventGetsItsOwnBody) {
  std::vector<v1::AuditEvent> events{Event(1), Event(2), Event(3)};
  events[1].set_detail(std::string(5000, 'x'));
  auto bodies = BuildHecBodies(events, {}, 1024);
  ASSERT_EQ(bodies.size(), 3u);
  EXPECT_GT(bodies[1].size(), 5000u);
}

TEST(HecFormat, Request) {
  const std::string req =
      BuildHecRequest("splunk:8088", "/services/collector/event", "tok-1", "{}");
  EXPECT_EQ(
      req,
      "POST /services/collector/event HTTP/1.1\r\nHost: splunk:8088\r\nAuthorization: Splunk "
      "tok-1\r\n"
      "Content-Type: application/json\r\nContent-Length: 2\r\nUser-Agent: interlockd\r\n\r\n{}");
}

TEST(HecFormat, StatusClasses) {
  EXPECT_EQ(ClassifyHecStatus(200), HecVerdict::kAcknowledged);
  EXPECT_EQ(ClassifyHecStatus(204), HecVerdict::kAcknowledged);
  EXPECT_EQ(ClassifyHecStatus(429), HecVerdict::kRetry);
  EXPECT_EQ(ClassifyHecStatus(500), HecVerdict::kRetry);
  EXPECT_EQ(ClassifyHecStatus(503), HecVerdict::kRetry);
  EXPECT_EQ(ClassifyHecStatus(400), HecVerdict::kRejected);
  EXPECT_EQ(ClassifyHecStatus(401), HecVerdict::kRejected);
  EXPECT_EQ(ClassifyHecStatus(403), HecVerdict::kRejected);
  EXPECT_EQ(ClassifyHecStatus(413), HecVerdict::kRejected);
  EXPECT_EQ(ClassifyHecStatus(301), HecVerdict::kRejected);
}

TEST(HecFormat, EcsEventIsTheEcsDocument) {
  std::string out;
  AppendHecEvent(Event(2), {.sourcetype = "ecs", .format = config::AuditSinkFormat::kEcs}, &out);
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, &parsed).ok()) << out;
  const auto& ev = parsed.fields().at("event").struct_value();
  EXPECT_EQ(ev.fields().at("ecs").struct_value().fields().at("version").string_value(), "8.17.0");
  EXPECT_EQ(ev.fields().at("event").struct_value().fields().at("id").string_value(), "id-2");
}

}  // namespace
}  // namespace interlock::audit::sinks

namespace interlock::audit::sinks {
namespace {

TEST(HecFormat, OcsfEventIsTheOcsfObject) {
  std::string out;
  AppendHecEvent(Event(2), {.sourcetype = "ocsf", .format = config::AuditSinkFormat::kOcsf}, &out);
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, &parsed).ok()) << out;
  const auto& ev = parsed.fields().at("event").struct_value();
  EXPECT_EQ(ev.fields().at("class_uid").number_value(), 4001);  // Network Activity: a session start
  EXPECT_EQ(ev.fields().at("metadata").struct_value().fields().at("uid").string_value(), "id-2");
}

}  // namespace
}  // namespace interlock::audit::sinks
