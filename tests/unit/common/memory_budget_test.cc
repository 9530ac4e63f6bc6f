#include "userspace/common/memory_budget.h"

#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace interlock {
namespace {

TEST(MemoryBudget, LeasesShareTheLimitAndGiveBackOnDestruction) {
  MemoryBudget budget(100);
  {
    MemoryBudget::Lease a = budget.NewLease();
    MemoryBudget::Lease b = budget.NewLease();
    EXPECT_TRUE(a.Set(60));
    EXPECT_TRUE(b.Set(40));
    EXPECT_EQ(budget.used(), 100u);
    EXPECT_FALSE(b.Set(41)) << "one byte past the limit";
    EXPECT_EQ(b.bytes(), 40u) << "a refused Set changes nothing";
    EXPECT_EQ(budget.refusals(), 1u);
    EXPECT_TRUE(a.Set(10));  // shrinking always succeeds
    EXPECT_TRUE(b.Set(90));
    EXPECT_TRUE(budget.Below(1));
  }
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(budget.peak(), 100u);
}

TEST(MemoryBudget, MovedLeasesKeepOneShare) {
  MemoryBudget budget(100);
  std::vector<MemoryBudget::Lease> leases;
  for (int i = 0; i < 4; ++i) {
    leases.push_back(budget.NewLease());
    ASSERT_TRUE(leases.back().Set(25));
  }
  EXPECT_EQ(budget.used(), 100u);
  MemoryBudget::Lease moved = std::move(leases[0]);
  EXPECT_EQ(budget.used(), 100u);
  moved = budget.NewLease();  // the moved-in share is given back
  EXPECT_EQ(budget.used(), 75u);
  leases.clear();
  EXPECT_EQ(budget.used(), 0u);
}

TEST(MemoryBudget, HugeRequestsDoNotWrap) {
  MemoryBudget budget(100);
  MemoryBudget::Lease a = budget.NewLease();
  EXPECT_TRUE(a.Set(50));
  EXPECT_FALSE(a.Set(static_cast<size_t>(-1)));
  EXPECT_EQ(budget.used(), 50u);
  MemoryBudget::Lease unbounded;  // no budget: accepts anything
  EXPECT_TRUE(unbounded.Set(1u << 30));
}

}  // namespace
}  // namespace interlock
