// IP addresses and prefixes as Interlock holds them: 16 bytes in network order, IPv4 in
// IPv4-mapped form (::ffff:a.b.c.d), which is what the BPF maps use; prefix lengths count
// over the 128-bit form (IPv4 /24 is 120). Pure functions, no I/O.
//
//   INTERLOCK_ASSIGN_OR_RETURN(IpPrefix p, ParseIpPrefix("10.0.0.0/8"));
//   // p.address.bytes == ::ffff:10.0.0.0, p.prefix_bits == 104, p.address.is_v4()
//   FormatIpPrefix(p);                    // "10.0.0.0/8"
//   FormatIp(p.address);                  // "10.0.0.0"
//   FormatIpPort(conn.orig_addr, 5432);   // "10.1.2.3:5432" / "[2001:db8::1]:5432"
//
// "::ffff:127.0.0.42" is the IPv4 address 127.0.0.42 (family AF_INET), so that a
// resource written either way matches the same destinations.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::config {

struct IpAddress {
  // Network byte order; IPv4 is held IPv4-mapped.
  std::array<uint8_t, 16> bytes{};
  // AF_INET for IPv4 (also when written ::ffff:a.b.c.d), else AF_INET6.
  int family = AF_INET6;
  // As written in the configuration, for messages.
  std::string text;

  bool is_v4() const { return family == AF_INET; }
  // The IPv4 address (the last 4 bytes); meaningful only when is_v4().
  in_addr ToInAddr() const;
  // All 16 bytes (the mapped form for IPv4).
  in6_addr ToIn6Addr() const;

  // Same address; `text` is not compared.
  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.bytes == b.bytes && a.family == b.family;
  }
};

struct IpPrefix {
  // The network address: every bit past prefix_bits is zero.
  IpAddress address;
  // Over the 128-bit form: 96 + n for an IPv4 /n; 128 for a single address.
  uint32_t prefix_bits = 128;

  // True when the 16-byte (mapped) address `addr` is inside the prefix.
  bool Contains(const std::array<uint8_t, 16>& addr) const;

  friend bool operator==(const IpPrefix& a, const IpPrefix& b) {
    return a.address == b.address && a.prefix_bits == b.prefix_bits;
  }
};

// Parses an IPv4 ("127.0.0.42") or IPv6 ("::1", "::ffff:10.0.0.1") address. No zone ids,
// no prefix length, no surrounding spaces. INVALID_ARGUMENT names the text.
absl::StatusOr<IpAddress> ParseIpAddress(absl::string_view text);

// Parses an address or a CIDR prefix ("10.0.0.0/8", "2001:db8::/32", "::ffff:10.0.0.0/104").
// A bare address is a full-length prefix. INVALID_ARGUMENT when the address is invalid,
// the length is not 0..32 (IPv4) / 0..128 (IPv6), or host bits are set
// ("10.0.0.1/8" has host bits set; the message names 10.0.0.0/8).
absl::StatusOr<IpPrefix> ParseIpPrefix(absl::string_view text);

// Canonical text of a 16-byte address: dotted quad for IPv4-mapped addresses, RFC 5952
// form otherwise ("127.0.0.42", "::1", "2001:db8::1").
std::string FormatIp(const std::array<uint8_t, 16>& bytes);
std::string FormatIp(const IpAddress& address);
// "10.0.0.0/8", "2001:db8::/32"; a single address is written without a length.
std::string FormatIpPrefix(const IpPrefix& prefix);
// "127.0.0.1:15001", "[::1]:15001".
std::string FormatIpPort(const std::array<uint8_t, 16>& bytes, uint16_t port);

}  // namespace interlock::config
