// SyslogDeliverer over loopback UDP and TCP against in-test receivers (TLS is covered by
// tests/integration/audit_sinks_test.cc against rsyslogd).
#include "userspace/audit/sinks/syslog_sink.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/unique_fd.h"

namespace interlock::audit::sinks {
namespace {

using ::testing::HasSubstr;

UniqueFd Bound(int type, uint16_t* port) {
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  if (type == SOCK_STREAM) {
    EXPECT_EQ(::listen(fd.get(), 4), 0);
  }
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

std::string ReadAvailable(int fd) {
  std::string out;
  char buf[65536];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 500) > 0) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::vector<std::string> Unframe(absl::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t sp = s.find(' ');
    size_t len = 0;
    if (sp == absl::string_view::npos || !absl::SimpleAtoi(s.substr(0, sp), &len) ||
        s.size() < sp + 1 + len)
      break;
    out.emplace_back(s.substr(sp + 1, len));
    s.remove_prefix(sp + 1 + len);
  }
  return out;
}

std::vector<v1::AuditEvent> Events(int n, size_t detail_bytes = 0) {
  std::vector<v1::AuditEvent> out;
  for (int i = 0; i < n; ++i) {
    v1::AuditEvent e;
    e.set_id(absl::StrCat("id-", i));
    e.set_kind(v1::AUDIT_KIND_SESSION_START);
    e.set_detail(std::string(detail_bytes, 'd'));
    out.push_back(e);
  }
  return out;
}

config::SyslogSinkSettings Settings(config::SyslogTransport t, uint16_t port) {
  config::SyslogSinkSettings s;
  s.host = "127.0.0.1";
  s.port = port;
  s.transport = t;
  return s;
}

TEST(SyslogDeliverer, TcpOctetCountedFramesAndReconnect) {
  uint16_t port = 0;
  UniqueFd listener = Bound(SOCK_STREAM, &port);
  SyslogDeliverer d(Settings(config::SyslogTransport::kTcp, port), {.procid = 7});
  EXPECT_EQ(d.destination(), absl::StrCat("syslog-tcp 127.0.0.1:", port));
  ASSERT_TRUE(d.Deliver(Events(3)).ok());
  UniqueFd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  std::vector<std::string> msgs = Unframe(ReadAvailable(c.get()));
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_THAT(msgs[2], HasSubstr("id=\"id-2\""));
  // The receiver restarts: the next batch goes over a new connection, not into the old one.
  c = UniqueFd();
  ::usleep(50 * 1000);
  ASSERT_TRUE(d.Deliver(Events(2)).ok());
  UniqueFd c2(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_EQ(Unframe(ReadAvailable(c2.get())).size(), 2u);
}

TEST(SyslogDeliverer, TcpDeadPortIsUnavailable) {
  uint16_t port = 0;
  { UniqueFd gone = Bound(SOCK_STREAM, &port); }
  SyslogDeliverer d(Settings(config::SyslogTransport::kTcp, port), {});
  EXPECT_TRUE(absl::IsUnavailable(d.Deliver(Events(1))));
}

TEST(SyslogDeliverer, UdpOneDatagramPerMessageTruncated) {
  uint16_t port = 0;
  UniqueFd rx = Bound(SOCK_DGRAM, &port);
  config::SyslogSinkSettings s = Settings(config::SyslogTransport::kUdp, port);
  s.udp_max_bytes = 2048;
  SyslogDeliverer d(s, {});
  ASSERT_TRUE(d.Deliver(Events(2, 10000)).ok());
  char buf[65536];
  for (int i = 0; i < 2; ++i) {
    ssize_t n = ::recv(rx.get(), buf, sizeof buf, 0);
    ASSERT_EQ(n, 2048);
    EXPECT_THAT(std::string(buf, 64), ::testing::StartsWith("<109>1 "));
  }
}

TEST(SyslogDeliverer, TlsToAPlainListenerFailsWithoutSending) {
  uint16_t port = 0;
  UniqueFd listener = Bound(SOCK_STREAM, &port);
  config::SyslogSinkSettings s = Settings(config::SyslogTransport::kTls, port);
  s.ca_file = "/nonexistent/ca.pem";
  s.server_name = "localhost";
  SyslogDeliverer d(s, {});
  absl::Status st = d.Deliver(Events(1));
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("ca_file"));
}

}  // namespace
}  // namespace interlock::audit::sinks
