// Prints every sample event in one audit format, one per line, for the schema checks:
//   audit_format_samples ocsf | ecs
#include <cstring>
#include <iostream>
#include <string>

#include "tests/unit/audit/ocsf_samples.h"
#include "userspace/audit/ecs.h"
#include "userspace/audit/ocsf.h"

int main(int argc, char** argv) {
  const bool ecs = argc > 1 && std::strcmp(argv[1], "ecs") == 0;
  if (argc > 1 && !ecs && std::strcmp(argv[1], "ocsf") != 0) {
    std::cerr << "usage: audit_format_samples [ocsf|ecs]\n";
    return 2;
  }
  std::string out;
  for (const auto& e : interlock::audit::testing::OcsfSampleEvents()) {
    if (ecs) {
      interlock::audit::AppendEcsJson(&out, e);
    } else {
      interlock::audit::AppendOcsfJson(&out, e);
    }
    out.push_back('\n');
  }
  std::cout << out;
  return std::cout.good() ? 0 : 1;
}
