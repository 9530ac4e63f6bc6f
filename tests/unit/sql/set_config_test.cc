// set_config() calls found in a query string, with the parameter each sets when it is a
// constant: how the guard tells `SELECT set_config('role', ...)` from other settings.
#include "userspace/sql/set_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::sql {
namespace {

std::vector<std::pair<int, std::string>> Calls(const std::string& sql, bool scs = true) {
  SessionSettings s;
  s.standard_conforming_strings = scs;
  auto calls = FindSetConfigCalls(sql, s);
  EXPECT_TRUE(calls.ok()) << calls.status();
  std::vector<std::pair<int, std::string>> out;
  if (calls.ok()) {
    for (const SetConfigCall& c : *calls) out.emplace_back(c.statement_index, c.parameter);
  }
  return out;
}

using P = std::pair<int, std::string>;
using ::testing::ElementsAre;

TEST(FindSetConfigCalls, ConstantNamesAreLowerCased) {
  EXPECT_THAT(Calls("SELECT set_config('ROLE', 'x', false)"), ElementsAre(P{0, "role"}));
  EXPECT_THAT(Calls("SELECT pg_catalog.set_config('session_authorization', 'x', false)"),
              ElementsAre(P{0, "session_authorization"}));
  EXPECT_THAT(Calls("SELECT \"set_config\"('search_path', 'x', false)"), ElementsAre(P{0, "search_path"}));
}

TEST(FindSetConfigCalls, AnythingButAConstantIsUnknown) {
  EXPECT_THAT(Calls("SELECT set_config(n, 'x', false) FROM (VALUES ('role')) v(n)"), ElementsAre(P{0, ""}));
  EXPECT_THAT(Calls("SELECT set_config('ro' || 'le', 'x', false)"), ElementsAre(P{0, ""}));
  EXPECT_THAT(Calls("SELECT set_config($1, $2, false)"), ElementsAre(P{0, ""}));
  EXPECT_THAT(Calls("SELECT set_config('role'::text, 'x', false)"), ElementsAre(P{0, ""}));
}

TEST(FindSetConfigCalls, FoundAnywhereAndPerStatement) {
  EXPECT_THAT(Calls("SELECT 1; SELECT id FROM t WHERE set_config('role', 'x', false) IS NOT NULL; "
                    "PREPARE p AS SELECT set_config('a.b', $1, false)"),
              ElementsAre(P{1, "role"}, P{2, "a.b"}));
  EXPECT_TRUE(Calls("SELECT my_set_config('role'), current_setting('role')").empty());
  EXPECT_TRUE(Calls("SELEC").empty());
}

TEST(FindSetConfigCalls, ReadsWithTheSessionsSettings) {
  // With standard_conforming_strings off the call is inside a string constant.
  const std::string sql = "SELECT 'a\\', set_config('role', 'x', false), 'b'";
  EXPECT_THAT(Calls(sql, true), ElementsAre(P{0, "role"}));
  EXPECT_TRUE(Calls(sql, false).empty());
}

}  // namespace
}  // namespace interlock::sql
