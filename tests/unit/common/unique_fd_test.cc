#include "userspace/common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "gtest/gtest.h"

namespace interlock {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// A fresh pipe; the caller owns both ends.
void MakePipe(int fds[2]) { ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0); }

TEST(UniqueFd, DefaultIsInvalid) {
  UniqueFd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
}

TEST(UniqueFd, ClosesOnDestruction) {
  int fds[2];
  MakePipe(fds);
  {
    UniqueFd r(fds[0]);
    UniqueFd w(fds[1]);
    EXPECT_TRUE(r.valid());
    EXPECT_TRUE(IsOpen(fds[0]));
  }
  EXPECT_FALSE(IsOpen(fds[0]));
  EXPECT_FALSE(IsOpen(fds[1]));
}

TEST(UniqueFd, MoveConstructTransfersOwnership) {
  int fds[2];
  MakePipe(fds);
  UniqueFd w(fds[1]);
  UniqueFd a(fds[0]);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(b.get(), fds[0]);
  EXPECT_TRUE(IsOpen(fds[0]));
}

TEST(UniqueFd, MoveAssignClosesPreviousFd) {
  int first[2];
  int second[2];
  MakePipe(first);
  MakePipe(second);
  UniqueFd keep1(first[1]);
  UniqueFd keep2(second[1]);
  UniqueFd target(first[0]);
  UniqueFd source(second[0]);
  target = std::move(source);
  EXPECT_FALSE(IsOpen(first[0]));
  EXPECT_TRUE(IsOpen(second[0]));
  EXPECT_EQ(target.get(), second[0]);
  EXPECT_FALSE(source.valid());  // NOLINT(bugprone-use-after-move)
}

TEST(UniqueFd, SelfMoveAssignKeepsFd) {
  int fds[2];
  MakePipe(fds);
  UniqueFd w(fds[1]);
  UniqueFd r(fds[0]);
  UniqueFd& alias = r;
  r = std::move(alias);
  EXPECT_EQ(r.get(), fds[0]);
  EXPECT_TRUE(IsOpen(fds[0]));
}

TEST(UniqueFd, ReleaseGivesUpOwnership) {
  int fds[2];
  MakePipe(fds);
  UniqueFd w(fds[1]);
  int raw;
  {
    UniqueFd r(fds[0]);
    raw = r.Release();
    EXPECT_FALSE(r.valid());
  }
  EXPECT_EQ(raw, fds[0]);
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(UniqueFd, ResetClosesAndAdopts) {
  int fds[2];
  MakePipe(fds);
  UniqueFd fd(fds[0]);
  fd.Reset(fds[1]);
  EXPECT_FALSE(IsOpen(fds[0]));
  EXPECT_EQ(fd.get(), fds[1]);
  fd.Reset();
  EXPECT_FALSE(IsOpen(fds[1]));
  EXPECT_FALSE(fd.valid());
}

}  // namespace
}  // namespace interlock
