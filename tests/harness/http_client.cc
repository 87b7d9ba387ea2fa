#include "tests/harness/http_client.h"

#include <unistd.h>

#include <atomic>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "tests/harness/process.h"

namespace l4lb::testing {

HttpReply Http(const std::string& method, uint16_t port, const std::string& path,
               const std::string& token) {
  static std::atomic<int> next{0};
  const std::string headers_file =
      absl::StrCat(TempDir(), "/curl.headers.", getpid(), ".", next.fetch_add(1));
  std::vector<std::string> argv = {"curl", "-s", "-m",         "5",  "-X",
                                   method, "-D", headers_file, "-w", "\n%{http_code}"};
  if (!token.empty())
    argv.insert(argv.end(), {"-H", absl::StrCat("Authorization: Bearer ", token)});
  argv.push_back(absl::StrCat("http://127.0.0.1:", port, path));
  const CommandResult r = RunCommand(argv, absl::Seconds(10));
  HttpReply reply;
  const size_t nl = r.out.rfind('\n');
  if (nl != std::string::npos && absl::SimpleAtoi(r.out.substr(nl + 1), &reply.code)) {
    reply.body = r.out.substr(0, nl);
    reply.headers = ReadFile(headers_file);
  }
  unlink(headers_file.c_str());
  return reply;
}

}  // namespace l4lb::testing
