#include "userspace/common/file_util.h"

#include <dirent.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FileUtilTest : public ::testing::Test {
 protected:
  FileUtilTest() {
    std::string tmpl = "/tmp/file_util_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    dir_ = tmpl;
  }
  ~FileUtilTest() override {
    ::nftw(
        dir_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  std::string File(absl::string_view name) const { return absl::StrCat(dir_, "/", name); }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir_.c_str());
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
    return out;
  }
  static mode_t Mode(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
  }

  std::string dir_;
};

TEST_F(FileUtilTest, WriteFileAtomicWritesContentAndMode) {
  const std::string path = File("key");
  ASSERT_TRUE(WriteFileAtomic(path, std::string("secret\0bytes", 12), 0600).ok());
  auto back = ReadFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, std::string("secret\0bytes", 12));
  EXPECT_EQ(Mode(path), 0600);
  // No temp file is left behind.
  EXPECT_THAT(Entries(), ElementsAre("key"));
}

TEST_F(FileUtilTest, WriteFileAtomicModeIgnoresUmask) {
  const std::string path = File("pub");
  mode_t old = ::umask(0077);
  absl::Status st = WriteFileAtomic(path, "public", 0644);
  ::umask(old);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(Mode(path), 0644);
}

TEST_F(FileUtilTest, WriteFileAtomicReplacesExistingFile) {
  const std::string path = File("config");
  ASSERT_TRUE(WriteFileAtomic(path, "a much longer first version", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "v2", 0600).ok());
  EXPECT_EQ(*ReadFile(path), "v2");
  EXPECT_EQ(Mode(path), 0600);
  EXPECT_THAT(Entries(), ElementsAre("config"));
}

TEST_F(FileUtilTest, WriteFileAtomicIntoMissingDirFails) {
  absl::Status st = WriteFileAtomic(File("no/such/dir/file"), "x", 0600);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr(File("no/such/dir/file")));
}

TEST_F(FileUtilTest, ReadFileMissingIsNotFoundNamingPath) {
  auto text = ReadFile(File("missing"));
  EXPECT_EQ(text.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(text.status().message(), HasSubstr(File("missing")));
}

TEST_F(FileUtilTest, ReadFileEmptyAndLarge) {
  ASSERT_TRUE(WriteFileAtomic(File("empty"), "", 0600).ok());
  EXPECT_EQ(*ReadFile(File("empty")), "");
  // Larger than ReadFile's 64 KiB chunk.
  std::string big;
  for (int i = 0; i < 200000; ++i) big.push_back(static_cast<char>(i * 7));
  ASSERT_TRUE(WriteFileAtomic(File("big"), big, 0600).ok());
  EXPECT_EQ(*ReadFile(File("big")), big);
}

TEST_F(FileUtilTest, MakeDirsCreatesNestedWithMode) {
  const std::string path = File("a/b/c");
  ASSERT_TRUE(MakeDirs(path, 0700).ok());
  for (const char* p : {"a", "a/b", "a/b/c"}) {
    struct stat st;
    ASSERT_EQ(::stat(File(p).c_str(), &st), 0) << p;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << p;
    EXPECT_EQ(st.st_mode & 0777, 0700u) << p;
  }
  // Idempotent, also with a trailing slash.
  EXPECT_TRUE(MakeDirs(path, 0700).ok());
  EXPECT_TRUE(MakeDirs(path + "/", 0700).ok());
}

TEST_F(FileUtilTest, MakeDirsOnAFileFails) {
  ASSERT_TRUE(WriteFileAtomic(File("file"), "x", 0600).ok());
  absl::Status st = MakeDirs(File("file"), 0700);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("not a directory"));
  // Below a file: mkdir fails with ENOTDIR.
  st = MakeDirs(File("file/sub"), 0700);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr(File("file/sub")));
}

TEST_F(FileUtilTest, MakeDirsEmptyPathIsInvalid) {
  EXPECT_EQ(MakeDirs("", 0700).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FileUtilTest, WriteNewFileAtomicRefusesToReplaceUnlessAsked) {
  const std::string path = File("ca.key");
  ASSERT_TRUE(WriteNewFileAtomic(path, "first", 0600, /*replace=*/false).ok());
  EXPECT_EQ(Mode(path), 0600);
  absl::Status st = WriteNewFileAtomic(path, "second", 0600, /*replace=*/false);
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_THAT(st.message(), HasSubstr(path));
  EXPECT_EQ(*ReadFile(path), "first");
  ASSERT_TRUE(WriteNewFileAtomic(path, "third", 0600, /*replace=*/true).ok());
  EXPECT_EQ(*ReadFile(path), "third");
  EXPECT_THAT(Entries(), ElementsAre("ca.key"));  // no temp file left either way
}

TEST_F(FileUtilTest, WriteNewFileAtomicDoesNotReuseAPlantedTempFile) {
  const std::string path = File("ca.key");
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  ASSERT_TRUE(WriteFileAtomic(tmp, "planted", 0666).ok());
  EXPECT_FALSE(WriteNewFileAtomic(path, "secret", 0600, /*replace=*/false).ok());
  EXPECT_EQ(*ReadFile(tmp), "planted");
  EXPECT_EQ(Mode(path), 0);  // not created
}

TEST_F(FileUtilTest, ReadPrivateFileRefusesGroupAndOtherAccess) {
  const std::string path = File("private");
  ASSERT_TRUE(WriteFileAtomic(path, "secret", 0600).ok());
  auto ok = ReadPrivateFile(path);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, "secret");
  for (mode_t mode : {0640, 0604, 0610, 0660}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto refused = ReadPrivateFile(path);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << std::oct << mode;
    EXPECT_THAT(refused.status().message(), HasSubstr(path));
    EXPECT_THAT(refused.status().message(), HasSubstr(absl::StrFormat("%04o", mode)));
  }
}

TEST_F(FileUtilTest, ReadPrivateFileRefusesSymlinksAndMissingFiles) {
  const std::string path = File("private");
  ASSERT_TRUE(WriteFileAtomic(path, "secret", 0600).ok());
  ASSERT_EQ(::symlink(path.c_str(), File("link").c_str()), 0);
  EXPECT_FALSE(ReadPrivateFile(File("link")).ok());
  EXPECT_EQ(ReadPrivateFile(File("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST(HexEncode, LowercaseTwoDigitsPerByte) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x01\x7f\x80\xab\xff", 6)), "00017f80abff");
  EXPECT_EQ(HexEncode("AZ"), "415a");
}

}  // namespace
}  // namespace interlock
