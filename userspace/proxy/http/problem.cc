#include "userspace/proxy/http/problem.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/json_text.h"

namespace interlock::proxy::http {

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string JsonQuote(absl::string_view text) {
  std::string out;
  AppendJsonQuoted(text, &out);
  return out;
}

std::string ProblemResponse(const Problem& p) {
  std::string body = absl::StrCat("{\"type\":\"about:blank\",\"title\":", JsonQuote(p.title), ",\"status\":", p.status,
                                  ",\"detail\":", JsonQuote(p.detail));
  if (!p.rule.empty()) absl::StrAppend(&body, ",\"interlock_rule\":", JsonQuote(p.rule));
  if (!p.reason.empty()) absl::StrAppend(&body, ",\"interlock_reason\":", JsonQuote(p.reason));
  absl::StrAppend(&body, "}\n");
  std::string out = absl::StrCat("HTTP/1.1 ", p.status, " ", ReasonPhrase(p.status),
                                 "\r\nContent-Type: application/problem+json\r\nCache-Control: no-store\r\n"
                                 "Content-Length: ",
                                 body.size(), "\r\n");
  if (p.bearer_challenge) absl::StrAppend(&out, "WWW-Authenticate: Bearer realm=\"interlock\"\r\n");
  if (p.close) absl::StrAppend(&out, "Connection: close\r\n");
  absl::StrAppend(&out, "\r\n");
  if (!p.head) absl::StrAppend(&out, body);
  return out;
}

}  // namespace interlock::proxy::http
