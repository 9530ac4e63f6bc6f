#include "userspace/proxy/http/request_recording.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "userspace/codec/http/chunked.h"
#include "userspace/common/sha256.h"

namespace interlock::proxy::http {
namespace {

namespace chttp = codec::http;

chttp::Request Parse(const std::string& wire) {
  auto r = chttp::PeekRequest(wire);
  EXPECT_TRUE(r.ok() && r->has_value()) << wire;
  return **r;
}

// Records one whole request as the session does: head, then the body piece by piece.
struct Recorded {
  std::string clear, sealed;
  std::optional<RequestRecording::Event> end;
};
Recorded RecordWhole(RequestRecording& rec, const std::string& wire) {
  Recorded out;
  chttp::Request req = Parse(wire);
  rec.Head(req, &out.clear);
  absl::string_view body = absl::string_view(wire).substr(req.head_bytes);
  if (req.framing.body.kind == chttp::BodyKind::kChunked) {
    chttp::ChunkedDecoder dec;
    while (!dec.done()) {
      auto p = dec.Decode(body);
      EXPECT_TRUE(p.ok());
      if (!p.ok() || p->consumed == 0) break;
      rec.Body(body.substr(0, p->consumed), p->data, &out.clear, &out.sealed);
      body.remove_prefix(p->consumed);
    }
  } else if (!body.empty()) {
    rec.Body(body, body, &out.clear, &out.sealed);
  }
  out.end = rec.EndBody(true);
  return out;
}

TEST(RequestRecordingTest, CredentialsAndElidedParamsNeverRecordedNorSealed) {
  RequestRecording rec({.keep_originals = true, .credential_fields = {"x-api-key"}, .elided_params = {"session"}});
  Recorded r = RecordWhole(rec,
                           "GET /v1/a?token=t0k3n&session=s3ss&q=ok HTTP/1.1\r\nHost: api\r\n"
                           "Authorization: Bearer eyJsecret\r\nCOOKIE: sid=c00kie\r\nX-Api-Key: k3y\r\n"
                           "Proxy-Authorization: Basic cHc=\r\nAccept: */*\r\n\r\n");
  for (const char* secret : {"t0k3n", "s3ss", "eyJsecret", "c00kie", "k3y", "cHc="}) {
    EXPECT_FALSE(absl::StrContains(r.clear, secret)) << secret << " in " << r.clear;
    EXPECT_FALSE(absl::StrContains(r.sealed, secret)) << secret;
  }
  EXPECT_EQ(r.clear,
            "GET /v1/a?token=(elided)&session=(elided)&q=ok HTTP/1.1\r\nHost: api\r\n"
            "Authorization: [withheld]\r\nCOOKIE: [withheld]\r\nX-Api-Key: [withheld]\r\n"
            "Proxy-Authorization: [withheld]\r\nAccept: */*\r\n\r\n");
  EXPECT_FALSE(r.end.has_value());  // no body, no event
  // The recorded head parses again (replay reads it).
  Parse(r.clear);
}

TEST(RequestRecordingTest, BodyWithheldByDefaultWithLengthAndDigest) {
  const std::string body = R"({"pan":"4111111111111111"})";
  RequestRecording rec({});
  Recorded r = RecordWhole(rec, "POST /pay HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_FALSE(absl::StrContains(r.clear, "4111")) << r.clear;
  EXPECT_TRUE(r.sealed.empty());  // no auditor key: kept nowhere
  chttp::Request recorded = Parse(r.clear);
  EXPECT_EQ(recorded.head_bytes, r.clear.size());  // announces no body: replay stays in step
  EXPECT_EQ(recorded.framing.body.kind, chttp::BodyKind::kLength);
  EXPECT_EQ(recorded.framing.body.length, 0u);
  EXPECT_EQ(chttp::FindField(recorded.fields, "interlock-withheld-body").value_or(""),
            "content-length " + std::to_string(body.size()));
  ASSERT_TRUE(r.end.has_value());
  EXPECT_EQ(r.end->kind, "request_body_withheld");
  EXPECT_EQ(r.end->detail, absl::StrCat(body.size(), " bytes, sha256 ", Sha256Hex(body), ", not kept"));
}

TEST(RequestRecordingTest, ChunkedBodyWithheldAndSealedDecoded) {
  RequestRecording rec({.keep_originals = true});
  Recorded r = RecordWhole(rec,
                           "POST /up HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5\r\n41111\r\n6;ext=1\r\n111111\r\n0\r\nX-T: 1\r\n\r\n");
  EXPECT_FALSE(absl::StrContains(r.clear, "4111")) << r.clear;
  EXPECT_FALSE(absl::StrContains(absl::AsciiStrToLower(r.clear), "transfer-encoding"));
  EXPECT_EQ(r.sealed, "41111111111");  // the body, without its chunk framing
  Parse(r.clear);
  ASSERT_TRUE(r.end.has_value());
  EXPECT_EQ(r.end->detail, absl::StrCat("11 bytes, sha256 ", Sha256Hex("41111111111"), ", sealed"));
}

TEST(RequestRecordingTest, BodiesInClearAreRecordedAsFramed) {
  RequestRecording rec({.bodies_in_clear = true, .keep_originals = true});
  const std::string wire =
      "POST /up HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n";
  Recorded r = RecordWhole(rec, wire);
  EXPECT_EQ(r.clear,
            "POST /up HTTP/1.1\r\nHost: api\r\nAuthorization: [withheld]\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n");
  EXPECT_TRUE(r.sealed.empty());
  EXPECT_FALSE(r.end.has_value());
}

TEST(RequestRecordingTest, CutBodySaysSo) {
  RequestRecording rec({});
  std::string clear, sealed;
  rec.Head(Parse("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"), &clear);
  EXPECT_TRUE(rec.in_body());
  rec.Body("abc", "abc", &clear, &sealed);
  auto ev = rec.EndBody(false);
  ASSERT_TRUE(ev.has_value());
  EXPECT_TRUE(absl::StartsWith(ev->detail, "3 bytes (cut")) << ev->detail;
  EXPECT_FALSE(rec.EndBody(false).has_value());  // once
  // The next body's digest starts afresh.
  rec.Head(Parse("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n"), &clear);
  rec.Body("hi", "hi", &clear, &sealed);
  EXPECT_TRUE(absl::StrContains(rec.EndBody(true)->detail, Sha256Hex("hi")));
}

TEST(RequestRecordingTest, UnparsedBytesAreSealedAndCapped) {
  const std::string junk(RequestRecording::kMaxSealedUnparsedBytes + 10, 'j');
  std::string sealed;
  auto ev = RequestRecording({.keep_originals = true}).Unparsed(junk, &sealed);
  EXPECT_EQ(sealed.size(), RequestRecording::kMaxSealedUnparsedBytes);
  EXPECT_TRUE(absl::StrContains(ev.detail, Sha256Hex(junk)));
  EXPECT_TRUE(absl::StrContains(ev.detail, "first 65536 sealed")) << ev.detail;
  sealed.clear();
  ev = RequestRecording({}).Unparsed("GET / HTTP/9\r\n", &sealed);
  EXPECT_TRUE(sealed.empty());
  EXPECT_TRUE(absl::StrContains(ev.detail, "not kept"));
}

}  // namespace
}  // namespace interlock::proxy::http
