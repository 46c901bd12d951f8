// The SM clock while a benchmark path runs, sampled from NVML on a thread of its own.
//
// Why: under a sustained INT8, FP8 or bf16 load the lent H200 sits at its 700 W cap and its SM clock
// moves between ~1.3 and 1.98 GHz (bench/results/h200/dmon_gemm.txt), so a large GEMM's TOPS are its
// schedule's work per clock times a clock that its power draw sets. The clock each path ran at splits
// the two: TOPS per GHz is the schedule's, the clock is the power's.
//
// NVML (libnvidia-ml.so.1, part of the driver) is opened at run time: a machine without it runs the
// benchmark as before and the report says the clock was not sampled, and why.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

namespace bench {

// Samples of the SM clock over one window (or several, merged).
struct ClockTally {
  double sum_mhz = 0;
  int samples = 0;
  void add_sample(double mhz) {
    sum_mhz += mhz;
    ++samples;
  }
  void merge(const ClockTally& o) {
    sum_mhz += o.sum_mhz;
    samples += o.samples;
  }
  double mean_mhz() const { return samples > 0 ? sum_mhz / samples : 0.0; }
};

class ClockMonitor {
 public:
  // The GPU with this PCI bus id (cudaDeviceGetPCIBusId's form); sample_us between samples.
  explicit ClockMonitor(const std::string& pci_bus_id, int sample_us = 1000);
  ~ClockMonitor();
  ClockMonitor(const ClockMonitor&) = delete;
  ClockMonitor& operator=(const ClockMonitor&) = delete;

  bool available() const { return device_ != nullptr; }
  const std::string& status() const { return status_; }  // "ok", or why there are no samples
  int sample_us() const { return sample_us_; }

  void begin();        // starts a window: samples from now on count
  ClockTally end();    // ends it: the samples taken since begin()

 private:
  void run();
  bool read_mhz(unsigned* mhz);

  std::string status_;
  int sample_us_;
  void* library_ = nullptr;
  void* device_ = nullptr;
  void* get_clock_ = nullptr;  // nvmlDeviceGetClockInfo
  void* shutdown_ = nullptr;   // nvmlShutdown
  std::atomic<bool> stop_{false};
  std::atomic<bool> active_{false};
  std::mutex mutex_;
  ClockTally window_;
  std::thread thread_;
};

}  // namespace bench
