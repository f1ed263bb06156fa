// Models of what a crash may leave of a volume, for the crash tests
// (fs/crash_test.cc, docs/testing.md "Crash tests").
//
// FileModel: one inode's bytes and size. It keeps the content as of the
// last completed fsync ("synced"), the current content, and every change
// since (the bytes each write, clone, punch, zero or truncate put there;
// an O_SYNC write makes its own range durable).
// After a crash each byte may read as its synced value, as any value a
// change since put at that offset, or as zero past the synced size; the
// size may be anything between the smallest size since the fsync ("floor")
// and the largest ("max").
//
// NamespaceModel: the names of the volume as a log of states, one per
// journaled namespace operation (each is one journal transaction, and the
// journal is replayed in order, so a crash leaves the state after some
// prefix of the log). An fsync of an inode makes durable every namespace
// operation up to the last one that touched that inode (created, renamed,
// unlinked or replaced it): Namespace::Sync commits the journal up to the
// inode's last record, and every earlier record with it.
//
// Thread-safety: thread-compatible (one test thread).
#ifndef IOMAPD_FS_TESTING_CRASH_MODEL_H_
#define IOMAPD_FS_TESTING_CRASH_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fs {
namespace testing {

class FileModel {
 public:
  // Offsets stay below `max_bytes` (the caller's bound on file sizes).
  explicit FileModel(int64_t max_bytes);

  int64_t size() const { return size_; }
  int64_t max_bytes() const { return max_bytes_; }
  // The current content, `max_bytes` long (zero past size()).
  const std::string& current() const { return current_; }

  // A write (or clone) of `data` at `pos`; grows the size past its end.
  // REQUIRES: pos + data.size() <= max_bytes.
  void Write(int64_t pos, const std::string& data);
  // Bytes [pos, pos + len) below the size read as zero (punch, zero range).
  void Zero(int64_t pos, int64_t len);
  // truncate(2): bytes at and past `size` are gone.
  void SetSize(int64_t size);
  // The size grows to `size` if smaller (fallocate without KEEP_SIZE).
  void Extend(int64_t size);
  // A completed fsync: the current content and size are durable.
  void Sync();
  // A completed fdatasync of [pos, pos + len) (an O_SYNC write): those
  // bytes are durable, and the size at least up to their end.
  void SyncRange(int64_t pos, int64_t len);

  // "" when `got` (the whole file a remount reads; its length is the
  // recovered size) is a legal outcome of a crash, else what is wrong.
  std::string Check(const std::string& got) const;

 private:
  struct Change {
    int64_t pos;
    std::string data;
    uint32_t seq;  // changes are numbered from 1
  };
  // True when a change since the last sync put `value` at `off`.
  bool ChangedTo(int64_t off, char value) const;

  int64_t max_bytes_;
  std::string synced_, current_;
  int64_t synced_size_ = 0, size_ = 0, floor_ = 0, max_size_ = 0;
  std::vector<Change> changes_;
  uint32_t seq_ = 0;
  // Per byte: the last change a SyncRange made durable (older ones are
  // no longer possible outcomes).
  std::vector<uint32_t> synced_seq_;
};

class NamespaceModel {
 public:
  // Path ("name" or "dir/name") -> the test's inode id.
  using State = std::map<std::string, int>;

  NamespaceModel() : log_(1) {}

  const State& current() const { return log_.back(); }
  // One journaled operation led to `next`; it touched the inodes `touched`.
  void Commit(State next, const std::vector<int>& touched);
  // A completed fsync of inode `id`.
  void Synced(int id);
  // The index of a state a crash may leave that equals `got`, or -1.
  int Match(const State& got) const;
  size_t floor() const { return floor_; }
  size_t ops() const { return log_.size(); }
  static std::string Describe(const State& s);
  const State& at(size_t i) const { return log_[i]; }

 private:
  std::vector<State> log_;
  std::map<int, size_t> last_touch_;
  size_t floor_ = 0;
};

}  // namespace testing
}  // namespace fs

#endif  // IOMAPD_FS_TESTING_CRASH_MODEL_H_
