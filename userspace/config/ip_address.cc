#include "userspace/config/ip_address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace interlock::config {
namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
constexpr uint32_t kMappedBits = 96;

bool IsMapped(const std::array<uint8_t, 16>& bytes) {
  return std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), bytes.begin());
}

// Zeroes every bit past `bits`.
std::array<uint8_t, 16> Masked(std::array<uint8_t, 16> bytes, uint32_t bits) {
  for (uint32_t i = 0; i < 16; ++i) {
    uint32_t first_bit = i * 8;
    if (first_bit >= bits) {
      bytes[i] = 0;
    } else if (bits - first_bit < 8) {
      bytes[i] &= static_cast<uint8_t>(0xff << (8 - (bits - first_bit)));
    }
  }
  return bytes;
}

}  // namespace

in_addr IpAddress::ToInAddr() const {
  in_addr out{};
  std::memcpy(&out.s_addr, bytes.data() + 12, 4);
  return out;
}

in6_addr IpAddress::ToIn6Addr() const {
  in6_addr out{};
  std::memcpy(out.s6_addr, bytes.data(), 16);
  return out;
}

bool IpPrefix::Contains(const std::array<uint8_t, 16>& addr) const {
  return Masked(addr, prefix_bits) == address.bytes;
}

absl::StatusOr<IpAddress> ParseIpAddress(absl::string_view text) {
  // inet_pton is strict: no spaces, no leading zeros in IPv4 octets, no zone ids.
  std::string s(text);
  IpAddress out;
  out.text = s;
  in_addr v4{};
  in6_addr v6{};
  if (!s.empty() && ::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    std::copy(kMappedPrefix.begin(), kMappedPrefix.end(), out.bytes.begin());
    std::memcpy(out.bytes.data() + 12, &v4.s_addr, 4);
    out.family = AF_INET;
    return out;
  }
  if (!s.empty() && ::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.bytes.data(), v6.s6_addr, 16);
    out.family = IsMapped(out.bytes) ? AF_INET : AF_INET6;
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an IPv4 or IPv6 address"));
}

absl::StatusOr<IpPrefix> ParseIpPrefix(absl::string_view text) {
  size_t slash = text.find('/');
  absl::StatusOr<IpAddress> address = ParseIpAddress(text.substr(0, slash));
  if (!address.ok()) {
    if (slash == absl::string_view::npos) return address.status();
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": \"", text.substr(0, slash),
                                                   "\" is not an IPv4 or IPv6 address"));
  }
  IpPrefix out;
  out.address = *std::move(address);
  out.address.text = std::string(text);
  if (slash == absl::string_view::npos) return out;

  // An IPv4 length counts over 32 bits unless the address was written in IPv6 form.
  const bool v4_syntax =
      out.address.is_v4() && text.substr(0, slash).find(':') == absl::string_view::npos;
  const uint32_t max_bits = v4_syntax ? 32 : 128;
  absl::string_view length = text.substr(slash + 1);
  uint32_t bits = 0;
  if (length.empty() || length.size() > 3 ||
      !std::all_of(length.begin(), length.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(length, &bits) || bits > max_bits) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": prefix length \"", length,
                                                   "\" is not a number in 0..", max_bits));
  }
  out.prefix_bits = v4_syntax ? kMappedBits + bits : bits;
  // A short IPv6 prefix over ::ffff:0:0 covers more than IPv4: it is an IPv6 prefix.
  if (out.prefix_bits < kMappedBits) out.address.family = AF_INET6;

  std::array<uint8_t, 16> network = Masked(out.address.bytes, out.prefix_bits);
  if (network != out.address.bytes) {
    IpPrefix fixed = out;
    fixed.address.bytes = network;
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text, "\" has host bits set (the network is ", FormatIpPrefix(fixed), ")"));
  }
  return out;
}

std::string FormatIp(const std::array<uint8_t, 16>& bytes) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (IsMapped(bytes)) {
    ::inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return buf;
}

std::string FormatIp(const IpAddress& address) { return FormatIp(address.bytes); }

std::string FormatIpPrefix(const IpPrefix& prefix) {
  std::string out = FormatIp(prefix.address.bytes);
  if (prefix.prefix_bits == 128) return out;
  if (IsMapped(prefix.address.bytes) && prefix.prefix_bits >= kMappedBits) {
    return absl::StrCat(out, "/", prefix.prefix_bits - kMappedBits);
  }
  // Print IPv6 prefixes in IPv6 form even when the network is ::ffff:0:0.
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, prefix.address.bytes.data(), buf, sizeof buf);
  return absl::StrCat(buf, "/", prefix.prefix_bits);
}

std::string FormatIpPort(const std::array<uint8_t, 16>& bytes, uint16_t port) {
  if (IsMapped(bytes)) return absl::StrCat(FormatIp(bytes), ":", port);
  return absl::StrCat("[", FormatIp(bytes), "]:", port);
}

}  // namespace interlock::config
