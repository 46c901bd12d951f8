// The pointer check's memory of good allocations (src/core/known_ranges.h): which addresses it
// answers for, what it forgets, and that it never holds more than its slots.
#include <gtest/gtest.h>

#include <cstdint>

#include "core/known_ranges.h"

namespace {

using int8dit::detail::KnownRanges;
using int8dit::detail::PointerPlace;

PointerPlace on_device(int d) {
  PointerPlace p;
  p.kind = PointerPlace::kDevice;
  p.device = d;
  return p;
}

TEST(KnownRanges, AnswersForEveryAddressInsideARangeAndNoneOutside) {
  KnownRanges known;
  known.add(0x1000, 0x100, on_device(1));
  PointerPlace got;
  ASSERT_TRUE(known.find(0x1000, &got));
  EXPECT_EQ(got.kind, PointerPlace::kDevice);
  EXPECT_EQ(got.device, 1);
  EXPECT_TRUE(known.find(0x10ff, &got));   // the last byte
  EXPECT_FALSE(known.find(0x1100, &got));  // one past the end
  EXPECT_FALSE(known.find(0x0fff, &got));
  EXPECT_FALSE(known.find(0, &got));       // empty slots hold no address, null included
}

TEST(KnownRanges, EmptyAndWrappingRangesAreNotRemembered) {
  KnownRanges known;
  known.add(0x2000, 0, on_device(0));
  known.add(UINTPTR_MAX - 4, 16, on_device(0));
  PointerPlace got;
  EXPECT_FALSE(known.find(0x2000, &got));
  EXPECT_FALSE(known.find(UINTPTR_MAX - 2, &got));
}

TEST(KnownRanges, ForgetDropsTheRangeHoldingTheAddress) {
  KnownRanges known;
  known.add(0x1000, 0x100, on_device(0));
  known.add(0x3000, 0x100, on_device(0));
  known.forget(0x1080);
  PointerPlace got;
  EXPECT_FALSE(known.find(0x1000, &got));
  EXPECT_TRUE(known.find(0x3000, &got));
}

TEST(KnownRanges, ARangeReportedAgainReplacesTheOldEntry) {
  KnownRanges known;
  known.add(0x1000, 0x100, on_device(0));
  PointerPlace managed;
  managed.kind = PointerPlace::kManaged;
  known.add(0x1000, 0x200, managed);  // the same start, now larger and managed
  PointerPlace got;
  ASSERT_TRUE(known.find(0x1180, &got));
  EXPECT_EQ(got.kind, PointerPlace::kManaged);
  known.forget(0x1000);
  EXPECT_FALSE(known.find(0x1000, &got));  // no second, older entry left behind
}

TEST(KnownRanges, TheOldestRangeGivesWayOnceTheSlotsAreFull) {
  KnownRanges known;
  for (int i = 0; i <= KnownRanges::kSlots; ++i) known.add(0x10000 * (i + 1), 0x100, on_device(i));
  PointerPlace got;
  EXPECT_FALSE(known.find(0x10000, &got));  // the first, overwritten by the 17th
  for (int i = 1; i <= KnownRanges::kSlots; ++i) {
    ASSERT_TRUE(known.find(0x10000 * (i + 1) + 8, &got)) << "range " << i;
    EXPECT_EQ(got.device, i);
  }
}

}  // namespace
