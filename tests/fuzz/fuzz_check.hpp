#pragma once

// The fuzz targets' assertion: a broken property prints "<target>: check failed: <what>" and
// aborts, which libFuzzer reports as a crash together with the input.

#include <cstdio>
#include <cstdlib>

namespace surge::fuzz {

class checker {
 public:
  explicit constexpr checker(const char* target)
      : target_(target) {}

  void operator()(bool ok, const char* what) const {
    if (!ok) {
      std::fprintf(stderr, "%s: check failed: %s\n", target_, what);
      std::abort();
    }
  }

 private:
  const char* target_;
};

} // namespace surge::fuzz
