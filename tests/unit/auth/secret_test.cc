#include "userspace/auth/secret.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"

namespace interlock::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::string_view kSecret = "s3cr3t-Hunter2";
using Vars = std::map<std::string, std::string>;

class FakeEnv final : public EnvLookup {
 public:
  explicit FakeEnv(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}
  std::optional<absl::string_view> Get(const std::string& name) const override {
    auto it = vars_.find(name);
    if (it == vars_.end()) return std::nullopt;
    return absl::string_view(it->second);
  }

 private:
  std::map<std::string, std::string> vars_;
};

class CredentialRefTest : public ::testing::Test {
 protected:
  CredentialRefTest() : dir_(interlock::testing::MakeTempDir("auth_secret_test.")) {}
  ~CredentialRefTest() override { interlock::testing::RemoveTree(dir_); }

  std::string Write(absl::string_view name, absl::string_view content, mode_t mode) {
    std::string path = absl::StrCat(dir_, "/", name);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    EXPECT_EQ(::fchmod(fd, mode), 0);
    ::close(fd);
    return path;
  }

  std::string dir_;
};

TEST(Secret, MoveTransfersAndEmptiesSource) {
  Secret a(kSecret);
  EXPECT_EQ(a.reveal(), kSecret);
  EXPECT_EQ(a.size(), kSecret.size());
  Secret b(std::move(a));
  EXPECT_EQ(b.reveal(), kSecret);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): documented state
  Secret c;
  c = std::move(b);
  EXPECT_EQ(c.reveal(), kSecret);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  c = Secret("other");
  EXPECT_EQ(c.reveal(), "other");
}

TEST(Secret, HoldsBinaryBytes) {
  Secret s(absl::string_view("a\0b\xff", 4));
  EXPECT_EQ(s.reveal(), absl::string_view("a\0b\xff", 4));
}

// Not printable, not copyable, no implicit string conversion: checked at compile time.
static_assert(!std::is_copy_constructible_v<Secret>);
static_assert(!std::is_copy_assignable_v<Secret>);
static_assert(std::is_nothrow_move_constructible_v<Secret>);
static_assert(!std::is_convertible_v<Secret, std::string>);
static_assert(!std::is_convertible_v<Secret, absl::string_view>);
template <typename T, typename = void>
struct Streamable : std::false_type {};
template <typename T>
struct Streamable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<T>())>>
    : std::true_type {};
static_assert(!Streamable<const Secret&>::value);
static_assert(Streamable<const std::string&>::value);  // the detector itself works

TEST_F(CredentialRefTest, FileOk) {
  std::string path = Write("pw", absl::StrCat(kSecret, "\n"), 0600);
  absl::StatusOr<Secret> s = ResolveCredentialRef(absl::StrCat("file:", path));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->reveal(), kSecret);
}

TEST_F(CredentialRefTest, FileOwnerReadOnlyAndNoNewline) {
  std::string path = Write("pw", kSecret, 0400);
  absl::StatusOr<Secret> s = ResolveCredentialRef(absl::StrCat("file:", path));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->reveal(), kSecret);
}

TEST_F(CredentialRefTest, OnlyOneTrailingNewlineIsStripped) {
  std::string path = Write("pw", "a b\n\n", 0600);
  absl::StatusOr<Secret> s = ResolveCredentialRef(absl::StrCat("file:", path));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->reveal(), "a b\n");
}

TEST_F(CredentialRefTest, GroupOrWorldAccessIsRefused) {
  for (mode_t mode : {0644, 0640, 0604, 0660, 0620, 0602, 0601}) {
    std::string path = Write("pw", kSecret, mode);
    absl::StatusOr<Secret> s = ResolveCredentialRef(absl::StrCat("file:", path));
    EXPECT_EQ(s.status().code(), absl::StatusCode::kPermissionDenied) << std::oct << mode;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(path));
    EXPECT_THAT(std::string(s.status().message()), Not(HasSubstr(kSecret)));
  }
}

TEST_F(CredentialRefTest, MissingFileIsNotFound) {
  std::string path = absl::StrCat(dir_, "/absent");
  absl::StatusOr<Secret> s = ResolveCredentialRef(absl::StrCat("file:", path));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(path));
}

TEST_F(CredentialRefTest, DirectoryAndFifoAreRefusedWithoutBlocking) {
  absl::StatusOr<Secret> d = ResolveCredentialRef(absl::StrCat("file:", dir_));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition) << d.status();
  std::string fifo = absl::StrCat(dir_, "/fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<Secret> f = ResolveCredentialRef(absl::StrCat("file:", fifo));  // no writer
  EXPECT_EQ(f.status().code(), absl::StatusCode::kFailedPrecondition) << f.status();
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("not a regular file"));
}

TEST_F(CredentialRefTest, SymlinkToGoodFileIsFollowed) {
  std::string path = Write("pw", kSecret, 0600);
  std::string link = absl::StrCat(dir_, "/link");
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  absl::StatusOr<Secret> s = ResolveCredentialRef(absl::StrCat("file:", link));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->reveal(), kSecret);
}

TEST_F(CredentialRefTest, SizeLimit) {
  std::string max_path = Write("max", std::string(kMaxSecretBytes, 'x'), 0600);
  absl::StatusOr<Secret> ok = ResolveCredentialRef(absl::StrCat("file:", max_path));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), kMaxSecretBytes);
  // One more byte: refused even though a trailing newline would be stripped... (it is 'x')
  std::string big = Write("big", std::string(kMaxSecretBytes + 1, 'x'), 0600);
  absl::StatusOr<Secret> s = ResolveCredentialRef(absl::StrCat("file:", big));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(big));
}

TEST_F(CredentialRefTest, EmptyFileIsRefused) {
  for (absl::string_view content : {absl::string_view(""), absl::string_view("\n")}) {
    std::string path = Write("empty", content, 0600);
    absl::StatusOr<Secret> s = ResolveCredentialRef(absl::StrCat("file:", path));
    EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("empty"));
  }
}

TEST(CredentialRef, EnvOk) {
  FakeEnv env(Vars{{"PG_PASSWORD", std::string(kSecret)}});
  absl::StatusOr<Secret> s = ResolveCredentialRef("env:PG_PASSWORD", env);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->reveal(), kSecret);
}

TEST(CredentialRef, EnvValueKeepsNewlines) {
  FakeEnv env(Vars{{"V", "a\n"}});
  absl::StatusOr<Secret> s = ResolveCredentialRef("env:V", env);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->reveal(), "a\n");
}

TEST(CredentialRef, EnvMissingOrEmptyIsNotFound) {
  FakeEnv env(Vars{{"EMPTY", ""}, {"OTHER", std::string(kSecret)}});
  for (const char* name : {"MISSING", "EMPTY"}) {
    absl::StatusOr<Secret> s = ResolveCredentialRef(absl::StrCat("env:", name), env);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound) << name;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(name));
    EXPECT_THAT(std::string(s.status().message()), Not(HasSubstr(kSecret)));
  }
}

TEST(CredentialRef, RealEnvironment) {
  ASSERT_EQ(::setenv("INTERLOCK_AUTH_TEST_SECRET", "from-env", 1), 0);
  absl::StatusOr<Secret> s = ResolveCredentialRef("env:INTERLOCK_AUTH_TEST_SECRET");
  ::unsetenv("INTERLOCK_AUTH_TEST_SECRET");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->reveal(), "from-env");
  EXPECT_EQ(ResolveCredentialRef("env:INTERLOCK_AUTH_TEST_SECRET").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(CredentialRef, SyntaxErrorsDoNotEchoTheReference) {
  // A password pasted where a reference belongs must not end up in logs.
  FakeEnv env(Vars{});
  for (std::string ref :
       {std::string(kSecret), absl::StrCat("env:", kSecret, "!"), absl::StrCat("env:1", kSecret),
        std::string("env:"), absl::StrCat("FILE:/", kSecret), std::string("file:"),
        absl::StrCat("file:", kSecret)}) {
    absl::StatusOr<Secret> s = ResolveCredentialRef(ref, env);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << ref;
    EXPECT_THAT(std::string(s.status().message()), Not(HasSubstr(kSecret))) << ref;
  }
}

TEST(CredentialRef, RelativePathIsInvalid) {
  absl::StatusOr<Secret> s = ResolveCredentialRef("file:etc/pw");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("absolute"));
}

TEST(CredentialRef, Parse) {
  absl::StatusOr<CredentialRef> f = ParseCredentialRef("file:/run/secrets/pg");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind, CredentialRef::Kind::kFile);
  EXPECT_EQ(f->target, "/run/secrets/pg");
  absl::StatusOr<CredentialRef> e = ParseCredentialRef("env:_PG_1");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, CredentialRef::Kind::kEnv);
  EXPECT_EQ(e->target, "_PG_1");
}

}  // namespace
}  // namespace interlock::auth
