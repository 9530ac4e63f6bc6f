#include "userspace/net/leaf_name.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/common/printable.h"

namespace interlock::net {
namespace {

absl::Status Invalid(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("interception ca: name \"", common::Printable(name, 80).text, "\": ", why));
}

bool IsLdh(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-'; }

// "999", "0x1f", "0X": the forms WHATWG's IPv4 number parser accepts for a last label.
bool IsNumericLabel(absl::string_view label) {
  if (absl::StartsWithIgnoreCase(label, "0x")) {
    label.remove_prefix(2);
    for (char c : label) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
  }
  for (char c : label) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return !label.empty();
}

}  // namespace

absl::StatusOr<LeafName> NormalizeLeafName(absl::string_view name) {
  if (name.empty()) return Invalid(name, "empty");
  if (name.find('\0') != absl::string_view::npos) return Invalid(name, "contains NUL");
  if (name.size() <= INET6_ADDRSTRLEN) {
    std::string text(name);
    unsigned char addr[sizeof(in6_addr)];
    char out[INET6_ADDRSTRLEN];
    for (int family : {AF_INET, AF_INET6}) {
      if (::inet_pton(family, text.c_str(), addr) == 1 &&
          ::inet_ntop(family, addr, out, sizeof out) != nullptr) {
        return LeafName{.text = out, .is_ip = true};
      }
    }
  }

  absl::string_view dns = name;
  if (absl::EndsWith(dns, ".")) dns.remove_suffix(1);  // absolute name
  if (dns.size() > kMaxDnsNameLength) {
    return Invalid(name, absl::StrCat("longer than ", kMaxDnsNameLength, " characters"));
  }
  absl::string_view last;
  for (absl::string_view label : absl::StrSplit(dns, '.')) {
    if (label.empty()) return Invalid(name, "empty label");
    if (label == "*" || label.find('*') != absl::string_view::npos) {
      return Invalid(name, "wildcards are not minted");
    }
    if (label.size() > kMaxDnsLabelLength) {
      return Invalid(name, absl::StrCat("label longer than ", kMaxDnsLabelLength));
    }
    for (char c : label) {
      if (!IsLdh(c)) return Invalid(name, "not a host name: only letters, digits, '-' and '.'");
    }
    if (label.front() == '-' || label.back() == '-') {
      return Invalid(name, "label starts or ends with '-'");
    }
    last = label;
  }
  if (IsNumericLabel(last)) {
    return Invalid(name, "numeric last label: neither a host name nor an IP address");
  }
  return LeafName{.text = absl::AsciiStrToLower(dns), .is_ip = false};
}

}  // namespace interlock::net
