// PrometheusText: interlockd's status (control.proto StatusResponse) as Prometheus text
// exposition format 0.0.4 — what the metrics endpoint (config.proto MetricsConfig) serves.
// Pure.
//
//   std::string body = PrometheusText(engine.Status());
//   // interlock_sessions_active{protocol="postgres"} 3
//
// Every family has # HELP and # TYPE lines; label values are escaped (\\, \", \n); counters
// end in _total.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "interlock/v1/control.pb.h"

namespace interlock::control {

std::string PrometheusText(const v1::StatusResponse& status);

// A label value as the format wants it: backslash, double quote and newline escaped.
std::string EscapeLabelValue(absl::string_view value);

}  // namespace interlock::control
