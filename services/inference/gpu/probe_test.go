package gpu

import (
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

// fakeDriver is go-nvml's simulated DGX A100 (no GPU or driver runs here)
// cut to n devices, with the readings dgxa100 leaves out. count counts the
// times the probe asked for the device count, one per snapshot.
func fakeDriver(n int, count *atomic.Int32) *dgxa100.Server {
	s := dgxa100.New()
	s.DeviceGetCountFunc = func() (int, nvml.Return) {
		count.Add(1)
		return n, nvml.SUCCESS
	}
	for i := range n {
		d := s.Devices[i].(*dgxa100.Device)
		d.MemoryInfo = nvml.Memory{Total: 40 << 30, Used: 12 << 30, Free: 28 << 30}
		d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return uint32(61 + i), nvml.SUCCESS }
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: 97, Memory: 41}, nvml.SUCCESS
		}
		d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
			return nvml.ClocksEventReasonSwPowerCap | nvml.ClocksThrottleReasonHwThermalSlowdown, nvml.SUCCESS
		}
		d.GetMaxClockInfoFunc = func(nvml.ClockType) (uint32, nvml.Return) { return 1215, nvml.SUCCESS }
		d.GetMemoryBusWidthFunc = func() (uint32, nvml.Return) { return 5120, nvml.SUCCESS }
	}
	return s
}

func TestSnapshotReadsEveryDevice(t *testing.T) {
	var count atomic.Int32
	drv := fakeDriver(2, &count)
	p := NewProbe(drv)
	defer p.Close()
	if p.Err() != nil {
		t.Fatalf("Err() = %v", p.Err())
	}
	s := p.Snapshot()
	if s.Driver != "550.54.15" || s.CUDA != "12.4" || len(s.Devices) != 2 || s.Unavailable != "" {
		t.Fatalf("snapshot = %+v", s)
	}
	d := s.Devices[1]
	want := Device{
		Index: 1, Name: "Mock NVIDIA A100-SXM4-40GB", UUID: drv.Devices[1].(*dgxa100.Device).UUID,
		MemoryTotal: 40 << 30, MemoryFree: 28 << 30, MemoryUsed: 12 << 30,
		TemperatureC: 62, UtilizationGPU: 97, UtilizationMem: 41,
		ThrottleReasons:   []string{"hw_thermal", "sw_power_cap"},
		MemoryBandwidth:   2 * 1215e6 * 5120 / 8,
		ComputeCapability: 80,
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("device 1:\n got %+v\nwant %+v", d, want)
	}
	if s.Summary() != "Mock NVIDIA A100-SXM4-40GB (x2)" {
		t.Fatalf("Summary() = %q", s.Summary())
	}
	line := s.String()
	for _, w := range []string{"driver 550.54.15", "CUDA 12.4", "#0 Mock NVIDIA A100-SXM4-40GB, 40.0 GiB total, 28.0 GiB free", "#1 "} {
		if !strings.Contains(line, w) {
			t.Fatalf("String() = %q, want %q in it", line, w)
		}
	}
}

func TestRecentBoundsDriverQueries(t *testing.T) {
	var count atomic.Int32
	drv := fakeDriver(1, &count)
	p := NewProbe(drv)
	defer p.Close()
	for range 50 {
		p.Recent(time.Hour)
	}
	if n := count.Load(); n != 1 {
		t.Fatalf("50 calls within the age read the driver %d times, want 1", n)
	}
	drv.Devices[0].(*dgxa100.Device).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 88, nvml.SUCCESS }
	if got := p.Recent(0).Devices[0].TemperatureC; got != 88 || count.Load() != 2 {
		t.Fatalf("an expired snapshot: temperature %d after %d reads, want 88 after 2", got, count.Load())
	}
}

func TestClosedProbeSaysSo(t *testing.T) {
	var count atomic.Int32
	p := NewProbe(fakeDriver(1, &count))
	p.Close()
	s := p.Snapshot()
	if len(s.Devices) != 0 || !strings.Contains(s.Unavailable, "closed") {
		t.Fatalf("after Close: %+v", s)
	}
}

func TestInitFailure(t *testing.T) {
	drv := dgxa100.New()
	drv.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
	p := NewProbe(drv)
	if p.Err() == nil || !strings.Contains(p.Snapshot().String(), "gpu: none") {
		t.Fatalf("Err() = %v, snapshot %q", p.Err(), p.Snapshot().String())
	}
}

func TestThrottleReasonNames(t *testing.T) {
	names := ThrottleReasonNames()
	if len(names) != len(throttleBits) {
		t.Fatalf("%d names for %d bits", len(names), len(throttleBits))
	}
	var all uint64
	for b := range throttleBits {
		all |= b
	}
	if got := throttleNames(all); !reflect.DeepEqual(got, names) {
		t.Fatalf("every bit set names %v, want %v", got, names)
	}
}
