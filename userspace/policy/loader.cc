#include "userspace/policy/loader.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/config/yaml_to_proto.h"

namespace interlock::policy {

absl::StatusOr<std::unique_ptr<PolicyEvaluator>> LoadPolicyText(absl::string_view yaml,
                                                                absl::string_view file_name) {
  v1::Policy policy;
  config::SourceMap source{std::string(file_name)};
  INTERLOCK_RETURN_IF_ERROR(config::YamlToProto(yaml, file_name, &policy, &source));
  auto eval = PolicyEvaluator::Create(std::move(policy));
  if (eval.ok()) return eval;
  // The evaluator names fields ("rules[2].action: required"); place each at its line.
  std::vector<std::string> lines;
  for (absl::string_view problem : absl::StrSplit(eval.status().message(), '\n')) {
    size_t colon = problem.find(": ");
    if (colon == absl::string_view::npos) {
      lines.push_back(absl::StrCat(file_name, ": ", problem));
      continue;
    }
    absl::string_view path = problem.substr(0, colon);
    lines.push_back(absl::StrCat(source.Where(path), problem.substr(colon)));
  }
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

absl::StatusOr<std::unique_ptr<PolicyEvaluator>> LoadPolicyFile(const std::string& path) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return LoadPolicyText(text, path);
}

}  // namespace interlock::policy
