#include "run_program.hpp"

#include <sys/wait.h>

namespace surge::test {

program_result run_program(const std::vector<std::string>& argv,
                           const std::optional<std::vector<std::string>>& env,
                           std::chrono::milliseconds patience, const std::string& cwd) {
  tools::child_spec spec;
  spec.argv = argv;
  spec.env = env;
  spec.cwd = cwd;
  const auto r = tools::run(spec, patience);
  program_result out;
  out.code = !r.timed_out && WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
  out.out = r.out;
  out.err = r.err;
  out.timed_out = r.timed_out;
  return out;
}

} // namespace surge::test
