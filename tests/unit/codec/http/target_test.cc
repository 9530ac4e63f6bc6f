// target.h: request-target forms, path normalisation (decode unreserved, dot-segments, slashes)
// and the ambiguous forms it refuses, query decoding and audit elision.
#include "userspace/codec/http/target.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace interlock::codec::http {
namespace {

std::string Normalized(absl::string_view path) {
  absl::StatusOr<std::string> p = NormalizePath(path);
  EXPECT_TRUE(p.ok()) << absl::CHexEscape(path) << ": " << p.status();
  return p.ok() ? *p : "<error>";
}

void ExpectRefused(absl::string_view path, absl::string_view message) {
  absl::StatusOr<std::string> p = NormalizePath(path);
  EXPECT_FALSE(p.ok()) << absl::CHexEscape(path) << " -> " << p.value_or("");
  EXPECT_EQ(p.status().message(), message) << absl::CHexEscape(path);
}

TEST(HttpTarget, OriginForm) {
  absl::StatusOr<Target> t = ParseTarget("/a/b?x=1&y", "GET");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->form, TargetForm::kOrigin);
  EXPECT_EQ(t->path, "/a/b");
  EXPECT_EQ(t->query, "x=1&y");
  t = ParseTarget("/a", "GET");
  EXPECT_EQ(t->query, std::nullopt);
  t = ParseTarget("/a?", "GET");
  EXPECT_EQ(t->query, "");
}

TEST(HttpTarget, AbsoluteForm) {
  absl::StatusOr<Target> t = ParseTarget("http://api.example.com:8080/v1/x?k=v", "GET");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->form, TargetForm::kAbsolute);
  EXPECT_EQ(t->scheme, "http");
  EXPECT_EQ(t->authority, "api.example.com:8080");
  EXPECT_EQ(t->path, "/v1/x");
  EXPECT_EQ(t->query, "k=v");
  t = ParseTarget("HTTPS://[::1]", "GET");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->authority, "[::1]");
  EXPECT_EQ(t->path, "");
  EXPECT_EQ(Normalized(t->path), "/");
  t = ParseTarget("http://h?q", "GET");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->authority, "h");
  EXPECT_EQ(t->query, "q");
  EXPECT_EQ(ParseTarget("ftp://h/", "GET").status().message(),
            "http: target: scheme other than http or https");
  EXPECT_EQ(ParseTarget("http://user:pw@h/", "GET").status().message(),
            "http: target: userinfo in authority");
  EXPECT_EQ(ParseTarget("http:///x", "GET").status().message(), "http: target: empty authority");
  EXPECT_EQ(ParseTarget("example.com/x", "GET").status().message(),
            "http: target: request-target of no known form");
}

TEST(HttpTarget, AsteriskForm) {
  EXPECT_EQ(ParseTarget("*", "OPTIONS")->form, TargetForm::kAsterisk);
  EXPECT_EQ(ParseTarget("*", "GET").status().message(),
            "http: target: \"*\" target with a method other than OPTIONS");
}

TEST(HttpTarget, AuthorityFormOnlyForConnect) {
  absl::StatusOr<Target> t = ParseTarget("db.internal:5432", "CONNECT");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->form, TargetForm::kAuthority);
  EXPECT_EQ(t->authority, "db.internal:5432");
  EXPECT_TRUE(ParseTarget("[::1]:443", "CONNECT").ok());
  EXPECT_EQ(ParseTarget("db.internal", "CONNECT").status().message(),
            "http: target: CONNECT target without port");
  EXPECT_EQ(ParseTarget("[::1]", "CONNECT").status().message(),
            "http: target: CONNECT target without port");
  EXPECT_FALSE(ParseTarget("/x", "CONNECT").ok());
  EXPECT_FALSE(ParseTarget("db.internal:5432", "GET").ok());
}

TEST(HttpTarget, RefusesBadBytes) {
  EXPECT_EQ(ParseTarget("/a b", "GET").status().message(),
            "http: target: invalid byte 0x20 in request-target");
  EXPECT_FALSE(ParseTarget("", "GET").ok());
  EXPECT_FALSE(ParseTarget("/\xff", "GET").ok());
}

TEST(HttpTarget, NormalisesPaths) {
  EXPECT_EQ(Normalized("/"), "/");
  EXPECT_EQ(Normalized(""), "/");
  EXPECT_EQ(Normalized("/a/./b/../c"), "/a/c");
  EXPECT_EQ(Normalized("/%61dmin"), "/admin");
  EXPECT_EQ(Normalized("//admin"), "/admin");
  EXPECT_EQ(Normalized("/a///b//"), "/a/b/");
  EXPECT_EQ(Normalized("/a/%2e%2e/admin"), "/admin");
  EXPECT_EQ(Normalized("/a/.%2E/admin"), "/admin");
  EXPECT_EQ(Normalized("/a/b/.."), "/a/");
  EXPECT_EQ(Normalized("/a/b/."), "/a/b/");
  EXPECT_EQ(Normalized("/a/.."), "/");
  EXPECT_EQ(Normalized("/..a/b.."), "/..a/b..");
  EXPECT_EQ(Normalized("/%7euser/%41%5a%30-%5F"), "/~user/AZ0-_");
  EXPECT_EQ(Normalized("/caf%c3%a9"), "/caf%C3%A9");
  EXPECT_EQ(Normalized("/a%3fb%20c%25"), "/a%3Fb%20c%25");
  EXPECT_EQ(Normalized("/a:b@c!$&'()*+,="), "/a:b@c!$&'()*+,=");
}

TEST(HttpTarget, RefusesAmbiguousPaths) {
  ExpectRefused("/admin%2Fx", "http: target: encoded slash (%2F) in path");
  ExpectRefused("/admin%2fx", "http: target: encoded slash (%2F) in path");
  ExpectRefused("/..%2f", "http: target: encoded slash (%2F) in path");
  ExpectRefused("/admin;x=1", "http: target: path parameter (\";\") in path");
  ExpectRefused("/admin\\x", "http: target: backslash in path");
  ExpectRefused("/admin%5Cx", "http: target: encoded backslash (%5C) in path");
  ExpectRefused("/admin%5cx", "http: target: encoded backslash (%5C) in path");
  ExpectRefused("/a%00", "http: target: encoded control character in path");
  ExpectRefused("/a%0d%0a", "http: target: encoded control character in path");
  ExpectRefused("/a%7F", "http: target: encoded control character in path");
  ExpectRefused("/%2e%2e/x", "http: target: dot-segment climbs above the root");
  ExpectRefused("/..", "http: target: dot-segment climbs above the root");
  ExpectRefused("/a/../../x", "http: target: dot-segment climbs above the root");
  ExpectRefused("/a//../x", "http: target: \"..\" after an empty segment in path");
  ExpectRefused("/a%zz", "http: target: invalid percent escape in path");
  ExpectRefused("/a%4", "http: target: invalid percent escape in path");
  ExpectRefused("/a%", "http: target: invalid percent escape in path");
  ExpectRefused("/a%252F", "http: target: double-encoded escape in path");
  ExpectRefused("/caf\xc3\xa9", "http: target: invalid byte 0xc3 in path");
  ExpectRefused("/a b", "http: target: invalid byte 0x20 in path");
  ExpectRefused("a/b", "http: target: path does not start with \"/\"");
}

TEST(HttpTarget, NormalisationIsIdempotent) {
  for (absl::string_view p : {"/a/./b/../c", "/%61dmin", "//x//y/", "/caf%c3%a9/.", "/a/b/.."}) {
    const std::string once = Normalized(p);
    EXPECT_EQ(Normalized(once), once) << p;
  }
}

TEST(HttpTarget, ParsesQuery) {
  absl::StatusOr<std::vector<QueryParam>> q = ParseQuery("a=1&b=x+y%20z&&c&d=&%41=%2F");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(
      *q, (std::vector<QueryParam>{{"a", "1"}, {"b", "x y z"}, {"c", ""}, {"d", ""}, {"A", "/"}}));
  EXPECT_EQ(ParseQuery("a=%zz").status().message(),
            "http: target: invalid percent escape in query");
  EXPECT_TRUE(ParseQuery("")->empty());
  EXPECT_EQ(ParseQuery("x=a=b")->at(0).value, "a=b");
}

TEST(HttpTarget, ElidesSecretsForAudit) {
  EXPECT_EQ(ElideQueryParams("/a?token=abc&x=1&Access_Token=q&sig=&k"),
            "/a?token=<elided>&x=1&Access_Token=<elided>&sig=<elided>&k");
  EXPECT_EQ(ElideQueryParams("/a?%74oken=abc"), "/a?%74oken=<elided>");
  EXPECT_EQ(ElideQueryParams("/a?pass+word=1", {"pass word"}), "/a?pass+word=<elided>");
  EXPECT_EQ(ElideQueryParams("/a?%zz=secret"), "/a?%zz=<elided>");
  EXPECT_EQ(ElideQueryParams("/a"), "/a");
  EXPECT_EQ(ElideQueryParams("/a?"), "/a?");
  EXPECT_EQ(ElideQueryParams("/a?x=1&&y=2"), "/a?x=1&&y=2");
  EXPECT_EQ(ElideQueryParams("/a?password=p", {}), "/a?password=p");
}

}  // namespace
}  // namespace interlock::codec::http
