#pragma once

// A unique path under the system's temporary directory for one test's files, removed with
// everything below it on destruction. Header-only: unit tests use it without linking
// surge_test_support.

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

namespace surge::test {

class temp_path {
 public:
  /// "<temp dir>/<prefix>-<pid>-<n><suffix>", unique in this process; nothing is there yet.
  explicit temp_path(const std::string& prefix, const std::string& suffix = {}) {
    static std::atomic<int> n{0};
    path_ = (std::filesystem::temp_directory_path() /
             (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + suffix))
                .string();
    std::filesystem::remove_all(path_);
  }
  ~temp_path() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_path(const temp_path&) = delete;
  temp_path& operator=(const temp_path&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

} // namespace surge::test
