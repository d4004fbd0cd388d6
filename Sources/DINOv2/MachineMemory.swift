import Foundation

/// The memory this process may use, for choosing how to load weights (`Model.Loading.automatic`).
public enum MachineMemory {
    /// Physical memory, or the container's limit when one is set and lower (cgroup v2
    /// `memory.max`, v1 `memory.limit_in_bytes`): what running out of means the OOM killer.
    public static var bytes: Int {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        let limits = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"].compactMap { path in
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return ([physical] + limits.filter { $0 > 0 }).min() ?? physical
    }

    /// What weights may take by default: all of `bytes` but a margin of a quarter of it, at least
    /// 2 GiB. The margin is for what runs beside the weights: the forward's activations (a few
    /// hundred MB for a batch of 32 at 224), the page cache that a mapped checkpoint is read
    /// through, the system and other processes. On a 24 GB machine that is 18 GB: ViT-g/14
    /// (≈ 9 GB in memory) loads in memory, DINOv3 7B (≈ 54 GB) streams.
    public static var defaultWeightBudget: Int {
        let total = bytes
        return Swift.max(0, total - Swift.max(2 << 30, total / 4))
    }
}
