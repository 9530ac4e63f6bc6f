// The agent's startup parameters as an allow-list. Every startup parameter PostgreSQL does
// not know as a protocol field is a run-time setting applied with the login role's rights
// before the first statement (docs 55.7 "StartupMessage"; `options` carries command-line
// switches, `-c name=value` and `--name=value`): `role=admin`, `options=-c role=admin` or
// `options=--session-authorization=admin` would change the session's role where the
// guard never sees a statement, and `client_encoding=SJIS` would make every later
// statement read differently by the server than by the classifier. Pure.
//
//   absl::Status ok = CheckStartupParameters(agent_params, config.extra_startup_parameters);
//   if (!ok.ok()) return Fatal("42501", ok.message());   // names the parameter
//
// Allowed: application_name, client_encoding (a server-safe encoding), DateStyle,
// TimeZone, IntervalStyle, extra_float_digits, statement_timeout, lock_timeout,
// idle_in_transaction_session_timeout — what psql, libpq (psycopg2, pgbench), JDBC and
// node-postgres send — plus the names the resource's config adds (search_path, say);
// `options` when every switch in it is `-c`/`--` of an allowed name. Names compare as
// PostgreSQL compares setting names (case-insensitive; `-` in a long option is `_`).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace interlock::proxy::pg {

// The startup parameters the agent may set, for tests and documentation.
const std::vector<std::string>& BuiltinStartupParameters();

// OK, or PERMISSION_DENIED whose message names the refused parameter and why
// (`startup parameter "role" is not allowed`, `options switch "-F" is not allowed`,
// `client_encoding "SJIS" is a client-only encoding ...`). `params` excludes user,
// database, replication and protocol options (_pq_.*), which the session handles itself.
absl::Status CheckStartupParameters(const std::vector<std::pair<std::string, std::string>>& params,
                                    const std::vector<std::string>& extra_allowed);

// The `options` value split as the server splits it (pg_split_opts: whitespace separates,
// a backslash makes the next character literal).
std::vector<std::string> SplitStartupOptions(absl::string_view options);

}  // namespace interlock::proxy::pg
