#include "fs/testing/crash_model.h"

#include <algorithm>
#include <sstream>
#include <utility>

namespace fs {
namespace testing {

FileModel::FileModel(int64_t max_bytes)
    : max_bytes_(max_bytes),
      synced_(static_cast<size_t>(max_bytes), '\0'),
      current_(synced_),
      synced_seq_(static_cast<size_t>(max_bytes), 0) {}

void FileModel::Write(int64_t pos, const std::string& data) {
  current_.replace(static_cast<size_t>(pos), data.size(), data);
  changes_.push_back({pos, data, ++seq_});
  Extend(pos + static_cast<int64_t>(data.size()));
}

void FileModel::Zero(int64_t pos, int64_t len) {
  const int64_t end = std::min(pos + len, size_);
  if (end <= pos) return;
  std::string zeroes(static_cast<size_t>(end - pos), '\0');
  current_.replace(static_cast<size_t>(pos), zeroes.size(), zeroes);
  changes_.push_back({pos, std::move(zeroes), ++seq_});
}

void FileModel::SetSize(int64_t size) {
  if (size < size_) {
    Zero(size, size_ - size);
    size_ = size;
    floor_ = std::min(floor_, size);
  }
  Extend(size);
}

void FileModel::Extend(int64_t size) {
  size_ = std::max(size_, size);
  max_size_ = std::max(max_size_, size_);
}

void FileModel::Sync() {
  synced_ = current_;
  synced_size_ = floor_ = max_size_ = size_;
  changes_.clear();
}

void FileModel::SyncRange(int64_t pos, int64_t len) {
  for (int64_t b = pos; b < pos + len; ++b) {
    synced_[b] = current_[b];
    synced_seq_[b] = seq_;
  }
  floor_ = std::max(floor_, std::min(size_, pos + len));
}

bool FileModel::ChangedTo(int64_t off, char value) const {
  for (const Change& c : changes_) {
    if (c.seq > synced_seq_[off] && off >= c.pos &&
        off < c.pos + static_cast<int64_t>(c.data.size()) &&
        c.data[static_cast<size_t>(off - c.pos)] == value)
      return true;
  }
  return false;
}

std::string FileModel::Check(const std::string& got) const {
  const int64_t n = static_cast<int64_t>(got.size());
  std::ostringstream os;
  if (n < floor_ || n > max_size_) {
    os << "size " << n << " outside [" << floor_ << ", " << max_size_
       << "] (synced size " << synced_size_ << ", current " << size_ << ")";
    return os.str();
  }
  for (int64_t b = 0; b < n; ++b) {
    const char g = got[b];
    if (g == current_[b] || g == synced_[b] || (g == 0 && b >= synced_size_))
      continue;
    if (ChangedTo(b, g)) continue;
    os << "byte " << b << " reads " << (g & 0xff) << ", synced "
       << (synced_[b] & 0xff) << ", current " << (current_[b] & 0xff)
       << " (size " << n << ", synced size " << synced_size_ << ", "
       << changes_.size() << " changes since)";
    return os.str();
  }
  return "";
}

void NamespaceModel::Commit(State next, const std::vector<int>& touched) {
  log_.push_back(std::move(next));
  for (int id : touched) last_touch_[id] = log_.size() - 1;
}

void NamespaceModel::Synced(int id) {
  auto it = last_touch_.find(id);
  if (it != last_touch_.end()) floor_ = std::max(floor_, it->second);
}

int NamespaceModel::Match(const State& got) const {
  for (size_t k = log_.size(); k-- > floor_;) {
    if (log_[k] == got) return static_cast<int>(k);
  }
  return -1;
}

std::string NamespaceModel::Describe(const State& s) {
  std::ostringstream os;
  os << "{";
  for (const auto& [path, id] : s) os << " " << path << ":" << id;
  os << " }";
  return os.str();
}

}  // namespace testing
}  // namespace fs
