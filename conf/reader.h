#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

// Header-only, TOML_EXCEPTIONS=0 (tools/deps:toml says why): parse() returns errors.
#include <toml++/toml.h>

namespace l4lb::conf {

// The generic half of the config loader: typed readers over a TOML table that
// turn every mistake into one "FILE:LINE:COL: what is wrong" error. The loader
// (config.cc) and the admission keys (admission_keys.cc) read through it.

// "a string", "an integer", ...: what a message says a node was.
const char* TypeName(const toml::node& node);
bool Contains(absl::Span<const char* const> keys, std::string_view key);
// "LINE:COL".
std::string At(const toml::source_region& at);
// The whole file at `path`; errors are "PATH: <strerror>".
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Where a service looks a key up: its own table, then [defaults] (either may be
// absent). `prefix` names the level in messages: "" or "health.".
struct Scope {
  const toml::table* own = nullptr;
  const toml::table* defaults = nullptr;
  const char* prefix = "";
};

// Reader records the first error only: the load stops at the end of that
// service, so the operator sees one error, the first in the file.
//
// Thread safety: none; one Reader per load, on one thread.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  void Fail(const toml::source_region& at, absl::string_view what);
  const absl::Status& error() const { return error_; }
  bool ok() const { return error_.ok(); }
  const std::string& file() const { return file_; }

  // Fails at the first key of `table` not in `keys`; `where` names the table.
  void CheckKeys(const toml::table& table, absl::Span<const char* const> keys,
                 absl::string_view where);
  // parent[key] as a table; null when absent (or not a table: that fails).
  const toml::table* SubTable(const toml::table* parent, const char* key, absl::string_view label);
  const toml::node* Find(const Scope& scope, const char* key) const;

  // Each reader leaves *out alone when the key is absent and fails on a bad value;
  // it returns the node it read (null if absent or bad), for later checks' positions.
  const toml::node* ReadString(const Scope& scope, const char* key, std::string* out);
  const toml::node* ReadDuration(const Scope& scope, const char* key, bool zero_ok,
                                 absl::Duration* out);
  template <typename T>
  const toml::node* ReadInt(const Scope& scope, const char* key, int64_t lo, int64_t hi, T* out);
  void ReadBool(const Scope& scope, const char* key, bool* out);

 private:
  std::string file_;
  absl::Status error_;
};

template <typename T>
const toml::node* Reader::ReadInt(const Scope& scope, const char* key, int64_t lo, int64_t hi,
                                  T* out) {
  const toml::node* node = Find(scope, key);
  if (node == nullptr) return nullptr;
  if (!node->is_integer()) {
    Fail(node->source(),
         absl::StrCat(scope.prefix, key, ": want an integer, got ", TypeName(*node)));
    return nullptr;
  }
  const int64_t value = node->as_integer()->get();
  if (value < lo || value > hi) {
    Fail(node->source(), absl::StrCat(scope.prefix, key, ": ", value, ": want ", lo, "..", hi));
    return nullptr;
  }
  *out = static_cast<T>(value);
  return node;
}

}  // namespace l4lb::conf
