#include "userspace/proxy/pg/startup_params.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "userspace/sql/classify.h"

namespace interlock::proxy::pg {
namespace {

// As guc.c compares names (case-insensitive); ParseLongOption turns '-' into '_'.
std::string Normalize(absl::string_view name) {
  return absl::StrReplaceAll(absl::AsciiStrToLower(name), {{"-", "_"}});
}

absl::Status CheckSetting(absl::string_view name, absl::string_view value, absl::string_view via,
                          const std::vector<std::string>& extra_allowed) {
  const std::string key = Normalize(name);
  const auto& builtin = BuiltinStartupParameters();
  bool allowed = std::find(builtin.begin(), builtin.end(), key) != builtin.end();
  for (const std::string& e : extra_allowed) allowed |= Normalize(e) == key;
  if (!allowed) {
    return absl::PermissionDeniedError(absl::StrCat("startup parameter \"", name, "\"", via,
                                                    " is not allowed for agents"));
  }
  if (key == "client_encoding" && sql::IsClientOnlyEncoding(value)) {
    return absl::PermissionDeniedError(
        absl::StrCat("client_encoding \"", value, "\"", via,
                     " is a client-only encoding whose multi-byte characters can hide quotes "
                     "and backslashes; use UTF8"));
  }
  return absl::OkStatus();
}

absl::Status CheckOptions(absl::string_view options, const std::vector<std::string>& extra_allowed) {
  std::vector<std::string> args = SplitStartupOptions(options);
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view a = args[i];
    std::string setting;
    if (absl::StartsWith(a, "--") && a.size() > 2) {
      setting = std::string(a.substr(2));
    } else if (absl::StartsWith(a, "-c")) {
      if (a.size() > 2) {
        setting = std::string(a.substr(2));
      } else if (i + 1 < args.size()) {
        setting = args[++i];
      } else {
        return absl::PermissionDeniedError("options switch \"-c\" without a setting");
      }
    } else {
      // Any other server switch (-F, -B, -d, -e, ...) or argument.
      return absl::PermissionDeniedError(
          absl::StrCat("options switch \"", a, "\" is not allowed for agents (only -c name=value)"));
    }
    size_t eq = setting.find('=');
    if (eq == std::string::npos) {
      return absl::PermissionDeniedError(absl::StrCat("options setting \"", setting, "\" has no value"));
    }
    absl::Status ok = CheckSetting(setting.substr(0, eq), setting.substr(eq + 1), " (in options)", extra_allowed);
    if (!ok.ok()) return ok;
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& BuiltinStartupParameters() {
  static const auto* const kAllowed = new std::vector<std::string>{
      "application_name", "client_encoding", "datestyle", "timezone", "intervalstyle",
      "extra_float_digits", "statement_timeout", "lock_timeout",
      "idle_in_transaction_session_timeout"};
  return *kAllowed;
}

std::vector<std::string> SplitStartupOptions(absl::string_view options) {
  // postinit.c pg_split_opts.
  std::vector<std::string> out;
  size_t i = 0;
  while (i < options.size()) {
    while (i < options.size() && absl::ascii_isspace(static_cast<unsigned char>(options[i]))) ++i;
    if (i >= options.size()) break;
    std::string arg;
    bool escape = false;
    while (i < options.size()) {
      char c = options[i];
      if (absl::ascii_isspace(static_cast<unsigned char>(c)) && !escape) break;
      if (!escape && c == '\\') {
        escape = true;
      } else {
        escape = false;
        arg.push_back(c);
      }
      ++i;
    }
    out.push_back(std::move(arg));
  }
  return out;
}

absl::Status CheckStartupParameters(const std::vector<std::pair<std::string, std::string>>& params,
                                    const std::vector<std::string>& extra_allowed) {
  for (const auto& [name, value] : params) {
    absl::Status ok = Normalize(name) == "options" ? CheckOptions(value, extra_allowed)
                                                   : CheckSetting(name, value, "", extra_allowed);
    if (!ok.ok()) return ok;
  }
  return absl::OkStatus();
}

}  // namespace interlock::proxy::pg
