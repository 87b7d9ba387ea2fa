// libFuzzer target: the CIDR parsers of access lists (l4lb/admission/cidr.h):
// ParseCidr, ParseCidrList (flag values) and ParseCidrFile (allow_file/deny_file,
// operator files of thousands of lines). A parsed prefix must print as text that
// parses back to itself. fuzz/README.md says how to run it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "l4lb/admission/cidr.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  fprintf(stderr, "cidr_fuzzer: broken contract: %s\n", what);
  abort();
}

void CheckCidr(const l4lb::admission::Cidr& cidr) {
  Check(cidr.length >= 0 && cidr.length <= 128, "length 0..128");
  const absl::StatusOr<l4lb::admission::Cidr> again = l4lb::admission::ParseCidr(cidr.ToString());
  Check(again.ok() && *again == cidr, "ToString() parses back to the same prefix");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<l4lb::admission::Cidr> one = l4lb::admission::ParseCidr(text); one.ok()) {
    CheckCidr(*one);
  }
  if (auto list = l4lb::admission::ParseCidrList(text); list.ok()) {
    for (const l4lb::admission::Cidr& c : *list) CheckCidr(c);
  }
  if (auto file = l4lb::admission::ParseCidrFile(text, "fuzz.txt"); file.ok()) {
    for (const l4lb::admission::Cidr& c : *file) CheckCidr(c);
  } else {
    Check(file.status().message().substr(0, 9) == "fuzz.txt:", "file errors name the file");
  }
  return 0;
}
