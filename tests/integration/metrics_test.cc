// The Prometheus endpoint of a real interlockd: scraped with curl, parsed with the
// reference parser (python3-prometheus-client), and held up by slow and hostile clients
// (a silent connection, an oversized request head, more connections than it takes).
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/privileged.h"
#include "tests/testing/probe_output.h"
#include "tests/testing/wait.h"
#include "tools/echo/echo_server.h"
#include "userspace/common/file_util.h"
#include "userspace/common/unique_fd.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;

// Reads until EOF (or 10 s); what the server sent. *eof: whether the server closed.
std::string ReadAll(int fd, bool* eof = nullptr) {
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (eof != nullptr) *eof = n == 0 || (n < 0 && errno == ECONNRESET);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The reference parser's view: "name{labels} value" per sample, or an exception's text.
constexpr char kParse[] = R"(
import sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
for family in text_string_to_metric_families(text):
    assert family.type in ("counter", "gauge"), family.type
    for s in family.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %d" % (s.name, labels, s.value))
)";

TEST(MetricsTest, CurlScrapesValidExpositionAndSlowOrHostileClientsDoNotHoldItUp) {
  INTERLOCK_REQUIRE_ROOT();
  tools::EchoServer echo;
  ASSERT_TRUE(echo.Start("127.0.0.42", 0).ok());
  const uint16_t port = FreePort();
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo.port()}},
                       .extra_yaml = absl::StrCat("metrics:\n  address: \"127.0.0.1:", port, "\"\n")});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult agent = h.RunAgent("agent", {BinaryPath("interlock-probe"), "connect", "127.0.0.42",
                                             absl::StrCat(echo.port())});
  ASSERT_EQ(agent.exit_code, 0) << agent.out << agent.err;
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));

  // The recordings' scan behind the file count is at most a second old.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  // A silent client: it does not hold up a scrape.
  UniqueFd silent = DialLoopback(port);
  ASSERT_TRUE(silent.valid());
  const std::string url = absl::StrCat("http://127.0.0.1:", port, "/metrics");
  CommandResult curl = RunCommand({"/usr/bin/curl", "-sS", "--max-time", "5", "-D", "/dev/stderr", url});
  ASSERT_EQ(curl.exit_code, 0) << curl.err << h.DaemonLog();
  EXPECT_THAT(curl.err, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(curl.err, HasSubstr("Content-Type: text/plain; version=0.0.4"));

  const std::string dir = MakeTempDir("interlock-metrics-");
  ASSERT_TRUE(WriteFileAtomic(absl::StrCat(dir, "/parse.py"), kParse, 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(absl::StrCat(dir, "/metrics.txt"), curl.out, 0600).ok());
  CommandResult parsed = RunCommand(
      {"/bin/sh", "-c", absl::StrCat("/usr/bin/python3 ", dir, "/parse.py < ", dir, "/metrics.txt")});
  RemoveTree(dir);
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err << curl.out;
  EXPECT_THAT(parsed.out, HasSubstr("interlock_sessions_total{resource=echo} 1\n"));
  EXPECT_THAT(parsed.out,
              HasSubstr("interlock_audit_events_total{kind=AUDIT_KIND_SESSION_END,outcome=closed} 1\n"));
  EXPECT_THAT(parsed.out, HasSubstr("interlock_holds_pending{} 0\n"));
  EXPECT_THAT(parsed.out, HasSubstr("interlock_kernel_redirected_total{} "));
  EXPECT_THAT(parsed.out, HasSubstr("interlock_recordings_free_bytes{} "));
  EXPECT_THAT(parsed.out, HasSubstr("interlock_recordings_files{} 1\n"));

  // Other paths and methods, an oversized head: answered and closed.
  CommandResult other = RunCommand({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                    absl::StrCat("http://127.0.0.1:", port, "/")});
  EXPECT_EQ(other.out, "404");
  CommandResult post = RunCommand({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url});
  EXPECT_EQ(post.out, "405");
  {
    UniqueFd big = DialLoopback(port);
    const std::string head = absl::StrCat("GET /metrics HTTP/1.1\r\nX: ", std::string(16384, 'a'));
    (void)!::send(big.get(), head.data(), head.size(), MSG_NOSIGNAL);
    EXPECT_THAT(ReadAll(big.get()), HasSubstr("HTTP/1.1 431 "));
  }

  // More connections than it takes: the extra ones are closed at once, and once the
  // silent ones time out (5 s) scrapes work again.
  std::vector<UniqueFd> hold;
  for (int i = 0; i < 20; ++i) hold.push_back(DialLoopback(port));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  bool closed = false;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadAll(hold.back().get(), &closed), "");
  EXPECT_TRUE(closed) << "the 17th and later connections are closed without an answer";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  closed = false;
  EXPECT_EQ(ReadAll(silent.get(), &closed), "");
  EXPECT_TRUE(closed) << "the silent client is dropped after the 5 s timeout";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CommandResult after = RunCommand({"/usr/bin/curl", "-sS", "--max-time", "5", url});
  EXPECT_EQ(after.exit_code, 0) << after.err;
  EXPECT_THAT(after.out, HasSubstr("interlock_sessions_total{resource=\"echo\"} 1\n"));
  EXPECT_TRUE(h.running());
}

TEST(MetricsTest, UnixSocketEndpoint) {
  INTERLOCK_REQUIRE_ROOT();
  const std::string dir = MakeTempDir("interlock-metrics-");
  const std::string sock = absl::StrCat(dir, "/metrics.sock");
  InterlockdHarness h({.extra_yaml = absl::StrCat("metrics:\n  unix_path: ", sock, "\n")});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult curl = RunCommand({"/usr/bin/curl", "-sS", "--max-time", "5", "--unix-socket", sock,
                                   "http://localhost/metrics"});
  EXPECT_EQ(curl.exit_code, 0) << curl.err;
  EXPECT_THAT(curl.out, HasSubstr("# TYPE interlock_sessions_active gauge\n"));
  h.Stop();
  RemoveTree(dir);
}

}  // namespace
}  // namespace interlock::testing
