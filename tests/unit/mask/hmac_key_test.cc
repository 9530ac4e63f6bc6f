#include "userspace/mask/hmac_key.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::mask {
namespace {

using ::testing::HasSubstr;

// A fresh directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/mask_key_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    path_ = tmpl;
  }
  ~TempDir() {
    ::nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class MaskKeyTest : public ::testing::Test {
 protected:
  std::string KeyPath() const { return absl::StrCat(dir_, "/mask.key"); }
  void WriteKey(const std::string& data, mode_t mode) {
    int fd = ::open(KeyPath().c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::fchmod(fd, mode);
    ::close(fd);
  }

  TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(MaskKeyTest, CreatesA32ByteKeyWithMode0600) {
  auto key = LoadOrCreateMaskKey(dir_);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->size(), 32u);
  EXPECT_NE(*key, std::string(32, '\0'));
  struct stat st;
  ASSERT_EQ(::lstat(KeyPath().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  // No temporary file is left behind.
  EXPECT_NE(::access(absl::StrCat(KeyPath(), ".tmp.", ::getpid()).c_str(), F_OK), 0);
}

TEST_F(MaskKeyTest, LoadsTheSameKeyAgain) {
  auto first = LoadOrCreateMaskKey(dir_);
  auto second = LoadOrCreateMaskKey(dir_);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, *second);
}

TEST_F(MaskKeyTest, DifferentDirsGetDifferentKeys) {
  TempDir other;
  auto a = LoadOrCreateMaskKey(dir_);
  auto b = LoadOrCreateMaskKey(other.path());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST_F(MaskKeyTest, LoadsAnExistingKey) {
  const std::string want(32, 'z');
  WriteKey(want, 0600);
  auto key = LoadOrCreateMaskKey(dir_);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, want);
  WriteKey(want, 0400);
  EXPECT_TRUE(LoadOrCreateMaskKey(dir_).ok());
}

TEST_F(MaskKeyTest, RefusesGroupOrOtherAccess) {
  WriteKey(std::string(32, 'z'), 0644);
  auto key = LoadOrCreateMaskKey(dir_);
  EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(key.status().message(), HasSubstr("0644"));
  EXPECT_THAT(key.status().message(), HasSubstr(KeyPath()));
  WriteKey(std::string(32, 'z'), 0640);
  EXPECT_EQ(LoadOrCreateMaskKey(dir_).status().code(), absl::StatusCode::kFailedPrecondition);
  WriteKey(std::string(32, 'z'), 0602);
  EXPECT_EQ(LoadOrCreateMaskKey(dir_).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MaskKeyTest, RefusesWrongSize) {
  WriteKey(std::string(31, 'z'), 0600);
  auto key = LoadOrCreateMaskKey(dir_);
  EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(key.status().message(), HasSubstr("31 bytes"));
  WriteKey("", 0600);
  EXPECT_EQ(LoadOrCreateMaskKey(dir_).status().code(), absl::StatusCode::kFailedPrecondition);
  // The broken key is never replaced behind the operator's back.
  struct stat st;
  ASSERT_EQ(::stat(KeyPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(MaskKeyTest, RefusesSymlinks) {
  const std::string target = absl::StrCat(dir_, "/elsewhere");
  ASSERT_EQ(::symlink(target.c_str(), KeyPath().c_str()), 0);
  auto key = LoadOrCreateMaskKey(dir_);
  EXPECT_FALSE(key.ok());
  EXPECT_NE(::access(target.c_str(), F_OK), 0) << "followed the symlink";
}

TEST_F(MaskKeyTest, RefusesADirectory) {
  ASSERT_EQ(::mkdir(KeyPath().c_str(), 0700), 0);
  EXPECT_FALSE(LoadOrCreateMaskKey(dir_).ok());
}

TEST_F(MaskKeyTest, MissingStateDirIsNotFound) {
  auto key = LoadOrCreateMaskKey(absl::StrCat(dir_, "/missing"));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace interlock::mask
