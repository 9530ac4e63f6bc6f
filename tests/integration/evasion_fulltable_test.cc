// Full-table operations however they are spelled: with the shipped bank policy
// (review-whole-customer-table, review-whole-table-writes: full_table in policy.proto), a
// tautological WHERE (`WHERE true`, `1=1`, `id > 0`) on UPDATE/DELETE, a SELECT whose
// LIMIT is larger than the table, and an INSERT ... SELECT of the whole table are held for
// a human, decided by the planner's estimates on interlockd's own connection; narrow
// statements run without a hold. Through the real redirect, as the unprivileged agent
// (evasion_fixture.h).
#include "tests/integration/evasion_fixture.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class FullTableTest : public EvasionTest {
 protected:
  void SetUp() override {
    EvasionTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    // 1000 customers (ids 1 and 2 are the fixture's), and statistics the planner uses.
    auto seeded = pg_->Psql(
        "INSERT INTO customers SELECT g, 'customer ' || g, NULL, NULL, NULL, 'n' "
        "FROM generate_series(3, 1000) g; ANALYZE customers",
        "bank");
    ASSERT_TRUE(seeded.ok()) << seeded.status();
    ASSERT_EQ(Direct("SELECT count(*) FROM customers"), "1000");
  }

  // Runs `sql` as the agent, expects it held, denies it, and returns what the agent saw.
  AgentResult ExpectHeldAndDeny(const std::string& sql) {
    AgentResult agent;
    JoinedThread t([&] { agent = Psql(sql, 60); });
    std::string id = h_->WaitForPendingApproval();
    EXPECT_FALSE(id.empty()) << sql << " was not held\n" << h_->DaemonLog();
    if (!id.empty()) {
      CommandResult denied = h_->Cli({"deny", id, "--reason", "whole table"});
      EXPECT_EQ(denied.exit_code, 0) << denied.err;
    }
    t.join();
    EXPECT_THAT(agent.out, HasSubstr("42501")) << sql << ":\n" << agent.out;
    return agent;
  }
};

TEST_F(FullTableTest, EverySpellingOfTheWholeTableIsHeld) {
  for (const std::string sql : {"SELECT * FROM customers LIMIT 1000000",
                                "SELECT * FROM customers WHERE id > 0",
                                "SELECT name FROM public.customers WHERE 1 = 1 LIMIT 5000"}) {
    AgentResult r = ExpectHeldAndDeny(sql);
    EXPECT_THAT(r.out, Not(HasSubstr("customer 999"))) << sql << ":\n" << r.out;
  }
  ExpectHeldAndDeny("DELETE FROM customers WHERE true");
  EXPECT_EQ(Direct("SELECT count(*) FROM customers"), "1000");
  ExpectHeldAndDeny("DELETE FROM customers WHERE id > 0");
  EXPECT_EQ(Direct("SELECT count(*) FROM customers"), "1000");
  ExpectHeldAndDeny("UPDATE customers SET note = '' WHERE 1=1");
  EXPECT_EQ(Direct("SELECT count(*) FROM customers WHERE note = ''"), "0");
  // Copied into another table, to be read from there.
  ExpectHeldAndDeny("INSERT INTO accounts SELECT id + 100, id, 0 FROM customers WHERE id > 0");
  EXPECT_EQ(Direct("SELECT count(*) FROM accounts"), "2");
  // The held statements are audited with the rule that held them.
  std::string audit;
  for (const auto& ev : h_->AuditEvents()) absl::StrAppend(&audit, ev.DebugString());
  EXPECT_THAT(audit, HasSubstr("review-whole-customer-table"));
  EXPECT_THAT(audit, HasSubstr("review-whole-table-writes"));
}

TEST_F(FullTableTest, NarrowStatementsRunWithoutAHold) {
  AgentResult r = Psql({"SELECT name FROM customers WHERE id = 1",
                        "SELECT name FROM customers ORDER BY id LIMIT 10",
                        "SELECT count(*) FROM customers WHERE id > 990",
                        "DELETE FROM customers WHERE id = 3",
                        "UPDATE customers SET note = 'x' WHERE id = 4"},
                       30);
  EXPECT_EQ(r.exit_code, 0) << r.out << h_->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("Ada Lovelace"));
  EXPECT_THAT(r.out, HasSubstr("customer 10\n"));
  EXPECT_THAT(r.out, HasSubstr("\n10\n"));
  EXPECT_THAT(r.out, HasSubstr("DELETE 1"));
  EXPECT_THAT(r.out, HasSubstr("UPDATE 1"));
  EXPECT_THAT(r.out, Not(HasSubstr("42501"))) << r.out;
  EXPECT_EQ(Direct("SELECT count(*) FROM customers"), "999");
  EXPECT_EQ(Direct("SELECT note FROM customers WHERE id = 4"), "x");
}

}  // namespace
}  // namespace interlock::testing
