#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A storage's bytes computed from other storages each time they are read: a dtype conversion
/// or a concatenation that a checkpoint conversion (or a layout translation) asks for. Making
/// them this way, rather than when the store is built, lets a writer or a model hold one
/// tensor's bytes at a time: converting a 27 GB checkpoint to bf16 then needs one converted
/// tensor in memory, not 13 GB of them.
///
/// `fill(dst, offset)` writes bytes `offset ..< offset + dst.count` of the result. It must be a
/// pure function of `sources`, which must not be written afterwards (owned storages are only
/// written while they are made). `Storage.withBytes` computes the bytes asked for into memory
/// freed when its closure returns; `Storage.bytes`, whose pointer outlives any closure, computes
/// them all once and keeps them.
public final class DeferredBytes: @unchecked Sendable {
    public typealias Fill = @Sendable (UnsafeMutableRawBufferPointer, Int) -> Void

    public let count: Int
    /// What `fill` reads (kept alive here; `Storage.dropResidentPages` passes on to them).
    public let sources: [Storage]
    private let fill: Fill
    private var cache: UnsafeMutableRawPointer?
    /// Guards `cache` (allocated: a mutex must not move).
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init(count: Int, sources: [Storage], fill: @escaping Fill) {
        precondition(count >= 0, "negative byte count")
        self.count = count
        self.sources = sources
        self.fill = fill
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
    }

    deinit {
        cache?.deallocate()
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Every byte, computed on first use and kept while this lives.
    var cachedBytes: UnsafeRawBufferPointer {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if cache == nil {
            let p = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1), alignment: 64)
            fill(UnsafeMutableRawBufferPointer(start: p, count: count), 0)
            cache = p
        }
        return UnsafeRawBufferPointer(start: cache, count: count)
    }

    /// `body` over bytes `range`: the cache when `cachedBytes` made one, else computed into
    /// 64-byte aligned memory that is freed when `body` returns.
    func withBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        pthread_mutex_lock(lock)
        let cached = cache
        pthread_mutex_unlock(lock)
        if let cached { return try body(UnsafeRawBufferPointer(start: cached + range.lowerBound, count: range.count)) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(range.count, 1), alignment: 64)
        defer { p.deallocate() }
        let buffer = UnsafeMutableRawBufferPointer(start: p, count: range.count)
        if range.count > 0 { fill(buffer, range.lowerBound) }
        return try body(UnsafeRawBufferPointer(buffer))
    }
}
