#include <regex>
#include <set>
#include <string>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/control/metrics_server.h"
#include "userspace/control/metrics_text.h"

namespace interlock::control {
namespace {

using ::testing::HasSubstr;

// A strict reading of the text exposition format 0.0.4: every sample belongs to the family
// announced by the # HELP and # TYPE lines just before it, names and label names match the
// grammar, label values are quoted with only \\, \" and \n escapes, values are integers
// here, and no family appears twice. Returns "" or the first problem.
std::string CheckExposition(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]*)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? [0-9]+)");
  if (text.empty() || text.back() != '\n') return "must end with a newline";
  std::set<std::string> seen;
  std::string family, type;
  std::smatch m;
  for (absl::string_view v : absl::StrSplit(absl::string_view(text).substr(0, text.size() - 1), '\n')) {
    const std::string line(v);
    if (std::regex_match(line, m, kHelp)) {
      if (!seen.insert(m[1]).second) return "family twice: " + line;
      family = m[1];
      type.clear();
    } else if (std::regex_match(line, m, kType)) {
      if (m[1] != family || !type.empty()) return "TYPE without its HELP: " + line;
      type = m[2];
    } else if (std::regex_match(line, m, kSample)) {
      if (m[1] != family || type.empty()) return "sample outside its family: " + line;
      if (type == "counter" && family.size() < 6) return "short counter name: " + line;
      if (type == "counter" && family.substr(family.size() - 6) != "_total") return "counter without _total: " + line;
    } else {
      return "not a valid line: " + line;
    }
  }
  return "";
}

TEST(PrometheusText, EmptyStatusIsValidExposition) {
  const std::string text = PrometheusText(v1::StatusResponse());
  EXPECT_EQ(CheckExposition(text), "") << text;
  EXPECT_THAT(text, HasSubstr("\ninterlock_holds_pending 0\n"));
}

TEST(PrometheusText, FullStatusIsValidExpositionWithEscapedLabels) {
  v1::StatusResponse s;
  (*s.mutable_sessions_by_protocol())["postgres"] = 3;
  (*s.mutable_sessions_by_protocol())["tcp"] = 1;
  (*s.mutable_sessions_by_resource())["billing \"db\"\\x\nnext"] = 4;
  (*s.mutable_sessions_total_by_resource())["billing-db"] = 17;
  v1::AuditEventCount* c = s.add_audit_events();
  c->set_kind("AUDIT_KIND_POLICY_DECISION");
  c->set_outcome("denied");
  c->set_count(5);
  s.set_held_approvals(2);
  s.set_kernel_redirected(40);
  s.set_kernel_denied(7);
  v1::AuditSinkStatus* sink = s.add_audit_sinks();
  sink->set_name("siem");
  sink->set_queued_events(9);
  s.mutable_recordings()->set_bytes(123456);
  s.mutable_recordings()->set_free_bytes(1 << 30);
  s.mutable_recordings()->set_refused_disk_full(1);
  const std::string text = PrometheusText(s);
  EXPECT_EQ(CheckExposition(text), "") << text;
  EXPECT_THAT(text, HasSubstr("interlock_sessions_active{protocol=\"postgres\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("interlock_sessions_active_by_resource{resource=\"billing \\\"db\\\"\\\\x\\nnext\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("interlock_sessions_total{resource=\"billing-db\"} 17\n"));
  EXPECT_THAT(text, HasSubstr("interlock_audit_events_total{kind=\"AUDIT_KIND_POLICY_DECISION\",outcome=\"denied\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("interlock_holds_pending 2\n"));
  EXPECT_THAT(text, HasSubstr("interlock_kernel_redirected_total 40\n"));
  EXPECT_THAT(text, HasSubstr("interlock_audit_sink_queued_events{sink=\"siem\"} 9\n"));
  EXPECT_THAT(text, HasSubstr("interlock_recordings_bytes 123456\n"));
  EXPECT_THAT(text, HasSubstr("interlock_recordings_free_bytes 1073741824\n"));
  EXPECT_THAT(text, HasSubstr("interlock_sessions_refused_disk_full_total 1\n"));
}

TEST(PrometheusText, TheCheckerRejectsWhatIsNotTheFormat) {
  EXPECT_NE(CheckExposition("x 1\n"), "");
  EXPECT_NE(CheckExposition("# HELP a_total h\n# TYPE a_total counter\na_total{l=\"unterminated} 1\n"), "");
  EXPECT_NE(CheckExposition("# HELP a h\n# TYPE a counter\na 1\n"), "");
  EXPECT_NE(CheckExposition("# HELP a h\n# TYPE a gauge\na 1"), "");
  EXPECT_NE(CheckExposition("# HELP a h\n# TYPE a gauge\na{l=\"\\t\"} 1\n"), "");
  EXPECT_EQ(CheckExposition("# HELP a h\n# TYPE a gauge\na{l=\"\\n\",m=\"\"} 1\n"), "");
}

TEST(ParseMetricsRequest, Table) {
  struct Case {
    const char* head;
    int status;
  } cases[] = {
      {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200},
      {"GET /metrics?name[]=x HTTP/1.0\r\n\r\n", 200},
      {"HEAD /metrics HTTP/1.1\r\n\r\n", 200},
      {"GET / HTTP/1.1\r\n\r\n", 404},
      {"GET /metrics/../etc HTTP/1.1\r\n\r\n", 404},
      {"POST /metrics HTTP/1.1\r\n\r\n", 405},
      {"GET /metrics HTTP/2\r\n\r\n", 400},
      {"GET /metrics\r\n\r\n", 400},
      {"GET  /metrics HTTP/1.1\r\n\r\n", 400},
      {"\x16\x03\x01garbage\r\n\r\n", 400},
      {"", 400},
  };
  for (const Case& c : cases) EXPECT_EQ(ParseMetricsRequest(c.head).status, c.status) << c.head;
}

}  // namespace
}  // namespace interlock::control
