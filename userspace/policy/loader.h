// Policy files: YAML -> v1::Policy (protobuf JSON mapping, via config::YamlToProto) ->
// validated PolicyEvaluator. Every problem names the file, the line and the field:
//   policy.yaml:12: rules[2].action: required
//   policy.yaml:30: rules[5].match.kinds[0]: unknown enum value "DELET" ...
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto eval, LoadPolicyFile("/etc/interlock/policy.yaml"));
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/policy/evaluator.h"

namespace interlock::policy {

absl::StatusOr<std::unique_ptr<PolicyEvaluator>> LoadPolicyText(absl::string_view yaml,
                                                                absl::string_view file_name);
absl::StatusOr<std::unique_ptr<PolicyEvaluator>> LoadPolicyFile(const std::string& path);

}  // namespace interlock::policy
