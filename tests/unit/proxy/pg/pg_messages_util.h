// Building and reading the backend messages a result is made of, for the result masker's
// tests (result_masker_test.cc, result_masker_floor_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::proxy::pg::testing {

// A RowDescription field: a column of `table` (0: computed) at `attnum`.
inline codec::pg::FieldDescription Field(std::string name, uint32_t table, int16_t attnum, uint32_t type,
                                         int16_t format = 0) {
  codec::pg::FieldDescription f;
  f.name = std::move(name);
  f.table_oid = table;
  f.column_attr = attnum;
  f.type_oid = type;
  f.format = format;
  return f;
}

// A whole DataRow message (nullopt: NULL).
inline std::string Row(std::vector<std::optional<std::string>> values) {
  codec::pg::DataRow r;
  for (const auto& v : values) r.columns.push_back(v.has_value() ? std::optional<absl::string_view>(*v) : std::nullopt);
  return codec::pg::Encode(r);
}

// The values of a whole DataRow message.
inline std::vector<std::optional<std::string>> Values(absl::string_view message) {
  auto r = codec::pg::ParseDataRow(message.substr(5));
  EXPECT_TRUE(r.ok()) << r.status();
  std::vector<std::optional<std::string>> out;
  if (r.ok()) {
    for (const auto& c : r->columns) out.push_back(c.has_value() ? std::optional<std::string>(*c) : std::nullopt);
  }
  return out;
}

}  // namespace interlock::proxy::pg::testing
