// The run-time parameters a query string sets through set_config(): what SET would show in
// its own syntax, but hidden in an expression (`SELECT set_config('role', 'admin', false)`),
// so that a guard can treat `set_config('role', ...)` like SET ROLE.
//
//   if (HasFunction(c, "set_config")) {
//     INTERLOCK_ASSIGN_OR_RETURN(auto calls, sql::FindSetConfigCalls(text, session));
//     for (const sql::SetConfigCall& call : calls)
//       if (call.parameter.empty() || call.parameter == "role") ...   // unknown or a role
//   }
//
// Pure, like classify.h. Only for strings that Classify analysed without a parse error
// (their nesting depth has been checked; parsing runs on a thread with a large stack).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/sql/classify.h"

namespace interlock::sql {

struct SetConfigCall {
  // Index of the top-level statement holding the call.
  int statement_index = 0;
  // The parameter name when the first argument is a string constant, lower-cased as
  // PostgreSQL compares GUC names; "" when it is anything else (an expression, a parameter
  // $n, a named argument): the caller cannot rule out any parameter.
  std::string parameter;
};

// Every call of a function named set_config (in any schema) in `sql`, read as `session`
// would. A syntax error yields no calls (Classify reports it). kInternal / kResourceExhausted
// for internal failures only.
absl::StatusOr<std::vector<SetConfigCall>> FindSetConfigCalls(absl::string_view sql,
                                                              const SessionSettings& session);

}  // namespace interlock::sql
