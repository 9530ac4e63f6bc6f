// HecDeliverer against an in-process HTTP server on loopback (plain HTTP, which the
// config allows only to loopback): answers, framing, keep-alive, the token header.
#include "userspace/audit/sinks/hec_sink.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/unique_fd.h"

namespace interlock::audit::sinks {
namespace {

using ::testing::HasSubstr;

// Accepts connections one at a time; for each request calls `answer(request)` and writes
// what it returns ("" closes the connection without answering).
class TinyServer {
 public:
  explicit TinyServer(std::function<std::string(const std::string&)> answer)
      : answer_(std::move(answer)) {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_.get(), 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyServer() {
    stop_ = true;
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  int connections() const { return connections_; }

 private:
  void Serve() {
    while (!stop_) {
      UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) return;
      ++connections_;
      std::string buf;
      char tmp[4096];
      while (!stop_) {
        size_t head_end = buf.find("\r\n\r\n");
        size_t need = 0;
        if (head_end != std::string::npos) {
          size_t cl = buf.find("Content-Length: ");
          size_t len = 0;
          (void)absl::SimpleAtoi(buf.substr(cl + 16, buf.find("\r\n", cl) - cl - 16), &len);
          need = head_end + 4 + len;
        }
        if (need > 0 && buf.size() >= need) {
          std::string req = buf.substr(0, need);
          buf.erase(0, need);
          {
            std::lock_guard<std::mutex> lock(mu_);
            requests_.push_back(req);
          }
          std::string resp = answer_(req);
          if (resp.empty()) break;
          (void)::send(c.get(), resp.data(), resp.size(), MSG_NOSIGNAL);
          if (absl::StrContains(resp, "Connection: close")) break;
          continue;
        }
        ssize_t n = ::recv(c.get(), tmp, sizeof tmp, 0);
        if (n <= 0) break;
        buf.append(tmp, static_cast<size_t>(n));
      }
    }
  }

  std::function<std::string(const std::string&)> answer_;
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<std::string> requests_;
};

std::string Answer(int code, absl::string_view body = "{\"text\":\"Success\",\"code\":0}",
                   absl::string_view extra = "") {
  return absl::StrCat("HTTP/1.1 ", code,
                      " X\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                      "\r\n", extra, "\r\n", body);
}

config::HecSinkSettings Settings(uint16_t port) {
  config::HecSinkSettings s;
  s.tls = false;
  s.host = "127.0.0.1";
  s.port = port;
  s.path = "/services/collector/event";
  s.url = absl::StrCat("http://127.0.0.1:", port, s.path);
  s.timeout = absl::Seconds(2);
  return s;
}

std::vector<v1::AuditEvent> Events(int n) {
  std::vector<v1::AuditEvent> out;
  for (int i = 0; i < n; ++i) {
    v1::AuditEvent e;
    e.set_id(absl::StrCat("id-", i));
    e.set_kind(v1::AUDIT_KIND_STATEMENT);
    out.push_back(e);
  }
  return out;
}

TEST(HecDeliverer, PostsWithTokenAndKeepsTheConnection) {
  TinyServer server([](const std::string&) { return Answer(200); });
  HecDeliverer d(Settings(server.port()), auth::Secret("tok-123"));
  ASSERT_TRUE(d.Deliver(Events(3)).ok());
  ASSERT_TRUE(d.Deliver(Events(2)).ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_THAT(reqs[0], ::testing::StartsWith("POST /services/collector/event HTTP/1.1\r\n"));
  EXPECT_THAT(reqs[0], HasSubstr("\r\nAuthorization: Splunk tok-123\r\n"));
  EXPECT_THAT(reqs[0], HasSubstr("\"id\":\"id-2\""));
  EXPECT_EQ(server.connections(), 1);
}

TEST(HecDeliverer, ServerErrorsAndTooManyRequestsAreRetried) {
  for (int code : {429, 500, 503}) {
    TinyServer server([code](const std::string&) { return Answer(code, "busy"); });
    HecDeliverer d(Settings(server.port()), auth::Secret("t"));
    absl::Status st = d.Deliver(Events(1));
    EXPECT_TRUE(absl::IsUnavailable(st)) << code << " " << st;
    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("HTTP ", code)));
  }
}

TEST(HecDeliverer, ClientErrorsAreRejectedForGood) {
  for (int code : {400, 401, 403, 413}) {
    TinyServer server(
        [code](const std::string&) { return Answer(code, "{\"text\":\"Invalid token\"}"); });
    HecDeliverer d(Settings(server.port()), auth::Secret("t"));
    absl::Status st = d.Deliver(Events(1));
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << code << " " << st;
    EXPECT_THAT(st.message(), HasSubstr("Invalid token"));
  }
}

TEST(HecDeliverer, ChunkedAnswerAndInterimContinue) {
  TinyServer server([](const std::string&) {
    return std::string(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n");
  });
  HecDeliverer d(Settings(server.port()), auth::Secret("t"));
  ASSERT_TRUE(d.Deliver(Events(1)).ok());
  ASSERT_TRUE(d.Deliver(Events(1)).ok());  // the connection is still in step
  EXPECT_EQ(server.connections(), 1);
}

TEST(HecDeliverer, ConnectionCloseAnswerReconnectsNextTime) {
  TinyServer server([](const std::string&) { return Answer(200, "ok", "Connection: close\r\n"); });
  HecDeliverer d(Settings(server.port()), auth::Secret("t"));
  ASSERT_TRUE(d.Deliver(Events(1)).ok());
  ASSERT_TRUE(d.Deliver(Events(1)).ok());
  EXPECT_EQ(server.connections(), 2);
}

TEST(HecDeliverer, IdleConnectionDroppedByServerIsRetriedOnceFresh) {
  std::atomic<int> n{0};
  // The second request is dropped without an answer (a keep-alive race); the resend works.
  TinyServer server([&n](const std::string&) { return ++n == 2 ? std::string() : Answer(200); });
  HecDeliverer d(Settings(server.port()), auth::Secret("t"));
  ASSERT_TRUE(d.Deliver(Events(1)).ok());
  ASSERT_TRUE(d.Deliver(Events(1)).ok());
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HecDeliverer, GarbageAnswerIsRetriedNotTrusted) {
  TinyServer server([](const std::string&) { return std::string("SSH-2.0-OpenSSH\r\n\r\n"); });
  HecDeliverer d(Settings(server.port()), auth::Secret("t"));
  absl::Status st = d.Deliver(Events(1));
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
}

TEST(HecDeliverer, DeadPortIsUnavailable) {
  uint16_t port;
  {
    TinyServer server([](const std::string&) { return Answer(200); });
    port = server.port();
  }
  HecDeliverer d(Settings(port), auth::Secret("t"));
  EXPECT_TRUE(absl::IsUnavailable(d.Deliver(Events(1))));
}

TEST(HecDeliverer, SilentServerTimesOut) {
  // Accepts and reads but never answers.
  TinyServer server([](const std::string&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return Answer(200);
  });
  config::HecSinkSettings s = Settings(server.port());
  s.timeout = absl::Milliseconds(300);
  HecDeliverer d(s, auth::Secret("t"));
  auto start = std::chrono::steady_clock::now();
  absl::Status st = d.Deliver(Events(1));
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(absl::IsInvalidArgument(st));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

}  // namespace
}  // namespace interlock::audit::sinks
