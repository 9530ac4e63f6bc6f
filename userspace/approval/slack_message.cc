#include "userspace/approval/slack_message.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "userspace/common/json_text.h"

namespace interlock::approval {
namespace {

// Per-field caps (bytes of escaped text). The details section's caps add up to well under
// kMaxSlackSectionChars, with room for its labels.
constexpr size_t kMaxIdBytes = 128;
constexpr size_t kMaxNameBytes = 200;   // workload, subject, resource, rule, host
constexpr size_t kMaxShortBytes = 64;   // user, comm, protocol, classification
constexpr size_t kMaxReasonBytes = 600;
constexpr size_t kMaxCommandBytes = 400;
// The statement's code block: the section's limit less its label and fences.
constexpr size_t kMaxStatementBytes = 2800;

constexpr absl::string_view kEllipsis = "\xE2\x80\xA6";           // U+2026
constexpr absl::string_view kZeroWidthSpace = "\xE2\x80\x8B";     // U+200B
constexpr absl::string_view kModifierGrave = "\xCB\x8B";          // U+02CB, for ` in spans

// Length of the UTF-8 sequence starting at s[i]; 1 for a byte that does not start a
// well-formed one (AppendJsonQuoted later turns it into U+FFFD), so a cut never splits
// a character.
size_t Utf8Len(absl::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
  }
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

std::string CodeText(absl::string_view raw, size_t max_bytes, bool block) {
  std::string out;
  std::vector<size_t> ends;  // out.size() after each character, to cut on a boundary
  bool cut = false;
  for (size_t i = 0; i < raw.size();) {
    const size_t n = Utf8Len(raw, i);
    absl::string_view ch = raw.substr(i, n);
    i += n;
    std::string piece;
    if (ch == "&") {
      piece = "&amp;";
    } else if (ch == "<") {
      piece = "&lt;";
    } else if (ch == ">") {
      piece = "&gt;";
    } else if (ch == "`") {
      // In a block, ``` closes it: a zero-width space after each backtick keeps them
      // apart (and the text readable). In a span, one backtick closes it.
      piece = block ? absl::StrCat("`", kZeroWidthSpace) : std::string(kModifierGrave);
    } else if (n == 1 && (static_cast<unsigned char>(ch[0]) < 0x20 || ch[0] == 0x7f)) {
      piece = (block && (ch == "\n" || ch == "\t")) ? std::string(ch) : " ";
    } else {
      piece = std::string(ch);
    }
    if (out.size() + piece.size() > max_bytes) {
      cut = true;
      break;
    }
    out += piece;
    ends.push_back(out.size());
  }
  if (cut) {
    while (!ends.empty() && ends.back() + kEllipsis.size() > max_bytes) ends.pop_back();
    out.resize(ends.empty() ? 0 : ends.back());
    if (kEllipsis.size() <= max_bytes) out.append(kEllipsis.data(), kEllipsis.size());
  }
  return out;
}

// `raw` as an inline code span, or "-" when empty.
std::string Span(absl::string_view raw, size_t max_bytes) {
  if (raw.empty()) return "-";
  return absl::StrCat("`", CodeText(raw, max_bytes, /*block=*/false), "`");
}

std::string Block(absl::string_view raw, size_t max_bytes) {
  return absl::StrCat("```\n", CodeText(raw, max_bytes, /*block=*/true), "\n```");
}

std::string FormatDeadline(int64_t deadline_us) {
  if (deadline_us <= 0) return "none";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMicros(deadline_us), absl::UTCTimeZone());
}

void AppendSection(absl::string_view text, std::string* json) {
  if (json->back() != '[') json->push_back(',');
  json->append(R"({"type":"section","text":{"type":"mrkdwn","text":)");
  AppendJsonQuoted(text, json);
  json->append("}}");
}

}  // namespace

std::string SlackCodeText(absl::string_view raw, size_t max_bytes) { return CodeText(raw, max_bytes, true); }

std::string SlackApprovalMessage(const v1::ApprovalNotification& n) {
  const v1::ApprovalRequest& r = n.request();
  const v1::WorkloadIdentity& who = r.requester();
  const std::string& subject = r.token_subject().empty() ? who.token_subject() : r.token_subject();

  std::string title = absl::StrCat("*Interlock: approval requested* on ", Span(n.host(), kMaxNameBytes),
                                   " for request ", Span(r.id(), kMaxIdBytes));

  std::vector<std::string> lines;
  lines.push_back(absl::StrCat("*Workload:* ", Span(who.workload(), kMaxNameBytes),
                               "  *Token subject:* ", Span(subject, kMaxNameBytes)));
  lines.push_back(absl::StrCat("*Process:* uid ", who.uid(), " ", Span(who.user(), kMaxShortBytes), ", pid ",
                               who.pid(), " ", Span(who.comm(), kMaxShortBytes)));
  lines.push_back(absl::StrCat("*Resource:* ", Span(r.resource(), kMaxNameBytes), " (",
                               Span(r.protocol().empty() ? "postgres" : r.protocol(), kMaxShortBytes),
                               ", database ", Span(r.database(), kMaxNameBytes), ", user ",
                               Span(r.db_user(), kMaxShortBytes), ")"));
  lines.push_back(absl::StrCat("*Rule:* ", Span(r.rule_id(), kMaxNameBytes), "  *Class:* ",
                               Span(r.classification(), kMaxShortBytes)));
  lines.push_back(absl::StrCat("*Reason:* ", Span(r.reason(), kMaxReasonBytes)));
  lines.push_back(absl::StrCat("*Deadline:* ", FormatDeadline(r.deadline_us()),
                               " (held until then, then refused)"));
  std::string details = absl::StrJoin(lines, "\n");

  // The notification's statement is the audited one (ForAudit in the broker); prefer
  // audit_statement should a caller pass a raw request.
  const std::string& statement = r.audit_statement().empty() ? r.statement() : r.audit_statement();
  std::string held = absl::StrCat("*Held statement (as audited):*\n", Block(statement, kMaxStatementBytes));

  const std::string approve =
      n.approve_command().empty() ? absl::StrCat("interlock approve ", r.id()) : n.approve_command();
  const std::string deny =
      n.deny_command().empty() ? absl::StrCat("interlock deny ", r.id(), " --reason '...'") : n.deny_command();
  std::string commands =
      absl::StrCat("*Decide on the host:*\n", Block(absl::StrCat(approve, "\n", deny), 2 * kMaxCommandBytes + 1));

  std::string text = absl::StrJoin({title, details, held, commands}, "\n\n");
  std::string json = "{\"text\":";
  AppendJsonQuoted(text, &json);
  json.append(",\"blocks\":[");
  AppendSection(title, &json);
  AppendSection(details, &json);
  AppendSection(held, &json);
  AppendSection(commands, &json);
  json.append("]}");
  return json;
}

}  // namespace interlock::approval
