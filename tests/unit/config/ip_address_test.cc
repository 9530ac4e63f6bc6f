#include "userspace/config/ip_address.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::config {
namespace {

using ::testing::HasSubstr;

using Bytes = std::array<uint8_t, 16>;

Bytes Mapped(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

TEST(ParseIpAddress, Ipv4IsHeldMapped) {
  absl::StatusOr<IpAddress> a = ParseIpAddress("127.0.0.42");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->bytes, Mapped(127, 0, 0, 42));
  EXPECT_EQ(a->family, AF_INET);
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->text, "127.0.0.42");
  EXPECT_EQ(a->ToInAddr().s_addr, htonl(0x7f00002a));
}

TEST(ParseIpAddress, MappedIpv6IsIpv4) {
  absl::StatusOr<IpAddress> a = ParseIpAddress("::ffff:127.0.0.42");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->family, AF_INET);
  EXPECT_EQ(a->bytes, Mapped(127, 0, 0, 42));
  EXPECT_EQ(*a, *ParseIpAddress("127.0.0.42"));
  EXPECT_EQ(a->text, "::ffff:127.0.0.42");
}

TEST(ParseIpAddress, Ipv6) {
  absl::StatusOr<IpAddress> a = ParseIpAddress("2001:db8::1");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->family, AF_INET6);
  EXPECT_EQ(a->bytes, (Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  in6_addr v6 = a->ToIn6Addr();
  EXPECT_EQ(v6.s6_addr[0], 0x20);
  EXPECT_EQ(v6.s6_addr[15], 1);
}

TEST(ParseIpAddress, RejectsNonsense) {
  for (const char* bad : {"", "abc", "127.0.0", "127.0.0.256", " 127.0.0.1", "127.0.0.1 ",
                          "fe80::1%eth0", "10.0.0.0/8", "01.2.3.4", "::1::2", "db.internal"}) {
    absl::StatusOr<IpAddress> a = ParseIpAddress(bad);
    EXPECT_FALSE(a.ok()) << bad;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(ParseIpAddress("abc").status().message(),
              HasSubstr("\"abc\" is not an IPv4 or IPv6 address"));
}

TEST(ParseIpPrefix, Ipv4Slash24CountsOver128Bits) {
  absl::StatusOr<IpPrefix> p = ParseIpPrefix("192.168.7.0/24");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->prefix_bits, 96u + 24u);
  EXPECT_EQ(p->address.bytes, Mapped(192, 168, 7, 0));
  EXPECT_TRUE(p->address.is_v4());
  EXPECT_EQ(p->address.text, "192.168.7.0/24");
}

TEST(ParseIpPrefix, BareAddressIsFullLength) {
  absl::StatusOr<IpPrefix> v4 = ParseIpPrefix("127.0.0.42");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->prefix_bits, 128u);
  EXPECT_EQ(v4->address.bytes, Mapped(127, 0, 0, 42));

  absl::StatusOr<IpPrefix> v6 = ParseIpPrefix("::1");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->prefix_bits, 128u);
  EXPECT_EQ(v6->address.family, AF_INET6);
  EXPECT_EQ(v6->address.bytes, (Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
}

TEST(ParseIpPrefix, Ipv6Prefix) {
  absl::StatusOr<IpPrefix> p = ParseIpPrefix("2001:db8::/32");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->prefix_bits, 32u);
  EXPECT_EQ(p->address.family, AF_INET6);
  EXPECT_EQ(p->address.bytes, (Bytes{0x20, 0x01, 0x0d, 0xb8}));
}

TEST(ParseIpPrefix, MappedIpv6PrefixIsIpv4) {
  absl::StatusOr<IpPrefix> p = ParseIpPrefix("::ffff:10.0.0.0/104");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->prefix_bits, 104u);
  EXPECT_TRUE(p->address.is_v4());
  EXPECT_EQ(*p, *ParseIpPrefix("10.0.0.0/8"));
}

TEST(ParseIpPrefix, ZeroLengthPrefixes) {
  absl::StatusOr<IpPrefix> all_v4 = ParseIpPrefix("0.0.0.0/0");
  ASSERT_TRUE(all_v4.ok()) << all_v4.status();
  EXPECT_EQ(all_v4->prefix_bits, 96u);
  EXPECT_TRUE(all_v4->Contains(Mapped(8, 8, 8, 8)));
  EXPECT_FALSE(all_v4->Contains(ParseIpAddress("2001:db8::1")->bytes));

  absl::StatusOr<IpPrefix> all = ParseIpPrefix("::/0");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->prefix_bits, 0u);
  EXPECT_TRUE(all->Contains(Mapped(8, 8, 8, 8)));
}

TEST(ParseIpPrefix, HostBitsSetIsAnErrorThatNamesTheNetwork) {
  absl::StatusOr<IpPrefix> p = ParseIpPrefix("10.0.0.1/8");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("\"10.0.0.1/8\" has host bits set"));
  EXPECT_THAT(p.status().message(), HasSubstr("10.0.0.0/8"));

  absl::StatusOr<IpPrefix> v6 = ParseIpPrefix("2001:db8::1/64");
  ASSERT_FALSE(v6.ok());
  EXPECT_THAT(v6.status().message(), HasSubstr("2001:db8::/64"));
}

TEST(ParseIpPrefix, RejectsBadLengths) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8",
                          "::/129", "::/1000", "10.0.0.0/x", "10.0.0.0/ 8", "/8", "abc/8"}) {
    EXPECT_FALSE(ParseIpPrefix(bad).ok()) << bad;
  }
  EXPECT_THAT(ParseIpPrefix("10.0.0.0/33").status().message(), HasSubstr("0..32"));
  EXPECT_THAT(ParseIpPrefix("::/129").status().message(), HasSubstr("0..128"));
}

TEST(IpPrefix, Contains) {
  IpPrefix p = *ParseIpPrefix("10.1.0.0/16");
  EXPECT_TRUE(p.Contains(Mapped(10, 1, 200, 3)));
  EXPECT_FALSE(p.Contains(Mapped(10, 2, 0, 0)));
  IpPrefix host = *ParseIpPrefix("127.0.0.42");
  EXPECT_TRUE(host.Contains(Mapped(127, 0, 0, 42)));
  EXPECT_FALSE(host.Contains(Mapped(127, 0, 0, 43)));
}

TEST(FormatIp, CanonicalText) {
  EXPECT_EQ(FormatIp(Mapped(127, 0, 0, 42)), "127.0.0.42");
  EXPECT_EQ(FormatIp(*ParseIpAddress("::ffff:127.0.0.42")), "127.0.0.42");
  EXPECT_EQ(FormatIp(*ParseIpAddress("2001:0db8:0:0::0001")), "2001:db8::1");
  EXPECT_EQ(FormatIp(*ParseIpAddress("::1")), "::1");
  EXPECT_EQ(FormatIp(Bytes{}), "::");
}

TEST(FormatIp, PrefixesAndPorts) {
  EXPECT_EQ(FormatIpPrefix(*ParseIpPrefix("10.0.0.0/8")), "10.0.0.0/8");
  EXPECT_EQ(FormatIpPrefix(*ParseIpPrefix("::ffff:10.0.0.0/104")), "10.0.0.0/8");
  EXPECT_EQ(FormatIpPrefix(*ParseIpPrefix("127.0.0.42")), "127.0.0.42");
  EXPECT_EQ(FormatIpPrefix(*ParseIpPrefix("2001:db8::/32")), "2001:db8::/32");
  EXPECT_EQ(FormatIpPrefix(*ParseIpPrefix("::ffff:0:0/96")), "0.0.0.0/0");
  EXPECT_EQ(FormatIpPrefix(*ParseIpPrefix("::/0")), "::/0");
  EXPECT_EQ(FormatIpPort(Mapped(127, 0, 0, 1), 15001), "127.0.0.1:15001");
  EXPECT_EQ(FormatIpPort(ParseIpAddress("::1")->bytes, 15001), "[::1]:15001");
}

}  // namespace
}  // namespace interlock::config
