#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "surge.pb.h"

namespace surge::actors {

/// The lottery's generator: xoshiro256** whose state is filled by splitmix64 from a 64-bit seed.
/// Its output, and so below(), is fixed by the seed on every platform (std::shuffle's is not).
class lottery_rng {
 public:
  explicit lottery_rng(uint64_t seed);
  uint64_t next();
  /// Uniform in [0, n) (Lemire's multiply-and-reject, no modulo bias). REQUIRES: n > 0.
  uint64_t below(uint64_t n);

 private:
  uint64_t s_[4];
};

/// The lottery's order of `n` tickets: out[rank] = seq, a Fisher-Yates shuffle of 0..n-1 driven
/// by lottery_rng(seed). The same seed gives the same order.
std::vector<uint32_t> lottery_order(uint64_t seed, uint32_t n);

/// The auto admission rate (admission_rate "auto"), additive increase / multiplicative decrease
/// on the sale's SKU read latency, once per read round: halved when the reads were `over` the
/// latency budget (or failed), else raised by `step` when admission was bound by the rate;
/// kept within [floor, ceiling].
struct auto_admission {
  static constexpr double start = 50;
  static constexpr double floor = 10;
  static constexpr double step = 10;
  static constexpr double ceiling = 5000;
  static double next(double rate, bool over, bool rate_bound);
};

/// What a ticket says (API.md: waiting, admitted, sold_out, expired).
enum class ticket_state : uint8_t { waiting, admitted, sold_out, expired };
const char* to_string(ticket_state s);

/// The waiting room of one sale as a pure state machine, like sku_model: commands are *decided*
/// against the state (an event or an error, never a change) and events are *applied* (never
/// failing). Replaying the journal's events in order gives the same state. No I/O, no clock:
/// time comes with the arguments.
///
/// Tickets: the n-th distinct customer to join gets join number seq = n (0-based); a customer
/// joins once. Ranks (admission order): none before the lottery; the lottery ranks the tickets
/// joined before it (the pre-queue) by lottery_order(seed); a ticket joined after it has
/// rank = seq. Ranks [0, admitted) are admitted; `admitted` only grows, so a waiting ticket's
/// position (rank - admitted + 1) never grows. Each admission step (through, at_ms) is kept, so
/// a ticket's admission time is a binary search away.
///
/// Memory (about 40 bytes per ticket for 20-byte customer ids, bytes_used()): the customer ids
/// in one arena with an end offset per ticket, an open-addressing table of seq + 1 by the
/// customer's hash, and the lottery's rank per pre-queue ticket; nothing per ticket after it.
/// Not thread-safe: owned by its sale actor. Copyable (tests compare copies).
class sale_model {
 public:
  /// The longest customer id a ticket takes (a pass carries it: ids.hpp's field limit).
  static constexpr std::size_t max_customer = 256;
  /// The most tickets one sale issues (seqs and arena offsets are 32-bit).
  static constexpr uint64_t max_tickets = 0xFFFF'FFFEu;

  sale_model() = default;
  explicit sale_model(const proto::SaleSnapshot& snap);

  uint64_t tickets() const { return ends_.size(); }
  bool ranked() const { return ranked_; }
  uint64_t lottery_seed() const { return seed_; }
  int64_t lottery_at_ms() const { return lottery_at_ms_; }
  /// Tickets joined before the lottery (all of them while it has not run).
  uint64_t prequeue() const { return ranked_ ? prequeue_ : tickets(); }
  int64_t admitted() const { return admitted_; }

  /// The ticket of `customer`, or nullopt.
  std::optional<uint64_t> seq_of(std::string_view customer) const;
  /// The customer of ticket `seq`. REQUIRES: seq < tickets(). Valid until the next apply().
  std::string_view customer(uint64_t seq) const;
  /// The rank of ticket `seq` (0-based admission order), or nullopt before the lottery.
  /// REQUIRES: seq < tickets().
  std::optional<int64_t> rank(uint64_t seq) const;
  /// 1-based place in the line of a ranked ticket not admitted yet, else nullopt. O(1).
  std::optional<int64_t> position(uint64_t seq) const;
  /// When ticket `seq` was admitted, or nullopt while it is not.
  std::optional<int64_t> admitted_at(uint64_t seq) const;
  /// How many tickets had been admitted at `t_ms` (steps at or before it).
  int64_t admitted_as_of(int64_t t_ms) const;

  /// What the ticket says at `now_ms`: admitted while its pass (admission + pass_ttl_ms) lasts,
  /// then expired; not admitted: expired once the sale `ended`, sold_out while the sale is sold
  /// out, else waiting.
  struct ticket_context {
    int64_t now_ms = 0;
    int64_t pass_ttl_ms = 0;
    bool sold_out = false;
    bool ended = false;
  };
  ticket_state state_of(uint64_t seq, const ticket_context& c) const;

  /// A join of `customer`: the event `joined` for a new customer, nullopt when the customer has
  /// a ticket already (seq_of). Errors: invalid (empty, longer than max_customer, or holding a
  /// NUL), unavailable (max_tickets issued).
  caf::expected<std::optional<proto::SaleEvent>> decide_join(std::string_view customer,
                                                             int64_t now_ms) const;

  /// The lottery over the tickets joined so far, seeded with `seed`; nullopt when it ran.
  std::optional<proto::SaleEvent> decide_lottery(uint64_t seed, int64_t now_ms) const;

  /// What an admission decision sees (sale actor: stock read from the SKUs, its own counts).
  struct admit_inputs {
    int64_t now_ms = 0;
    double sale_rate = 0;    ///< the sale's admission_rate per second; 0: auto
    double auto_rate = 0;    ///< the auto controller's rate per second (used when auto)
    double since_last_s = 0; ///< seconds since the last admission (or since it could start)
    int64_t available = 0;   ///< units available across the sale's SKUs
    int64_t open_passes = 0; ///< passes admitted, unexpired and not reported used
  };
  /// How many more tickets may be admitted now: the least of the rate's budget (rate times the
  /// seconds since the last admission, those counted up to max(1 s, one shopper's interval)),
  /// the units available not already promised to open passes, and the ranked tickets still
  /// waiting. 0 before the lottery.
  int64_t admit_budget(const admit_inputs& in) const;
  /// admit_budget() as the event `admitted` (through the new count), or nullopt when it is 0.
  std::optional<proto::SaleEvent> decide_admit(const admit_inputs& in) const;

  void apply(const proto::SaleEvent& ev);
  void apply(const proto::SaleBatch& batch);

  proto::SaleSnapshot snapshot() const;

  /// Heap and object bytes this model holds (capacities, not sizes).
  std::size_t bytes_used() const;

 private:
  struct step {
    int64_t through = 0;
    int64_t at_ms = 0;
  };

  uint64_t hash_of(std::string_view customer) const;
  /// Inserts seq (its customer already in the arena) into the table, growing it when 3/4 full.
  void index(uint32_t seq);
  void rehash(std::size_t slots);
  void add_customer(std::string_view customer);
  void run_lottery();

  std::string arena_;             ///< customer ids back to back, in seq order
  std::vector<uint32_t> ends_;    ///< ends_[seq]: end of seq's id in arena_
  std::vector<uint32_t> slots_;   ///< open addressing, linear probing: seq + 1; 0 empty
  std::vector<uint32_t> rank_of_; ///< the lottery's rank of each pre-queue seq
  std::vector<step> steps_;       ///< admission steps, `through` ascending
  bool ranked_ = false;
  uint64_t seed_ = 0;
  int64_t lottery_at_ms_ = 0;
  uint64_t prequeue_ = 0;
  int64_t admitted_ = 0;
};

} // namespace surge::actors
