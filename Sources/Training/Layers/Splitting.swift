import Kernels

/// How many pieces to split `count` items of a loop into when the whole loop does `work`
/// multiply-adds: one piece for small loops (a thread handoff costs more than the work), else up
/// to one per thread with at least `minimum` items each.
@inline(__always)
func pieces(_ count: Int, work: Int, minimum: Int = 1, _ parallelism: Parallelism) -> Parallelism {
    guard parallelism.threads > 1, work >= 1 << 16, count >= 2 * minimum else { return .serial }
    return Parallelism(threads: Swift.min(parallelism.threads, count / Swift.max(minimum, 1)))
}
