#include "integration_tests/stress/stress.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>

namespace stress {

namespace {

constexpr char kMagic[8] = {'I', 'O', 'M', 'A', 'P', 'D', 'S', 'B'};

struct Header {
  char magic[8];
  uint32_t client, seq, file, pad;
  uint64_t block;
};
static_assert(sizeof(Header) == 32, "header layout");

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void Fill(const Header& h, char* out) {
  uint64_t x = Mix((uint64_t{h.client} << 40) ^ (uint64_t{h.seq} << 8) ^
                   (h.block << 20) ^ h.file);
  for (int64_t i = sizeof(Header); i < kBlock; i += 8) {
    x = Mix(x);
    std::memcpy(out + i, &x, 8);
  }
}

enum class Kind { kWrite, kTruncate };

struct Event {
  Kind kind;
  uint32_t client, seq;
  int file;
  int64_t first, count;  // blocks written; for truncate first = new size
  uint64_t start, ack;
};

// What a block read back holds.
struct Seen {
  bool zero = false;
  bool valid = false;
  Header h{};
};

Seen Parse(const char* p, int file, uint64_t block) {
  Seen s;
  static const std::string kZero(kBlock, '\0');
  if (std::memcmp(p, kZero.data(), kBlock) == 0) {
    s.zero = s.valid = true;
    return s;
  }
  std::memcpy(&s.h, p, sizeof(Header));
  if (std::memcmp(s.h.magic, kMagic, 8) != 0 ||
      s.h.file != static_cast<uint32_t>(file) || s.h.block != block) {
    return s;
  }
  std::string want(kBlock, '\0');
  std::memcpy(&want[0], &s.h, sizeof(Header));
  Fill(s.h, &want[0]);
  s.valid = std::memcmp(p, want.data(), kBlock) == 0;
  return s;
}

std::string Describe(const Seen& s) {
  if (s.zero) return "zeros";
  return "write (client " + std::to_string(s.h.client) + ", seq " +
         std::to_string(s.h.seq) + ")";
}

class Runner {
 public:
  Runner(const Options& o,
         const std::function<std::unique_ptr<Endpoint>(int)>& make)
      : o_(o),
        make_(make),
        writes_(o.files, std::vector<std::vector<Event>>(o.max_blocks)),
        cuts_(o.files) {}

  Result Go() {
    std::vector<std::thread> threads;
    for (int c = 0; c < o_.clients; ++c) {
      threads.emplace_back([this, c] { Client(c); });
    }
    for (auto& t : threads) t.join();
    if (result_.problems.empty()) Verify();
    return result_;
  }

 private:
  void Problem(std::string p) {
    std::lock_guard<std::mutex> l(mu_);
    ProblemLocked(std::move(p));
  }
  void ProblemLocked(std::string p) {
    if (result_.problems.size() < 50) result_.problems.push_back(std::move(p));
  }
  void Log(const Event& e) {
    std::lock_guard<std::mutex> l(mu_);
    ++result_.writes;
    for (int64_t b = e.first; b < e.first + e.count; ++b) {
      writes_[e.file][b].push_back(e);
    }
  }
  void Count(uint64_t Result::*field) {
    std::lock_guard<std::mutex> l(mu_);
    ++(result_.*field);
  }

  void Client(int c) {
    std::unique_ptr<Endpoint> ep = make_(c);
    std::mt19937_64 rng(o_.seed * 1000003 + c);
    for (int i = 0; i < o_.ops_per_client; ++i) {
      uint32_t seq = static_cast<uint32_t>(i);
      int file = static_cast<int>(rng() % o_.files);
      int dice = static_cast<int>(rng() % 100);
      if (dice < 45) {
        DoWrite(ep.get(), c, seq, file, &rng);
      } else if (dice < 85) {
        DoRead(ep.get(), file, &rng);
      } else if (dice < 93) {
        if (int r = ep->Fsync(file); r != 0)
          Problem("fsync: " + std::to_string(r));
        Count(&Result::fsyncs);
      } else {
        DoTruncate(ep.get(), c, seq, file, &rng);
      }
      Count(&Result::ops);
    }
  }

  void DoWrite(Endpoint* ep, int c, uint32_t seq, int file,
               std::mt19937_64* rng) {
    int64_t first = static_cast<int64_t>((*rng)() % o_.max_blocks);
    int64_t count = 1 + static_cast<int64_t>((*rng)() % 8);
    count = std::min(count, o_.max_blocks - first);
    std::string data;
    for (int64_t b = first; b < first + count; ++b) {
      data += StampBlock(c, seq, file, b);
    }
    uint64_t start = tick_++;
    int64_t r = ep->Write(file, first * kBlock, data);
    uint64_t ack = tick_++;
    if (r != static_cast<int64_t>(data.size())) {
      Problem("write of " + std::to_string(data.size()) + " returned " +
              std::to_string(r));
      return;
    }
    Log(Event{Kind::kWrite, static_cast<uint32_t>(c), seq, file, first, count,
              start, ack});
  }

  void DoTruncate(Endpoint* ep, int c, uint32_t seq, int file,
                  std::mt19937_64* rng) {
    int64_t size = static_cast<int64_t>((*rng)() % (o_.max_blocks + 1));
    // Logged before it runs, unacknowledged (ack "infinity"), so that a
    // concurrent read may be explained by it.
    size_t index;
    {
      std::lock_guard<std::mutex> l(mu_);
      index = cuts_[file].size();
      cuts_[file].push_back(Event{Kind::kTruncate, static_cast<uint32_t>(c),
                                  seq, file, size, 0, tick_++, UINT64_MAX});
      ++result_.truncates;
    }
    int r = ep->Truncate(file, size * kBlock);
    uint64_t ack = tick_++;
    if (r != 0) Problem("truncate: " + std::to_string(r));
    std::lock_guard<std::mutex> l(mu_);
    cuts_[file][index].ack = ack;
  }

  // Every block read while others write must be whole (zeros or one
  // write's block for exactly this file and position) and fresh: no write
  // or truncate acknowledged before the read began may be missing.
  void DoRead(Endpoint* ep, int file, std::mt19937_64* rng) {
    int64_t first = static_cast<int64_t>((*rng)() % o_.max_blocks);
    int64_t count = 1 + static_cast<int64_t>((*rng)() % 16);
    count = std::min(count, o_.max_blocks - first);
    std::string out;
    uint64_t start = tick_++;
    int64_t r = ep->Read(file, first * kBlock, count * kBlock, &out);
    uint64_t end = tick_++;
    Count(&Result::reads);
    if (r < 0) {
      Problem("read: " + std::to_string(r));
      return;
    }
    if (r % kBlock != 0) {
      Problem("read returned " + std::to_string(r) +
              " bytes: the size is always block-aligned");
      return;
    }
    std::lock_guard<std::mutex> l(mu_);
    for (int64_t i = 0; i < count; ++i) {
      Seen s;
      s.zero = s.valid = true;  // past EOF reads as a hole
      if (i < r / kBlock) s = Parse(&out[i * kBlock], file, first + i);
      CheckBlock(file, first + i, s, start, end, /*final=*/false);
    }
  }

  void Verify();
  void CheckBlock(int file, int64_t b, const Seen& s, uint64_t read_start,
                  uint64_t read_end, bool final);

  const Options o_;
  const std::function<std::unique_ptr<Endpoint>(int)>& make_;
  std::atomic<uint64_t> tick_{1};
  std::mutex mu_;
  // Acknowledged writes by file and block; truncates by file, from the
  // moment they start.
  std::vector<std::vector<std::vector<Event>>> writes_;
  std::vector<std::vector<Event>> cuts_;
  Result result_;
};

void Runner::Verify() {
  std::unique_ptr<Endpoint> ep = make_(o_.clients);
  const uint64_t now = tick_++;
  for (int f = 0; f < o_.files; ++f) {
    std::string out;
    int64_t r = ep->Read(f, 0, (o_.max_blocks + 1) * kBlock, &out);
    if (r < 0 || r % kBlock != 0) {
      Problem("final read of file " + std::to_string(f) + ": " +
              std::to_string(r));
      continue;
    }
    std::lock_guard<std::mutex> l(mu_);
    for (int64_t b = 0; b < o_.max_blocks; ++b) {
      Seen s;
      s.zero = s.valid = true;  // past EOF reads as a hole
      if (b < r / kBlock) s = Parse(&out[b * kBlock], f, b);
      CheckBlock(f, b, s, now, now, /*final=*/true);
    }
  }
}

// What a read running from tick `rs` to `re` may see in block b, given the
// operations acknowledged before it began (real-time order): a write's block
// only if no write of b and no truncate below b started after that write was
// acknowledged and was acknowledged before the read began; a hole only if
// every write of b acknowledged before the read began may have been followed
// by a truncate below b that did not start after the read ended. A block
// from a write not yet logged is in flight (allowed) unless `final`.
void Runner::CheckBlock(int file, int64_t b, const Seen& s, uint64_t rs,
                        uint64_t re, bool final) {
  const std::string where = std::string(final ? "final" : "concurrent read") +
                            ": file " + std::to_string(file) + " block " +
                            std::to_string(b) + ": ";
  if (!s.valid) {
    ProblemLocked(where + "holds bytes no write produced (torn or stale)");
    return;
  }
  const std::vector<Event>& writes = writes_[file][b];
  const std::vector<Event>& cuts = cuts_[file];
  auto cuts_b = [&](const Event& t) { return t.first <= b; };
  if (!s.zero) {
    const Event* holder = nullptr;
    for (const Event& w : writes) {
      if (w.client == s.h.client && w.seq == s.h.seq) holder = &w;
    }
    if (holder == nullptr) {
      if (final) ProblemLocked(where + Describe(s) + " never wrote this block");
      return;
    }
    for (const Event& w : writes) {
      if (w.start > holder->ack && w.ack < rs) {
        ProblemLocked(where + Describe(s) + " survived a later write (client " +
                      std::to_string(w.client) + ", seq " +
                      std::to_string(w.seq) + "): that write was lost");
        return;
      }
    }
    for (const Event& t : cuts) {
      if (cuts_b(t) && t.start > holder->ack && t.ack < rs) {
        ProblemLocked(where + Describe(s) + " survived a later truncate to " +
                      std::to_string(t.first) + " blocks");
        return;
      }
    }
    return;
  }
  for (const Event& w : writes) {
    if (w.ack >= rs) continue;
    bool cut_after = std::any_of(cuts.begin(), cuts.end(), [&](const Event& t) {
      return cuts_b(t) && t.ack > w.start && t.start < re;
    });
    if (!cut_after) {
      ProblemLocked(where + "reads as a hole, but write (client " +
                    std::to_string(w.client) + ", seq " +
                    std::to_string(w.seq) +
                    ") of it was acknowledged and nothing truncated it after");
      return;
    }
  }
}

}  // namespace

std::string StampBlock(uint32_t client, uint32_t seq, uint32_t file,
                       uint64_t block) {
  std::string out(kBlock, '\0');
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.client = client;
  h.seq = seq;
  h.file = file;
  h.block = block;
  std::memcpy(&out[0], &h, sizeof(h));
  Fill(h, &out[0]);
  return out;
}

Result Run(const Options& options,
           const std::function<std::unique_ptr<Endpoint>(int)>& make) {
  return Runner(options, make).Go();
}

}  // namespace stress
