// AnalyzeCommandLine: the words a POSIX shell would pass, or "shell" for anything a shell
// gives a meaning to. The words are cross-checked against /bin/sh itself (dash): what the
// analysis calls plain reaches a program as exactly those words.
#include "userspace/codec/shell/command_line.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::codec::shell {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(AnalyzeCommandLine, PlainWordsQuotesAndEscapes) {
  struct Case {
    std::string line;
    std::vector<std::string> argv;
  } cases[] = {
      {"uptime", {"uptime"}},
      {"  ls   -la\t/srv  ", {"ls", "-la", "/srv"}},
      {"git -C '/srv/app repo' pull --ff-only", {"git", "-C", "/srv/app repo", "pull", "--ff-only"}},
      {"echo \"a b\" 'c'd e\\ f", {"echo", "a b", "cd", "e f"}},
      {"printf \"\\$HOME \\\\ \\\" \\n\"", {"printf", "$HOME \\ \" \\n"}},
      {"echo '' x", {"echo", "", "x"}},
      {"grep -e 'a|b;c' file", {"grep", "-e", "a|b;c", "file"}},
      {"echo a=b c#d e~f", {"echo", "a=b", "c#d", "e~f"}},
      {"'rm' -rf /srv/data", {"rm", "-rf", "/srv/data"}},
  };
  for (const Case& c : cases) {
    CommandLine got = AnalyzeCommandLine(c.line);
    EXPECT_FALSE(got.shell) << c.line << ": " << got.why;
    EXPECT_EQ(got.argv, c.argv) << c.line;
  }
}

TEST(AnalyzeCommandLine, AnythingAShellGivesAMeaningToIsShell) {
  struct Case {
    std::string line;
    std::string why;
  } cases[] = {
      {"uptime && rm -rf /srv/data", "'&'"},
      {"ls; rm -rf /", "';'"},
      {"cat /etc/passwd | nc host 1", "'|'"},
      {"echo x > /etc/cron.d/x", "'>'"},
      {"sort < in", "'<'"},
      {"(rm -rf /)", "'('"},
      {"echo $(id)", "'$'"},
      {"echo `id`", "'`'"},
      {"echo \"$HOME\"", "inside double quotes"},
      {"echo \"`id`\"", "inside double quotes"},
      {"rm -rf /srv/*", "'*'"},
      {"ls /srv/?", "'?'"},
      {"ls /srv/[ab]", "'['"},
      {"echo {a,b}", "'{'"},
      {"! false", "'!'"},
      {"ls # rm -rf /", "'#'"},
      {"cat ~/.ssh/id_rsa", "'~'"},
      {"LD_PRELOAD=/tmp/x.so ls", "assignment"},
      {"PATH=/tmp ls", "assignment"},
      {"ls\nrm -rf /", "line break"},
      {"ls\\\n-la", "line continuation"},
      {"echo 'unterminated", "unterminated single quote"},
      {"echo \"unterminated", "unterminated double quote"},
      {"echo x\\", "trailing backslash"},
      {std::string("echo a\0b", 8), "control byte"},
      {"echo \x1b[2J", "control byte"},
      {"", "empty command"},
      {"   ", "empty command"},
      {std::string(kMaxCommandBytes + 1, 'a'), "longer than"},
  };
  for (const Case& c : cases) {
    CommandLine got = AnalyzeCommandLine(c.line);
    EXPECT_TRUE(got.shell) << c.line;
    EXPECT_THAT(got.why, HasSubstr(c.why)) << c.line;
    EXPECT_TRUE(got.argv.empty()) << c.line;
  }
}

// The words the analysis finds are the words /bin/sh passes: each plain case is run
// through `sh -c 'printf "%s\0" ARGS'` equivalent (the command with its program replaced).
TEST(AnalyzeCommandLine, PlainWordsAreWhatShPasses) {
  const std::vector<std::string> lines = {
      "prog -C '/srv/app repo' pull --ff-only", "prog \"a b\" 'c'd e\\ f",
      "prog \"\\$HOME \\\\ \\\" \\n x\"",        "prog '' x",
      "prog -e 'a|b;c' file",                   "prog a=b c#d e~f \\'q\\'",
  };
  for (const std::string& line : lines) {
    CommandLine got = AnalyzeCommandLine(line);
    ASSERT_FALSE(got.shell) << line << ": " << got.why;
    // Replace the program with printf, which prints each argument NUL-terminated.
    const std::string script = absl::StrCat("printf '%s\\0' ", line.substr(5));
    std::string cmd = "/bin/sh -c '";
    for (char ch : script) {
      if (ch == '\'') cmd += "'\\''";
      else cmd += ch;
    }
    cmd += "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ASSERT_EQ(::pclose(p), 0) << cmd;
    std::vector<std::string> words = absl::StrSplit(out, '\0');
    words.pop_back();  // after the last NUL
    std::vector<std::string> expected(got.argv.begin() + 1, got.argv.end());
    EXPECT_EQ(words, expected) << line;
  }
}

}  // namespace
}  // namespace interlock::codec::shell
