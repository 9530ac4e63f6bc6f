#include "userspace/policy/glob.h"

#include <fnmatch.h>

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace interlock::policy {
namespace {

bool Fnmatch(const std::string& pattern, const std::string& value) {
  return ::fnmatch(pattern.c_str(), value.c_str(), 0) == 0;
}

// What `s` reads as in a failure message.
std::string Shown(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return out;
}

TEST(GlobTest, PlainNamesAndStarAreDecidedAsFnmatchDecidesThem) {
  const std::vector<std::string> patterns = {
      "", "*", "customers", "public.customers", "public.*", "*.customers", "cust?mers", "[cC]ustomers",
      "c\\*", "\\", "a\\", "dblink*", "api.example.com", "/v1/customers", ".hidden", "*.", "**",
      std::string("cust\0omers", 10), std::string("\0", 1), std::string("*\0x", 3)};
  const std::vector<std::string> values = {
      "", "customers", "Customers", "public.customers", "public.", ".customers", "c*", "c\\*", "\\",
      "dblink", "dblink_connect", "api.example.com", "/v1/customers", ".hidden", "x.", "customers ",
      std::string("cust\0omers", 10), std::string("customers\0x", 11), std::string("\0", 1)};
  for (const std::string& p : patterns) {
    for (const std::string& v : values) {
      EXPECT_EQ(Glob(p, v), Fnmatch(p, v)) << "pattern \"" << Shown(p) << "\" value \"" << Shown(v) << "\"";
    }
  }
}

TEST(GlobTest, RandomPatternsAgreeWithFnmatch) {
  // Short strings over an alphabet that holds every character fnmatch treats specially,
  // so the plain-name path, "*" and fnmatch's own path are all crossed with each other.
  const std::string alphabet = std::string("ab.*?[]\\!-/", 11) + std::string(1, '\0');
  std::mt19937 rng(20261207);
  auto word = [&](size_t max) {
    std::string s(rng() % (max + 1), ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
  };
  size_t plain = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string p = i % 3 == 0 ? std::string(rng() % 2 ? "ab" : "a.b") : word(5);
    std::string v = word(5);
    if (i % 5 == 0) v = p;
    plain += !HasGlobMeta(AsCString(p));
    ASSERT_EQ(Glob(p, v), Fnmatch(p, v)) << "pattern \"" << Shown(p) << "\" value \"" << Shown(v) << "\"";
  }
  EXPECT_GT(plain, 50000u) << "the plain-name path was not crossed often enough";
}

}  // namespace
}  // namespace interlock::policy
