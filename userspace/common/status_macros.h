// Status propagation macros. Debian's Abseil 20220623 ships no RETURN_IF_ERROR /
// ASSIGN_OR_RETURN, so Interlock defines its own, in one place.
//
//   absl::StatusOr<Config> Load(absl::string_view path) {
//     INTERLOCK_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     INTERLOCK_RETURN_IF_ERROR(Validate(text));
//     ...
//   }
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#define INTERLOCK_STATUS_CONCAT_INNER_(a, b) a##b
#define INTERLOCK_STATUS_CONCAT_(a, b) INTERLOCK_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define INTERLOCK_RETURN_IF_ERROR(expr)          \
  do {                                           \
    ::absl::Status interlock_status_ = (expr);   \
    if (!interlock_status_.ok()) return interlock_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise
// move-assigns the value to `lhs` (which may be a declaration).
#define INTERLOCK_ASSIGN_OR_RETURN(lhs, rexpr)                                   \
  INTERLOCK_ASSIGN_OR_RETURN_IMPL_(                                              \
      INTERLOCK_STATUS_CONCAT_(interlock_statusor_, __LINE__), lhs, rexpr)

#define INTERLOCK_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                     \
  if (!statusor.ok()) return std::move(statusor).status();     \
  lhs = std::move(statusor).value()

namespace interlock {

// Prepends `context` to a non-OK status message, keeping its code:
//   Annotate(st, "pg: startup") turns "length 70000 > max 10000" into
//   "pg: startup: length 70000 > max 10000".
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace interlock
