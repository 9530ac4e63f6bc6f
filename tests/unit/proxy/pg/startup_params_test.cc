// Startup parameters as an allow-list: what psql, libpq and JDBC send passes; a role,
// session authorization, server switch or client-only encoding, by any spelling, does not.
#include "userspace/proxy/pg/startup_params.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace interlock::proxy::pg {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;
using ::testing::HasSubstr;

TEST(StartupParams, WhatCommonClientsSendPasses) {
  // psql 15 / libpq (psycopg2, pgbench): application_name, client_encoding, options from
  // PGOPTIONS; JDBC: client_encoding, DateStyle, TimeZone, extra_float_digits.
  EXPECT_TRUE(CheckStartupParameters({{"application_name", "psql"}, {"client_encoding", "UTF8"}}, {}).ok());
  EXPECT_TRUE(CheckStartupParameters({{"client_encoding", "SQL_ASCII"}}, {}).ok());
  EXPECT_TRUE(CheckStartupParameters({{"DateStyle", "ISO"}, {"TimeZone", "UTC"}, {"extra_float_digits", "2"},
                                      {"IntervalStyle", "iso_8601"}, {"statement_timeout", "5s"}},
                                     {})
                  .ok());
  EXPECT_TRUE(CheckStartupParameters({{"options", "-c statement_timeout=5s --DateStyle=ISO -cTimeZone=UTC"}}, {}).ok());
  EXPECT_TRUE(CheckStartupParameters({{"options", ""}}, {}).ok());
}

TEST(StartupParams, RoleChangesBySpellingAreRefused) {
  for (const Params& p : std::vector<Params>{
           {{"role", "postgres"}},
           {{"ROLE", "postgres"}},
           {{"session_authorization", "postgres"}},
           {{"options", "-c role=postgres"}},
           {{"options", "-crole=postgres"}},
           {{"options", "--role=postgres"}},
           {{"options", "--session-authorization=postgres"}},
           {{"options", "-c session_authorization=postgres"}},
           {{"options", "-c application_name=x -c role=postgres"}},
           {{"options", "-c\\ role=postgres"}},
       }) {
    absl::Status s = CheckStartupParameters(p, {});
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << p[0].first << "=" << p[0].second;
    EXPECT_THAT(absl::AsciiStrToLower(s.message()),
                ::testing::AnyOf(HasSubstr("role"), HasSubstr("session"), HasSubstr("-c")))
        << s;
  }
}

TEST(StartupParams, OtherSettingsAndSwitchesAreRefused) {
  for (const Params& p : std::vector<Params>{
           {{"search_path", "evil,public"}},
           {{"standard_conforming_strings", "off"}},
           {{"options", "-c standard_conforming_strings=off"}},
           {{"options", "-F"}},
           {{"options", "-e"}},
           {{"options", "-c"}},
           {{"options", "-c application_name"}},
           {{"options", "somedb"}},
           {{"options", "-c options=-crole=x"}},
           {{"myext.setting", "1"}},
           {{"default_transaction_read_only", "off"}},
       }) {
    EXPECT_TRUE(absl::IsPermissionDenied(CheckStartupParameters(p, {}))) << p[0].first << "=" << p[0].second;
  }
}

TEST(StartupParams, ClientOnlyEncodingsAreRefused) {
  for (const char* e : {"SJIS", "sjis", "Shift_JIS", "BIG5", "GBK", "GB18030", "JOHAB", "UHC", "WIN932"}) {
    absl::Status s = CheckStartupParameters({{"client_encoding", e}}, {});
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << e;
    EXPECT_THAT(std::string(s.message()), HasSubstr("client-only")) << e;
    Params in_options = {{"options", absl::StrCat("-c client_encoding=", e)}};
    EXPECT_TRUE(absl::IsPermissionDenied(CheckStartupParameters(in_options, {}))) << e;
  }
  EXPECT_TRUE(CheckStartupParameters({{"client_encoding", "LATIN1"}}, {}).ok());
}

TEST(StartupParams, ConfigAddsNames) {
  EXPECT_TRUE(CheckStartupParameters({{"search_path", "app"}}, {"search_path"}).ok());
  EXPECT_TRUE(CheckStartupParameters({{"options", "-c search_path=app"}}, {"Search_Path"}).ok());
  EXPECT_FALSE(CheckStartupParameters({{"role", "x"}}, {"search_path"}).ok());
}

TEST(StartupParams, OptionsSplitLikeTheServer) {
  EXPECT_THAT(SplitStartupOptions("  -c a=b\\ c   --x=y "), ::testing::ElementsAre("-c", "a=b c", "--x=y"));
  EXPECT_THAT(SplitStartupOptions("a\\\\b"), ::testing::ElementsAre("a\\b"));
  EXPECT_TRUE(SplitStartupOptions(" \t ").empty());
}

}  // namespace
}  // namespace interlock::proxy::pg
