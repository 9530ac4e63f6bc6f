#include "userspace/audit/audit_log.h"

#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "userspace/common/file_util.h"

namespace interlock::audit {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

v1::AuditEvent SessionEnd() {
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_SESSION_END);
  ev.set_session_id("0123abcd");
  ev.mutable_identity()->set_workload("billing-agent");
  ev.mutable_identity()->set_cgroup_path("/interlock/workloads/billing-agent.3");
  ev.mutable_identity()->set_login_uid(4294967295u);
  ev.set_resource("orders-api");
  ev.mutable_original_destination()->set_address("10.0.0.5");
  ev.mutable_original_destination()->set_port(80);
  ev.set_bytes_to_upstream(1234);
  ev.set_bytes_to_agent(5678);
  ev.set_duration_ms(42);
  ev.set_outcome("closed");
  ev.set_detail("multi\nline \"detail\"");
  return ev;
}

v1::AuditEvent Parse(absl::string_view line) {
  v1::AuditEvent ev;
  auto st = google::protobuf::util::JsonStringToMessage(std::string(line), &ev);
  EXPECT_TRUE(st.ok()) << st.ToString() << " in " << line;
  return ev;
}

bool Same(const v1::AuditEvent& a, const v1::AuditEvent& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

TEST(AuditJson, OneLineWithSnakeCaseNames) {
  const std::string line = EventToJsonLine(SessionEnd());
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  EXPECT_THAT(line, HasSubstr("\"session_id\":\"0123abcd\""));
  EXPECT_THAT(line, HasSubstr("\"cgroup_path\":\"/interlock/workloads/billing-agent.3\""));
  EXPECT_THAT(line, HasSubstr("\"original_destination\":{"));
  EXPECT_THAT(line, HasSubstr("\"kind\":\"AUDIT_KIND_SESSION_END\""));
  // Protobuf JSON: 64-bit integers are strings.
  EXPECT_THAT(line, HasSubstr("\"bytes_to_upstream\":\"1234\""));
  EXPECT_THAT(line, Not(HasSubstr("sessionId")));
  EXPECT_THAT(line, Not(HasSubstr("bytesToUpstream")));
  EXPECT_TRUE(Same(Parse(line), SessionEnd()));
}

TEST(AuditJson, EmptyEventIsAnEmptyObject) { EXPECT_EQ(EventToJsonLine(v1::AuditEvent()), "{}\n"); }

TEST(AuditTime, FormatsRfc3339UtcWithNanoseconds) {
  // 2026-01-01T00:00:00Z is 1767225600.
  EXPECT_EQ(FormatRfc3339(absl::FromUnixNanos(1767225600123456789)),
            "2026-01-01T00:00:00.123456789Z");
  EXPECT_EQ(FormatRfc3339(absl::FromUnixSeconds(1767225600) + absl::Milliseconds(5)),
            "2026-01-01T00:00:00.005000000Z");
  EXPECT_EQ(FormatRfc3339(absl::FromUnixSeconds(1795656980)), "2026-11-26T01:36:20.000000000Z");
  EXPECT_EQ(FormatRfc3339(absl::UnixEpoch()), "1970-01-01T00:00:00.000000000Z");
}

// A sink that keeps what it is given, or fails on demand.
class MemorySink final : public AuditSink {
 public:
  explicit MemorySink(std::vector<v1::AuditEvent>* out) : out_(out) {}
  absl::Status Write(const v1::AuditEvent& event) override {
    if (fail) return absl::UnavailableError("sink down");
    out_->push_back(event);
    return absl::OkStatus();
  }
  bool fail = false;

 private:
  std::vector<v1::AuditEvent>* out_;
};

std::string HostName() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

TEST(AuditLog, StampsIdTimeAndHost) {
  interlock::testing::FakeClock clock(absl::FromUnixNanos(1767225600000000007));
  std::vector<v1::AuditEvent> got;
  AuditLog log(std::make_unique<MemorySink>(&got), clock);
  ASSERT_TRUE(log.Emit(SessionEnd()).ok());
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(log.Emit(SessionEnd()).ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_THAT(got[0].id(), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_THAT(got[1].id(), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(got[0].id(), got[1].id());
  EXPECT_EQ(got[0].time(), "2026-01-01T00:00:00.000000007Z");
  EXPECT_EQ(got[1].time(), "2026-01-01T00:00:01.000000007Z");
  EXPECT_EQ(got[0].host(), HostName());
  EXPECT_FALSE(got[0].host().empty());
  // The rest is untouched.
  v1::AuditEvent rest = got[0];
  rest.clear_id();
  rest.clear_time();
  rest.clear_host();
  EXPECT_TRUE(Same(rest, SessionEnd()));
  EXPECT_EQ(log.errors(), 0u);
}

TEST(AuditLog, KeepsFieldsTheCallerSet) {
  interlock::testing::FakeClock clock;
  std::vector<v1::AuditEvent> got;
  AuditLog log(std::make_unique<MemorySink>(&got), clock);
  v1::AuditEvent ev = SessionEnd();
  ev.set_id("given-id");
  ev.set_time("2000-01-01T00:00:00.000000000Z");
  ev.set_host("elsewhere");
  ASSERT_TRUE(log.Emit(ev).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(Same(got[0], ev));
}

TEST(AuditLog, DivertedEventsAreStampedAndSkipEverySink) {
  interlock::testing::FakeClock clock(absl::FromUnixNanos(1767225600000000007));
  std::vector<v1::AuditEvent> main_sink, extra_sink, diverted;
  AuditLog log(std::make_unique<MemorySink>(&main_sink), clock);
  log.AddSink(std::make_unique<MemorySink>(&extra_sink));
  ASSERT_TRUE(log.Emit(SessionEnd()).ok());
  log.Divert([&](const v1::AuditEvent& ev) {
    diverted.push_back(ev);
    return absl::OkStatus();
  });
  ASSERT_TRUE(log.Emit(SessionEnd()).ok());
  EXPECT_TRUE(log.Flush().ok());
  EXPECT_EQ(main_sink.size(), 1u);
  EXPECT_EQ(extra_sink.size(), 1u);
  ASSERT_EQ(diverted.size(), 1u);
  EXPECT_THAT(diverted[0].id(), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_EQ(diverted[0].time(), "2026-01-01T00:00:00.000000007Z");
  EXPECT_EQ(diverted[0].host(), HostName());
  // A failure of the diversion is Emit's, and counted.
  log.Divert([](const v1::AuditEvent&) { return absl::UnavailableError("gone"); });
  EXPECT_EQ(log.Emit(SessionEnd()).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(log.errors(), 1u);
}

TEST(AuditLog, ReplacedSinkGetsWhatFollows) {
  interlock::testing::FakeClock clock;
  std::vector<v1::AuditEvent> first, second;
  AuditLog log(std::make_unique<MemorySink>(&first), clock);
  ASSERT_TRUE(log.Emit(SessionEnd()).ok());
  log.ReplaceSink(std::make_unique<MemorySink>(&second));
  ASSERT_TRUE(log.Emit(SessionEnd()).ok());
  EXPECT_EQ(first.size(), 1u);
  EXPECT_EQ(second.size(), 1u);
}

TEST(AuditLog, SinkErrorIsReturnedAndCounted) {
  interlock::testing::FakeClock clock;
  std::vector<v1::AuditEvent> got;
  auto sink = std::make_unique<MemorySink>(&got);
  MemorySink* raw = sink.get();
  AuditLog log(std::move(sink), clock);
  raw->fail = true;
  absl::Status st = log.Emit(SessionEnd());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(log.Emit(SessionEnd()).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(log.errors(), 2u);
  raw->fail = false;
  EXPECT_TRUE(log.Emit(SessionEnd()).ok());
  EXPECT_EQ(log.errors(), 2u);
}

class JsonLinesSinkTest : public ::testing::Test {
 protected:
  JsonLinesSinkTest() {
    std::string tmpl = "/tmp/audit_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    dir_ = tmpl;
  }
  ~JsonLinesSinkTest() override {
    ::nftw(
        dir_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  std::vector<v1::AuditEvent> ReadBack(const std::string& path) {
    std::vector<v1::AuditEvent> out;
    auto text = ReadFile(path);
    EXPECT_TRUE(text.ok()) << text.status();
    if (!text.ok()) return out;
    EXPECT_TRUE(text->empty() || text->back() == '\n');
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      out.push_back(Parse(line));
      // The chain's fields are the sink's (chain_test.cc checks them).
      EXPECT_NE(out.back().seq(), 0u);
      out.back().clear_seq();
      out.back().clear_prev_sha256();
    }
    return out;
  }
  static mode_t Mode(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
  }
  std::string dir_;
};

TEST_F(JsonLinesSinkTest, CreatesPrivateDirAndFile) {
  const std::string path = dir_ + "/state/audit/audit.jsonl";
  auto sink = JsonLinesSink::Create(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_EQ(Mode(dir_ + "/state"), 0700u);
  EXPECT_EQ(Mode(dir_ + "/state/audit"), 0700u);
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(*ReadFile(path), "");
}

TEST_F(JsonLinesSinkTest, AppendsOneLinePerEvent) {
  const std::string path = dir_ + "/audit/audit.jsonl";
  v1::AuditEvent a = SessionEnd();
  v1::AuditEvent b;
  b.set_kind(v1::AUDIT_KIND_CONNECT_DENIED);
  b.set_reason("default_deny");
  {
    auto sink = JsonLinesSink::Create(path);
    ASSERT_TRUE(sink.ok()) << sink.status();
    ASSERT_TRUE((*sink)->Write(a).ok());
    ASSERT_TRUE((*sink)->Write(b).ok());
  }
  std::vector<v1::AuditEvent> got = ReadBack(path);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(Same(got[0], a));
  EXPECT_TRUE(Same(got[1], b));

  // Reopening appends; it never truncates.
  auto again = JsonLinesSink::Create(path);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*again)->Write(a).ok());
  EXPECT_EQ(ReadBack(path).size(), 2u) << "buffered until Flush";
  ASSERT_TRUE((*again)->Flush().ok());
  got = ReadBack(path);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(Same(got[2], a));
}

TEST_F(JsonLinesSinkTest, ThroughAuditLog) {
  const std::string path = dir_ + "/audit.jsonl";
  auto sink = JsonLinesSink::Create(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  interlock::testing::FakeClock clock(absl::FromUnixSeconds(1767225600));
  AuditLog log(*std::move(sink), clock);
  ASSERT_TRUE(log.Emit(SessionEnd()).ok());
  ASSERT_TRUE(log.Flush().ok());
  std::vector<v1::AuditEvent> got = ReadBack(path);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].time(), "2026-01-01T00:00:00.000000000Z");
  EXPECT_THAT(got[0].id(), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_EQ(got[0].outcome(), "closed");
}

TEST_F(JsonLinesSinkTest, CreateFailsUnderAFile) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/file", "x", 0600).ok());
  auto sink = JsonLinesSink::Create(dir_ + "/file/audit.jsonl");
  EXPECT_FALSE(sink.ok());
  EXPECT_THAT(sink.status().message(), HasSubstr(dir_ + "/file"));
}

TEST(RandomId, ThirtyTwoHexAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = RandomId();
    ASSERT_THAT(id, MatchesRegex("[0-9a-f]{32}"));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace interlock::audit

namespace interlock::audit {
namespace {

v1::AuditEvent FullEvent() {
  v1::AuditEvent ev;
  ev.set_id("00112233445566778899aabbccddeeff");
  ev.set_kind(v1::AUDIT_KIND_STATEMENT);
  ev.set_time("2026-11-26T01:36:20.123456789Z");
  ev.set_session_id("s1");
  auto* who = ev.mutable_identity();
  who->set_workload("billing-agent");
  who->set_cgroup_id(18446744073709551615ull);  // uint64 max: JSON string
  who->set_pid(4242);
  who->set_login_uid(4294967295u);
  who->set_comm("psql\t\"quoted\"\\ \x01");
  who->set_exe("/usr/bin/caf\xC3\xA9");
  ev.set_resource("bank-db");
  ev.mutable_original_destination()->set_address("::1");
  ev.mutable_original_destination()->set_port(5432);
  ev.set_bytes_to_upstream(1ull << 40);
  auto* st = ev.mutable_statement();
  st->set_protocol("extended");
  st->set_text("SELECT '</script>' || $1\nFROM t");
  st->set_text_truncated(true);
  st->add_parameters("NULL");
  st->add_parameters("\\x00ff");
  st->add_command_tags("SELECT 1");
  st->add_command_tags("SELECT 2");
  st->set_rows(3);
  // Maps are JSON objects in proto3's mapping.
  auto* m = ev.mutable_masking();
  (*m->mutable_detector_counts())["ssn"] = 2;
  (*m->mutable_detector_counts())["card \"quoted\""] = 1ull << 40;
  (*m->mutable_column_counts())["public.customers.ssn"] = 7;
  return ev;
}

TEST(AuditJson, FastWriterRoundTripsThroughProtobufsJsonParser) {
  v1::AuditEvent ev = FullEvent();
  std::string line = EventToJsonLine(ev);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one event, one line";
  v1::AuditEvent back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line.substr(0, line.size() - 1), &back).ok())
      << line;
  // (Map entries have no order: compare as messages, not bytes.)
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, ev)) << line;
  // Same mapping as protobuf's own printer: 64-bit as strings, enums by name, snake_case.
  EXPECT_NE(line.find("\"cgroup_id\":\"18446744073709551615\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"kind\":\"AUDIT_KIND_STATEMENT\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"text_truncated\":true"), std::string::npos) << line;
  EXPECT_NE(line.find("\"column_counts\":{\"public.customers.ssn\":\"7\"}"), std::string::npos) << line;
}

TEST(AuditJson, InvalidUtf8BecomesReplacementCharacterAndStaysParseable) {
  v1::AuditEvent ev;
  ev.mutable_identity()->set_comm(std::string("bad\xFF\xC3", 5));
  std::string line = EventToJsonLine(ev);
  v1::AuditEvent back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &back).ok()) << line;
  EXPECT_EQ(back.identity().comm(), "bad\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace interlock::audit
