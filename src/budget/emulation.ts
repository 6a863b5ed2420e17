// Emulating a smaller card on a big one: torch allocations are capped at the target size
// (set_per_process_memory_fraction, applied by the probe) and vLLM's gpu_memory_utilization is
// scaled so its budget (real total × utilization) equals what it would be on the target card.
import { formatBytes } from "../model/format";

export interface EmulationSettings {
  /** For the plan: the probe caps torch at this many bytes per device. */
  emulate_device_bytes: number;
  /** What to pass vLLM instead of the requested utilization. */
  gpuMemoryUtilization: number;
  /** Short label for the run ("emulated 16.00 GiB card on 79.19 GiB"). */
  label: string;
  /** What the emulation does not cover. */
  limits: string;
}

const GIB = 1024 ** 3;

export function emulationSettings(
  targetGiB: number,
  actualTotalBytes: number,
  requestedUtilization: number,
): EmulationSettings {
  if (!(Number.isFinite(targetGiB) && targetGiB > 0)) {
    throw new RangeError(`memlens.emulateGpuGiB must be a positive number of GiB, got ${targetGiB}.`);
  }
  if (!(Number.isFinite(actualTotalBytes) && actualTotalBytes > 0)) {
    throw new RangeError(
      `the device's total memory is unknown (${actualTotalBytes}): run once without emulation first.`,
    );
  }
  if (!(requestedUtilization > 0 && requestedUtilization <= 1)) {
    throw new RangeError(`gpu_memory_utilization must be in (0, 1], got ${requestedUtilization}.`);
  }
  const targetBytes = Math.floor(targetGiB * GIB);
  if (targetBytes >= actualTotalBytes) {
    throw new RangeError(
      `cannot emulate a ${formatBytes(targetBytes, 2)} card on a device of ${formatBytes(actualTotalBytes, 2)}: ` +
        `the emulated card must be smaller. Clear memlens.emulateGpuGiB to use the whole device.`,
    );
  }
  // Floor so the scaled budget never exceeds the emulated card's by rounding.
  const scaled = Math.floor(((requestedUtilization * targetBytes) / actualTotalBytes) * 1e6) / 1e6;
  return {
    emulate_device_bytes: targetBytes,
    gpuMemoryUtilization: scaled,
    label:
      `emulated ${formatBytes(targetBytes, 2)} card on a ${formatBytes(actualTotalBytes, 2)} device ` +
      `(gpu_memory_utilization ${requestedUtilization} → ${scaled})`,
    limits:
      `Emulation caps only torch's allocations at ${formatBytes(targetBytes, 2)} (torch.cuda.set_per_process_memory_fraction ` +
      `${(targetBytes / actualTotalBytes).toFixed(4)}). Memory outside torch — the CUDA context, cuBLAS/NCCL workspaces, other ` +
      `processes — is not capped and is not counted against the emulated card, so a real ${formatBytes(targetBytes, 2)} card ` +
      `has less room than the emulation shows by about the non-torch figure. vLLM still reports the real total in its logs; ` +
      `its budget (total × ${scaled}) equals ${formatBytes(targetBytes, 2)} × ${requestedUtilization}.`,
  };
}
