#include "userspace/approval/store_rows.h"

namespace interlock::approval::rows {

absl::string_view StateWord(v1::ApprovalState state) {
  switch (state) {
    case v1::APPROVAL_STATE_PENDING:
      return "pending";
    case v1::APPROVAL_STATE_APPROVED:
      return "approved";
    case v1::APPROVAL_STATE_DENIED:
      return "denied";
    case v1::APPROVAL_STATE_TIMED_OUT:
      return "timed out";
    case v1::APPROVAL_STATE_EXPIRED:
      return "expired";
    default:
      return "decided";
  }
}

absl::Status CheckDecision(absl::string_view prefix, absl::string_view id, v1::ApprovalState state,
                           int64_t window_until_us) {
  const bool decision = state == v1::APPROVAL_STATE_APPROVED || state == v1::APPROVAL_STATE_DENIED ||
                        state == v1::APPROVAL_STATE_TIMED_OUT || state == v1::APPROVAL_STATE_EXPIRED;
  if (!decision) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "resolve ", id, ": ", v1::ApprovalState_Name(state), " is not a decision"));
  }
  if (state != v1::APPROVAL_STATE_APPROVED && window_until_us != 0) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "resolve ", id, ": only an approval has a window"));
  }
  return absl::OkStatus();
}

}  // namespace interlock::approval::rows
