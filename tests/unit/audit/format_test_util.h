// Helpers shared by the audit format tests (ocsf_test.cc, ecs_test.cc): strict JSON
// parsing, hostile strings in every field of an event, and every value an event holds.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "interlock/v1/events.pb.h"
#include "userspace/codec/json/extract.h"
#include "userspace/codec/json/tokenizer.h"
#include "userspace/common/json_text.h"

namespace interlock::audit::testing {

// Values at the given RFC 6901 pointers; fails the test when the text is not one strict
// JSON document without duplicate keys.
inline std::map<std::string, std::string> Fields(const std::string& json, const std::vector<std::string>& pointers) {
  auto r = codec::json::ExtractJsonFields(json, pointers);
  EXPECT_TRUE(r.ok()) << r.status() << "\n" << json;
  if (!r.ok()) return {};
  return std::map<std::string, std::string>(r->begin(), r->end());
}

// What ExpectFields wants for a pointer that must not be there.
inline constexpr char kAbsent[] = "<absent>";

// Expects the value at each pointer of `want` (kAbsent: no such member) in `json`.
inline void ExpectFields(const std::string& json, const std::map<std::string, std::string>& want) {
  std::vector<std::string> pointers;
  for (const auto& [pointer, value] : want) pointers.push_back(pointer);
  std::map<std::string, std::string> got = Fields(json, pointers);
  for (const auto& [pointer, value] : want) {
    auto it = got.find(pointer);
    EXPECT_EQ(it == got.end() ? std::string(kAbsent) : it->second, value) << pointer << " in\n" << json;
  }
}

// Strict RFC 8259 (invalid UTF-8, raw control characters, bad escapes are refused).
inline absl::Status ParseStrict(const std::string& json) {
  codec::json::JsonTokenizer tok;
  auto sink = [](const codec::json::JsonToken&) { return absl::OkStatus(); };
  absl::Status st = tok.Feed(json, sink);
  if (!st.ok()) return st;
  return tok.Finish(sink);
}

// Quotes and a would-be member, control characters and NUL, invalid UTF-8 (stray and
// truncated sequences, a surrogate, above U+10FFFF, overlong), and valid oddities.
inline std::vector<std::string> HostileStrings() {
  return {
      std::string("quote\" backslash\\ slash/ \"}],{\"injected\":1,\"x\":\""),
      std::string("line\nbreak\r\ttab \x01\x02\x1f\x7f nul:") + std::string(1, '\0') + "end",
      std::string("bad utf-8: \xff \xc3( \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf"),
      std::string("\xe2\x80\xa8 line separator, emoji \xf0\x9f\x94\x92, </script>"),
  };
}

// Sets every string already set in `m` (recursively, repeated ones included) to `value`.
inline void SetEveryString(google::protobuf::Message* m, const std::string& value) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*m, &fields);
  for (const FieldDescriptor* f : fields) {
    const int n = f->is_repeated() ? r->FieldSize(*m, f) : 1;
    for (int i = 0; i < n; ++i) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        f->is_repeated() ? r->SetRepeatedString(m, f, i, value) : r->SetString(m, f, value);
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        SetEveryString(f->is_repeated() ? r->MutableRepeatedMessage(m, f, i) : r->MutableMessage(m, f), value);
      }
    }
  }
}

// Sets every field of `m` (recursively) to distinct values: strings "v<n>_<i>_<name>",
// numbers 100 + n and up. A field added to the schema later is covered too.
inline void FillEveryField(google::protobuf::Message* m, int* n, int depth = 0) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m->GetReflection();
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    ++*n;
    if (f->is_map()) {
      FillEveryField(r->AddMessage(m, f), n, depth + 1);
      continue;
    }
    for (int k = 0; k < (f->is_repeated() ? 2 : 1); ++k) {
      const bool rep = f->is_repeated();
      const std::string s = absl::StrCat("v", *n, "_", k, "_", f->name());
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
          rep ? r->AddString(m, f, s) : r->SetString(m, f, s);
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          rep ? r->AddUInt32(m, f, 100 + *n) : r->SetUInt32(m, f, 100 + *n);
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          rep ? r->AddUInt64(m, f, 100000 + *n) : r->SetUInt64(m, f, 100000 + *n);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          rep ? r->AddInt64(m, f, 1000000 + *n) : r->SetInt64(m, f, 1000000 + *n);
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          rep ? r->AddInt32(m, f, 100 + *n) : r->SetInt32(m, f, 100 + *n);
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          rep ? r->AddBool(m, f, true) : r->SetBool(m, f, true);
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const auto* e = f->enum_type()->value(f->enum_type()->value_count() - 1);
          rep ? r->AddEnum(m, f, e) : r->SetEnum(m, f, e);
          break;
        }
        case FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth < 4) FillEveryField(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f), n, depth + 1);
          break;
        default:
          break;
      }
    }
  }
}

// Makes a FillEveryField event one of `protocol` ("postgres", "http", "ssh"): the approval's
// protocol, no `http` unless http, and for ssh an exec that exited (no signal), so that
// the command and exit-code slots are exercised.
inline void SetProtocol(v1::AuditEvent* e, const std::string& protocol) {
  e->mutable_approval()->set_protocol(protocol);
  if (protocol != "http") e->clear_http();
  if (protocol == "ssh") {
    e->mutable_ssh()->set_request("exec");
    e->mutable_ssh()->clear_exit_signal();
  }
}

// Every value `m` holds as it appears in JSON text: strings escaped (without quotes),
// integers in decimal, enum names (but not the field `kind`, which formats rename).
inline std::vector<std::string> LeafValues(const google::protobuf::Message& m) {
  using google::protobuf::FieldDescriptor;
  std::vector<std::string> values;
  const google::protobuf::Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    const bool rep = f->is_repeated();
    const int count = rep ? r->FieldSize(m, f) : 1;
    for (int i = 0; i < count; ++i) {
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING: {
          const std::string v = rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
          if (f->type() == FieldDescriptor::TYPE_BYTES) {  // JSON carries bytes as base64
            values.push_back(absl::Base64Escape(v));
            break;
          }
          std::string q;
          AppendJsonQuoted(v, &q);
          values.push_back(q.substr(1, q.size() - 2));
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT32:
          values.push_back(absl::StrCat(rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f)));
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          values.push_back(absl::StrCat(rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f)));
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          values.push_back(absl::StrCat(rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f)));
          break;
        case FieldDescriptor::CPPTYPE_ENUM:
          if (f->name() != "kind") values.push_back((rep ? r->GetRepeatedEnum(m, f, i) : r->GetEnum(m, f))->name());
          break;
        case FieldDescriptor::CPPTYPE_MESSAGE: {
          std::vector<std::string> sub = LeafValues(rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f));
          values.insert(values.end(), sub.begin(), sub.end());
          break;
        }
        default:
          break;
      }
    }
  }
  return values;
}

}  // namespace interlock::audit::testing
