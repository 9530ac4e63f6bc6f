// framing.h: body framing and connection semantics, including the classic request smuggling
// vectors (CL.TE, TE.CL, TE obfuscation), each refused rather than resolved.
#include "userspace/codec/http/framing.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "userspace/codec/http/head.h"

namespace interlock::codec::http {
namespace {

absl::StatusOr<Request> Parse(absl::string_view fields, absl::string_view version = "HTTP/1.1") {
  const std::string in = absl::StrCat("POST / ", version, "\r\n", fields, "\r\n");
  absl::StatusOr<std::optional<Request>> r = PeekRequest(in);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return absl::InternalError("incomplete");
  // The views point into `in`, which dies here; tests only look at framing (no views but
  // host, which they do not read).
  Request out = std::move(**r);
  out.fields.clear();
  out.framing.host = {};
  out.method = out.target = {};
  return out;
}

BodyFraming Body(absl::string_view fields, absl::string_view version = "HTTP/1.1") {
  absl::StatusOr<Request> r = Parse(fields, version);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->framing.body : BodyFraming{};
}

void ExpectRefused(absl::string_view fields, absl::string_view message,
                   absl::string_view version = "HTTP/1.1") {
  absl::StatusOr<Request> r = Parse(fields, version);
  EXPECT_FALSE(r.ok()) << absl::CHexEscape(fields);
  EXPECT_EQ(r.status().message(), message) << absl::CHexEscape(fields);
}

TEST(HttpFraming, NoBodyWithoutFramingFields) {
  EXPECT_EQ(Body("Host: x\r\n"), (BodyFraming{BodyKind::kNone, 0}));
}

TEST(HttpFraming, ContentLength) {
  EXPECT_EQ(Body("Host: x\r\nContent-Length: 5\r\n"), (BodyFraming{BodyKind::kLength, 5}));
  EXPECT_EQ(Body("Host: x\r\nContent-Length: 0\r\n"), (BodyFraming{BodyKind::kLength, 0}));
  EXPECT_EQ(Body("Host: x\r\ncontent-length: 007\r\n"), (BodyFraming{BodyKind::kLength, 7}));
  EXPECT_EQ(Body("Host: x\r\nContent-Length: 9223372036854775807\r\n"),
            (BodyFraming{BodyKind::kLength, kMaxContentLength}));
  EXPECT_EQ(Body("Content-Length: 3\r\n", "HTTP/1.0"), (BodyFraming{BodyKind::kLength, 3}));
}

TEST(HttpFraming, RefusesMalformedContentLength) {
  ExpectRefused("Host: x\r\nContent-Length: +5\r\n",
                "http: request: Content-Length \"+5\" is not 1*DIGIT");
  ExpectRefused("Host: x\r\nContent-Length: -1\r\n",
                "http: request: Content-Length \"-1\" is not 1*DIGIT");
  ExpectRefused("Host: x\r\nContent-Length: 5, 5\r\n",
                "http: request: Content-Length \"5, 5\" is not 1*DIGIT");
  ExpectRefused("Host: x\r\nContent-Length: 5 5\r\n",
                "http: request: Content-Length \"5 5\" is not 1*DIGIT");
  ExpectRefused("Host: x\r\nContent-Length: 0x5\r\n",
                "http: request: Content-Length \"0x5\" is not 1*DIGIT");
  ExpectRefused("Host: x\r\nContent-Length:\r\n", "http: request: empty Content-Length");
  ExpectRefused("Host: x\r\nContent-Length: 9223372036854775808\r\n",
                "http: request: Content-Length 9223372036854775808 > max 9223372036854775807");
  ExpectRefused("Host: x\r\nContent-Length: 99999999999999999999999\r\n",
                "http: request: Content-Length 99999999999999999999999 > max "
                "9223372036854775807");
}

TEST(HttpFraming, RefusesDuplicateContentLength) {
  ExpectRefused("Host: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n",
                "http: request: duplicate Content-Length");
  ExpectRefused("Host: x\r\nContent-Length: 5\r\ncontent-length: 5\r\n",
                "http: request: duplicate content-length");
}

TEST(HttpFraming, Chunked) {
  EXPECT_EQ(Body("Host: x\r\nTransfer-Encoding: chunked\r\n").kind, BodyKind::kChunked);
  EXPECT_EQ(Body("Host: x\r\ntransfer-encoding: CHUNKED\r\n").kind, BodyKind::kChunked);
  // HTAB is OWS (RFC 9110 §5.6.3): legal, and every parser trims it the same way.
  EXPECT_EQ(Body("Host: x\r\nTransfer-Encoding:\tchunked\t\r\n").kind, BodyKind::kChunked);
  EXPECT_EQ(Body("Host: x\r\nTransfer-Encoding:chunked\r\n").kind, BodyKind::kChunked);
}

TEST(HttpFraming, RefusesClTe) {
  ExpectRefused("Host: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                "http: request: both Transfer-Encoding and Content-Length");
}

TEST(HttpFraming, RefusesTeCl) {
  ExpectRefused("Host: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                "http: request: both Transfer-Encoding and Content-Length");
}

TEST(HttpFraming, RefusesObfuscatedTransferEncoding) {
  absl::StatusOr<Request> r = Parse("Host: x\r\nTransfer-Encoding: xchunked\r\n");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(r.status().message(), "http: request: unsupported Transfer-Encoding \"xchunked\"");
  ExpectRefused("Host: x\r\nTransfer-Encoding: identity\r\n",
                "http: request: unsupported Transfer-Encoding \"identity\"");
  ExpectRefused("Host: x\r\nTransfer-Encoding: chunked, chunked\r\n",
                "http: request: Transfer-Encoding \"chunked, chunked\" is not exactly chunked");
  ExpectRefused("Host: x\r\nTransfer-Encoding: gzip, chunked\r\n",
                "http: request: Transfer-Encoding \"gzip, chunked\" is not exactly chunked");
  ExpectRefused("Host: x\r\nTransfer-Encoding: chunked,\r\n",
                "http: request: Transfer-Encoding \"chunked,\" is not exactly chunked");
  ExpectRefused("Host: x\r\nTransfer-Encoding:\r\n",
                "http: request: Transfer-Encoding \"\" is not exactly chunked");
  ExpectRefused("Host: x\r\nTransfer-Encoding: \"chunked\"\r\n",
                "http: request: unsupported Transfer-Encoding \"\"chunked\"\"");
  ExpectRefused("Host: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
                "http: request: duplicate Transfer-Encoding");
  ExpectRefused("Host: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "http: request: duplicate Transfer-Encoding");
  ExpectRefused("Host: x\r\nTransfer-Encoding : chunked\r\n",
                "http: request: whitespace between field name and colon");
  ExpectRefused("Host: x\r\nTransfer-Encoding:\r\n chunked\r\n",
                "http: request: line starts with whitespace (obs-fold)");
  ExpectRefused("Host: x\r\nTransfer-Encoding: chunked\x0b\r\n",
                "http: request: control character 0xb in value of Transfer-Encoding");
}

TEST(HttpFraming, UnderscoreNameIsJustAnotherField) {
  EXPECT_EQ(Body("Host: x\r\nTransfer_Encoding: chunked\r\nContent-Length: 1\r\n"),
            (BodyFraming{BodyKind::kLength, 1}));
}

TEST(HttpFraming, RefusesTransferEncodingInHttp10) {
  ExpectRefused("Transfer-Encoding: chunked\r\n", "http: request: Transfer-Encoding in HTTP/1.0",
                "HTTP/1.0");
}

TEST(HttpFraming, ExpectContinue) {
  absl::StatusOr<Request> r = Parse("Host: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->framing.expect_continue);
  r = Parse("Expect: 100-continue\r\nContent-Length: 1\r\n", "HTTP/1.0");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->framing.expect_continue);
  r = Parse("Host: x\r\nExpect: something\r\n");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(r.status().message(), "http: request: unsupported Expect \"something\"");
  ExpectRefused("Host: x\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n",
                "http: request: duplicate Expect");
}

TEST(HttpFraming, Persistence) {
  auto persistent = [](absl::string_view fields, absl::string_view version) {
    absl::StatusOr<Request> r = Parse(fields, version);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->framing.persistent;
  };
  EXPECT_TRUE(persistent("Host: x\r\n", "HTTP/1.1"));
  EXPECT_FALSE(persistent("Host: x\r\nConnection: close\r\n", "HTTP/1.1"));
  EXPECT_FALSE(persistent("Host: x\r\nConnection: keep-alive, CLOSE\r\n", "HTTP/1.1"));
  EXPECT_FALSE(persistent("Host: x\r\nConnection: foo\r\nConnection: close\r\n", "HTTP/1.1"));
  EXPECT_FALSE(persistent("", "HTTP/1.0"));
  EXPECT_TRUE(persistent("Connection: Keep-Alive\r\n", "HTTP/1.0"));
  EXPECT_TRUE(persistent("Host: x\r\nConnection: ,,keep-alive,\r\n", "HTTP/1.1"));
  ExpectRefused("Host: x\r\nConnection: a b\r\n",
                "http: request: invalid Connection option \"a b\"");
}

TEST(HttpFraming, UpgradeIsFlagged) {
  absl::StatusOr<Request> r = Parse("Host: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->framing.upgrade);
  r = Parse("Host: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->framing.upgrade);
  r = Parse("Host: x\r\n");
  EXPECT_FALSE(r->framing.upgrade);
}

// --- responses (RFC 9112 §6.3) ---

ResponseFraming Decide(int status, absl::string_view method, std::vector<HeaderField> fields,
                       Version v = Version::kHttp11) {
  absl::StatusOr<ResponseFraming> r = DecideResponseFraming(v, status, fields, method);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : ResponseFraming{};
}

TEST(HttpFraming, ResponseBodyTable) {
  const std::vector<HeaderField> cl = {{"Content-Length", "10"}};
  const std::vector<HeaderField> te = {{"Transfer-Encoding", "chunked"}};
  EXPECT_EQ(Decide(200, "GET", cl).body, (BodyFraming{BodyKind::kLength, 10}));
  EXPECT_EQ(Decide(200, "GET", te).body.kind, BodyKind::kChunked);
  EXPECT_EQ(Decide(200, "HEAD", cl).body.kind, BodyKind::kNone);
  EXPECT_EQ(Decide(200, "HEAD", te).body.kind, BodyKind::kNone);
  EXPECT_EQ(Decide(204, "GET", {}).body.kind, BodyKind::kNone);
  EXPECT_EQ(Decide(304, "GET", cl).body.kind, BodyKind::kNone);
  EXPECT_EQ(Decide(200, "CONNECT", cl).body.kind, BodyKind::kTunnel);
  EXPECT_EQ(Decide(407, "CONNECT", cl).body, (BodyFraming{BodyKind::kLength, 10}));
  EXPECT_EQ(Decide(101, "GET", {}).body.kind, BodyKind::kTunnel);
  ResponseFraming until_close = Decide(200, "GET", {});
  EXPECT_EQ(until_close.body.kind, BodyKind::kUntilClose);
  EXPECT_FALSE(until_close.persistent);
  ResponseFraming interim = Decide(100, "POST", {});
  EXPECT_TRUE(interim.interim);
  EXPECT_EQ(interim.body.kind, BodyKind::kNone);
  EXPECT_TRUE(Decide(103, "HEAD", {}).interim);
  EXPECT_FALSE(Decide(200, "GET", cl).interim);
  EXPECT_FALSE(Decide(200, "GET", cl, Version::kHttp10).persistent);
  EXPECT_FALSE(Decide(200, "GET", {{"Connection", "close"}, {"Content-Length", "1"}}).persistent);
}

TEST(HttpFraming, ResponseRefusesAmbiguity) {
  auto error = [](std::vector<HeaderField> fields, int status = 200, Version v = Version::kHttp11) {
    return std::string(DecideResponseFraming(v, status, fields, "GET").status().message());
  };
  EXPECT_EQ(error({{"Transfer-Encoding", "chunked"}, {"Content-Length", "1"}}),
            "both Transfer-Encoding and Content-Length");
  // Even where the body is decided by the status.
  EXPECT_EQ(error({{"Content-Length", "1"}, {"Content-Length", "2"}}, 304),
            "duplicate Content-Length");
  EXPECT_EQ(error({{"Transfer-Encoding", "gzip"}}), "unsupported Transfer-Encoding \"gzip\"");
  EXPECT_EQ(error({{"Transfer-Encoding", "chunked"}}, 200, Version::kHttp10),
            "Transfer-Encoding in HTTP/1.0");
}

}  // namespace
}  // namespace interlock::codec::http
