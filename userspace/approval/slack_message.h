// The Slack / Microsoft Teams incoming-webhook body of an approval notification
// (Approvals.webhook_format = WEBHOOK_FORMAT_SLACK): a pure function from
// v1::ApprovalNotification to JSON text, so approvers can point the webhook straight at a
// chat channel instead of a receiver of their own.
//
//   {"text": "<everything, mrkdwn>", "blocks": [<Block Kit sections>]}
//
// Slack shows `blocks` and uses `text` for notifications; Teams incoming webhooks and
// Workflows read `text` alone, so `text` carries everything: who (workload, token
// subject, uid), what (resource, the held statement or request exactly as audited, i.e.
// audit_statement with literals replaced), rule, reason, deadline, and the commands.
//
// The statement, workload names and reasons may be written by the agent being held.
// Everything taken from the notification is therefore:
//   - escaped for mrkdwn (`&` -> `&amp;`, `<` -> `&lt;`, `>` -> `&gt;`), so no
//     `<!channel>`, `<@U123>` or `<http://evil|click here>` survives as a mention or
//     link;
//   - put inside code spans or a code block (where Slack neither formats nor auto-links),
//     with every backtick followed by U+200B ZERO WIDTH SPACE so it cannot close the span;
//   - capped in length (a Slack section's text is at most 3000 characters), with "…"
//     marking a cut, never inside a UTF-8 sequence or an escape;
//   - written as JSON with invalid UTF-8 replaced by U+FFFD.
//
//   v1::ApprovalNotification n = ...;
//   std::string body = approval::SlackApprovalMessage(n);  // POST as application/json
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "interlock/v1/approval.pb.h"

namespace interlock::approval {

// The JSON body for a Slack/Teams incoming webhook. Never fails: every input gives
// valid JSON whose section texts are within kMaxSlackSectionChars.
std::string SlackApprovalMessage(const v1::ApprovalNotification& n);

// `raw` as literal mrkdwn text for inside a code span or block: valid-UTF-8 boundaries,
// `&<>` escaped, backticks defused, at most `max_bytes` bytes (a cut ends in "…").
// Exposed for tests.
std::string SlackCodeText(absl::string_view raw, size_t max_bytes);

// Slack's limit on a section block's text, in characters; we count bytes (never fewer).
inline constexpr size_t kMaxSlackSectionChars = 3000;

}  // namespace interlock::approval
