/// Bounds the unpickler enforces. The defaults follow from the input: a pickle cannot honestly
/// describe more objects than it has bytes, nor nest deeper than any weights file does.
public struct PickleLimits: Sendable, Equatable {
    /// Containers inside containers (the frozen value's depth), dict keys inside keys, and calls
    /// inside calls (`_rebuild_from_type_v2` wrapping itself). Weights files nest < 20 deep; every
    /// recursion over the input stops here, far above that and far below the stack's limit.
    public var maxNestingDepth: Int = 256
    /// MARKs open at once.
    public var maxMarkDepth: Int = 1024
    /// Entries in the memo, counting the empty slots a far index pads the memo array with.
    public var maxMemoEntries: Int
    /// Nodes of the value as a tree, counting shared objects once per reference. Bounds what a
    /// consumer walking the result can be made to do by a small pickle (the "memo bomb").
    public var maxExpandedNodes: Int
    /// Work done while the pickle is read, beyond one step per opcode: nodes visited hashing dict
    /// keys, items copied into new containers or read as shapes, bytes converted. Shared objects
    /// make such work repeatable at the cost of a memo GET (a key of nested shared tuples hashes as
    /// a tree of 2^depth nodes), so it is counted as it happens, not only when the value is frozen.
    public var maxWork: Int

    public init(inputSize: Int) {
        let size = Swift.max(inputSize, 0)
        maxMemoEntries = Swift.max(size, 16)
        maxExpandedNodes = 4 * size + 100_000
        maxWork = 16 * size + 1_000_000
    }
}
