#include "userspace/approval/webhook.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/unique_fd.h"

namespace interlock::approval {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A scripted HTTP/1.1 server on 127.0.0.1 (never any other address), one thread per
// connection. statuses[i] answers the i-th request (the last one repeats); 0 means never
// answer: hold the connection until the client gives up or the server stops.
class LoopbackServer {
 public:
  struct Request {
    std::string head;  // request line + header lines, each ending "\r\n", blank line excluded
    std::string request_line;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string Header(absl::string_view name) const {
      for (const auto& [n, v] : headers) {
        if (absl::EqualsIgnoreCase(n, name)) return v;
      }
      return "";
    }
    bool HasHeader(absl::string_view name) const {
      for (const auto& [n, v] : headers) {
        if (absl::EqualsIgnoreCase(n, name)) return true;
      }
      return false;
    }
  };

  explicit LoopbackServer(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    listen_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listen_) abort();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) abort();
    if (::listen(listen_.get(), 16) != 0) abort();
    socklen_t len = sizeof addr;
    if (::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) abort();
    port_ = ntohs(addr.sin_port);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) abort();
    stop_r_.Reset(p[0]);
    stop_w_.Reset(p[1]);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~LoopbackServer() {
    // The pipe stays readable: every thread polling it sees the stop.
    (void)!::write(stop_w_.get(), "x", 1);
    accept_thread_.join();
    for (auto& t : conn_threads_) t.join();
  }

  std::string Url(absl::string_view path_and_query = "/hook") const {
    return absl::StrCat("http://127.0.0.1:", port_, path_and_query);
  }

  int port() const { return port_; }

  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  bool WaitForRequests(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return requests_.size() >= n; });
  }

 private:
  void AcceptLoop() {
    while (true) {
      pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {stop_r_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents != 0) return;
      UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      conn_threads_.emplace_back([this, fd = conn.Release()] { Serve(UniqueFd(fd)); });
    }
  }

  // Waits for `fd` to become readable; false on stop or after 10 s.
  bool WaitReadable(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_r_.get(), POLLIN, 0}};
    if (::poll(fds, 2, 10000) <= 0) return false;
    return fds[1].revents == 0;
  }

  bool ReadMore(int fd, std::string* buf) {
    if (!WaitReadable(fd)) return false;
    char chunk[4096];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) return false;
    buf->append(chunk, static_cast<size_t>(n));
    return true;
  }

  void Serve(UniqueFd fd) {
    std::string buf;
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (buf.size() > (1 << 20) || !ReadMore(fd.get(), &buf)) return;
    }
    Request req;
    req.head = buf.substr(0, head_end + 2);
    std::vector<std::string> lines = absl::StrSplit(buf.substr(0, head_end), "\r\n");
    req.request_line = lines[0];
    size_t content_length = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) return;
      std::string name = lines[i].substr(0, colon);
      std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      if (absl::EqualsIgnoreCase(name, "Content-Length") &&
          !absl::SimpleAtoi(value, &content_length)) {
        return;
      }
      req.headers.emplace_back(name, value);
    }
    size_t body_start = head_end + 4;
    while (buf.size() < body_start + content_length) {
      if (!ReadMore(fd.get(), &buf)) return;
    }
    req.body = buf.substr(body_start, content_length);
    int status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      size_t i = std::min(requests_.size(), statuses_.size() - 1);
      status = statuses_[i];
      requests_.push_back(std::move(req));
    }
    cv_.notify_all();
    if (status == 0) {
      // Hold until the client hangs up or the server stops.
      std::string ignored;
      while (ReadMore(fd.get(), &ignored)) {
      }
      return;
    }
    std::string response = absl::StrCat("HTTP/1.1 ", status,
                                        " Scripted\r\nContent-Length: 2\r\n"
                                        "Connection: close\r\n\r\nhi");
    (void)!::write(fd.get(), response.data(), response.size());
  }

  const std::vector<int> statuses_;
  UniqueFd listen_;
  UniqueFd stop_r_, stop_w_;
  int port_ = 0;
  std::thread accept_thread_;
  std::vector<std::thread> conn_threads_;  // touched by accept_thread_, then the destructor
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;
};

// Collects WebhookResults from the worker thread. Declare it before the notifier, so it
// outlives it.
class Results {
 public:
  std::function<void(const WebhookResult&)> Callback() {
    return [this](const WebhookResult& r) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        results_.push_back(r);
      }
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return results_.size() >= n; });
  }
  std::vector<WebhookResult> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WebhookResult> results_;
};

WebhookOptions TestOptions(const std::string& url, Results& results) {
  WebhookOptions o;
  o.url = url;
  o.attempt_timeout = absl::Seconds(10);
  o.backoff_base = absl::Milliseconds(10);
  o.backoff_max = absl::Milliseconds(40);
  o.proxy = "";  // hermetic: ignore any http_proxy in the environment
  o.on_result = results.Callback();
  return o;
}

std::unique_ptr<WebhookNotifier> MustCreate(WebhookOptions o) {
  auto n = WebhookNotifier::Create(std::move(o));
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? std::move(*n) : nullptr;
}

// A 127.0.0.1 port that refuses connections: bound, never listening (so not reusable by
// anyone else while it is held).
class RefusingPort {
 public:
  RefusingPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) abort();
    socklen_t len = sizeof addr;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) abort();
    port_ = ntohs(addr.sin_port);
  }
  int port() const { return port_; }

 private:
  UniqueFd fd_;
  int port_ = 0;
};

TEST(WebhookNotifier, DeliversBodyAndHeadersByteExact) {
  LoopbackServer server({200});
  Results results;
  WebhookOptions o = TestOptions(server.Url("/hook?tenant=a%20b"), results);
  o.extra_header = "Authorization: Bearer s3cret-t0ken";
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  // Over 1 KiB (libcurl would otherwise ask "Expect: 100-continue"), with UTF-8, escapes,
  // a NUL-free but otherwise arbitrary byte mix.
  std::string body =
      "{\"event\":\"approval.requested\",\"request\":{\"id\":\"apr-00000000000000ab\","
      "\"statement\":\"DELETE FROM \\\"clients\\\" -- caf\xc3\xa9\\n\",\"pad\":\"";
  body += std::string(2000, 'x');
  body += "\"}}\n";
  ASSERT_TRUE(notifier->Enqueue(body, "apr-00000000000000ab").ok());
  ASSERT_TRUE(results.WaitFor(1));

  WebhookResult r = results.Get()[0];
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.idempotency_key, "apr-00000000000000ab");
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.error, "");

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& req = reqs[0];
  EXPECT_EQ(req.request_line, "POST /hook?tenant=a%20b HTTP/1.1");
  EXPECT_EQ(req.body, body);
  EXPECT_THAT(req.head, HasSubstr("\r\nContent-Type: application/json\r\n"));
  EXPECT_THAT(req.head, HasSubstr("\r\nIdempotency-Key: apr-00000000000000ab\r\n"));
  EXPECT_THAT(req.head, HasSubstr("\r\nUser-Agent: interlockd\r\n"));
  EXPECT_THAT(req.head, HasSubstr("\r\nAuthorization: Bearer s3cret-t0ken\r\n"));
  EXPECT_THAT(req.head, HasSubstr(absl::StrCat("\r\nContent-Length: ", body.size(), "\r\n")));
  EXPECT_FALSE(req.HasHeader("Expect"));
  EXPECT_FALSE(req.HasHeader("Transfer-Encoding"));
  EXPECT_FALSE(req.HasHeader("X-Interlock-Signature"));  // no signing key
  EXPECT_FALSE(req.HasHeader("X-Interlock-Timestamp"));
  EXPECT_FALSE(req.HasHeader("webhook-signature"));
  EXPECT_EQ(req.Header("webhook-id"), "msg_apr-00000000000000ab");
  EXPECT_EQ(req.Header("Host"), absl::StrCat("127.0.0.1:", server.port()));
}

TEST(WebhookNotifier, RetriesAfter500ThenDeliversWithTheSameKeyAndBody) {
  LoopbackServer server({500, 200});
  Results results;
  auto notifier = MustCreate(TestOptions(server.Url(), results));
  ASSERT_NE(notifier, nullptr);
  ASSERT_TRUE(notifier->Enqueue("{\"n\":1}", "apr-1").ok());
  ASSERT_TRUE(results.WaitFor(1));
  WebhookResult r = results.Get()[0];
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.http_status, 200);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  for (const auto& req : reqs) {
    EXPECT_EQ(req.Header("Idempotency-Key"), "apr-1");
    EXPECT_EQ(req.body, "{\"n\":1}");
  }
}

// Computed independently: python3 -c 'import hmac,hashlib; print(hmac.new(
//   b"0123456789abcdef-signing", b"1795656980.{\"event\":\"approval.requested\"}",
//   hashlib.sha256).hexdigest())'
TEST(WebhookSignature, IsHmacSha256OfTimestampDotBody) {
  EXPECT_EQ(WebhookSignature("0123456789abcdef-signing", "1795656980", R"({"event":"approval.requested"})"),
            "v1=ad36962b873ad80467866fb113d6d09012dd57d857f4c195041728dfa30117dd");
  // Any change to key, timestamp or body changes it.
  const std::string base = WebhookSignature("0123456789abcdef-signing", "1795656980", "{}");
  EXPECT_NE(WebhookSignature("0123456789abcdef-signinG", "1795656980", "{}"), base);
  EXPECT_NE(WebhookSignature("0123456789abcdef-signing", "1795656981", "{}"), base);
  EXPECT_NE(WebhookSignature("0123456789abcdef-signing", "1795656980", "{ }"), base);
}

TEST(WebhookNotifier, SignsEveryAttemptWithItsOwnTimestamp) {
  LoopbackServer server({500, 200});
  Results results;
  WebhookOptions o = TestOptions(server.Url(), results);
  const std::string key = "0123456789abcdef-signing-key";
  o.signing_key = key;
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  const std::string body = R"({"event":"approval.requested","request":{"id":"apr-7"}})";
  ASSERT_TRUE(notifier->Enqueue(body, "apr-7").ok());
  ASSERT_TRUE(results.WaitFor(1));
  EXPECT_TRUE(results.Get()[0].ok) << results.Get()[0].error;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  for (const auto& req : reqs) {
    int64_t ts = 0;
    ASSERT_TRUE(absl::SimpleAtoi(req.Header("X-Interlock-Timestamp"), &ts)) << req.head;
    EXPECT_LE(std::abs(now - ts), 60);
    EXPECT_EQ(req.Header("X-Interlock-Signature"), WebhookSignature(key, req.Header("X-Interlock-Timestamp"), body));
    EXPECT_THAT(req.head, Not(HasSubstr(key)));  // the key itself never travels
    // Standard Webhooks headers: the same id on every retry, the same timestamp as the
    // deprecated pair.
    EXPECT_EQ(req.Header("webhook-id"), "msg_apr-7");
    EXPECT_EQ(req.Header("webhook-timestamp"), req.Header("X-Interlock-Timestamp"));
    EXPECT_TRUE(VerifyStandardWebhookSignature(key, req.Header("webhook-id"), req.Header("webhook-timestamp"), body,
                                               req.Header("webhook-signature")))
        << req.head;
  }
}

// The test vector of the Standard Webhooks libraries (libraries/*/tests in
// github.com/standard-webhooks/standard-webhooks: "test_sign_function").
constexpr char kSpecSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kSpecMsgId[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr char kSpecTimestamp[] = "1614265330";
constexpr char kSpecBody[] = R"({"test": 2432232314})";
constexpr char kSpecSignature[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

TEST(StandardWebhookSignature, MatchesTheSpecTestVector) {
  absl::StatusOr<std::string> key = ParseSigningKey(kSpecSecret);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(StandardWebhookSignature(*key, kSpecMsgId, kSpecTimestamp, kSpecBody), kSpecSignature);
  EXPECT_TRUE(VerifyStandardWebhookSignature(*key, kSpecMsgId, kSpecTimestamp, kSpecBody, kSpecSignature));
  // Receivers see a space-separated list (key rotation, other versions).
  EXPECT_TRUE(VerifyStandardWebhookSignature(
      *key, kSpecMsgId, kSpecTimestamp, kSpecBody,
      absl::StrCat("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc ", kSpecSignature)));
}

TEST(StandardWebhookSignature, TamperingFailsVerification) {
  const std::string key = *ParseSigningKey(kSpecSecret);
  // Changed body, id, timestamp, key, or signature: all refused.
  EXPECT_FALSE(VerifyStandardWebhookSignature(key, kSpecMsgId, kSpecTimestamp, R"({"test": 2432232315})",
                                              kSpecSignature));
  EXPECT_FALSE(VerifyStandardWebhookSignature(key, kSpecMsgId, kSpecTimestamp, R"({"test": 2432232314} )",
                                              kSpecSignature));
  EXPECT_FALSE(VerifyStandardWebhookSignature(key, "msg_p5jXN8AQM9LWM0D4loKWxJel", kSpecTimestamp, kSpecBody,
                                              kSpecSignature));
  EXPECT_FALSE(VerifyStandardWebhookSignature(key, kSpecMsgId, "1614265331", kSpecBody, kSpecSignature));
  EXPECT_FALSE(VerifyStandardWebhookSignature(key + "x", kSpecMsgId, kSpecTimestamp, kSpecBody, kSpecSignature));
  EXPECT_FALSE(VerifyStandardWebhookSignature(key, kSpecMsgId, kSpecTimestamp, kSpecBody,
                                              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="));
  EXPECT_FALSE(VerifyStandardWebhookSignature(key, kSpecMsgId, kSpecTimestamp, kSpecBody,
                                              "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
  EXPECT_FALSE(VerifyStandardWebhookSignature(key, kSpecMsgId, kSpecTimestamp, kSpecBody, ""));
}

TEST(ParseSigningKey, DecodesWhsecAndKeepsRawKeys) {
  EXPECT_EQ(*ParseSigningKey("whsec_AAECAwQFBgcICQoLDA0ODw=="), std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"
                                                                         "\x0a\x0b\x0c\x0d\x0e\x0f", 16));
  EXPECT_EQ(*ParseSigningKey("0123456789abcdef-raw"), "0123456789abcdef-raw");
  EXPECT_FALSE(ParseSigningKey("whsec_").ok());
  absl::Status bad = ParseSigningKey("whsec_not*base64!").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), Not(HasSubstr("not*base64")));  // never quotes the secret
}

TEST(WebhookNotifier, WhsecKeySignsWithTheDecodedBytes) {
  LoopbackServer server({200});
  Results results;
  WebhookOptions o = TestOptions(server.Url(), results);
  o.signing_key = kSpecSecret;
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  ASSERT_TRUE(notifier->Enqueue(kSpecBody, "apr-9").ok());
  ASSERT_TRUE(results.WaitFor(1));
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& req = reqs[0];
  EXPECT_TRUE(VerifyStandardWebhookSignature(*ParseSigningKey(kSpecSecret), "msg_apr-9",
                                             req.Header("webhook-timestamp"), kSpecBody,
                                             req.Header("webhook-signature")))
      << req.head;
  EXPECT_THAT(req.head, Not(HasSubstr("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")));
}

TEST(WebhookNotifier, RejectsShortOrMalformedWhsecKeys) {
  Results results;
  WebhookOptions o = TestOptions("http://127.0.0.1:9/", results);
  o.signing_key = "whsec_AAECAwQFBgcI";  // 9 bytes decoded
  EXPECT_EQ(WebhookNotifier::Create(std::move(o)).status().code(), absl::StatusCode::kInvalidArgument);
  WebhookOptions o2 = TestOptions("http://127.0.0.1:9/", results);
  o2.signing_key = "whsec_%%%%%%%%%%%%%%%%%%%%%%%%";
  EXPECT_EQ(WebhookNotifier::Create(std::move(o2)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WebhookNotifier, Retries408And429And503) {
  LoopbackServer server({408, 429, 503, 204});
  Results results;
  auto notifier = MustCreate(TestOptions(server.Url(), results));
  ASSERT_NE(notifier, nullptr);
  ASSERT_TRUE(notifier->Enqueue("{}", "apr-2").ok());
  ASSERT_TRUE(results.WaitFor(1));
  WebhookResult r = results.Get()[0];
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 4);
  EXPECT_EQ(r.http_status, 204);
}

TEST(WebhookNotifier, ClientErrorsAndRedirectsAreNotRetried) {
  for (int status : {400, 401, 403, 404, 422, 302}) {
    SCOPED_TRACE(status);
    LoopbackServer server({status, 200});
    Results results;
    auto notifier = MustCreate(TestOptions(server.Url(), results));
    ASSERT_NE(notifier, nullptr);
    ASSERT_TRUE(notifier->Enqueue("{}", "apr-3").ok());
    ASSERT_TRUE(results.WaitFor(1));
    WebhookResult r = results.Get()[0];
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.attempts, 1);
    EXPECT_EQ(r.http_status, status);
    EXPECT_EQ(r.error, absl::StrCat("HTTP ", status));
    notifier.reset();
    EXPECT_EQ(server.requests().size(), 1u);
  }
}

TEST(WebhookNotifier, GivesUpAfterMaxAttempts) {
  LoopbackServer server({503});
  Results results;
  WebhookOptions o = TestOptions(server.Url(), results);
  o.max_attempts = 3;
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  ASSERT_TRUE(notifier->Enqueue("{}", "apr-4").ok());
  ASSERT_TRUE(results.WaitFor(1));
  WebhookResult r = results.Get()[0];
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(r.http_status, 503);
  EXPECT_EQ(r.error, "gave up after 3 attempts: HTTP 503");
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(WebhookNotifier, DeliversInOrderAndKeepsGoingAfterAFailure) {
  LoopbackServer server({400, 200});
  Results results;
  auto notifier = MustCreate(TestOptions(server.Url(), results));
  ASSERT_NE(notifier, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(notifier->Enqueue("{}", absl::StrCat("k", i)).ok());
  ASSERT_TRUE(results.WaitFor(3));
  auto rs = results.Get();
  EXPECT_EQ(rs[0].idempotency_key, "k0");
  EXPECT_FALSE(rs[0].ok);
  EXPECT_EQ(rs[1].idempotency_key, "k1");
  EXPECT_TRUE(rs[1].ok);
  EXPECT_EQ(rs[2].idempotency_key, "k2");
  EXPECT_TRUE(rs[2].ok);
}

TEST(WebhookNotifier, PerAttemptTimeoutIsATransportErrorAndRetried) {
  LoopbackServer server({0});  // never answers
  Results results;
  WebhookOptions o = TestOptions(server.Url(), results);
  o.attempt_timeout = absl::Milliseconds(300);
  o.max_attempts = 2;
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  ASSERT_TRUE(notifier->Enqueue("{}", "apr-5").ok());
  ASSERT_TRUE(results.WaitFor(1));
  WebhookResult r = results.Get()[0];
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.http_status, 0);
  EXPECT_THAT(r.error, HasSubstr("gave up after 2 attempts"));
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(WebhookNotifier, QueueFullIsResourceExhausted) {
  LoopbackServer server({0});  // the first notification stays in flight
  Results results;
  WebhookOptions o = TestOptions(server.Url(), results);
  o.max_queue = 2;
  o.attempt_timeout = absl::Seconds(60);
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  ASSERT_TRUE(notifier->Enqueue("{}", "k0").ok());
  ASSERT_TRUE(server.WaitForRequests(1));
  ASSERT_TRUE(notifier->Enqueue("{}", "k1").ok());
  ASSERT_TRUE(notifier->Enqueue("{}", "k2").ok());
  EXPECT_EQ(notifier->queued(), 2u);
  absl::Status full = notifier->Enqueue("{}", "k3");
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;

  // Destruction aborts the transfer in flight and reports everything.
  absl::Time start = absl::Now();
  notifier.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  auto rs = results.Get();
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].idempotency_key, "k0");
  EXPECT_EQ(rs[0].attempts, 1);
  EXPECT_EQ(rs[0].error, "shut down during delivery");
  for (int i = 1; i <= 2; ++i) {
    EXPECT_EQ(rs[i].idempotency_key, absl::StrCat("k", i));
    EXPECT_EQ(rs[i].attempts, 0);
    EXPECT_FALSE(rs[i].ok);
    EXPECT_EQ(rs[i].error, "shut down before delivery");
  }
}

TEST(WebhookNotifier, ConnectionRefusedIsRetriedThenFailsWithoutLeakingSecrets) {
  RefusingPort refusing;
  Results results;
  WebhookOptions o = TestOptions(
      absl::StrCat("http://127.0.0.1:", refusing.port(), "/hook/SECRETPATH?token=SECRETQUERY"),
      results);
  o.extra_header = "Authorization: Bearer SECRETTOKEN";
  o.max_attempts = 3;
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  ASSERT_TRUE(notifier->Enqueue("{}", "apr-6").ok());
  ASSERT_TRUE(results.WaitFor(1));
  WebhookResult r = results.Get()[0];
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(r.http_status, 0);
  EXPECT_THAT(r.error, HasSubstr("gave up after 3 attempts: "));
  EXPECT_THAT(r.error, Not(HasSubstr("SECRET")));
}

TEST(WebhookNotifier, ShutdownWhileBackingOffReturnsQuickly) {
  LoopbackServer server({500});
  Results results;
  WebhookOptions o = TestOptions(server.Url(), results);
  o.backoff_base = absl::Seconds(30);
  o.backoff_max = absl::Seconds(30);
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  ASSERT_TRUE(notifier->Enqueue("{}", "apr-7").ok());
  ASSERT_TRUE(server.WaitForRequests(1));
  absl::SleepFor(absl::Milliseconds(100));  // let the worker reach its 30 s backoff
  absl::Time start = absl::Now();
  notifier->Shutdown(absl::Milliseconds(200));  // the queue cannot drain in time
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  auto rs = results.Get();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_FALSE(rs[0].ok);
  EXPECT_EQ(rs[0].attempts, 1);
  EXPECT_THAT(rs[0].error, HasSubstr("shut down"));
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(WebhookNotifier, DestructorDuringBackoffReturnsQuickly) {
  LoopbackServer server({503});
  Results results;
  WebhookOptions o = TestOptions(server.Url(), results);
  o.backoff_base = absl::Seconds(30);
  o.backoff_max = absl::Seconds(30);
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  ASSERT_TRUE(notifier->Enqueue("{}", "apr-8").ok());
  ASSERT_TRUE(server.WaitForRequests(1));
  absl::SleepFor(absl::Milliseconds(100));
  absl::Time start = absl::Now();
  notifier.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  ASSERT_EQ(results.Get().size(), 1u);
  EXPECT_EQ(results.Get()[0].error, "HTTP 503 (shut down before retry)");
}

TEST(WebhookNotifier, ShutdownWithGraceDrainsTheQueueThenRefusesMore) {
  LoopbackServer server({200});
  Results results;
  auto notifier = MustCreate(TestOptions(server.Url(), results));
  ASSERT_NE(notifier, nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(notifier->Enqueue("{}", absl::StrCat("k", i)).ok());
  notifier->Shutdown(absl::Seconds(10));
  auto rs = results.Get();  // every callback ran before Shutdown returned
  ASSERT_EQ(rs.size(), 5u);
  for (const auto& r : rs) EXPECT_TRUE(r.ok) << r.idempotency_key << ": " << r.error;
  EXPECT_EQ(notifier->Enqueue("{}", "late").code(), absl::StatusCode::kFailedPrecondition);
  notifier->Shutdown(absl::Seconds(1));  // again: nothing to do
}

TEST(WebhookNotifier, CallbackMayEnqueue) {
  LoopbackServer server({200});
  Results results;
  WebhookOptions o = TestOptions(server.Url(), results);
  WebhookNotifier* self = nullptr;
  auto collect = results.Callback();
  o.on_result = [&self, collect](const WebhookResult& r) {
    collect(r);
    if (r.idempotency_key == "first") {
      EXPECT_TRUE(self->Enqueue("{}", "second").ok());
    }
  };
  auto notifier = MustCreate(std::move(o));
  ASSERT_NE(notifier, nullptr);
  self = notifier.get();
  ASSERT_TRUE(notifier->Enqueue("{}", "first").ok());
  ASSERT_TRUE(results.WaitFor(2));
  EXPECT_EQ(results.Get()[1].idempotency_key, "second");
}

TEST(WebhookNotifier, RejectsBadUrlsAndOptions) {
  Results results;
  for (const char* url :
       {"", "ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1/", "ldap://127.0.0.1/",
        "not a url", "http://", "127.0.0.1:8080/hook", "javascript:alert(1)"}) {
    SCOPED_TRACE(url);
    auto n = WebhookNotifier::Create(TestOptions(url, results));
    EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument) << n.status();
  }
  const std::string ok_url = "http://127.0.0.1:9/hook";
  EXPECT_TRUE(WebhookNotifier::Create(TestOptions("HTTPS://127.0.0.1:9/hook", results)).ok());

  auto with = [&](auto edit) {
    WebhookOptions o = TestOptions(ok_url, results);
    edit(o);
    return WebhookNotifier::Create(std::move(o)).status();
  };
  absl::Status st = with(
      [](WebhookOptions& o) { o.extra_header = "Authorization: Bearer SECRET\r\nX-Injected: 1"; });
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), Not(HasSubstr("SECRET")));
  EXPECT_EQ(with([](WebhookOptions& o) { o.extra_header = "no colon"; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](WebhookOptions& o) { o.extra_header = "Bad Name: x"; }).code(),
            absl::StatusCode::kInvalidArgument);
  st = with([](WebhookOptions& o) { o.signing_key = "short-SECRET"; });
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), Not(HasSubstr("SECRET")));
  EXPECT_EQ(with([](WebhookOptions& o) { o.max_attempts = 0; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](WebhookOptions& o) { o.attempt_timeout = absl::ZeroDuration(); }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](WebhookOptions& o) { o.max_queue = 0; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](WebhookOptions& o) { o.backoff_max = absl::ZeroDuration(); }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](WebhookOptions& o) { o.ca_file = "/nonexistent/ca.pem"; }).code(),
            absl::StatusCode::kNotFound);
}

TEST(WebhookNotifier, EnqueueRejectsBadKeys) {
  LoopbackServer server({200});
  Results results;
  auto notifier = MustCreate(TestOptions(server.Url(), results));
  ASSERT_NE(notifier, nullptr);
  for (const std::string& key :
       {std::string(""), std::string("a b"), std::string("a\r\nX-Injected: 1"),
        std::string("caf\xc3\xa9"), std::string(WebhookNotifier::kMaxKeyLength + 1, 'k')}) {
    EXPECT_EQ(notifier->Enqueue("{}", key).code(), absl::StatusCode::kInvalidArgument) << key;
  }
  EXPECT_TRUE(notifier->Enqueue("{}", std::string(WebhookNotifier::kMaxKeyLength, 'k')).ok());
  ASSERT_TRUE(results.WaitFor(1));
  EXPECT_TRUE(results.Get()[0].ok);
}

}  // namespace
}  // namespace interlock::approval
