// Internal: the allocations a thread has already found to be memory the GPU entry points may take, so
// that checking a pointer into one of them again costs a scan of a few entries instead of a driver
// query (pointer_check.cpp). Plain host code, tested on the CPU (tests/cpp/test_known_ranges.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace int8dit::detail {

// Where a pointer lives, as far as the check needs it.
struct PointerPlace {
  enum Kind { kDevice, kManaged, kHost } kind = kHost;
  int device = -1;  // for kDevice
};

// A fixed set of [begin, end) address ranges, each with its place; the oldest entry gives way to a
// new one. Small on purpose: a GEMM call checks at most seven pointers, and a scan of 16 entries is
// ~20 ns where the driver query is ~150-200 ns (H200 host).
class KnownRanges {
 public:
  static constexpr int kSlots = 16;

  // The place of the range holding `address`, if one does.
  bool find(uintptr_t address, PointerPlace* out) const {
    for (const Entry& e : slots_) {
      if (address >= e.begin && address < e.end) {
        *out = e.place;
        return true;
      }
    }
    return false;
  }
  // Remembers [begin, begin + size) (nothing for an empty range, or one that wraps the address space).
  void add(uintptr_t begin, size_t size, const PointerPlace& place) {
    if (size == 0 || begin + size < begin) return;
    forget(begin);  // a range reported again, perhaps grown, replaces the old entry
    slots_[next_] = Entry{begin, begin + size, place};
    next_ = (next_ + 1) % kSlots;
  }
  // Drops the range holding `address`, if one does.
  void forget(uintptr_t address) {
    for (Entry& e : slots_) {
      if (address >= e.begin && address < e.end) e = Entry{};
    }
  }

 private:
  struct Entry {
    uintptr_t begin = 0, end = 0;  // empty: no address lies in [0, 0)
    PointerPlace place;
  };
  Entry slots_[kSlots];
  int next_ = 0;
};

}  // namespace int8dit::detail
