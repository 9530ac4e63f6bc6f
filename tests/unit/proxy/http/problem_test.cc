// interlockd's own HTTP answers: whole, parseable responses with a valid problem+json body.
#include "userspace/proxy/http/problem.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/codec/http/head.h"

namespace interlock::proxy::http {
namespace {

using ::testing::HasSubstr;

TEST(ProblemResponse, IsAWholeResponseNamingTheRule) {
  std::string r = ProblemResponse({.status = 403, .title = "Denied by policy", .detail = "no \"admin\"\n",
                                   .rule = "deny-admin", .reason = "policy"});
  auto head = codec::http::PeekResponse(r, "GET");
  ASSERT_TRUE(head.ok() && head->has_value()) << r;
  EXPECT_EQ((*head)->status, 403);
  EXPECT_EQ(*codec::http::FindField((*head)->fields, "content-type"), "application/problem+json");
  const std::string body = r.substr((*head)->head_bytes);
  EXPECT_EQ((*head)->framing.body.length, body.size());
  EXPECT_THAT(body, HasSubstr(R"("detail":"no \"admin\"\n")"));
  EXPECT_THAT(body, HasSubstr(R"("interlock_rule":"deny-admin")"));
  EXPECT_TRUE((*head)->framing.persistent);
}

TEST(ProblemResponse, CloseAndHead) {
  std::string r = ProblemResponse({.status = 400, .title = "t", .detail = "d", .close = true, .head = true});
  auto head = codec::http::PeekResponse(r, "HEAD");
  ASSERT_TRUE(head.ok() && head->has_value());
  EXPECT_FALSE((*head)->framing.persistent);
  EXPECT_EQ(r.size(), (*head)->head_bytes);  // HEAD: announced, not sent
}

TEST(ProblemResponse, Unauthorized401ChallengesForABearerToken) {
  std::string r = ProblemResponse(
      {.status = 401, .title = "Unauthorized", .detail = "d", .reason = "token_required", .bearer_challenge = true});
  auto head = codec::http::PeekResponse(r, "GET");
  ASSERT_TRUE(head.ok() && head->has_value()) << r;
  EXPECT_EQ((*head)->status, 401);
  EXPECT_EQ((*head)->reason, "Unauthorized");
  EXPECT_EQ(*codec::http::FindField((*head)->fields, "www-authenticate"), "Bearer realm=\"interlock\"");
  EXPECT_THAT(r, HasSubstr(R"("interlock_reason":"token_required")"));
  EXPECT_FALSE(codec::http::FindField(
                   (*codec::http::PeekResponse(ProblemResponse({.status = 403}), "GET"))->fields, "www-authenticate")
                   .has_value());
}

TEST(JsonQuote, EscapesWhatJsonRequires) {
  EXPECT_EQ(JsonQuote("a\"b\\c\x01\x7f"), R"("a\"b\\c\u0001\u007f")");
}

}  // namespace
}  // namespace interlock::proxy::http
