// surgectl catalog import: NDJSON products to POST /admin/v1/products:import in batches, a few
// at once, each retried on 503 or no answer (the import is idempotent per SKU: the same line
// twice is the same product).

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "surgectl.hpp"

namespace surge::ctl {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// One POST's deadline: a batch of 10,000 products goes through 10,000 SKU actors.
constexpr auto batch_timeout = 300s;
/// Tries per batch (503 or no answer), with backoff from 100 ms doubling up to 4 s (10 s in all).
constexpr int max_tries = 8;
/// How many refused lines the summary names.
constexpr std::size_t errors_shown = 10;

struct batch {
  std::vector<std::size_t> lines; ///< the input line number (from 1) of each line of `body`
  std::string body;
};

struct refused_line {
  std::size_t line = 0;
  std::string what;
};

/// What the workers share: the queue of batches and the counts. Guarded by `mtx`.
struct import_state {
  std::mutex mtx;
  std::condition_variable changed;
  std::deque<batch> queue;
  bool input_done = false;
  bool stop = false;       ///< a batch failed for good: no more batches are sent
  std::string unreachable; ///< why, when it was the connection
  uint64_t imported = 0;
  uint64_t refused = 0;
  uint64_t retries = 0;
  std::vector<refused_line> errors; ///< every refused line (sorted for the summary)
};

/// The admin API's answer to one batch, into `st`.
void record_answer(import_state& st, const batch& b, const http_answer& a) {
  std::lock_guard<std::mutex> guard{st.mtx};
  if (a.status != 200) {
    st.refused += b.lines.size();
    st.errors.push_back({b.lines.front(), "the batch of lines " + std::to_string(b.lines.front()) +
                                              "-" + std::to_string(b.lines.back()) +
                                              " was refused: HTTP " + std::to_string(a.status) +
                                              " " + a.body.substr(0, 300)});
    return;
  }
  auto parsed = net::json::parse(a.body);
  const auto* v = std::get_if<net::json::value>(&parsed);
  if (v == nullptr || !v->is_object()) {
    st.refused += b.lines.size();
    st.errors.push_back({b.lines.front(), "the answer to the batch of lines " +
                                              std::to_string(b.lines.front()) +
                                              " is not a JSON object"});
    return;
  }
  st.imported += static_cast<uint64_t>(int_of(*v, "imported"));
  if (const auto* es = v->find("errors"); es != nullptr && es->is_array()) {
    for (const auto& e : std::get<net::json::array>(es->get())) {
      const auto n = int_of(e, "line");
      ++st.refused;
      st.errors.push_back({n >= 1 && static_cast<std::size_t>(n) <= b.lines.size()
                               ? b.lines[static_cast<std::size_t>(n - 1)]
                               : b.lines.front(),
                           text_of(e, "code") + ": " + text_of(e, "message")});
    }
  }
}

/// `b`'s lines [from, to) as a batch of their own.
batch part_of(const batch& b, std::size_t from, std::size_t to) {
  batch out;
  std::size_t at = 0;
  for (std::size_t i = 0; i < to; ++i) {
    const auto end = b.body.find('\n', at) + 1;
    if (i >= from) {
      out.body.append(b.body, at, end - at);
      out.lines.push_back(b.lines[i]);
    }
    at = end;
  }
  return out;
}

/// Sends `b` until it gets an answer other than 503, or its tries run out (then stops all). A
/// batch of more than one line that is too large for the node (413) is sent again as two halves.
void send_batch(const admin_session& s, import_state& st, const batch& b) {
  auto backoff = 100ms;
  std::string last;
  for (int t = 1; t <= max_tries && !interrupted(); ++t) {
    try {
      auto a =
          admin_call(s.ep, s.token, "POST", "/admin/v1/products:import", b.body, batch_timeout);
      if (a.status == 413 && b.lines.size() > 1) {
        const auto half = b.lines.size() / 2;
        send_batch(s, st, part_of(b, 0, half));
        return send_batch(s, st, part_of(b, half, b.lines.size()));
      }
      if (a.status != 503) {
        return record_answer(st, b, a);
      }
      last = "HTTP 503 " + a.body.substr(0, 200);
    } catch (const std::exception& e) { // admin_call: cli_error(exit_unreachable)
      last = e.what();
    }
    if (t < max_tries) {
      {
        std::lock_guard<std::mutex> guard{st.mtx};
        ++st.retries;
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 4s);
    }
  }
  std::lock_guard<std::mutex> guard{st.mtx};
  st.stop = true;
  st.unreachable = "the batch of lines " + std::to_string(b.lines.front()) + "-" +
                   std::to_string(b.lines.back()) + " got no answer after " +
                   std::to_string(max_tries) + " tries: " + last;
  st.changed.notify_all();
}

void worker(const admin_session& s, import_state& st) {
  for (;;) {
    batch b;
    {
      std::unique_lock<std::mutex> lock{st.mtx};
      st.changed.wait(lock, [&st] { return st.stop || !st.queue.empty() || st.input_done; });
      if (st.stop || (st.queue.empty() && st.input_done)) {
        return;
      }
      b = std::move(st.queue.front());
      st.queue.pop_front();
      st.changed.notify_all(); // room for the reader
    }
    send_batch(s, st, b);
  }
}

std::string rate(uint64_t lines, double seconds) {
  return tools::grouped(static_cast<uint64_t>(seconds > 0 ? lines / seconds : 0)) + " lines/s";
}

} // namespace

int catalog_import(const admin_session& s, const import_options& o) {
  std::ifstream file;
  if (o.file != "-") {
    file.open(o.file, std::ios::binary);
    if (!file) {
      throw cli_error(exit_server_error, "cannot read " + o.file);
    }
  } else {
    std::ios::sync_with_stdio(false); // std::cin at file speed
  }
  std::istream& in = o.file == "-" ? std::cin : file;

  import_state st;
  std::vector<std::thread> workers;
  for (uint64_t i = 0; i < o.concurrency; ++i) {
    workers.emplace_back([&s, &st] { worker(s, st); });
  }
  const auto t0 = steady::now();
  bool progress_done = false;
  std::thread progress{[&st, &progress_done, t0] {
    std::unique_lock<std::mutex> lock{st.mtx};
    uint64_t shown = 0;
    while (!st.changed.wait_for(lock, 1s, [&progress_done] { return progress_done; })) {
      const auto done = st.imported + st.refused;
      if (done != shown) {
        shown = done;
        const double secs = std::chrono::duration<double>(steady::now() - t0).count();
        std::cerr << "catalog import: " << tools::grouped(done) << " lines done ("
                  << rate(done, secs) << ")\n";
      }
    }
  }};

  std::size_t n = 0;
  batch b;
  const auto push = [&st, &o](batch&& full) {
    std::unique_lock<std::mutex> lock{st.mtx};
    st.changed.wait(lock, [&st, &o] { return st.stop || st.queue.size() < o.concurrency; });
    if (st.stop) {
      return false;
    }
    st.queue.push_back(std::move(full));
    st.changed.notify_all();
    return true;
  };
  bool sending = true;
  for (std::string line; sending && !interrupted() && std::getline(in, line);) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    if (!b.lines.empty() && b.body.size() + line.size() + 1 > o.max_bytes) {
      sending = push(std::move(b));
      b = batch{};
    }
    b.body += line;
    b.body += '\n';
    b.lines.push_back(n);
    if (sending && b.lines.size() == o.batch) {
      sending = push(std::move(b));
      b = batch{};
    }
  }
  const bool read_failed = in.bad();
  if (sending && !b.lines.empty()) {
    push(std::move(b));
  }
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.input_done = true;
    st.changed.notify_all();
  }
  for (auto& w : workers) {
    w.join();
  }
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    progress_done = true;
    st.changed.notify_all();
  }
  progress.join();

  const double secs = std::chrono::duration<double>(steady::now() - t0).count();
  std::sort(st.errors.begin(), st.errors.end(),
            [](const auto& a, const auto& c) { return a.line < c.line; });
  for (std::size_t i = 0; i < std::min(errors_shown, st.errors.size()); ++i) {
    std::cerr << "catalog import: line " << st.errors[i].line << ": " << st.errors[i].what << "\n";
  }
  std::cerr << "catalog import: " << tools::grouped(st.imported) << " imported, "
            << tools::grouped(st.refused) << " refused, " << tools::grouped(n) << " lines read in "
            << tools::fixed(secs, 1) << " s (" << rate(st.imported + st.refused, secs) << "; "
            << st.retries << " retries)\n";
  if (!st.unreachable.empty()) {
    throw cli_error(exit_unreachable, st.unreachable);
  }
  if (interrupted()) {
    throw cli_error(exit_server_error, "interrupted");
  }
  if (read_failed) {
    throw cli_error(exit_server_error, "cannot read " + (o.file == "-" ? "stdin" : o.file));
  }
  return st.refused == 0 ? exit_ok : exit_server_error;
}

} // namespace surge::ctl
