// CurlJwksFetcher against a tiny HTTP server on 127.0.0.1 (port 0) run by the test:
// discovery + JWKS end to end through JwtVerifier, and the fetcher's refusals (scheme,
// non-loopback http, redirects, status, size, timeout). Loopback only, never any other
// address: the non-loopback cases are refused before any connection is attempted.
#include "userspace/auth/jwt/jwks_fetcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/test_issuer.h"
#include "userspace/auth/jwt/oidc_verifier.h"
#include "userspace/common/unique_fd.h"

namespace interlock::auth::jwt {
namespace {

using ::interlock::testing::FakeClock;
using ::interlock::testing::JsonObject;
using ::interlock::testing::TestIssuer;
using ::interlock::testing::TestKeyKind;
using ::testing::HasSubstr;

// One-connection-at-a-time HTTP/1.1 server on 127.0.0.1:<ephemeral>: reads a request head,
// answers from `routes` by path (404 otherwise) and closes the connection.
class LoopbackHttpServer {
 public:
  struct Response {
    int status = 200;
    std::string body;
    std::string extra_headers;  // "Name: value\r\n" lines
  };

  LoopbackHttpServer() {
    listener_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (!listener_ ||
        ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_.get(), 8) != 0 ||
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "loopback server: " << strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackHttpServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  std::string Url(absl::string_view path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  void Route(const std::string& path, Response r) {
    std::lock_guard<std::mutex> lock(mu_);
    routes_[path] = std::move(r);
  }
  std::vector<std::string> Requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      std::string head;
      char buf[1024];
      while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
        pollfd c{conn.get(), POLLIN, 0};
        if (::poll(&c, 1, 2000) <= 0) break;
        ssize_t n = ::read(conn.get(), buf, sizeof buf);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      // "GET /path HTTP/1.1"
      std::string path;
      size_t sp1 = head.find(' ');
      size_t sp2 = head.find(' ', sp1 + 1);
      if (sp1 != std::string::npos && sp2 != std::string::npos)
        path = head.substr(sp1 + 1, sp2 - sp1 - 1);
      Response r{.status = 404, .body = "not found"};
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(head.substr(0, head.find("\r\n")));
        auto it = routes_.find(path);
        if (it != routes_.end()) r = it->second;
      }
      std::string out =
          absl::StrCat("HTTP/1.1 ", r.status, " X\r\nContent-Type: application/json\r\n",
                       "Content-Length: ", r.body.size(), "\r\n", r.extra_headers,
                       "Connection: close\r\n\r\n", r.body);
      size_t off = 0;
      while (off < out.size()) {
        ssize_t n = ::send(conn.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
    }
  }

  UniqueFd listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::map<std::string, Response> routes_;
  std::vector<std::string> requests_;
};

std::unique_ptr<CurlJwksFetcher> LoopbackFetcher(absl::Duration timeout = absl::Seconds(2),
                                                 size_t max_body = kMaxJwksBytes) {
  return CurlJwksFetcher::Create(
             {.timeout = timeout, .max_body_bytes = max_body, .allow_http_for_loopback = true})
      .value();
}

TEST(CurlJwksFetcher, DiscoveryAndJwksEndToEnd) {
  LoopbackHttpServer server;
  std::string issuer = server.Url("/realms/agents");
  auto idp = TestIssuer::Create(issuer).value();
  ASSERT_TRUE(idp->AddKey("ec-1", TestKeyKind::kP256).ok());
  server.Route("/realms/agents/.well-known/openid-configuration",
               {.body = JsonObject()
                            .Str("issuer", issuer)
                            .Str("jwks_uri", server.Url("/realms/agents/certs"))
                            .Json()});
  server.Route("/realms/agents/certs", {.body = idp->Jwks()});

  FakeClock clock;
  absl::StatusOr<std::unique_ptr<JwtVerifier>> v =
      JwtVerifier::Create({IssuerConfig{.issuer = issuer,
                                        .audiences = {"interlock"},
                                        .algorithms = {"ES256"},
                                        .discovery = true}},
                          clock, std::shared_ptr<JwksFetcher>(LoopbackFetcher()));
  ASSERT_TRUE(v.ok()) << v.status();
  std::string token =
      idp->Mint("ec-1", "ES256", idp->StandardClaims(clock.Now()).Strs("groups", {"ops"})).value();
  absl::StatusOr<TokenClaims> claims = (*v)->Verify(token, {.workload = "w"});
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "agent-1");
  EXPECT_THAT(claims->groups, ::testing::ElementsAre("ops"));
  EXPECT_THAT(server.Requests(),
              ::testing::ElementsAre("GET /realms/agents/.well-known/openid-configuration HTTP/1.1",
                                     "GET /realms/agents/certs HTTP/1.1"));
}

TEST(CurlJwksFetcher, FetchesABody) {
  LoopbackHttpServer server;
  server.Route("/jwks", {.body = R"({"keys":[]})"});
  absl::StatusOr<std::string> body = LoopbackFetcher()->Fetch(server.Url("/jwks"));
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, R"({"keys":[]})");
}

TEST(CurlJwksFetcher, RefusesWhatIsNotHttpsByDefault) {
  LoopbackHttpServer server;
  server.Route("/jwks", {.body = "{}"});
  auto strict = CurlJwksFetcher::Create({}).value();
  absl::StatusOr<std::string> r = strict->Fetch(server.Url("/jwks"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("is not https"));
  EXPECT_TRUE(server.Requests().empty());

  auto loopback = LoopbackFetcher();
  // http to anything but a literal loopback address is refused before connecting.
  for (const char* url :
       {"http://10.0.0.1/jwks", "http://192.0.2.1:8080/jwks", "http://localhost/jwks",
        "http://[::ffff:127.0.0.1]/jwks", "http://idp.test/jwks", "ftp://127.0.0.1/jwks",
        "file:///etc/passwd", "gopher://127.0.0.1/", "not a url", ""}) {
    absl::StatusOr<std::string> refused = loopback->Fetch(url);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument)
        << url << ": " << refused.status();
  }
}

TEST(CurlJwksFetcher, DoesNotFollowRedirects) {
  LoopbackHttpServer server;
  server.Route("/old", {.status = 302, .body = "", .extra_headers = "Location: /jwks\r\n"});
  server.Route("/jwks", {.body = "{}"});
  absl::StatusOr<std::string> r = LoopbackFetcher()->Fetch(server.Url("/old"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("http status 302"));
  EXPECT_EQ(server.Requests().size(), 1u);
}

TEST(CurlJwksFetcher, NonOkStatus) {
  LoopbackHttpServer server;
  absl::StatusOr<std::string> r = LoopbackFetcher()->Fetch(server.Url("/missing"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("http status 404"));
  server.Route("/err", {.status = 500, .body = "{}"});
  EXPECT_EQ(LoopbackFetcher()->Fetch(server.Url("/err")).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(CurlJwksFetcher, BodyCap) {
  LoopbackHttpServer server;
  server.Route("/big", {.body = std::string(100000, 'a')});
  absl::StatusOr<std::string> r =
      LoopbackFetcher(absl::Seconds(2), 4096)->Fetch(server.Url("/big"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  absl::StatusOr<std::string> ok =
      LoopbackFetcher(absl::Seconds(2), 100000)->Fetch(server.Url("/big"));
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(CurlJwksFetcher, TimesOut) {
  // A listener that never accepts: the connection completes (backlog), no answer comes.
  UniqueFd silent(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(silent.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(silent.get(), 4), 0);
  ASSERT_EQ(::getsockname(silent.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string url = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port), "/jwks");
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> r = LoopbackFetcher(absl::Milliseconds(300))->Fetch(url);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(CurlJwksFetcher, ConnectionRefused) {
  // Bind a port, close it: nothing listens there.
  uint16_t port;
  {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
  }
  absl::StatusOr<std::string> r =
      LoopbackFetcher()->Fetch(absl::StrCat("https://127.0.0.1:", port, "/jwks"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST(CurlJwksFetcher, CreateValidatesOptions) {
  EXPECT_FALSE(CurlJwksFetcher::Create({.timeout = absl::ZeroDuration()}).ok());
  EXPECT_FALSE(CurlJwksFetcher::Create({.max_body_bytes = 0}).ok());
  EXPECT_FALSE(CurlJwksFetcher::Create({.ca_file = "/nonexistent/ca.pem"}).ok());
  EXPECT_TRUE(CurlJwksFetcher::Create({}).ok());
}

}  // namespace
}  // namespace interlock::auth::jwt
