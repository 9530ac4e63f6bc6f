// What every approval store (store.h) does the same way with its rows: the proto blob
// written (refusing what would not read back) and read, the words for a request's state,
// and the argument checks of ApprovalStore::Resolve. Messages start with the store's
// `prefix` ("approval store: ", "approval store (postgres): ").
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/approval.pb.h"

namespace interlock::approval::rows {

// Serializes `message`, refusing what would not parse back (proto3 string fields must
// be UTF-8): a stored row that cannot be read would break every listing after it.
template <typename Message>
absl::StatusOr<std::string> Serialize(const Message& message, absl::string_view prefix, absl::string_view what) {
  std::string blob;
  Message check;
  if (!message.SerializeToString(&blob) || !check.ParseFromString(blob)) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, what, ": not storable (a string field is not UTF-8?)"));
  }
  return blob;
}

// DATA_LOSS when a stored blob does not parse.
template <typename Message>
absl::StatusOr<Message> Parse(absl::string_view blob, absl::string_view prefix, absl::string_view what) {
  Message message;
  if (!message.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
    return absl::DataLossError(absl::StrCat(prefix, what, ": stored record does not parse"));
  }
  return message;
}

// "pending", "approved", "denied", "timed out", "expired".
absl::string_view StateWord(v1::ApprovalState state);

// INVALID_ARGUMENT unless `state` is a decision (APPROVED, DENIED, TIMED_OUT, EXPIRED)
// and only an approval carries a window.
absl::Status CheckDecision(absl::string_view prefix, absl::string_view id, v1::ApprovalState state,
                           int64_t window_until_us);

}  // namespace interlock::approval::rows
