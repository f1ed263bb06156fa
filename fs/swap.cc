// Swap file activation state of a Volume (the S_SWAPFILE flag and the open
// reference swapon keeps): Volume::SwapActivate / SwapDeactivate and the
// checks other operations make against an active swap file.
#include <utility>

#include "fs/data_ops.h"
#include "fs/file.h"
#include "iomap/swapfile.h"

namespace fs {

int Volume::SwapActivate(FileHandle h, iomap::SwapInfo* out) {
  base::WriterLock swap(&swap_mu_);
  InodeAttr attr;
  if (int r = ns_->GetAttr(h, &attr); r != 0) return r;
  if (attr.nlink == 0) return -ENOENT;  // swapon: d_unlinked
  std::unique_ptr<OpenFile> f;
  if (int r = Open(h, &f); r != 0) return r;
  VolInode* vi = f->inode();
  int r;
  {
    base::WriterLock rw(&vi->locks().rwsem);
    base::WriterLock inv(&vi->locks().invalidate);
    if (vi->swapfile_.load()) {
      r = -EBUSY;
    } else {
      if (out->bdev == nullptr) out->bdev = &dev_;
      r = iomap::SwapfileActivate(vi, out, *ops_,
                                  [&f](iomap::Inode*) { return f->Fsync(); });
      if (r > 0) vi->swapfile_.store(true);
    }
  }
  if (r > 0) {
    swap_files_[h.ino] = std::move(f);
  } else {
    f->Close();
  }
  return r;
}

int Volume::SwapDeactivate(FileHandle h) {
  std::unique_ptr<OpenFile> f;
  {
    base::WriterLock swap(&swap_mu_);
    InodeAttr attr;
    if (int r = ns_->GetAttr(h, &attr); r != 0) return r;
    auto it = swap_files_.find(h.ino);
    if (it == swap_files_.end()) return -EINVAL;  // swapoff: not a swap area
    f = std::move(it->second);
    swap_files_.erase(it);
    VolInode* vi = f->inode();
    base::WriterLock rw(&vi->locks().rwsem);
    base::WriterLock inv(&vi->locks().invalidate);
    vi->swapfile_.store(false);
  }
  return f->Close();
}

int Volume::DeactivateAllSwapfiles() {
  absl::flat_hash_map<uint64_t, std::unique_ptr<OpenFile>> files;
  {
    base::WriterLock swap(&swap_mu_);
    files.swap(swap_files_);
  }
  int err = 0;
  for (auto& [ino, f] : files) {
    f->inode()->swapfile_.store(false);
    int r = f->Close();
    if (err == 0) err = r;
  }
  return err;
}

// may_delete(): an active swap file cannot be unlinked or renamed, nor
// replaced by a rename. REQUIRES: swap_mu_ held (shared).
int Volume::CheckNotSwapfile(FileHandle dir, absl::string_view name) const {
  InodeAttr a;
  if (ns_->Lookup(dir, name, &a) != 0) return 0;  // the operation reports it
  return swap_files_.contains(a.ino) ? -EPERM : 0;
}

}  // namespace fs
