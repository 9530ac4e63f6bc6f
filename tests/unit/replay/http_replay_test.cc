// The HTTP replay decoder: exchanges reassembled from records however they were split,
// bodies followed through their framing, credential values never printed, and a stream
// that stops being HTTP shown raw from there on.
#include "userspace/replay/http_replay.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/replay/timeline.h"

namespace interlock::replay {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<v1::Record> Http(const std::vector<std::pair<v1::Direction, std::string>>& data) {
  std::vector<v1::Record> out;
  v1::Record open;
  open.set_time_unix_nanos(1'000'000'000);
  open.mutable_open()->set_session_id("s1");
  open.mutable_open()->set_protocol("http");
  out.push_back(open);
  int64_t ms = 1;
  for (const auto& [dir, bytes] : data) {
    v1::Record r;
    r.set_time_unix_nanos(1'000'000'000 + ms++ * 1'000'000);
    r.mutable_data()->set_direction(dir);
    r.mutable_data()->set_payload(bytes);
    out.push_back(std::move(r));
  }
  return out;
}

constexpr auto kUp = v1::DIRECTION_TO_UPSTREAM;
constexpr auto kDown = v1::DIRECTION_TO_AGENT;

TEST(HttpReplay, ExchangesWithBodiesAndCredentialsHidden) {
  const std::string req =
      "POST /v1/notes HTTP/1.1\r\nHost: crm.demo\r\nAuthorization: Bearer agent-token\r\nContent-Length: 5\r\n\r\n"
      "hello";
  const std::string resp =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\n{\"ok\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n";
  // Split mid-head and mid-body, each direction.
  std::string out = FormatSessionTimeline(Http({{kUp, req.substr(0, 20)}, {kUp, req.substr(20, 70)},
                                                {kUp, req.substr(90)}, {kDown, resp.substr(0, 50)},
                                                {kDown, resp.substr(50)}}),
                                          {});
  EXPECT_THAT(out, HasSubstr("agent   POST /v1/notes HTTP/1.1"));
  EXPECT_THAT(out, HasSubstr("authorization: (not shown)"));
  EXPECT_THAT(out, Not(HasSubstr("agent-token")));
  EXPECT_THAT(out, HasSubstr("body (5 bytes): hello"));
  EXPECT_THAT(out, HasSubstr("server  200 OK  application/json"));
  EXPECT_THAT(out, HasSubstr("body (8 bytes): {\\\"ok\\\":1}"));
}

TEST(HttpReplay, AHeadResponseHasNoBodyAndPipelinesPairUp) {
  std::string out = FormatSessionTimeline(
      Http({{kUp, "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"},
            {kDown, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"}}),
      {});
  EXPECT_THAT(out, HasSubstr("server  200 OK"));
  EXPECT_THAT(out, HasSubstr("server  404 Not Found"));  // not swallowed as the HEAD's body
  EXPECT_THAT(out, HasSubstr("body (2 bytes): no"));
}

TEST(HttpReplay, WhatStopsBeingHttpIsShownRawAndEscaped) {
  std::string out = FormatSessionTimeline(Http({{kUp, "GET / HTTP/1.1\nHost: x\n\n\x1b[31m"}}), {});
  EXPECT_THAT(out, HasSubstr("not HTTP from here on"));
  EXPECT_THAT(out, Not(HasSubstr("\x1b")));
}

}  // namespace
}  // namespace interlock::replay
