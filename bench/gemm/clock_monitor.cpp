#include "clock_monitor.h"

#include <dlfcn.h>

#include <chrono>

namespace bench {
namespace {

// The few NVML entry points used, by their C ABI (nvml.h is not part of the CUDA toolkit here).
using NvmlReturn = int;  // NVML_SUCCESS = 0
using NvmlDevice = void*;
constexpr int kNvmlClockSm = 1;  // NVML_CLOCK_SM
using InitFn = NvmlReturn (*)();
using ShutdownFn = NvmlReturn (*)();
using HandleByBusIdFn = NvmlReturn (*)(const char*, NvmlDevice*);
using ClockInfoFn = NvmlReturn (*)(NvmlDevice, int, unsigned*);

}  // namespace

ClockMonitor::ClockMonitor(const std::string& pci_bus_id, int sample_us) : sample_us_(sample_us) {
  library_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library_) {
    status_ = "NVML (libnvidia-ml.so.1) could not be opened: the SM clock was not sampled";
    return;
  }
  auto init = reinterpret_cast<InitFn>(dlsym(library_, "nvmlInit_v2"));
  auto by_bus = reinterpret_cast<HandleByBusIdFn>(dlsym(library_, "nvmlDeviceGetHandleByPciBusId_v2"));
  get_clock_ = dlsym(library_, "nvmlDeviceGetClockInfo");
  shutdown_ = dlsym(library_, "nvmlShutdown");
  if (!init || !by_bus || !get_clock_ || !shutdown_) {
    status_ = "NVML lacks nvmlInit_v2, nvmlDeviceGetHandleByPciBusId_v2 or nvmlDeviceGetClockInfo";
    return;
  }
  if (init() != 0) {
    status_ = "nvmlInit_v2 failed: the SM clock was not sampled";
    shutdown_ = nullptr;
    return;
  }
  NvmlDevice device = nullptr;
  unsigned mhz = 0;
  if (by_bus(pci_bus_id.c_str(), &device) != 0 || !device) {
    status_ = "NVML does not know the GPU at PCI bus id " + pci_bus_id;
    return;
  }
  device_ = device;
  if (!read_mhz(&mhz)) {
    device_ = nullptr;
    status_ = "nvmlDeviceGetClockInfo(NVML_CLOCK_SM) failed on this GPU";
    return;
  }
  status_ = "ok";
  thread_ = std::thread([this] { run(); });
}

ClockMonitor::~ClockMonitor() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (shutdown_) reinterpret_cast<ShutdownFn>(shutdown_)();
  if (library_) dlclose(library_);
}

bool ClockMonitor::read_mhz(unsigned* mhz) {
  return reinterpret_cast<ClockInfoFn>(get_clock_)(device_, kNvmlClockSm, mhz) == 0;
}

// NOTE: one thread for the monitor's life, idle between windows, rather than one a window: a row
// makes ~10 windows a round, and the sampling must not cost the timed host loop a thread start.
void ClockMonitor::run() {
  while (!stop_) {
    if (active_) {
      unsigned mhz = 0;
      if (read_mhz(&mhz)) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (active_) window_.add_sample(mhz);
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(sample_us_));
  }
}

void ClockMonitor::begin() {
  if (!available()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  window_ = ClockTally{};
  active_ = true;
}

ClockTally ClockMonitor::end() {
  if (!available()) return {};
  std::lock_guard<std::mutex> lock(mutex_);
  active_ = false;
  return window_;
}

}  // namespace bench
