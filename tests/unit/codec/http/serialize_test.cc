// serialize.h: heads emitted from their parsed form parse back identically; injected fields
// are checked; hop-by-hop fields are removed.
#include "userspace/codec/http/serialize.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "userspace/codec/http/head.h"

namespace interlock::codec::http {
namespace {

TEST(HttpSerialize, RequestRoundTrips) {
  const std::string in =
      "POST /v1/x?y=1 HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer agent\r\n"
      "Content-Length:\t3 \r\n\r\n";
  absl::StatusOr<std::optional<Request>> r = PeekRequest(in);
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  std::vector<HeaderField> fields = RemoveFields((*r)->fields, {"authorization"});
  const std::string bearer = "Bearer injected";
  fields.push_back({"Authorization", bearer});
  absl::StatusOr<std::string> out =
      SerializeRequestHead((*r)->method, (*r)->target, (*r)->version, fields);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "POST /v1/x?y=1 HTTP/1.1\r\nHost: api\r\nContent-Length: 3\r\n"
            "Authorization: Bearer injected\r\n\r\n");
  absl::StatusOr<std::optional<Request>> again = PeekRequest(*out);
  ASSERT_TRUE(again.ok() && again->has_value()) << again.status();
  EXPECT_EQ((*again)->fields, fields);
  EXPECT_EQ((*again)->framing, (*r)->framing);
}

TEST(HttpSerialize, ResponseRoundTrips) {
  absl::StatusOr<std::string> out =
      SerializeResponseHead(Version::kHttp10, 404, "Not Found", {{"Content-Length", "0"}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  absl::StatusOr<std::optional<Response>> r = PeekResponse(*out, "GET");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_EQ((*r)->status, 404);
  EXPECT_EQ(*SerializeResponseHead(Version::kHttp11, 204, "", {}), "HTTP/1.1 204 \r\n\r\n");
}

TEST(HttpSerialize, RefusesWhatWouldNotParseBack) {
  EXPECT_EQ(SerializeRequestHead("GET", "/", Version::kHttp11,
                                 {{"Authorization", "Bearer x\r\nX-Evil: 1"}})
                .status()
                .message(),
            "http: serialize: control character in value of Authorization");
  EXPECT_EQ(
      SerializeRequestHead("GET", "/", Version::kHttp11, {{"Bad Name", "x"}}).status().message(),
      "http: serialize: invalid field name");
  EXPECT_EQ(SerializeRequestHead("GET", "/", Version::kHttp11, {{"X", " x"}}).status().message(),
            "http: serialize: value of X has surrounding whitespace");
  EXPECT_FALSE(SerializeRequestHead("G T", "/", Version::kHttp11, {}).ok());
  EXPECT_FALSE(SerializeRequestHead("GET", "/a b", Version::kHttp11, {}).ok());
  EXPECT_FALSE(SerializeRequestHead("GET", "", Version::kHttp11, {}).ok());
  EXPECT_FALSE(SerializeResponseHead(Version::kHttp11, 99, "x", {}).ok());
  EXPECT_FALSE(SerializeResponseHead(Version::kHttp11, 200, "a\r\nb", {}).ok());
}

TEST(HttpSerialize, RemovesHopByHopFields) {
  const std::vector<HeaderField> in = {{"Host", "api"},
                                       {"Connection", "keep-alive, X-Secret"},
                                       {"X-Secret", "1"},
                                       {"Keep-Alive", "timeout=5"},
                                       {"Proxy-Authorization", "Basic x"},
                                       {"Proxy-Connection", "close"},
                                       {"TE", "trailers"},
                                       {"Trailer", "X-Sum"},
                                       {"Upgrade", "h2c"},
                                       {"Transfer-Encoding", "chunked"},
                                       {"x-secret", "2"},
                                       {"Accept", "*/*"}};
  EXPECT_EQ(RemoveHopByHop(in), (std::vector<HeaderField>{{"Host", "api"}, {"Accept", "*/*"}}));
}

TEST(HttpSerialize, ReframesTheBody) {
  const std::vector<HeaderField> in = {
      {"Host", "h"}, {"Content-Length", "10"}, {"transfer-encoding", "chunked"}, {"A", "b"}};
  std::string storage;
  EXPECT_EQ(WithBodyFraming(in, {BodyKind::kLength, 1234}, &storage),
            (std::vector<HeaderField>{{"Host", "h"}, {"A", "b"}, {"Content-Length", "1234"}}));
  EXPECT_EQ(
      WithBodyFraming(in, {BodyKind::kChunked, 0}, &storage),
      (std::vector<HeaderField>{{"Host", "h"}, {"A", "b"}, {"Transfer-Encoding", "chunked"}}));
  EXPECT_EQ(WithBodyFraming(in, {BodyKind::kNone, 0}, &storage),
            (std::vector<HeaderField>{{"Host", "h"}, {"A", "b"}}));
  // The result is a valid head with the new framing.
  std::vector<HeaderField> fields = WithBodyFraming(in, {BodyKind::kLength, 7}, &storage);
  absl::StatusOr<std::string> head = SerializeRequestHead("POST", "/", Version::kHttp11, fields);
  ASSERT_TRUE(head.ok()) << head.status();
  absl::StatusOr<std::optional<Request>> r = PeekRequest(*head);
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_EQ((*r)->framing.body, (BodyFraming{BodyKind::kLength, 7}));
}

TEST(HttpSerialize, RemoveFieldsIsCaseInsensitive) {
  EXPECT_EQ(RemoveFields({{"Cookie", "a"}, {"cookie", "b"}, {"Host", "h"}}, {"COOKIE"}),
            (std::vector<HeaderField>{{"Host", "h"}}));
}

}  // namespace
}  // namespace interlock::codec::http
