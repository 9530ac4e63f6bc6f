// Prints the OCSF form of every sample event, one per line, for ocsf_schema_check.py.
#include <iostream>
#include <string>

#include "tests/unit/audit/ocsf_samples.h"
#include "userspace/audit/ocsf.h"

int main() {
  std::string out;
  for (const auto& e : interlock::audit::testing::OcsfSampleEvents()) {
    interlock::audit::AppendOcsfJson(&out, e);
    out.push_back('\n');
  }
  std::cout << out;
  return std::cout.good() ? 0 : 1;
}
