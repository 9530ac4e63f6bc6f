#include "userspace/proxy/http/request_facts.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/codec/http/target.h"

namespace interlock::proxy::http {

namespace chttp = codec::http;

std::string HostWithoutPort(absl::string_view authority) {
  absl::string_view host = authority;
  if (absl::StartsWith(host, "[")) {
    size_t end = host.find(']');
    host = end == absl::string_view::npos ? host.substr(1) : host.substr(1, end - 1);
  } else if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (absl::EndsWith(host, ".")) host.remove_suffix(1);  // "api.internal." is "api.internal"
  return absl::AsciiStrToLower(host);
}

std::optional<JudgedRequest> JudgeRequest(const chttp::Request& req, absl::string_view sni,
                                          absl::Span<const std::string> elided, RequestRefusal* refusal) {
  auto refuse = [&](int status, std::string reason, std::string detail) -> std::optional<JudgedRequest> {
    *refusal = RequestRefusal{status, std::move(reason), std::move(detail)};
    return std::nullopt;
  };
  if (req.framing.upgrade) {
    return refuse(501, "tunnel_refused", "Upgrade (WebSocket, h2c) is not relayed through interlockd");
  }
  auto target = chttp::ParseTarget(req.target, req.method);
  if (!target.ok()) return refuse(400, "bad_target", std::string(target.status().message()));
  if (target->form == chttp::TargetForm::kAuthority) {
    return refuse(501, "tunnel_refused", "CONNECT is not relayed through interlockd");
  }
  const std::string host = HostWithoutPort(req.framing.host);
  if (target->form == chttp::TargetForm::kAbsolute && HostWithoutPort(target->authority) != host) {
    return refuse(421, "host_mismatch",
                  absl::StrCat("the request-target names ", HostWithoutPort(target->authority), ", Host says ", host));
  }
  if (!sni.empty() && HostWithoutPort(sni) != host) {
    return refuse(421, "host_mismatch",
                  absl::StrCat("the TLS connection is for ", HostWithoutPort(sni), ", Host says ", host));
  }
  JudgedRequest out;
  out.facts.method = std::string(req.method);
  out.facts.host = host;
  if (target->form == chttp::TargetForm::kAsterisk) {
    out.facts.path = "*";
  } else {
    auto path = chttp::NormalizePath(target->path);
    if (!path.ok()) return refuse(400, "bad_target", std::string(path.status().message()));
    out.facts.path = *std::move(path);
  }
  if (target->query.has_value()) {
    auto query = chttp::ParseQuery(*target->query);
    if (!query.ok()) return refuse(400, "bad_target", std::string(query.status().message()));
    for (chttp::QueryParam& q : *query) out.facts.query.emplace_back(std::move(q.name), std::move(q.value));
  }
  for (const chttp::HeaderField& f : req.fields) {
    out.facts.headers.emplace_back(absl::AsciiStrToLower(f.name), std::string(f.value));
  }
  std::vector<absl::string_view> names(std::begin(chttp::kDefaultElidedParams), std::end(chttp::kDefaultElidedParams));
  for (const std::string& n : elided) names.push_back(n);
  out.audit_target = chttp::ElideQueryParams(req.target, names);
  return out;
}

}  // namespace interlock::proxy::http
