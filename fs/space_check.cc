#include "fs/space_check.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace fs {
namespace {

// What changes at a block boundary during the sweep.
enum Kind : int { kFree = 0, kData = 1, kCow = 2, kRefcount = 3 };

struct Event {
  uint64_t block;
  Kind kind;
  int64_t delta;
  bool operator<(const Event& o) const {
    return std::tie(block, kind, delta) < std::tie(o.block, o.kind, o.delta);
  }
};

void AddRange(std::vector<Event>* ev, uint64_t start, uint64_t len, Kind kind,
              int64_t weight = 1) {
  ev->push_back({start, kind, weight});
  ev->push_back({start + len, kind, -weight});
}

std::vector<Event> Collect(const SpaceView& v) {
  std::vector<Event> ev;
  v.allocator->ForEachFree(
      [&](const BlockRange& r) { AddRange(&ev, r.start, r.len, kFree); });
  if (v.refcounts != nullptr)
    v.refcounts->ForEach([&](const RefcountRecord& r) {
      AddRange(&ev, r.start, r.len, kRefcount, r.count);
    });
  for (const ForkRef& f : v.forks)
    f.map->ForEach([&](const Extent& e) {
      if (e.allocated())
        AddRange(&ev, e.dev_block, e.len, f.cow ? kCow : kData);
    });
  std::sort(ev.begin(), ev.end());
  return ev;
}

// The problem with blocks [start, end) given the counts there, or "".
std::string PieceProblem(const SpaceView& v, uint64_t start, uint64_t end,
                         const int64_t* c) {
  const std::string where = absl::StrCat("blocks ", start, "..", end - 1, ": ");
  const int64_t used = c[kData] + c[kCow];
  if (start < v.data_start || end > v.block_count) {
    if (used > 0) return where + "mapped outside the data area";
    if (c[kFree] > 0) return where + "free outside the data area";
    return "";
  }
  if (c[kFree] > 1) return where + "free twice";
  if (c[kFree] > 0 && used > 0) return where + "both free and used";
  if (c[kFree] == 0 && used == 0)
    return where + "neither free nor used (leaked)";
  if (c[kCow] > 0 && (c[kCow] > 1 || c[kData] > 0))
    return where + "COW staging blocks also mapped elsewhere";
  const int64_t want =
      c[kData] >= 2 ? c[kData] : 0;  // counts < 2 are not stored
  if (c[kCow] == 0 && c[kRefcount] != want)
    return absl::StrCat(where, "refcount ",
                        c[kRefcount] == 0 ? 1 : c[kRefcount], " but ", c[kData],
                        " referencing extents");
  return "";
}

void CheckEach(const SpaceView& v, std::vector<std::string>* problems) {
  if (absl::Status s = v.allocator->Check(); !s.ok())
    problems->push_back(absl::StrCat("free space: ", s.message()));
  if (v.refcounts != nullptr) {
    if (absl::Status s = v.refcounts->Check(); !s.ok())
      problems->push_back(absl::StrCat("refcounts: ", s.message()));
  }
  for (const ForkRef& f : v.forks) {
    if (absl::Status s = f.map->Check(v.data_start, v.block_count); !s.ok())
      problems->push_back(absl::StrCat(
          "inode ", f.ino, f.cow ? " COW" : " data", " fork: ", s.message()));
  }
}

}  // namespace

void CheckSpace(const SpaceView& v, std::vector<std::string>* problems,
                size_t max_problems) {
  const size_t first = problems->size();
  CheckEach(v, problems);
  std::vector<Event> ev = Collect(v);
  // Sentinels: the whole data area is swept, including its unmentioned ends.
  ev.insert(ev.begin(), Event{v.data_start, kFree, 0});
  ev.push_back(Event{v.block_count, kFree, 0});
  std::sort(ev.begin(), ev.end());
  int64_t c[4] = {0, 0, 0, 0};
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    c[ev[i].kind] += ev[i].delta;
    const uint64_t start = ev[i].block, end = ev[i + 1].block;
    if (start == end) continue;
    std::string p = PieceProblem(v, start, end, c);
    if (p.empty()) continue;
    if (problems->size() - first >= max_problems) {
      problems->push_back("... more space problems not shown");
      return;
    }
    problems->push_back(p);
  }
}

}  // namespace fs
