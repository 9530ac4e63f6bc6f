// The names the interception CA will put in a certificate: a DNS host name or an IP
// address literal, validated strictly and normalised, so that one name has one cache key
// and nothing a client sends (SNI) can smuggle a wildcard or an odd encoding into a SAN.
//
//   INTERLOCK_ASSIGN_OR_RETURN(LeafName name, NormalizeLeafName("API.Example.com."));
//   // name.text == "api.example.com", name.is_ip == false
//
// Rules (INVALID_ARGUMENT otherwise, the message quoting the name printably):
//   IP literal   what inet_pton(3) accepts for AF_INET or AF_INET6 (dotted quad only; no
//                brackets, no zone id), normalised to inet_ntop's text ("::1",
//                "::ffff:1.2.3.4").
//   DNS name     RFC 1123 host name: labels of 1..63 letters, digits and hyphens, not
//                starting or ending with a hyphen; at most 253 characters; lowercased; one
//                trailing dot (an absolute name) is dropped. No wildcards, no underscores,
//                no empty labels, no NUL, no non-ASCII (IDNs arrive as A-labels, "xn--").
//   Neither      a name whose last label is numeric ("999.1.1.1", "1.2.3", "10.0x1"):
//                RFC 1123 labels allow it, but resolvers and browsers (WHATWG URL host
//                parsing) read such a name as an IPv4 address, inet_pton does not, so it is
//                neither a name nor an address we can vouch for. No real TLD is numeric.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::net {

// RFC 1035 §2.3.4: 255 octets on the wire, which is 253 characters of dotted text.
inline constexpr size_t kMaxDnsNameLength = 253;
inline constexpr size_t kMaxDnsLabelLength = 63;

struct LeafName {
  std::string text;  // normalised: lowercase DNS name, or inet_ntop text of the address
  bool is_ip = false;
};

absl::StatusOr<LeafName> NormalizeLeafName(absl::string_view name);

}  // namespace interlock::net
