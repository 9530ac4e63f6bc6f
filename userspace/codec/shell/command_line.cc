#include "userspace/codec/shell/command_line.h"

#include "absl/strings/str_cat.h"

namespace interlock::codec::shell {

namespace {

CommandLine Shell(std::string why) {
  CommandLine c;
  c.shell = true;
  c.why = std::move(why);
  return c;
}

// What an unquoted byte means to some POSIX-like shell, or nullptr for an ordinary one.
// `word_start`: the byte begins a word (comments, tilde expansion).
const char* UnquotedMeaning(char c, bool word_start) {
  switch (c) {
    case ';': return "';' (a command separator)";
    case '&': return "'&' (a command separator or background job)";
    case '|': return "'|' (a pipe)";
    case '<': return "'<' (a redirection)";
    case '>': return "'>' (a redirection)";
    case '(': return "'(' (a subshell)";
    case ')': return "')' (a subshell)";
    case '$': return "'$' (an expansion)";
    case '`': return "'`' (a command substitution)";
    case '*': return "'*' (a glob)";
    case '?': return "'?' (a glob)";
    case '[': return "'[' (a glob)";
    case '{': return "'{' (brace expansion or a group)";
    case '}': return "'}' (brace expansion or a group)";
    case '!': return "'!' (negation or history expansion)";
    case '#': return word_start ? "'#' (a comment)" : nullptr;
    case '~': return word_start ? "'~' (tilde expansion)" : nullptr;
    case '=': return nullptr;  // judged per word (an assignment prefix), below
    default: return nullptr;
  }
}

bool ControlByte(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

}  // namespace

CommandLine AnalyzeCommandLine(absl::string_view line) {
  if (line.size() > kMaxCommandBytes) {
    return Shell(absl::StrCat("longer than ", kMaxCommandBytes, " bytes"));
  }
  CommandLine out;
  std::string word;
  bool in_word = false;       // a word has started (also an empty quoted one: '')
  bool quoted_yet = false;    // the current word had a quote or escape before now
  bool first_word = true;     // no word finished yet
  size_t i = 0;
  auto finish_word = [&] {
    if (!in_word) return;
    out.argv.push_back(std::move(word));
    word.clear();
    in_word = false;
    quoted_yet = false;
    first_word = false;
  };
  while (i < line.size()) {
    const char c = line[i];
    if (c == '\n') return Shell("a line break (a command separator)");
    if (ControlByte(static_cast<unsigned char>(c))) {
      return Shell(absl::StrCat("control byte 0x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2)));
    }
    if (c == ' ' || c == '\t') {
      finish_word();
      ++i;
      continue;
    }
    if (c == '\'') {
      const size_t end = line.find('\'', i + 1);
      if (end == absl::string_view::npos) return Shell("an unterminated single quote");
      for (size_t j = i + 1; j < end; ++j) {
        if (ControlByte(static_cast<unsigned char>(line[j]))) {
          return Shell("a control byte or line break inside quotes");
        }
      }
      word.append(line.data() + i + 1, end - i - 1);
      in_word = quoted_yet = true;
      i = end + 1;
      continue;
    }
    if (c == '"') {
      size_t j = i + 1;
      for (;; ++j) {
        if (j >= line.size()) return Shell("an unterminated double quote");
        const char d = line[j];
        if (d == '"') break;
        if (d == '$') return Shell("'$' inside double quotes (an expansion)");
        if (d == '`') return Shell("'`' inside double quotes (a command substitution)");
        if (ControlByte(static_cast<unsigned char>(d))) return Shell("a control byte or line break inside quotes");
        if (d == '\\') {
          if (j + 1 >= line.size()) return Shell("an unterminated double quote");
          const char e = line[j + 1];
          // Inside double quotes a backslash escapes only $ ` " \ and a newline.
          if (e == '$' || e == '`' || e == '"' || e == '\\') {
            word.push_back(e);
            ++j;
            continue;
          }
          if (e == '\n') return Shell("a line continuation");
        }
        word.push_back(d);
      }
      in_word = quoted_yet = true;
      i = j + 1;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= line.size()) return Shell("a trailing backslash");
      const char e = line[i + 1];
      if (e == '\n') return Shell("a line continuation");
      if (ControlByte(static_cast<unsigned char>(e))) return Shell("an escaped control byte");
      word.push_back(e);
      in_word = quoted_yet = true;
      i += 2;
      continue;
    }
    if (const char* meaning = UnquotedMeaning(c, !in_word)) return Shell(meaning);
    if (c == '=' && first_word && !quoted_yet && !word.empty()) {
      // NAME=value before the command sets the program's environment (LD_PRELOAD=...,
      // PATH=...): what runs is not judged by its words alone.
      return Shell("an assignment before the command (NAME=value)");
    }
    word.push_back(c);
    in_word = true;
    ++i;
  }
  finish_word();
  if (out.argv.empty()) return Shell("an empty command (the login shell runs)");
  return out;
}

}  // namespace interlock::codec::shell
