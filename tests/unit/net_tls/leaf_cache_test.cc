// Leaf names (userspace/net/leaf_name.h) as a table, and the leaf cache
// (userspace/net/leaf_cache.h) with a fake clock: reuse, renewal, LRU eviction.
#include "userspace/net/leaf_cache.h"

#include <openssl/x509.h>

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/privileged.h"
#include "userspace/net/leaf_name.h"

namespace interlock::net {
namespace {

using ::interlock::testing::FakeClock;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- names ----

TEST(LeafName, NormalisesValidNames) {
  struct Case {
    std::string in;
    std::string text;
    bool is_ip;
  };
  const std::string label63(63, 'a');
  // 4 labels of 63 plus dots: 255; three of 63 and one of 61: 253, the maximum.
  const std::string longest = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  const Case kCases[] = {
      {"api.example.com", "api.example.com", false},
      {"API.Example.COM", "api.example.com", false},
      {"example.com.", "example.com", false},  // absolute name
      {"localhost", "localhost", false},
      {"xn--bcher-kva.example", "xn--bcher-kva.example", false},
      {"a-b.c0", "a-b.c0", false},
      {"0.example", "0.example", false},
      {"1.2.3.example", "1.2.3.example", false},
      {longest, longest, false},
      {longest + ".", longest, false},
      {"127.0.0.9", "127.0.0.9", true},
      {"::1", "::1", true},
      {"2001:DB8:0:0::1", "2001:db8::1", true},
      {"::ffff:10.0.0.1", "::ffff:10.0.0.1", true},
  };
  for (const Case& c : kCases) {
    absl::StatusOr<LeafName> name = NormalizeLeafName(c.in);
    ASSERT_TRUE(name.ok()) << c.in << ": " << name.status();
    EXPECT_EQ(name->text, c.text) << c.in;
    EXPECT_EQ(name->is_ip, c.is_ip) << c.in;
  }
}

TEST(LeafName, RefusesEverythingElse) {
  struct Case {
    std::string in;
    const char* why;
  };
  const Case kCases[] = {
      {"", "empty"},
      {"*.example.com", "wildcard"},
      {"*", "wildcard"},
      {"a*.example.com", "wildcard"},
      {"a..b", "empty label"},
      {".example.com", "empty label"},
      {"example.com..", "empty label"},
      {".", "empty label"},
      {"-a.com", "'-'"},
      {"a-.com", "'-'"},
      {std::string(300, 'a'), "longer than 253"},
      {std::string(63, 'a') + "." + std::string(63, 'a') + "." + std::string(63, 'a') + "." +
           std::string(62, 'b'),
       "longer than 253"},
      {std::string(64, 'a') + ".com", "label longer than 63"},
      {std::string("exa\0mple", 8), "NUL"},
      {std::string("example.com\0.evil", 17), "NUL"},
      {"under_score.example", "not a host name"},
      {"sp ace.example", "not a host name"},
      {"b\xc3\xbc"
       "cher.example",
       "not a host name"},
      {"example.com:443", "not a host name"},
      {"[::1]", "not a host name"},
      {"fe80::1%eth0", "not a host name"},
      {"a/b", "not a host name"},
      // Numeric last labels: what inet_pton refuses but resolvers and browsers read as
      // IPv4 (decided in leaf_name.h).
      {"999.1.1.1", "numeric last label"},
      {"1.2.3", "numeric last label"},
      {"127.1", "numeric last label"},
      {"0x7f.0x1", "numeric last label"},
      {"example.0x1F", "numeric last label"},
      {"1.1.1.01", "numeric last label"},
  };
  for (const Case& c : kCases) {
    absl::StatusOr<LeafName> name = NormalizeLeafName(c.in);
    EXPECT_EQ(name.status().code(), absl::StatusCode::kInvalidArgument) << c.in;
    EXPECT_THAT(std::string(name.status().message()), HasSubstr(c.why)) << c.in;
  }
}

TEST(LeafName, ErrorQuotesTheNamePrintably) {
  absl::StatusOr<LeafName> name = NormalizeLeafName("bad\x1b[31m.example");
  ASSERT_FALSE(name.ok());
  EXPECT_THAT(std::string(name.status().message()), Not(HasSubstr("\x1b")));
  EXPECT_THAT(std::string(name.status().message()), HasSubstr("\\x1b"));
}

// ---- the cache ----

class LeafCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = interlock::testing::MakeTempDir("interlock-leaf-cache-");
    ASSERT_FALSE(dir_.empty());
    auto ca = LocalCa::Init(dir_, clock_);
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
  }
  void TearDown() override { interlock::testing::RemoveTree(dir_); }

  std::shared_ptr<const MintedLeaf> Get(LeafCache& cache, absl::string_view name) {
    auto leaf = cache.Get(name);
    EXPECT_TRUE(leaf.ok()) << name << ": " << leaf.status();
    return leaf.ok() ? *leaf : nullptr;
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<LocalCa> ca_;
};

TEST_F(LeafCacheTest, SameNameTwiceIsTheSameCertificate) {
  LeafCache cache(*ca_);
  auto a = Get(cache, "api.example.com");
  auto b = Get(cache, "API.example.com.");  // the same name, normalised
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(X509_cmp(a->cert.get(), b->cert.get()), 0);
  EXPECT_EQ(cache.minted(), 1u);
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(LeafCacheTest, DifferentNamesAreDifferentCertificates) {
  LeafCache cache(*ca_);
  auto a = Get(cache, "a.example.com");
  auto b = Get(cache, "b.example.com");
  auto ip = Get(cache, "10.0.0.1");
  ASSERT_TRUE(a && b && ip);
  EXPECT_NE(X509_cmp(a->cert.get(), b->cert.get()), 0);
  EXPECT_NE(X509_cmp(a->cert.get(), ip->cert.get()), 0);
  EXPECT_EQ(b->name, "b.example.com");
  EXPECT_EQ(cache.minted(), 3u);
}

TEST_F(LeafCacheTest, RemintsWithinADayOfExpiry) {
  LeafCache cache(*ca_);
  auto first = Get(cache, "api.example.com");
  ASSERT_NE(first, nullptr);
  // Just before the renewal point: still the cached leaf.
  clock_.Advance(first->not_after - clock_.Now() - absl::Hours(24) - absl::Seconds(1));
  EXPECT_EQ(Get(cache, "api.example.com").get(), first.get());
  EXPECT_EQ(cache.minted(), 1u);
  // At it: a new leaf, valid for another 7 days from now.
  clock_.Advance(absl::Seconds(1));
  auto second = Get(cache, "api.example.com");
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second.get(), first.get());
  EXPECT_NE(X509_cmp(first->cert.get(), second->cert.get()), 0);
  EXPECT_GT(second->not_after, first->not_after);
  EXPECT_EQ(cache.minted(), 2u);
  EXPECT_EQ(cache.size(), 1u);
  // The caller that held the old leaf still has a whole certificate.
  EXPECT_EQ(first->name, "api.example.com");
  EXPECT_NE(first->cert, nullptr);
}

TEST_F(LeafCacheTest, CapacityEvictsTheLeastRecentlyUsed) {
  LeafCache cache(*ca_, /*capacity=*/2);
  auto a = Get(cache, "a.test");
  auto b = Get(cache, "b.test");
  EXPECT_EQ(Get(cache, "a.test").get(), a.get());  // a is now the most recent
  auto c = Get(cache, "c.test");                   // evicts b
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.minted(), 3u);
  EXPECT_EQ(Get(cache, "a.test").get(), a.get());
  EXPECT_EQ(Get(cache, "c.test").get(), c.get());
  EXPECT_EQ(cache.minted(), 3u);
  auto b2 = Get(cache, "b.test");  // reminted; evicts a (c was used after it)
  EXPECT_NE(b2.get(), b.get());
  EXPECT_EQ(cache.minted(), 4u);
  EXPECT_EQ(Get(cache, "c.test").get(), c.get());
  EXPECT_EQ(cache.minted(), 4u);
  EXPECT_NE(Get(cache, "a.test").get(), a.get());
  EXPECT_EQ(cache.minted(), 5u);
  EXPECT_EQ(cache.size(), 2u);
}

TEST_F(LeafCacheTest, DefaultCapacityIsBounded) {
  LeafCache cache(*ca_);
  EXPECT_EQ(cache.capacity(), LeafCache::kDefaultCapacity);
  LeafCache small(*ca_, 3);
  for (int i = 0; i < 10; ++i) {
    ASSERT_NE(Get(small, "host" + std::to_string(i) + ".test"), nullptr);
  }
  EXPECT_EQ(small.size(), 3u);
  EXPECT_EQ(small.minted(), 10u);
}

TEST_F(LeafCacheTest, InvalidNamesAreRefusedAndNotCached) {
  LeafCache cache(*ca_);
  for (absl::string_view name : {"*.example.com", "a..b", "999.1.1.1", ""}) {
    EXPECT_EQ(cache.Get(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.minted(), 0u);
}

TEST_F(LeafCacheTest, CertificateForLendsTheCachedLeaf) {
  LeafCache cache(*ca_);
  auto cert = cache.CertificateFor("api.example.com");
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto leaf = Get(cache, "api.example.com");
  EXPECT_EQ(cert->cert, leaf->cert.get());
  EXPECT_EQ(cert->key, leaf->key.get());
  EXPECT_EQ(cache.CertificateFor("evil..name").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace interlock::net
