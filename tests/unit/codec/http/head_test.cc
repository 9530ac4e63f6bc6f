// head.h: PeekRequest / PeekResponse — request-line, status-line and field-line strictness,
// limits, and incremental feeding (STYLE.md convention 10 cases).
#include "userspace/codec/http/head.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/unit/codec/http/http_check.h"

namespace interlock::codec::http {
namespace {

using testing::CheckSplitsAgree;

template <typename Message>
absl::Status ErrorOf(const absl::StatusOr<std::optional<Message>>& r) {
  return r.ok() ? absl::OkStatus() : r.status();
}

// The head parsed from a complete, valid input (views into the caller's bytes).
template <typename Message>
Message Parsed(const absl::StatusOr<std::optional<Message>>& r) {
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r.ok() && r->has_value());
  return r.ok() && r->has_value() ? **r : Message{};
}

absl::Status RequestError(absl::string_view bytes) { return ErrorOf(PeekRequest(bytes)); }
Request MustParse(absl::string_view bytes) { return Parsed(PeekRequest(bytes)); }
absl::Status ResponseError(absl::string_view bytes) { return ErrorOf(PeekResponse(bytes, "GET")); }
Response MustParseResponse(absl::string_view bytes) { return Parsed(PeekResponse(bytes, "GET")); }

// The transcripts of `stream` split by `seeds` different random reads (and byte by byte) all
// equal the one-shot transcript, which is returned.
std::vector<std::string> TranscriptOfEverySplit(absl::string_view stream, bool requests,
                                                absl::string_view method, uint32_t seeds) {
  std::vector<std::string> t;
  for (uint32_t seed = 0; seed < seeds; ++seed)
    t = CheckSplitsAgree(stream, requests, method, seed);
  return t;
}

// Expects `bytes` to be refused with exactly `message`.
void ExpectRefused(absl::string_view bytes, absl::string_view message) {
  absl::Status st = RequestError(bytes);
  EXPECT_EQ(st.message(), message) << absl::CHexEscape(bytes);
  EXPECT_FALSE(st.ok());
}

TEST(HttpHead, ParsesSimpleGet) {
  const std::string in = "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept:  */* \t\r\n\r\nrest";
  Request r = MustParse(in);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/a?b=1");
  EXPECT_EQ(r.version, Version::kHttp11);
  ASSERT_EQ(r.fields.size(), 2u);
  EXPECT_EQ(r.fields[0], (HeaderField{"Host", "example.com"}));
  EXPECT_EQ(r.fields[1], (HeaderField{"Accept", "*/*"}));
  EXPECT_EQ(r.head_bytes, in.size() - 4);
  EXPECT_EQ(r.framing.host, "example.com");
  EXPECT_EQ(r.framing.body.kind, BodyKind::kNone);
  EXPECT_TRUE(r.framing.persistent);
  EXPECT_EQ(FindField(r.fields, "accept"), "*/*");
  EXPECT_EQ(FindField(r.fields, "cookie"), std::nullopt);
}

TEST(HttpHead, ParsesHttp10WithoutHost) {
  Request r = MustParse("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.version, Version::kHttp10);
  EXPECT_EQ(r.framing.host, "");
  EXPECT_FALSE(r.framing.persistent);
}

TEST(HttpHead, EmptyValueIsAllowed) {
  Request r = MustParse("GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Ws: \t \r\n\r\n");
  EXPECT_EQ(r.fields[1], (HeaderField{"X-Empty", ""}));
  EXPECT_EQ(r.fields[2], (HeaderField{"X-Ws", ""}));
}

TEST(HttpHead, ObsTextInValueIsAllowed) {
  Request r = MustParse("GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\r\n\r\n");
  EXPECT_EQ(r.fields[1].value, "caf\xc3\xa9");
}

TEST(HttpHead, NeedsMoreUntilTheEmptyLine) {
  const std::string in = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  for (size_t n = 0; n < in.size(); ++n) {
    absl::StatusOr<std::optional<Request>> r = PeekRequest(in.substr(0, n));
    ASSERT_TRUE(r.ok()) << n << ": " << r.status();
    EXPECT_FALSE(r->has_value()) << n;
  }
  EXPECT_EQ(MustParse(in).head_bytes, in.size());
}

TEST(HttpHead, RefusesBareLf) {
  ExpectRefused("GET / HTTP/1.1\nHost: x\n\n", "http: request: bare LF in line");
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\n\r\n", "http: request: bare LF in line");
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\r\n\n", "http: request: bare LF in line");
}

TEST(HttpHead, RefusesBareCr) {
  ExpectRefused("GET / HTTP/1.1\rHost: x\r\n\r\n", "http: request: bare CR in line");
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", "http: request: bare CR in line");
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", "http: request: bare CR in line");
}

TEST(HttpHead, RefusesLeadingEmptyLine) {
  ExpectRefused("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
                "http: request: empty line before start line");
}

TEST(HttpHead, RefusesObsFold) {
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n",
                "http: request: line starts with whitespace (obs-fold)");
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
                "http: request: line starts with whitespace (obs-fold)");
  ExpectRefused("GET / HTTP/1.1\r\n\tHost: x\r\n\r\n",
                "http: request: line starts with whitespace (obs-fold)");
}

TEST(HttpHead, RefusesWhitespaceBeforeColon) {
  ExpectRefused("GET / HTTP/1.1\r\nHost : x\r\n\r\n",
                "http: request: whitespace between field name and colon");
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
                "http: request: whitespace between field name and colon");
}

TEST(HttpHead, RefusesBadFieldNames) {
  ExpectRefused("GET / HTTP/1.1\r\n: x\r\n\r\n", "http: request: empty field name");
  ExpectRefused("GET / HTTP/1.1\r\nHo(st: x\r\n\r\n",
                "http: request: invalid character in field name");
  ExpectRefused("GET / HTTP/1.1\r\nHost x\r\n\r\n", "http: request: field without colon");
  ExpectRefused(absl::string_view("GET / HTTP/1.1\r\nHo\0st: x\r\n\r\n", 28),
                "http: request: invalid character in field name");
}

TEST(HttpHead, RefusesControlCharactersInValues) {
  ExpectRefused(absl::string_view("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29),
                "http: request: control character 0x0 in value of Host");
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01z\r\n\r\n",
                "http: request: control character 0x1 in value of X-A");
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fz\r\n\r\n",
                "http: request: control character 0x7f in value of X-A");
}

TEST(HttpHead, AllowsHtabInValues) {
  Request r = MustParse("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n");
  EXPECT_EQ(r.fields[1].value, "a\tb");
}

TEST(HttpHead, RefusesBadRequestLines) {
  ExpectRefused("GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
                "http: request: more than one SP in request-line");
  ExpectRefused("GET /  HTTP/1.1\r\nHost: x\r\n\r\n",
                "http: request: more than one SP in request-line");
  ExpectRefused("GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
                "http: request: more than one SP in request-line");
  ExpectRefused(" GET / HTTP/1.1\r\nHost: x\r\n\r\n", "http: request: invalid method");
  ExpectRefused("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "http: request: invalid method");
  ExpectRefused("GET /\r\n\r\n", "http: request: request-line without version");
  ExpectRefused("GET\r\n\r\n", "http: request: request-line without SP");
  ExpectRefused("GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", "http: request: invalid method");
}

TEST(HttpHead, RefusesBadTargetBytes) {
  ExpectRefused("GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n",
                "http: request: invalid byte 0x5c in request-target");
  ExpectRefused("GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n",
                "http: request: invalid byte 0x23 in request-target");
  ExpectRefused("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
                "http: request: invalid byte 0xc3 in request-target");
  ExpectRefused("GET /a\"b HTTP/1.1\r\nHost: x\r\n\r\n",
                "http: request: invalid byte 0x22 in request-target");
  ExpectRefused("GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n",
                "http: request: invalid byte 0x9 in request-target");
}

TEST(HttpHead, RefusesUnknownVersions) {
  absl::Status st = RequestError("GET / HTTP/2.0\r\nHost: x\r\n\r\n");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(st.message(), "http: request: unsupported version HTTP/2.0");
  ExpectRefused("GET / HTTP/1.2\r\nHost: x\r\n\r\n", "http: request: unsupported version HTTP/1.2");
  ExpectRefused("GET / http/1.1\r\nHost: x\r\n\r\n", "http: request: invalid version");
  ExpectRefused("GET / HTTP/1.10\r\nHost: x\r\n\r\n", "http: request: invalid version");
  ExpectRefused("GET / HTTP/1\r\nHost: x\r\n\r\n", "http: request: invalid version");
}

TEST(HttpHead, RefusesMissingOrDuplicateHost) {
  ExpectRefused("GET / HTTP/1.1\r\n\r\n", "http: request: missing Host");
  ExpectRefused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "http: request: duplicate Host");
  ExpectRefused("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", "http: request: duplicate host");
  ExpectRefused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
                "http: request: Host: invalid character in host");
  ExpectRefused("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
                "http: request: Host: userinfo in authority");
}

TEST(HttpHead, HostMayBeEmptyOrHavePort) {
  EXPECT_EQ(MustParse("GET / HTTP/1.1\r\nHost:\r\n\r\n").framing.host, "");
  EXPECT_EQ(MustParse("GET / HTTP/1.1\r\nHost: a.b:8080\r\n\r\n").framing.host, "a.b:8080");
  EXPECT_EQ(MustParse("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").framing.host, "[::1]:80");
}

TEST(HttpHead, RefusesOversizedHead) {
  std::string in = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(kMaxHeadBytes, 'a');
  absl::Status st = RequestError(in);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(st.message(), "http: request: head exceeds 65536 bytes");
  // Just under the limit is fine.
  const std::string prefix = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ";
  std::string fits = prefix + std::string(kMaxHeadBytes - prefix.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), kMaxHeadBytes);
  EXPECT_EQ(MustParse(fits).head_bytes, kMaxHeadBytes);
  fits.insert(prefix.size(), "a");
  EXPECT_EQ(RequestError(fits).code(), absl::StatusCode::kResourceExhausted);
}

TEST(HttpHead, SmallerLimitIsHonoured) {
  absl::StatusOr<std::optional<Request>> r = PeekRequest("GET / HTTP/1.1\r\nHost: x\r\n", 20);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(HttpHead, RefusesTooManyFields) {
  std::string in = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (size_t i = 1; i < kMaxHeaderFields; ++i) in += "X-A: b\r\n";
  EXPECT_EQ(MustParse(in + "\r\n").fields.size(), kMaxHeaderFields);
  in += "X-A: b\r\n";
  absl::Status st = RequestError(in);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(st.message(), "http: request: more than 100 fields");
}

TEST(HttpHead, ErrorsAreReportedBeforeTheHeadIsComplete) {
  ExpectRefused("GET / HTTP/1.1\nHost", "http: request: bare LF in line");
  ExpectRefused("GET / HTTP/9.9\r\n", "http: request: unsupported version HTTP/9.9");
}

TEST(HttpHead, GarbageIsRefusedOrIncomplete) {
  for (absl::string_view in : {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                               "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "\r\n\r\n", "\n", "\0\0\0"}) {
    absl::StatusOr<std::optional<Request>> r = PeekRequest(in);
    EXPECT_TRUE(!r.ok() || !r->has_value()) << absl::CHexEscape(in);
  }
  EXPECT_FALSE(PeekRequest("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").ok());
}

TEST(HttpHead, SplitsAgreeOnPipelinedRequests) {
  const std::string stream =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;a=b\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
      "GET /d HTTP/1.0\r\n\r\n";
  std::vector<std::string> t = TranscriptOfEverySplit(stream, true, "", 50);
  ASSERT_EQ(t.size(), 12u);
  EXPECT_EQ(t[3], "data hello");
  EXPECT_EQ(t[6], "data abc");
  EXPECT_EQ(t[7], "trailer X-T: 1");
  EXPECT_EQ(t[11], "pending 0");
}

TEST(HttpHead, SplitsAgreeOnErrors) {
  for (absl::string_view stream : {"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\nHost: x\n\n",
                                   "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                                   "chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\n",
                                   "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"}) {
    std::vector<std::string> t = TranscriptOfEverySplit(stream, true, "", 20);
    EXPECT_TRUE(absl::StartsWith(t.back(), "error ")) << t.back();
  }
}

// --- responses ---

TEST(HttpHead, ParsesResponse) {
  Response r = MustParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.reason, "OK");
  EXPECT_EQ(r.framing.body, (BodyFraming{BodyKind::kLength, 2}));
  EXPECT_EQ(MustParseResponse("HTTP/1.0 404 \r\n\r\n").reason, "");
  EXPECT_EQ(MustParseResponse("HTTP/1.1 500 Internal\tServer Error\r\n\r\n").reason,
            "Internal\tServer Error");
}

TEST(HttpHead, RefusesBadStatusLines) {
  EXPECT_EQ(ResponseError("HTTP/1.1 200\r\n\r\n").message(),
            "http: response: status-line is not HTTP-version SP 3DIGIT SP reason");
  EXPECT_EQ(ResponseError("HTTP/1.1 2000 OK\r\n\r\n").message(),
            "http: response: status-line is not HTTP-version SP 3DIGIT SP reason");
  EXPECT_EQ(ResponseError("HTTP/1.1  200 OK\r\n\r\n").message(),
            "http: response: status-line is not HTTP-version SP 3DIGIT SP reason");
  EXPECT_EQ(ResponseError("HTTP/1.1 099 OK\r\n\r\n").message(),
            "http: response: status 99 outside 100..599");
  EXPECT_EQ(ResponseError("HTTP/1.1 600 OK\r\n\r\n").message(),
            "http: response: status 600 outside 100..599");
  EXPECT_EQ(ResponseError("HTTP/1.1 200 O\x01K\r\n\r\n").message(),
            "http: response: control character in reason");
  EXPECT_EQ(ResponseError("HTTP/2 200 OK\r\n\r\n").message(), "http: response: invalid version");
  EXPECT_EQ(ResponseError("HTTP/1.1 200 OK\nA: b\r\n\r\n").message(),
            "http: response: bare LF in line");
  EXPECT_EQ(ResponseError("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n").message(),
            "http: response: line starts with whitespace (obs-fold)");
}

TEST(HttpHead, ResponseSplitsAgree) {
  const std::string stream =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n"
      "HTTP/1.1 204 No Content\r\n\r\n"
      "HTTP/1.1 200 OK\r\n\r\nuntil close";
  std::vector<std::string> t = TranscriptOfEverySplit(stream, false, "GET", 30);
  ASSERT_EQ(t.size(), 10u);
  EXPECT_EQ(t[8], "data until close");
}

}  // namespace
}  // namespace interlock::codec::http
