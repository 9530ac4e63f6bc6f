// ViewOrigins: a view's columns lead back to the table columns its definition reads, so a
// rule on the table masks the view too.
#include "userspace/proxy/pg/view_origins.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::proxy::pg {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Origins(const ColumnSource& s) {
  std::vector<std::string> out;
  for (const SourceName& o : s.origins) out.push_back(absl::StrCat(o.schema, ".", o.table, ".", o.column));
  return out;
}

TEST(ViewOrigins, ViewColumnsLeadToTheirTableColumns) {
  ViewOrigins v;
  // As pg_get_viewdef prints them.
  v.Add("public", "customer_directory", " SELECT customers.id,\n    customers.name,\n    customers.ssn AS tax_id\n   FROM customers;");
  v.Add("public", "shouting", " SELECT upper(customer_directory.tax_id) AS t\n   FROM customer_directory;");
  ColumnSource tax{"public", "customer_directory", "tax_id"};
  v.AddOrigins(3, &tax);
  EXPECT_THAT(Origins(tax), ElementsAre(".customers.ssn"));
  EXPECT_FALSE(tax.derived);
  // A view over the view: followed to the table, derived (an expression on the way).
  ColumnSource t{"public", "shouting", "t"};
  v.AddOrigins(1, &t);
  EXPECT_THAT(Origins(t), ElementsAre(".customer_directory.tax_id", ".customers.ssn"));
  EXPECT_TRUE(t.derived);
  // Not a view: nothing added.
  ColumnSource plain{"public", "customers", "ssn"};
  v.AddOrigins(3, &plain);
  EXPECT_THAT(Origins(plain), IsEmpty());
}

TEST(ViewOrigins, WhatCannotBeReadIsAnything) {
  ViewOrigins v;
  v.Add("public", "broken", "this is not sql");
  ColumnSource b{"public", "broken", "x"};
  v.AddOrigins(1, &b);
  EXPECT_THAT(Origins(b), ElementsAre(".*.*"));
  EXPECT_TRUE(b.derived);
  v.Add("public", "short", " SELECT 1 AS one;");
  ColumnSource s{"public", "short", "two"};
  v.AddOrigins(2, &s);  // no such position
  EXPECT_THAT(Origins(s), ElementsAre(".*.*"));
}

}  // namespace
}  // namespace interlock::proxy::pg
