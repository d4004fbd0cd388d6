/// The dot-separated components of a tensor name, walked on its UTF-8 bytes. Layout detection
/// looks at every name of a checkpoint (hundreds to thousands); splitting each into `Substring`s
/// and joining them again was most of `inspect`'s time after reading. Components come out exactly
/// as `split(separator: ".", omittingEmptySubsequences: false)` gives them, empty ones included.
struct NameComponents: IteratorProtocol {
    let bytes: UnsafeBufferPointer<UInt8>
    /// Leave out the wrapper components `LayoutNames.strippingWrappers` removes.
    let skippingWrappers: Bool
    private var start = 0
    private var done = false

    init(_ bytes: UnsafeBufferPointer<UInt8>, skippingWrappers: Bool = false) {
        self.bytes = bytes
        self.skippingWrappers = skippingWrappers
    }

    mutating func next() -> Range<Int>? {
        while !done {
            var end = start
            while end < bytes.count, bytes[end] != 0x2E { end += 1 }
            let component = start..<end
            if end == bytes.count { done = true } else { start = end + 1 }
            if skippingWrappers, LayoutNames.isWrapper(bytes, component) { continue }
            return component
        }
        return nil
    }

    /// True when the component spells `text` (ASCII).
    func equals(_ component: Range<Int>, _ text: StaticString) -> Bool {
        NameComponents.equals(bytes, component, text)
    }

    static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ component: Range<Int>, _ text: StaticString) -> Bool {
        guard component.count == text.utf8CodeUnitCount else { return false }
        let t = text.utf8Start
        for (k, i) in component.enumerated() where bytes[i] != t[k] { return false }
        return true
    }

    /// `LayoutNames.index` on bytes: ASCII digits only, 1 to 9 of them.
    func index(_ component: Range<Int>) -> Int? {
        guard !component.isEmpty, component.count <= 9 else { return nil }
        var v = 0
        for i in component {
            let d = bytes[i] &- 0x30
            guard d <= 9 else { return nil }
            v = v * 10 + Int(d)
        }
        return v
    }
}

extension LayoutNames {
    /// Runs `body` on the name's UTF-8 bytes without copying a native string.
    static func withBytes<R>(_ name: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let r = name.utf8.withContiguousStorageIfAvailable(body) { return r }
        var copy = name
        return copy.withUTF8(body)
    }

    /// `wrapperComponents` on bytes (`equals` fails on the length for nearly every component).
    static func isWrapper(_ bytes: UnsafeBufferPointer<UInt8>, _ c: Range<Int>) -> Bool {
        NameComponents.equals(bytes, c, "module") || NameComponents.equals(bytes, c, "_orig_mod")
            || NameComponents.equals(bytes, c, "_fsdp_wrapped_module")
            || NameComponents.equals(bytes, c, "_checkpoint_wrapped_module")
    }

    /// True when some component of `name` is one of `wrapperComponents`.
    static func hasWrapper(_ name: String) -> Bool {
        withBytes(name) { b in
            var it = NameComponents(b)
            while let c = it.next() { if isWrapper(b, c) { return true } }
            return false
        }
    }
}
