/// Bounds the unpickler enforces. The defaults follow from the input: a pickle cannot honestly
/// describe more objects than it has bytes, nor nest deeper than any weights file does.
public struct PickleLimits: Sendable, Equatable {
    /// Containers inside containers (the frozen value's depth). Weights files nest < 20 deep.
    public var maxNestingDepth: Int = 256
    /// MARKs open at once.
    public var maxMarkDepth: Int = 1024
    /// Entries in the memo.
    public var maxMemoEntries: Int
    /// Nodes of the value as a tree, counting shared objects once per reference. Bounds what a
    /// consumer walking the result can be made to do by a small pickle (the "memo bomb").
    public var maxExpandedNodes: Int

    public init(inputSize: Int) {
        maxMemoEntries = Swift.max(inputSize, 16)
        maxExpandedNodes = 4 * Swift.max(inputSize, 0) + 100_000
    }
}
