#include "userspace/common/proc_ids.h"

#include <unistd.h>

#include <algorithm>

#include "gtest/gtest.h"

namespace interlock {
namespace {

TEST(ProcIds, ReadsTheRealIdsOfAStatusText) {
  auto ids = ParseProcStatusIds(
      "Name:\tsh\nUmask:\t0022\nUid:\t1001\t0\t0\t0\nGid:\t1002\t1002\t1002\t1002\nGroups:\t27 \n");
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(ids->uid, 1001u) << "the real uid, not the effective one";
  EXPECT_EQ(ids->gid, 1002u);
}

TEST(ProcIds, MissingOrMalformedLinesAreNothing) {
  EXPECT_FALSE(ParseProcStatusIds("Name:\tsh\nUid:\t1001\t1001\t1001\t1001\n").has_value());
  EXPECT_FALSE(ParseProcStatusIds("Uid:\tx\t1\t1\t1\nGid:\t1\t1\t1\t1\n").has_value());
  EXPECT_FALSE(ParseProcStatusIds("Uid:\nGid:\t1\t1\t1\t1\n").has_value());
  EXPECT_FALSE(ParseProcStatusIds("").has_value());
}

TEST(ProcIds, ListsThisProcess) {
  std::vector<ProcIds> all = ListProcIds();
  auto self = std::find_if(all.begin(), all.end(), [](const ProcIds& p) { return p.pid == getpid(); });
  ASSERT_NE(self, all.end());
  EXPECT_EQ(self->uid, getuid());
  EXPECT_EQ(self->gid, getgid());
  EXPECT_TRUE(ListProcIds("/nonexistent-proc").empty());
}

}  // namespace
}  // namespace interlock
