// JudgeRequest: what the policy sees of a parsed request, and what is refused before it
// (tunnels, ambiguous targets, a request for another host than its TLS connection).
#include "userspace/proxy/http/request_facts.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/codec/http/head.h"

namespace interlock::proxy::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

struct Judged {
  std::optional<JudgedRequest> judged;
  RequestRefusal refusal;
};

Judged Judge(const std::string& head, const std::string& sni = "", std::vector<std::string> elided = {}) {
  auto req = codec::http::PeekRequest(head);
  EXPECT_TRUE(req.ok() && req->has_value()) << head;
  Judged j;
  j.judged = JudgeRequest(**req, sni, elided, &j.refusal);
  return j;
}

TEST(JudgeRequest, FactsAreTheNormalisedRequest) {
  Judged j = Judge("DELETE /v1/%63ustomers//7/./?force=yes&token=abc HTTP/1.1\r\nHost: API.Internal:8443\r\n"
                   "X-Trace: 1\r\n\r\n");
  ASSERT_TRUE(j.judged.has_value()) << j.refusal.detail;
  const policy::HttpRequestFacts& f = j.judged->facts;
  EXPECT_EQ(f.method, "DELETE");
  EXPECT_EQ(f.host, "api.internal");
  EXPECT_EQ(f.path, "/v1/customers/7/");
  EXPECT_THAT(f.query, ElementsAre(Pair("force", "yes"), Pair("token", "abc")));
  EXPECT_THAT(f.headers, ElementsAre(Pair("host", "API.Internal:8443"), Pair("x-trace", "1")));
  // The audit trail never shows the token's value.
  EXPECT_EQ(j.judged->audit_target, "/v1/%63ustomers//7/./?force=yes&token=<elided>");
}

TEST(JudgeRequest, ResourceElisionsAddToTheDefaults) {
  Judged j = Judge("GET /x?session=s1&page=2 HTTP/1.1\r\nHost: a\r\n\r\n", "", {"session"});
  ASSERT_TRUE(j.judged.has_value());
  EXPECT_EQ(j.judged->audit_target, "/x?session=<elided>&page=2");
}

TEST(JudgeRequest, AmbiguousTargetsAreRefusedWith400) {
  for (const char* target : {"/admin%2Fusers", "/a;b=1", "/%00", "/../etc", "/a/%252F", "/x?a=%zz"}) {
    Judged j = Judge(absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: a\r\n\r\n"));
    EXPECT_FALSE(j.judged.has_value()) << target;
    EXPECT_EQ(j.refusal.status, 400) << target;
    EXPECT_EQ(j.refusal.reason, "bad_target") << target;
  }
}

TEST(JudgeRequest, HostMustAgreeWithSniAndTheAbsoluteTarget) {
  Judged sni = Judge("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n", "api.test");
  EXPECT_FALSE(sni.judged.has_value());
  EXPECT_EQ(sni.refusal.status, 421);
  EXPECT_THAT(sni.refusal.detail, HasSubstr("api.test"));
  // The port and a trailing dot are not a different host; case is not either.
  EXPECT_TRUE(Judge("GET / HTTP/1.1\r\nHost: API.test.:443\r\n\r\n", "api.test").judged.has_value());
  Judged abs = Judge("GET http://evil.test/admin HTTP/1.1\r\nHost: api.test\r\n\r\n");
  EXPECT_FALSE(abs.judged.has_value());
  EXPECT_EQ(abs.refusal.reason, "host_mismatch");
  Judged same = Judge("GET http://api.test:80/v1?a=1 HTTP/1.1\r\nHost: api.test\r\n\r\n");
  ASSERT_TRUE(same.judged.has_value());
  EXPECT_EQ(same.judged->facts.path, "/v1");
}

TEST(JudgeRequest, TunnelsAreRefused) {
  Judged ws = Judge("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_FALSE(ws.judged.has_value());
  EXPECT_EQ(ws.refusal.status, 501);
  EXPECT_EQ(ws.refusal.reason, "tunnel_refused");
  Judged connect = Judge("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n");
  EXPECT_FALSE(connect.judged.has_value());
  EXPECT_EQ(connect.refusal.reason, "tunnel_refused");
}

TEST(HostWithoutPort, Forms) {
  EXPECT_EQ(HostWithoutPort("Api.Test:8443"), "api.test");
  EXPECT_EQ(HostWithoutPort("[::1]:80"), "::1");
  EXPECT_EQ(HostWithoutPort("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(HostWithoutPort("a.test."), "a.test");
}

}  // namespace
}  // namespace interlock::proxy::http
